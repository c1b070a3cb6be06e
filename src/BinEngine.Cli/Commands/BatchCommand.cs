using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using BinEngine.Cli.Batch;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine batch INPUT -o OUTPUT</c>: classifies every row of a TSV, CSV, JSONL or plain-text file into
/// one output row each, in order, streaming in chunks (constant memory), on all cores.
/// </summary>
/// <remarks>
/// Row policy: a row that cannot be read (not UTF-8, invalid JSON, no text field, too few columns, longer
/// than --max-row-bytes) or holds no token (empty, only spaces) gets an error row; a text longer than the
/// model's max_len tokens is cut to max_len (as in training) and its row says "truncated": true.
/// </remarks>
internal static class BatchCommand
{
    /// <summary>A chunk also ends when its texts reach this many characters, bounding memory on huge rows.</summary>
    private const long MaxChunkChars = 16 << 20;

    /// <summary>Most rows in one chunk (--chunk-size); the default 1024 already keeps every core busy.</summary>
    internal const int MaxChunkRows = 1 << 16;

    /// <summary>Most token ids one chunk may hold (rows × max_len; two chunks are allocated): 2 × 256 MiB of ids.</summary>
    internal const long MaxChunkIds = 64L << 20;

    /// <summary>
    /// The result of every readable row of <paramref name="chunk"/> (null for rows already in error). The chunk runs as
    /// one batch; if the model answers some sample with a non-finite output (possible only with a hostile model file
    /// whose weights overflow float32 in a mechanism), the chunk is rerun one row at a time so that only those rows
    /// become error rows and no other row is lost.
    /// </summary>
    private static ClassificationResult?[] ClassifyRows(BeexModel model, Chunk chunk, ExitPolicy policy)
    {
        var byRow = new ClassificationResult?[chunk.Length];
        var rows = new List<int>(chunk.Length);
        for (int i = 0; i < chunk.Length; i++)
            if (chunk.Errors[i] is null) rows.Add(i);
        try
        {
            ClassificationResult[] results = rows.Count > 0 ? model.ClassifyBatch(chunk.Samples, policy) : [];
            for (int j = 0; j < rows.Count; j++)
                byRow[rows[j]] = results[j];
        }
        catch (InvalidOperationException)
        {
            for (int j = 0; j < rows.Count; j++)
            {
                try
                {
                    byRow[rows[j]] = model.ClassifyBatch([chunk.Samples[j]], policy)[0];
                }
                catch (InvalidOperationException e)
                {
                    chunk.Errors[rows[j]] = e.Message;
                }
            }
        }
        return byRow;
    }

