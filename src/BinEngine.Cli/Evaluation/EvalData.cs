using System.CommandLine;
using System.Globalization;
using BinEngine.Cli.Batch;
using BinEngine.Runtime;

namespace BinEngine.Cli.Evaluation;

/// <summary>A labelled data set: texts with gold class ids, and the rows that could not be used.</summary>
internal sealed record EvalData(string[] Texts, int[] Gold, IReadOnlyList<string> RowErrors)
{
    /// <summary>--text-column of eval and calibrate.</summary>
    public static Option<string> TextColumnOption() => new("--text-column")
    {
        Description = "Text column: header name or 0-based index", DefaultValueFactory = _ => "sentence", HelpName = "NAME|INDEX",
    };

    /// <summary>--label-column of eval and calibrate.</summary>
    public static Option<string> LabelColumnOption() => new("--label-column")
    {
        Description = "Label column (a class id or a label name per row): header name or 0-based index", DefaultValueFactory = _ => "label", HelpName = "NAME|INDEX",
    };

    /// <summary>
    /// Reads a GLUE-style TSV (a header, then text and label columns; no quoting). A label is a class id
    /// 0..C−1 or a label name. A row without the columns, with an unknown label or unreadable bytes is not
    /// used and is reported in <see cref="RowErrors"/>. Texts that hold no token are reported by the caller.
    /// </summary>
    public static EvalData ReadTsv(string path, string textColumn, string labelColumn, IReadOnlyList<string> labels, int limit)
    {
        if (!File.Exists(path))
            throw new CliException($"data file '{path}' does not exist");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var lines = new ByteLineReader(stream, 1 << 20);
        if (!lines.TryReadLine(out string header, out string? headerProblem) || headerProblem is not null)
            throw new CliException($"'{path}' has no readable header line; expected a TSV with columns '{textColumn}' and '{labelColumn}'");
        string[] names = header.Split('\t');
        int Column(string name, string option)
        {
            if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < names.Length) return i;
            int c = Array.FindIndex(names, n => n.Trim().Equals(name, StringComparison.OrdinalIgnoreCase));
            return c >= 0 ? c : throw new CliException(
                $"'{path}' has no column '{name}' (its header: {string.Join(", ", names)}); pass {option} NAME or a 0-based INDEX");
        }
        int text = Column(textColumn, "--text-column");
        int label = Column(labelColumn, "--label-column");

        var texts = new List<string>();
        var gold = new List<int>();
        var errors = new List<string>();
        while ((limit <= 0 || texts.Count < limit) && lines.TryReadLine(out string line, out string? problem))
        {
            if (problem is not null) { errors.Add(problem); continue; }
            string[] f = line.Split('\t');
            if (f.Length <= Math.Max(text, label))
            {
                errors.Add($"line {lines.LineNumber} has {f.Length} column(s); the text and label columns are {text} and {label}");
                continue;
            }
            string l = f[label].Trim();
            int id = int.TryParse(l, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n
                : IndexOf(labels, l);
            if (id < 0 || id >= labels.Count)
            {
                errors.Add($"line {lines.LineNumber}: label '{l}' is neither a class id 0..{labels.Count - 1} nor a label name ({string.Join(", ", labels)})");
                continue;
            }
            texts.Add(f[text]);
            gold.Add(id);
        }
        return new EvalData(texts.ToArray(), gold.ToArray(), errors);
    }

    /// <summary>
    /// The rows the model can classify: drops texts without a token, reporting each dropped row (and the unreadable
    /// ones) on <paramref name="stderr"/>, the first 10 of them; a usage error when no row is left.
    /// </summary>
    public (string[] Texts, int[] Gold, IReadOnlyList<string> Errors) Usable(BeexModel m, TextWriter stderr, string dataPath)
    {
        var errors = new List<string>(RowErrors);
        var texts = new List<string>(Texts.Length);
        var gold = new List<int>(Texts.Length);
        var ids = new int[m.Architecture.MaxLength];
        for (int i = 0; i < Texts.Length; i++)
        {
            try
            {
                m.Encode(Texts[i], ids, out _);
                texts.Add(Texts[i]);
                gold.Add(Gold[i]);
            }
            catch (ArgumentException e)
            {
                errors.Add($"usable row {i}: {e.Message}");
            }
        }
        foreach (string e in errors.Take(10))
            stderr.WriteLine("skipped: " + e);
        if (errors.Count > 10)
            stderr.WriteLine($"skipped: … and {errors.Count - 10} more rows");
        if (texts.Count == 0)
            throw new CliException($"'{dataPath}' has no usable rows");
        return (texts.ToArray(), gold.ToArray(), errors);
    }

    private static int IndexOf(IReadOnlyList<string> labels, string name)
    {
        for (int i = 0; i < labels.Count; i++)
            if (labels[i].Equals(name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }
}
