using System.Globalization;
using System.Text.Json;

namespace BinEngine.Cli.Batch;

/// <summary>Input file formats of `batch`.</summary>
internal enum InputFormat { Lines, Tsv, Csv, Jsonl }

/// <summary>One input row: the text to classify, or why there is none.</summary>
internal readonly record struct InputRow(string? Text, string? Error);

/// <summary>How the text of a row is found.</summary>
/// <param name="TextColumn">TSV/CSV: a column name or 0-based index; null: a known text column of the header, else column 0.</param>
/// <param name="TextField">JSONL: the field holding the text.</param>
/// <param name="Header">TSV/CSV: "auto", "yes" or "no".</param>
/// <param name="MaxRowBytes">Rows (lines, CSV records) longer than this are error rows.</param>
internal sealed record RowOptions(string? TextColumn, string TextField, string Header, int MaxRowBytes);

/// <summary>
/// Reads the rows of an input file one at a time, in constant memory. Every row of the file gives one
/// <see cref="InputRow"/> (the TSV/CSV header excepted): a row that cannot give a text gives an error, so
/// that output row i always answers input row i.
/// </summary>
internal abstract class RowReader
{
    /// <summary>Header names a text column commonly has (the first one present is used when --text-column is not given).</summary>
    public static readonly string[] KnownTextColumns = ["text", "sentence", "sentence1", "review", "content", "document", "question", "query", "utterance", "comment", "body"];

    protected RowReader(ByteLineReader lines) => Lines = lines;

    protected ByteLineReader Lines { get; }

    /// <summary>Bytes of the input consumed so far (for progress).</summary>
    public long Position => Lines.Position;

    /// <summary>Reads the next row; false at the end of the input.</summary>
    public abstract bool TryRead(out InputRow row);

    /// <summary>The input format a file name suggests: .tsv/.tab, .csv, .jsonl/.ndjson/.json, else plain lines.</summary>
    public static InputFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".tsv" or ".tab" => InputFormat.Tsv,
        ".csv" => InputFormat.Csv,
        ".jsonl" or ".ndjson" or ".json" => InputFormat.Jsonl,
        _ => InputFormat.Lines,
    };

    public static InputFormat ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "lines" or "txt" or "text" => InputFormat.Lines,
        "tsv" => InputFormat.Tsv,
        "csv" => InputFormat.Csv,
        "jsonl" or "ndjson" or "json" => InputFormat.Jsonl,
        _ => throw new CliException($"unknown input format '{name}'; use lines, tsv, csv or jsonl (--format)"),
    };

    /// <summary>Opens a reader of <paramref name="format"/>; TSV/CSV read and interpret the header here (usage errors throw <see cref="CliException"/>).</summary>
    public static RowReader Open(Stream stream, InputFormat format, RowOptions options)
    {
        var lines = new ByteLineReader(stream, options.MaxRowBytes);
        return format switch
        {
            InputFormat.Lines => new PlainRowReader(lines),
            InputFormat.Jsonl => new JsonlRowReader(lines, options.TextField),
            InputFormat.Tsv => new DelimitedRowReader(lines, '\t', quoted: false, options),
            InputFormat.Csv => new DelimitedRowReader(lines, ',', quoted: true, options),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }
}

/// <summary>Plain text: each line is one text.</summary>
internal sealed class PlainRowReader(ByteLineReader lines) : RowReader(lines)
{
    public override bool TryRead(out InputRow row)
    {
        if (!Lines.TryReadLine(out string text, out string? problem))
        {
            row = default;
            return false;
        }
        row = problem is null ? new InputRow(text, null) : new InputRow(null, problem);
        return true;
    }
}

/// <summary>JSON lines: each line is an object whose text field is a string.</summary>
internal sealed class JsonlRowReader(ByteLineReader lines, string field) : RowReader(lines)
{
    public override bool TryRead(out InputRow row)
    {
        if (!Lines.TryReadLine(out string text, out string? problem))
        {
            row = default;
            return false;
        }
        row = problem is null ? Parse(text) : new InputRow(null, problem);
        return true;
    }

