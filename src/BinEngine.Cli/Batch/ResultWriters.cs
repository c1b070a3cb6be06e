using System.Globalization;
using System.Text;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Cli.Batch;

/// <summary>Output formats of `batch`.</summary>
internal enum OutputFormat { Jsonl, Tsv }

/// <summary>
/// Formats one output row per input row. Rows are single lines ending in '\n', numbers in a fixed
/// invariant format, so equal results give equal bytes: what --resume relies on.
/// </summary>
internal abstract class ResultFormatter
{
    /// <summary>The line written once at the top of a new file, or null.</summary>
    public abstract string? Header { get; }

    /// <summary>The row for a classified text.</summary>
    public abstract string Row(long index, ClassificationResult r, bool truncated);

    /// <summary>The row for an input row that could not be classified.</summary>
    public abstract string ErrorRow(long index, string error);

    /// <summary>
    /// Reads a complete row back: its index, whether it is an error row and whether its text was truncated;
    /// false when the line is not a row of this format (then the file was not written by this command with these options).
    /// </summary>
    public abstract bool TryParseRow(string line, out long index, out bool isError, out bool truncated);

    public static OutputFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".tsv" or ".tab" => OutputFormat.Tsv,
        _ => OutputFormat.Jsonl,
    };

    public static OutputFormat ParseFormat(string name) => name.ToLowerInvariant() switch
    {
        "jsonl" or "ndjson" or "json" => OutputFormat.Jsonl,
        "tsv" => OutputFormat.Tsv,
        _ => throw new CliException($"unknown output format '{name}'; use jsonl or tsv (--output-format)"),
    };

    /// <param name="format">JSONL or TSV.</param>
    /// <param name="labels">Class names (TSV columns).</param>
    /// <param name="logits">JSONL: also every computed exit's logits.</param>
    /// <param name="sets">JSONL: also the conformal prediction set.</param>
    public static ResultFormatter Create(OutputFormat format, IReadOnlyList<string> labels, bool logits = false, bool sets = false) => format switch
    {
        OutputFormat.Tsv => new TsvResultFormatter(labels),
        _ => new JsonlResultFormatter(logits, sets),
    };
}

/// <summary>
/// {"row":0,"label":1,"label_name":"positive","probabilities":[0.026931,0.973069],"entropies":[0.45,0.12],"exit_block":2,"blocks_run":[1,2],"blocks":3,"tokens":9,"truncated":false}
/// (with "logits":[[…],[…]] after the entropies when asked, "lambdas"/"gate_scores" when the policy reads that controller,
/// "prediction_set" with --sets) or {"row":3,"error":"…"}.
/// </summary>
internal sealed class JsonlResultFormatter(bool logits = false, bool sets = false) : ResultFormatter
{
    [ThreadStatic] private static JsonLine? t_line;

    public override string? Header => null;

    public override string Row(long index, ClassificationResult r, bool truncated)
    {
        var line = t_line ??= new JsonLine();
        Utf8JsonWriter j = line.Begin();
        j.WriteNumber("row", index);
        j.WriteResultFields(r, truncated, logits, sets);
        return line.End();
    }

    public override string ErrorRow(long index, string error)
    {
        var line = t_line ??= new JsonLine();
        Utf8JsonWriter j = line.Begin();
        j.WriteNumber("row", index);
        j.WriteString("error", error);
        return line.End();
    }

    public override bool TryParseRow(string line, out long index, out bool isError, out bool truncated)
    {
        index = -1;
        isError = false;
        truncated = line.EndsWith(",\"truncated\":true}", StringComparison.Ordinal);
        // Every row starts {"row":N, followed by "error" for an error row.
        const string prefix = "{\"row\":";
        if (!line.StartsWith(prefix, StringComparison.Ordinal)) return false;
        int comma = line.IndexOf(',', prefix.Length);
        if (comma < 0 || !long.TryParse(line.AsSpan(prefix.Length, comma - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out index))
            return false;
        isError = line.AsSpan(comma + 1).StartsWith("\"error\":", StringComparison.Ordinal);
        return line.EndsWith('}');
    }
}

/// <summary>
/// row, label, label_name, p_&lt;label&gt; per class, exit_block, blocks_run (comma-separated), blocks, tokens, truncated, error: tab-separated
/// with a header line; an error row leaves every column but row and error empty.
/// </summary>
internal sealed class TsvResultFormatter(IReadOnlyList<string> labels) : ResultFormatter
{
    public override string? Header { get; } =
        string.Join('\t', new[] { "row", "label", "label_name" }.Concat(labels.Select(l => "p_" + Clean(l)))
            .Concat(["exit_block", "blocks_run", "blocks", "tokens", "truncated", "error"]));

    private int Columns => 3 + labels.Count + 6;

    public override string Row(long index, ClassificationResult r, bool truncated)
    {
        var sb = new StringBuilder(96);
        sb.Append(index.ToString(CultureInfo.InvariantCulture)).Append('\t')
          .Append(r.Label.ToString(CultureInfo.InvariantCulture)).Append('\t')
          .Append(Clean(r.LabelName));
        foreach (float p in r.Probabilities) sb.Append('\t').Append(Fmt.FixedJson(p));
        sb.Append('\t').Append(r.ExitBlock.ToString(CultureInfo.InvariantCulture))
          .Append('\t').AppendJoin(',', r.BlocksRun)
          .Append('\t').Append(r.Layers.ToString(CultureInfo.InvariantCulture))
          .Append('\t').Append(r.TokenCount.ToString(CultureInfo.InvariantCulture))
          .Append('\t').Append(truncated ? "true" : "false")
          .Append('\t');
        return sb.ToString();
    }

    public override string ErrorRow(long index, string error) =>
        index.ToString(CultureInfo.InvariantCulture) + new string('\t', Columns - 1) + Clean(error);

    public override bool TryParseRow(string line, out long index, out bool isError, out bool truncated)
    {
        index = -1;
        isError = false;
        truncated = false;
        string[] fields = line.Split('\t');
        if (fields.Length != Columns) return false;
        if (!long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out index)) return false;
        isError = fields[^1].Length > 0;
        truncated = fields[^2] == "true";
        return true;
    }

    /// <summary>Tabs and line breaks would break the table: they become spaces.</summary>
    private static string Clean(string s) => s.Replace('\t', ' ').Replace('\r', ' ').Replace('\n', ' ');
}
