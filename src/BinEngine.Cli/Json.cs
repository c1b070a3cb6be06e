using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BinEngine.Cli;

/// <summary>
/// Writes JSON objects as single lines with numbers in a fixed, culture-invariant format, so the same
/// results always give the same bytes (batch output, --resume). Reuse one instance per thread.
/// </summary>
internal sealed class JsonLine
{
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _writer;

    public JsonLine(bool indented = false) =>
        _writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions
        {
            Indented = indented,
            // Keep non-ASCII text readable; the output is UTF-8 anyway.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        });

    /// <summary>Starts a new object (discarding anything written before).</summary>
    public Utf8JsonWriter Begin()
    {
        _buffer.Clear();
        _writer.Reset(_buffer);
        _writer.WriteStartObject();
        return _writer;
    }

    /// <summary>Closes the object and returns it as a string (no newline).</summary>
    public string End()
    {
        _writer.WriteEndObject();
        _writer.Flush();
        return Encoding.UTF8.GetString(_buffer.WrittenSpan);
    }
}

/// <summary>Fixed-format, culture-invariant numbers for output.</summary>
internal static class Fmt
{
    /// <summary>A fraction with 3 decimals ("0.973").</summary>
    public static string P3(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>A JSON number literal in <paramref name="format"/> ("-0.000000" normalized to "0.000000").</summary>
    public static string FixedJson(double x, string format = "0.000000")
    {
        string s = x.ToString(format, CultureInfo.InvariantCulture);
        return s.StartsWith("-0", StringComparison.Ordinal) && s.Trim('-', '0', '.').Length == 0 ? s[1..] : s;
    }

    /// <summary>Writes a fixed-format number value (null when not finite).</summary>
    public static void WriteFixedValue(this Utf8JsonWriter j, double x, string format = "0.000000")
    {
        if (double.IsFinite(x)) j.WriteRawValue(FixedJson(x, format), skipInputValidation: true);
        else j.WriteNullValue();
    }

    /// <summary>
    /// The fields every per-text result line carries (classify --json and batch JSONL): label, name,
    /// probabilities (fixed decimals, so output is byte-identical across runs), entropies (and logits when asked), exit block,
    /// the blocks that ran, depth, tokens, truncation; the controllers' λ and g when the call's policy read them (q_exit, learned_gate; every controller for ExitPolicy.Trace); the conformal
    /// prediction set when asked (<paramref name="sets"/>). The caller writes its own index field first.
    /// </summary>
    public static void WriteResultFields(this Utf8JsonWriter j, BinEngine.Runtime.ClassificationResult r, bool truncated, bool logits = false, bool sets = false)
    {
        j.WriteNumber("label", r.Label);
        j.WriteString("label_name", r.LabelName);
        j.WriteStartArray("probabilities");
        foreach (float p in r.Probabilities) j.WriteFixedValue(p);
        j.WriteEndArray();
        // H of every exit computed on the way (one per block run), and with --logits every exit's logits [blocks run][C].
        j.WriteFixedArray("entropies", r.Entropies);
        if (logits)
        {
            j.WriteStartArray("logits");
            foreach (int b in r.BlocksRun)
            {
                j.WriteStartArray();
                foreach (float z in r.LogitsOf(b)) j.WriteFixedValue(z);
                j.WriteEndArray();
            }
            j.WriteEndArray();
        }
        if (r.Lambdas is { } lambdas)
            j.WriteFixedArray("lambdas", lambdas);
        if (r.GateScores is { } gates)
            j.WriteFixedArray("gate_scores", gates);
        if (sets)
        {
            j.WriteStartArray("prediction_set");
            foreach (int c in r.PredictionSet ?? []) j.WriteNumberValue(c);
            j.WriteEndArray();
        }
        j.WriteNumber("exit_block", r.ExitBlock);
        j.WriteStartArray("blocks_run");
        foreach (int b in r.BlocksRun) j.WriteNumberValue(b);
        j.WriteEndArray();
        j.WriteNumber("blocks", r.Layers);
        j.WriteNumber("tokens", r.TokenCount);
        j.WriteBoolean("truncated", truncated);
    }

    private static void WriteFixedArray(this Utf8JsonWriter j, string name, float[] values)
    {
        j.WriteStartArray(name);
        foreach (float v in values) j.WriteFixedValue(v);
        j.WriteEndArray();
    }
}