    private InputRow Parse(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
            return new InputRow(null, $"line {Lines.LineNumber} is empty, not a JSON object");
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return new InputRow(null, $"line {Lines.LineNumber} is JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object");
            if (!doc.RootElement.TryGetProperty(field, out var value))
                return new InputRow(null, $"line {Lines.LineNumber} has no field \"{field}\" (--text-field)");
            if (value.ValueKind != JsonValueKind.String)
                return new InputRow(null, $"line {Lines.LineNumber}: field \"{field}\" is {value.ValueKind.ToString().ToLowerInvariant()}, not a string");
            return new InputRow(value.GetString(), null);
        }
        catch (JsonException e)
        {
            return new InputRow(null, $"line {Lines.LineNumber} is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // JSON may escape half a surrogate pair ("\ud800"); the parser accepts it, but no .NET string can
            // hold it, so GetString (and name matching) throw. It is this row's problem, never the run's.
            return new InputRow(null, $"line {Lines.LineNumber}: field \"{field}\" cannot be read as text ({e.Message})");
        }
    }
}

/// <summary>
/// TSV (tab-separated, no quoting, as GLUE's files) or CSV (RFC 4180: comma-separated, fields optionally in
/// double quotes with "" for a quote, quoted fields may span lines).
/// </summary>
internal sealed class DelimitedRowReader : RowReader
{
    private readonly char _separator;
    private readonly bool _quoted;
    private readonly int _column;
    private InputRow? _pending; // the first row when it turned out not to be a header
    private readonly List<string> _fields = new();

    public DelimitedRowReader(ByteLineReader lines, char separator, bool quoted, RowOptions options) : base(lines)
    {
        _separator = separator;
        _quoted = quoted;

        int? index = null;
        string? name = null;
        if (options.TextColumn is { } c)
        {
            if (int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out int i)) index = i;
            else name = c;
        }
        if (options.Header is not ("auto" or "yes" or "no"))
            throw new CliException($"--header must be auto, yes or no, not '{options.Header}'");

