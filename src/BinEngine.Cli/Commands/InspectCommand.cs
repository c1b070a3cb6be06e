using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BinEngine.Evaluation;
using BinEngine.Format;

namespace BinEngine.Cli.Commands;

/// <summary><c>binengine inspect MODEL [--json] [--all]</c>: metadata, tensor table, sizes and the FP32 ratio of a model file.</summary>
internal static class InspectCommand
{
    /// <summary>Arrays longer than this are shortened unless --all is given.</summary>
    private const int ArrayPreview = 16;

    internal static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "Model file (.bex)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (fp32_bytes, file_bytes, ratio, config, metadata, tensors)" };
        var all = new Option<bool>("--all") { Description = $"Print long arrays (the vocabulary) in full instead of their first {ArrayPreview} items" };
        var plan = new Option<bool>("--plan") { Description = "Also load the model and print its execution plan (kernel per product, encodings, workspace, exit heads) and the load time" };
        var command = new Command("inspect", "Show a model file's metadata, tensor table, sizes and compression ratio") { model, json, all, plan };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            string path = parse.GetValue(model)!.FullName;
            ModelLocator.RequireRegularFile(path, "model");
            try
            {
                using var file = ModelFile.Open(path);
                if (parse.GetValue(json))
                    WriteJson(stdout, file, path, parse.GetValue(all));
                else
                    WriteText(stdout, file, path, parse.GetValue(all));
                if (parse.GetValue(plan))
                    WritePlan(stdout, path, parse.GetValue(json));
                return 0;
            }
            catch (ModelFormatException e)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: " + e.Message);
                return ExitCodes.Usage; // an unusable model file
            }
        });
        return command;
    }

    /// <summary>Loads the model as classify would and prints the plan made for it, with the load's wall time.</summary>
    private static void WritePlan(TextWriter w, string path, bool json)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var m = BinEngine.Runtime.BeexModel.Load(path);
        double ms = clock.Elapsed.TotalMilliseconds;
        string[] lines = m.DescribePlan().Split('\n');
        if (json)
        {
            using var stream = new MemoryStream();
            using (var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                j.WriteStartObject();
                j.WriteString("kernel", m.Plan.Kernel.Name);
                j.WriteString("activations", m.Plan.Activations.ToString().ToLowerInvariant());
                j.WriteBoolean("vectorised_helpers", m.Plan.VectorisedHelpers);
                j.WriteNumber("workspace_bytes_per_token", m.Plan.WorkspaceBytesPerToken);
                j.WriteNumber("load_ms", Math.Round(ms, 1));
                j.WriteStartArray("mechanisms");
                foreach (string name in m.Mechanisms)
                    j.WriteStringValue(name);
                j.WriteEndArray();
                j.WriteStartArray("plan");
                foreach (string line in lines)
                    j.WriteStringValue(line);
                j.WriteEndArray();
                j.WriteEndObject();
            }
            w.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
            return;
        }
        w.WriteLine();
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"plan (made at load, {ms:0.0} ms including validation, checksum and weight preparation)"));
        foreach (string line in lines)
            w.WriteLine("  " + line);
    }

    private static string Parameters(IReadOnlyDictionary<string, double> parameters) =>
        string.Join(", ", parameters.Select(p => FormattableString.Invariant($"{p.Key}={p.Value}")));

    private static double Ratio(ModelFile f) => (double)f.Fp32ParameterBytes / f.FileBytes;

    internal static void WriteText(TextWriter w, ModelFile f, string path, bool all)
    {
        var c = f.Config;
        var t = f.Container;
        w.WriteLine($"file         {path}");
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"size         {f.FileBytes:N0} bytes (header+metadata+table {t.DataOffset:N0}, data {t.DataLength:N0}); FP32 {f.Fp32ParameterBytes:N0} bytes; ratio {Ratio(f):0.00}× (weights alone {(double)f.Fp32ParameterBytes / t.DataLength:0.00}×)"));
        w.WriteLine($"format       BEXF v{BexFormat.Version}, data checksum xxh64 0x{t.DataChecksum:x16} (verified)");
        w.WriteLine($"model        {ModelFile.ArchitectureName}: V={c.VocabSize} T={c.MaxLength} d={c.Dim} h={c.Heads} L={c.Layers} f={c.FfDim} C={c.Classes}; W{c.WeightBits}A{c.ActBits}E{c.EmbBits}; token rows {f.TokenRows}{(f.HasTokenMap ? " (mapped)" : "")}");
        w.WriteLine($"exits        default {BinEngine.Runtime.ModelBinding.PolicyFromConfig(c, c.Policy)}");
        w.WriteLine($"mechanisms   {(c.Mechanisms.Count == 0 ? "none (linear exits only)" : string.Join("; ", Mechanisms.Names.Where(c.Has).Select(n => $"{n}({Parameters(c.Mechanisms[n])})")))}");
        foreach (var (policy, calibration) in c.Conformal)
            w.WriteLine($"conformal    {policy}: {Parameters(calibration)}");
        if (ExitGuarantee.Read(t) is { } g)
            w.WriteLine($"guarantee    {g}");
        w.WriteLine();
        w.WriteLine("metadata");
        int keyWidth = t.Metadata.Max(kv => kv.Key.Length);
        foreach (var (key, value) in t.Metadata)
            w.WriteLine($"  {key.PadRight(keyWidth)}  {value.Type,-12} {OneLine(value.ToDisplayString(all ? int.MaxValue : ArrayPreview))}");
        w.WriteLine();
        w.WriteLine("tensors");
        int nameWidth = t.Tensors.Max(x => x.Name.Length);
        w.WriteLine($"  {"name".PadRight(nameWidth)}  {"type",-7} {"shape",-14} {"offset",12} {"bytes",12}");
        foreach (var x in t.Tensors)
        {
            string type = x.ElementType == TensorElementType.Bits ? $"bits×{x.Planes}" : x.ElementType.ToString().ToLowerInvariant();
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {x.Name.PadRight(nameWidth)}  {type,-7} {"[" + string.Join(", ", x.Shape) + "]",-14} {x.Offset,12:N0} {x.ByteLength,12:N0}"));
        }
    }

    private static string OneLine(string s) => s.Length > 200 && !s.StartsWith('[') ? s[..200].ReplaceLineEndings(" ") + " …" : s.ReplaceLineEndings(" ");

    internal static void WriteJson(TextWriter w, ModelFile f, string path, bool all)
    {
        var t = f.Container;
        using var stream = new MemoryStream();
        using (var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteString("file", path);
            j.WriteNumber("format_version", BexFormat.Version);
            j.WriteNumber("fp32_bytes", f.Fp32ParameterBytes);
            j.WriteNumber("file_bytes", f.FileBytes);
            j.WriteNumber("ratio", Math.Round(Ratio(f), 4));
            j.WriteNumber("data_ratio", Math.Round((double)f.Fp32ParameterBytes / t.DataLength, 4));
            j.WriteNumber("head_bytes", t.DataOffset);
            j.WriteNumber("data_bytes", t.DataLength);
            j.WriteString("data_checksum_xxh64", $"{t.DataChecksum:x16}");
            j.WriteNumber("token_rows", f.TokenRows);
            // The mechanisms of docs/MODEL.md the model carries (q_exit, learned_gate, skip_gates, mamba_exits).
            j.WriteStartArray("mechanisms");
            foreach (string name in Mechanisms.Names.Where(f.Config.Has))
                j.WriteStringValue(name);
            j.WriteEndArray();

            var c = f.Config;
            j.WriteStartObject("config");
            j.WriteNumber("vocab_size", c.VocabSize);
            j.WriteNumber("max_len", c.MaxLength);
            j.WriteNumber("d_model", c.Dim);
            j.WriteNumber("n_heads", c.Heads);
            j.WriteNumber("n_layers", c.Layers);
            j.WriteNumber("d_ff", c.FfDim);
            j.WriteNumber("n_classes", c.Classes);
            j.WriteNumber("weight_bits", c.WeightBits);
            j.WriteNumber("act_bits", c.ActBits);
            j.WriteNumber("emb_bits", c.EmbBits);
            j.WriteNumber("ln_eps", c.LnEps);
            j.WriteStartArray("labels");
            foreach (string l in c.Labels) j.WriteStringValue(l);
            j.WriteEndArray();
            j.WriteString("policy", c.Policy);
            foreach (var (key, table) in new[] { ("thresholds", c.Thresholds), ("mechanism_parameters", c.Mechanisms), ("conformal", c.Conformal) })
            {
                j.WriteStartObject(key);
                foreach (var (name, parameters) in table)
                {
                    j.WriteStartObject(name);
                    foreach (var (k, v) in parameters) j.WriteNumber(k, v);
                    j.WriteEndObject();
                }
                j.WriteEndObject();
            }
            j.WriteBoolean("lowercase", f.Tokenizer.Lowercase);
            j.WriteEndObject();
            if (ExitGuarantee.Read(t) is { } g)
                EvalCommand.WriteGuarantee(j, g);

            j.WriteStartObject("metadata");
            foreach (var (key, value) in t.Metadata)
            {
                j.WriteStartObject(key);
                j.WriteString("type", value.Type.ToString());
                j.WritePropertyName("value");
                WriteValue(j, value.Value, all ? int.MaxValue : ArrayPreview, out int count);
                if (count >= 0)
                {
                    j.WriteNumber("count", count);
                    j.WriteBoolean("truncated", !all && count > ArrayPreview);
                }
                j.WriteEndObject();
            }
            j.WriteEndObject();

            j.WriteStartArray("tensors");
            foreach (var x in t.Tensors)
            {
                j.WriteStartObject();
                j.WriteString("name", x.Name);
                j.WriteString("type", x.ElementType.ToString().ToLowerInvariant());
                if (x.ElementType == TensorElementType.Bits)
                    j.WriteNumber("planes", x.Planes);
                j.WriteStartArray("shape");
                foreach (int d in x.Shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteNumber("offset", x.Offset);
                j.WriteNumber("bytes", x.ByteLength);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        w.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static void WriteValue(Utf8JsonWriter j, object value, int max, out int count)
    {
        count = -1;
        switch (value)
        {
            case long l: j.WriteNumberValue(l); break;
            case double d when double.IsFinite(d): j.WriteNumberValue(d); break;
            case double d: j.WriteStringValue(d.ToString(CultureInfo.InvariantCulture)); break;
            case bool b: j.WriteBooleanValue(b); break;
            case string s: j.WriteStringValue(s); break;
            case string[] a:
                count = a.Length;
                j.WriteStartArray();
                foreach (string s in a.Take(max)) j.WriteStringValue(s);
                j.WriteEndArray();
                break;
            case long[] a:
                count = a.Length;
                j.WriteStartArray();
                foreach (long x in a.Take(max)) j.WriteNumberValue(x);
                j.WriteEndArray();
                break;
            case double[] a:
                count = a.Length;
                j.WriteStartArray();
                foreach (double x in a.Take(max))
                {
                    if (double.IsFinite(x)) j.WriteNumberValue(x);
                    else j.WriteStringValue(x.ToString(CultureInfo.InvariantCulture));
                }
                j.WriteEndArray();
                break;
        }
    }
}