    internal static Command Create(CliContext cx)
    {
        var input = new Argument<string>("input") { Description = "Input file: .tsv/.csv (a text column), .jsonl (a text field), or plain text (one text per line)" };
        var output = new Option<string>("--output", "-o") { Description = "Output file: .tsv for TSV with a header, anything else JSON lines", Required = true, HelpName = "PATH" };
        var format = new Option<string?>("--format") { Description = "Input format: lines, tsv, csv or jsonl (default: from the extension; .tsv, .csv, .jsonl/.ndjson, else lines)", HelpName = "FORMAT" };
        var outputFormat = new Option<string?>("--output-format") { Description = "Output format: jsonl or tsv (default: from the output's extension)", HelpName = "FORMAT" };
        var textColumn = new Option<string?>("--text-column") { Description = "TSV/CSV: the text column, a header name or a 0-based index (default: the header's text/sentence/review/… column, else column 0)", HelpName = "NAME|INDEX" };
        var textField = new Option<string>("--text-field") { Description = "JSONL: the field holding the text", DefaultValueFactory = _ => "text", HelpName = "NAME" };
        var header = new Option<string>("--header") { Description = "TSV/CSV: is the first row a header? auto (yes when it names --text-column or a known column such as text, sentence, label), yes, no", DefaultValueFactory = _ => "auto", HelpName = "auto|yes|no" };
        header.AcceptOnlyFromAmong("auto", "yes", "no");
        var threads = CommonOptions.Threads("to tokenize and classify on");
        var chunk = new Option<int>("--chunk-size") { Description = $"Rows read, classified and written at a time (1 to {MaxChunkRows:N0})", DefaultValueFactory = _ => 1024, HelpName = "N" };
        var maxRowBytes = new Option<int>("--max-row-bytes") { Description = "Rows longer than this many bytes become error rows instead of being read", DefaultValueFactory = _ => ByteLineReader.DefaultMaxLineBytes, HelpName = "BYTES" };
        var resume = new Option<bool>("--resume") { Description = "If an interrupted run left OUTPUT.partial (or OUTPUT), keep its complete rows, skip as many input rows and append the rest (same bytes as an uninterrupted run); refused when OUTPUT.batch.json shows another model, policy or options" };
        var quiet = new Option<bool>("--no-progress") { Description = "Print no progress (the summary is still printed)" };
        var logits = new Option<bool>("--logits") { Description = "JSONL: also every computed exit's logits, \"logits\": [[…C…] per block] (rows always carry \"entropies\")" };
        var model = CommonOptions.Model();
        var policy = new PolicyOptions();
        var command = new Command("batch", "Classify every row of a file into one output row each, in order (streaming, all cores, resumable)")
        {
            input, output, format, outputFormat, textColumn, textField, header, threads, chunk, maxRowBytes, resume, quiet, logits, model,
        };
        policy.AddTo(command);
        command.SetAction(parse =>
        {
            string inPath = cx.Resolve(parse.GetValue(input)!);
            string outPath = cx.Resolve(parse.GetValue(output)!);
            if (!File.Exists(inPath))
                throw new CliException($"input file '{inPath}' does not exist");
            if (cx.StdinClosed && UnixFiles.Of(0) is { } stdin && UnixFiles.Of(inPath) is { } source && stdin.SameFileAs(source))
                throw new CliException($"input '{inPath}' is stdin, and stdin is closed (the command was started with <&-); pass a file, or pipe one in");
            // Names cannot tell a symbolic or hard link from its target: compare the files themselves, for the
            // output and the files written beside it.
            string partialPath = outPath + ".partial";
            foreach (string written in new[] { outPath, partialPath, RunRecord.PathFor(outPath) })
            {
                if (string.Equals(inPath, written, StringComparison.Ordinal) || UnixFiles.SameFile(inPath, written))
                    throw new CliException($"the output '{written}' is the input file '{inPath}' (the same file, perhaps through a link); writing it would destroy the input: choose another -o");
            }
            int chunkSize = parse.GetValue(chunk);
            if (chunkSize is < 1 or > MaxChunkRows) throw new CliException($"--chunk-size must be 1 to {MaxChunkRows:N0} rows, got {chunkSize:N0}");
            int rowLimit = parse.GetValue(maxRowBytes);
            if (rowLimit < 1) throw new CliException($"--max-row-bytes must be at least 1, got {rowLimit}");
            var inFormat = parse.GetValue(format) is { } f ? RowReader.ParseFormat(f) : RowReader.FormatOf(inPath);
            var outFormat = parse.GetValue(outputFormat) is { } of ? ResultFormatter.ParseFormat(of) : ResultFormatter.FormatOf(outPath);
            int threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));

            string modelPath = ModelLocator.Locate(cx, parse.GetValue(model));
            using BeexModel m = ModelLocator.Load(modelPath, new BeexModelOptions { BatchThreads = threadCount });
            if ((long)chunkSize * m.Architecture.MaxLength > MaxChunkIds)
                throw new CliException($"--chunk-size {chunkSize:N0} × max_len {m.Architecture.MaxLength:N0} is more than {MaxChunkIds:N0} token ids per chunk; use a --chunk-size of at most {MaxChunkIds / m.Architecture.MaxLength:N0}");
            ExitPolicy exitPolicy = policy.Resolve(parse, m);
            bool withLogits = parse.GetValue(logits);
            bool withSets = policy.Sets(parse, m, exitPolicy);
            if (withSets && outFormat == OutputFormat.Tsv)
                throw new CliException("--sets needs JSONL output (a set has no fixed TSV columns)");
            var formatter = ResultFormatter.Create(outFormat, m.Labels, withLogits, withSets);
            var options = new RowOptions(parse.GetValue(textColumn), parse.GetValue(textField)!, parse.GetValue(header)!, rowLimit);
            var record = RunRecord.Of(modelPath, exitPolicy.ToString(), new Dictionary<string, string?>
            {
                ["input_format"] = inFormat.ToString().ToLowerInvariant(),
                ["output_format"] = outFormat.ToString().ToLowerInvariant(),
                ["text_column"] = options.TextColumn,
                ["text_field"] = options.TextField,
                ["header"] = options.Header,
                ["max_row_bytes"] = rowLimit.ToString(CultureInfo.InvariantCulture),
                ["logits"] = withLogits ? "yes" : "no",
            });

            using var inStream = new FileStream(inPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            RowReader reader = RowReader.Open(inStream, inFormat, options);

            // Rows go to OUTPUT.partial, renamed to OUTPUT when the run ends: the output is replaced whole, a link
            // at OUTPUT is replaced rather than written through, and --resume finds an interrupted run's rows there
            // (or, for a run of an earlier version, in OUTPUT itself). A device or FIFO (/dev/stdout) is written directly.
            bool direct = UnixFiles.Of(outPath) is { IsRegular: false };
            bool resuming = parse.GetValue(resume);
            if (direct && resuming)
                throw new CliException($"cannot resume into '{outPath}': it is not a regular file");
            string? existing = !resuming || direct ? null : File.Exists(partialPath) ? partialPath : File.Exists(outPath) ? outPath : null;
            if (existing is not null && new FileInfo(existing).Length == 0)
                existing = null; // no rows to keep, so none to check: start afresh
            string writing = direct ? outPath : existing ?? partialPath;
            var run = new RunCounts();
            FileStream outStream;
            if (existing is not null)
            {
                RunRecord.CheckResumable(outPath, existing, record);
                outStream = new FileStream(existing, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
                try
                {
                    (run.Skipped, run.Errors, run.Truncated) = ResumeState.Prepare(outStream, existing, formatter);
                }
                catch
                {
                    outStream.Dispose();
                    throw;
                }
            }
            else
            {
                outStream = new FileStream(writing, direct ? FileMode.Open : FileMode.Create, FileAccess.Write, FileShare.Read);
                // Written after the partial file is emptied, so a record never describes rows another run wrote.
                if (!direct) RunRecord.Write(outPath, record);
            }
            var writer = new StreamWriter(outStream, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
            try
            {
                if ((direct || outStream.Length == 0) && formatter.Header is not null)
                    writer.WriteLine(formatter.Header);

                for (long i = 0; i < run.Skipped; i++)
                {
                    if (!reader.TryRead(out _))
                        throw new CliException($"cannot resume: '{existing}' holds {run.Skipped:N0} rows but '{inPath}' has only {i:N0}; is it the output of another input?");
                }

                var clock = Stopwatch.StartNew();
                BatchProgress.Run(cx, inStream.CanSeek ? inStream.Length : 0, enabled: !parse.GetValue(quiet), report =>
                    Classify(m, exitPolicy, reader, writer, formatter, chunkSize, threadCount, run, report));
                clock.Stop();
                writer.Dispose();
                if (writing != outPath)
                    File.Move(writing, outPath, overwrite: true);
                Summarize(cx, run, clock, outPath);
            }
            finally
            {
                writer.Dispose();
            }
            return run.Errors > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The summary on stderr: rows in, ok, with errors, truncated; speed; where rows were kept from.</summary>
    private static void Summarize(CliContext cx, RunCounts run, Stopwatch clock, string outPath)
    {
        long rowsIn = run.Skipped + run.New;
        var c = CultureInfo.InvariantCulture;
        cx.Stderr.WriteLine(string.Format(c,
            "batch: {0:N0} rows in, {1:N0} ok, {2:N0} with errors{3}; {4:N0} processed in {5:0.0} s ({6:N0} rows/s) -> {7}",
            rowsIn, rowsIn - run.Errors, run.Errors,
            run.Truncated > 0 ? string.Format(c, " ({0:N0} truncated to max_len)", run.Truncated) : "",
            run.New, clock.Elapsed.TotalSeconds, run.New / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), outPath));
        if (run.Skipped > 0)
            cx.Stderr.WriteLine(string.Format(c, "batch: resumed after the {0:N0} rows already in {1}", run.Skipped, outPath));
    }

    /// <summary>Counts over the whole output (rows kept by --resume included).</summary>
    private sealed class RunCounts
    {
        public long Skipped, New, Errors, Truncated;
    }

    /// <summary>One chunk of input rows and their token ids; two alternate so reading overlaps classifying.</summary>
    private sealed class Chunk(int capacity, int maxLength)
    {
        public readonly InputRow[] Rows = new InputRow[capacity];
        public readonly int[] Ids = new int[capacity * maxLength];
        public readonly int[] Counts = new int[capacity];
        public readonly bool[] Truncated = new bool[capacity];
        public readonly string?[] Errors = new string?[capacity];
        public readonly List<ReadOnlyMemory<int>> Samples = new(capacity);
        public int Length;
        public long Position; // input bytes consumed after this chunk
    }

    /// <summary>
    /// The streaming loop: while the model classifies chunk k (spreading its samples over the model's
    /// BatchThreads), the next chunk is read and tokenized on another task; then chunk k's rows are formatted
    /// in parallel and written in input order, and the writer is flushed. The reader is only ever used by one
    /// task at a time (each read starts after the previous one has finished). Memory: two chunks of texts and
    /// chunk × max_len ids, reused.
    /// </summary>
    private static void Classify(BeexModel model, ExitPolicy policy, RowReader reader, StreamWriter writer,
        ResultFormatter formatter, int chunkSize, int threads, RunCounts run, Action<long, long> report)
    {
        int t = model.Architecture.MaxLength;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        Chunk[] buffers = [new Chunk(chunkSize, t), new Chunk(chunkSize, t)];
        var lines = new string[chunkSize];
        Chunk Read(Chunk c)
        {
            int n = 0;
            long chars = 0;
            while (n < chunkSize && chars < MaxChunkChars && reader.TryRead(out InputRow row))
            {
                c.Rows[n++] = row;
                chars += row.Text?.Length ?? 0;
            }
            c.Length = n;
            c.Position = reader.Position;
            Parallel.For(0, n, parallel, i =>
            {
                c.Errors[i] = c.Rows[i].Error;
                c.Truncated[i] = false;
                if (c.Errors[i] is not null) return;
                try
                {
                    c.Counts[i] = model.Encode(c.Rows[i].Text, c.Ids.AsSpan(i * t, t), out c.Truncated[i]);
                }
                catch (ArgumentException e)
                {
                    c.Errors[i] = e.Message;
                }
            });
            c.Samples.Clear();
            for (int i = 0; i < n; i++)
            {
                if (c.Errors[i] is null) c.Samples.Add(c.Ids.AsMemory(i * t, c.Counts[i]));
                c.Rows[i] = default; // the texts are tokenized: let them go
            }
            return c;
        }

        Task<Chunk> next = Task.Run(() => Read(buffers[0]));
        for (int k = 1; ; k++)
        {
            Chunk chunk = next.GetAwaiter().GetResult();
            if (chunk.Length == 0) break;
            Chunk spare = buffers[k % 2]; // taken now: the lambda must not read k, which the loop moves on
            next = Task.Run(() => Read(spare));
            try
            {
                ClassificationResult?[] results = ClassifyRows(model, chunk, policy);
                long first = run.Skipped + run.New;
                Parallel.For(0, chunk.Length, parallel, i =>
                    lines[i] = chunk.Errors[i] is { } error
                        ? formatter.ErrorRow(first + i, error)
                        : formatter.Row(first + i, results[i]!, chunk.Truncated[i]));
                for (int i = 0; i < chunk.Length; i++)
                {
                    writer.WriteLine(lines[i]);
                    lines[i] = null!;
                    if (chunk.Errors[i] is not null) run.Errors++;
                    else if (chunk.Truncated[i]) run.Truncated++;
                }
                run.New += chunk.Length;
                writer.Flush();
                report(run.New, chunk.Position);
            }
            catch
            {
                // Let the read in flight finish before the reader and its stream are disposed.
                try { next.Wait(); } catch (AggregateException) { }
                throw;
            }
        }
    }
}