        if (!ReadRecord(out string? firstProblem))
        {
            _column = index ?? 0; // empty input: no rows at all
            return;
        }
        List<string> first = new(_fields);
        bool isHeader = options.Header switch
        {
            "yes" => true,
            "no" => false,
            _ => firstProblem is null && first.Any(f => Matches(f, name) || KnownTextColumns.Contains(f.Trim(), StringComparer.OrdinalIgnoreCase) || f.Trim().Equals("label", StringComparison.OrdinalIgnoreCase)),
        };
        string kind = separator == '\t' ? "TSV" : "CSV";
        if (isHeader)
        {
            if (firstProblem is not null)
                throw new CliException($"the {kind} header is unreadable: {firstProblem}");
            if (name is not null)
            {
                _column = first.FindIndex(f => Matches(f, name));
                if (_column < 0)
                    throw new CliException($"the {kind} header has no column '{name}' (columns: {string.Join(", ", first)}); pass --text-column NAME or a 0-based INDEX");
            }
            else if (index is not null)
            {
                _column = index.Value;
                if (_column >= first.Count)
                    throw new CliException($"--text-column {_column} is past the {first.Count} column(s) of the {kind} header ({string.Join(", ", first)}); indices start at 0");
            }
            else
            {
                _column = first.FindIndex(f => KnownTextColumns.Contains(f.Trim(), StringComparer.OrdinalIgnoreCase));
                if (_column < 0)
                    throw new CliException($"no text column in the {kind} header ({string.Join(", ", first)}); pass --text-column NAME or a 0-based INDEX");
            }
        }
        else
        {
            if (name is not null)
                throw new CliException($"--text-column '{name}' names a column, but the first row of the {kind} is not a header with that name; pass a 0-based index or --header yes");
            _column = index ?? 0;
            _pending = RowOf(firstProblem);
        }
    }

    private static bool Matches(string field, string? name) => name is not null && field.Trim().Equals(name, StringComparison.OrdinalIgnoreCase);

    public override bool TryRead(out InputRow row)
    {
        if (_pending is { } p)
        {
            _pending = null;
            row = p;
            return true;
        }
        if (!ReadRecord(out string? problem))
        {
            row = default;
            return false;
        }
        row = RowOf(problem);
        return true;
    }

    private InputRow RowOf(string? problem)
    {
        if (problem is not null) return new InputRow(null, problem);
        if (_column >= _fields.Count)
            return new InputRow(null, $"line {_recordLine} has {_fields.Count} column(s); the text column is {_column} (0-based)");
        return new InputRow(_fields[_column], null);
    }

    /// <summary>A line read ahead of its turn: the continuation lines of a malformed CSV record, read again as records.</summary>
    private readonly record struct PendingLine(string Text, string? Problem, long Number);

    private readonly List<PendingLine> _replay = new();
    private int _replayNext;
    private long _recordLine; // the line the current record starts on

    private bool NextLine(out string text, out string? problem, out long number)
    {
        if (_replayNext < _replay.Count)
        {
            (text, problem, number) = _replay[_replayNext++];
            if (_replayNext == _replay.Count) { _replay.Clear(); _replayNext = 0; }
            return true;
        }
        number = 0;
        if (!Lines.TryReadLine(out text, out problem)) return false;
        number = Lines.LineNumber;
        return true;
    }

    /// <summary>
    /// Reads one record into <see cref="_fields"/>; false at the end of the input. A quoted CSV field may hold line
    /// breaks (RFC 4180), so one stray quote could swallow the lines after it into one record and shift every later
    /// output row. The reader refuses to guess: a record whose quotes do not close properly (text after a closing
    /// quote, or a quote still open at the end of the file) becomes one error row for the line it started on, and
    /// the lines it had swallowed are read again as records of their own. So every input line is answered, and a
    /// record spans several lines only when its quotes are well formed.
    /// </summary>
    private bool ReadRecord(out string? problem)
    {
        _fields.Clear();
        if (!NextLine(out string line, out problem, out long first)) return false;
        _recordLine = first;
        if (!_quoted)
        {
            if (problem is null) _fields.AddRange(line.Split(_separator));
            return true;
        }
        // CSV: walk the characters, continuing onto the next line while inside quotes.
        var field = new System.Text.StringBuilder();
        var swallowed = new List<PendingLine>(); // lines after the first, kept (up to the row limit) to read again if the record is malformed
        bool inQuotes = false;
        bool fieldWasQuoted = false;
        bool afterClosingQuote = false;
        long recordBytes = line.Length;
        long number = first;
        bool tooLong = false;
        string? malformed = null;
        while (true)
        {
            for (int i = 0; i < line.Length && malformed is null; i++)
            {
                char ch = line[i];
                if (inQuotes)
                {
                    if (ch == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                        else { inQuotes = false; afterClosingQuote = true; }
                    }
                    else field.Append(ch);
                }
                else if (ch == _separator)
                {
                    _fields.Add(field.ToString());
                    field.Clear();
                    fieldWasQuoted = false;
                    afterClosingQuote = false;
                }
                else if (afterClosingQuote)
                {
                    malformed = $"line {number}: text after the closing quote of a CSV field (column {_fields.Count}); a quote inside a quoted field is written \"\"";
                }
                else if (ch == '"' && field.Length == 0 && !fieldWasQuoted)
                {
                    inQuotes = true;
                    fieldWasQuoted = true;
                }
                else field.Append(ch);
            }
            if (!inQuotes || malformed is not null) break;
            // A quoted field holds a line break: the record goes on with the next line.
            if (!NextLine(out line, out string? more, out number))
            {
                malformed = $"line {first}: a quoted CSV field opened here is not closed before the end of the file";
                break;
            }
            problem ??= more;
            if (!tooLong) swallowed.Add(new PendingLine(line, more, number));
            recordBytes += line.Length + 1;
            if (recordBytes > Lines.MaxLineBytes && !tooLong)
            {
                // Keep scanning for the closing quote (so the next record starts right), but neither the text nor
                // the lines: the error row says which lines it covers.
                tooLong = true;
                swallowed.Clear();
                field.Clear();
            }
            field.Append('\n');
        }
        if (tooLong)
        {
            problem = $"lines {first}-{number}: a quoted CSV field runs over {Lines.MaxLineBytes:N0} bytes (--max-row-bytes); " +
                (malformed is null ? "read as one record" : "read as one record, and its quotes are malformed (" + malformed + ")");
        }
        else if (malformed is not null)
        {
            problem = swallowed.Count == 0 ? malformed
                : $"the CSV record starting on line {first} is malformed ({malformed}); the {swallowed.Count} line(s) after line {first} are read again as records of their own";
            // Read the swallowed lines again, before any lines already waiting.
            _replay.RemoveRange(0, _replayNext);
            _replay.InsertRange(0, swallowed);
            _replayNext = 0;
        }
        _fields.Add(field.ToString());
        return true;
    }
}
