using System.Globalization;
using System.Text.Json;
using BinEngine.Format;

namespace BinEngine.Converter;

/// <summary>
/// The trainer's config.json (docs/MODEL.md "Hyper-parameters"), parsed: the typed
/// <see cref="ModelConfig"/> plus the tokenizer option and provenance fields. Keys the engine
/// does not use (training hyper-parameters) are ignored but kept in <see cref="Json"/>.
/// </summary>
internal sealed class SourceConfig
{
    private SourceConfig(ModelConfig model, bool? lowercase, string? task, string? trainData, IReadOnlyList<KeyValuePair<string, MetadataValue>> metrics, string json,
        string unk, string cls, string sep, string pad)
    {
        UnkToken = unk;
        ClsToken = cls;
        SepToken = sep;
        PadToken = pad;
        Model = model;
        Lowercase = lowercase;
        Task = task;
        TrainData = trainData;
        Metrics = metrics;
        Json = json;
    }

    /// <summary>Hyper-parameters, labels, policy and thresholds, validated.</summary>
    public ModelConfig Model { get; }

    /// <summary>"lowercase", when the config has it.</summary>
    public bool? Lowercase { get; }

    /// <summary>"unk_token" (default "[UNK]").</summary>
    public string UnkToken { get; }

    /// <summary>"cls_token" (default "[CLS]").</summary>
    public string ClsToken { get; }

    /// <summary>"sep_token" (default "[SEP]").</summary>
    public string SepToken { get; }

    /// <summary>"pad_token" (default "[PAD]").</summary>
    public string PadToken { get; }

    /// <summary>"task".</summary>
    public string? Task { get; }

    /// <summary>"train_data".</summary>
    public string? TrainData { get; }

    /// <summary>"metrics", flattened with '.' into typed values.</summary>
    public IReadOnlyList<KeyValuePair<string, MetadataValue>> Metrics { get; }

    /// <summary>The JSON text as read.</summary>
    public string Json { get; }

    /// <summary>Parses and validates config JSON; <paramref name="source"/> names it in messages.</summary>
    public static SourceConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new ConversionException($"{source}: config is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ConversionException($"{source}: config is a JSON {root.ValueKind}, not an object");

            int Int(string key)
            {
                if (!root.TryGetProperty(key, out var v))
                    throw new ConversionException($"{source}: config lacks '{key}' (docs/MODEL.md lists the keys)");
                if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
                    throw new ConversionException($"{source}: config '{key}' = {v.GetRawText()}; an integer is required");
                return i;
            }
            string? Str(string key) => root.TryGetProperty(key, out var v)
                ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ConversionException($"{source}: config '{key}' = {v.GetRawText()}; a string is required")
                : null;

            int classes = Int("n_classes");
            IReadOnlyList<string> labels;
            if (root.TryGetProperty("labels", out var labelsElement))
            {
                if (labelsElement.ValueKind != JsonValueKind.Array || labelsElement.EnumerateArray().Any(l => l.ValueKind != JsonValueKind.String))
                    throw new ConversionException($"{source}: config 'labels' must be an array of strings");
                labels = labelsElement.EnumerateArray().Select(l => l.GetString()!).ToArray();
            }
            else if (classes == 2)
            {
                labels = ["negative", "positive"]; // docs/MODEL.md's default
            }
            else
            {
                throw new ConversionException($"{source}: config lacks 'labels' ({classes} class names are needed)");
            }

            double lnEps = 1e-5;
            if (root.TryGetProperty("ln_eps", out var eps))
                lnEps = eps.ValueKind == JsonValueKind.Number ? eps.GetDouble() : throw new ConversionException($"{source}: config 'ln_eps' must be a number");

            var thresholds = NumberTable(root, "thresholds", "policy", source);
            var conformal = NumberTable(root, "conformal", "policy", source);
            var mechanisms = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
            foreach (string mechanism in BinEngine.Format.Mechanisms.Names)
                if (root.TryGetProperty(mechanism, out var mp) && mp.ValueKind != JsonValueKind.Null)
                    mechanisms[mechanism] = Numbers(mp, mechanism, source);

            bool? lowercase = null;
            if (root.TryGetProperty("lowercase", out var lc))
                lowercase = lc.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ConversionException($"{source}: config 'lowercase' must be true or false"),
                };

            bool gateCenter = false;
            if (root.TryGetProperty("slfn_gate_center", out var gc))
                gateCenter = gc.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ConversionException($"{source}: config 'slfn_gate_center' must be true or false"),
                };

            double[]? temperatures = null;
            if (root.TryGetProperty("exit_temperatures", out var et) && et.ValueKind != JsonValueKind.Null)
            {
                if (et.ValueKind != JsonValueKind.Array)
                    throw new ConversionException($"{source}: config 'exit_temperatures' must be an array of numbers, one per exit");
                temperatures = et.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                    : throw new ConversionException($"{source}: config 'exit_temperatures' holds {v.GetRawText()}; numbers are required")).ToArray();
            }

            var metrics = new List<KeyValuePair<string, MetadataValue>>();
            if (root.TryGetProperty("metrics", out var m))
                Flatten(m, "", metrics);

            var model = new ModelConfig
            {
                VocabSize = Int("vocab_size"),
                MaxLength = Int("max_len"),
                Dim = Int("d_model"),
                Heads = Int("n_heads"),
                Layers = Int("n_layers"),
                FfDim = Int("d_ff"),
                Classes = classes,
                WeightBits = Int("weight_bits"),
                ActBits = Int("act_bits"),
                EmbBits = Int("emb_bits"),
                LnEps = lnEps,
                Labels = labels,
                Policy = Str("policy") ?? Runtime.ExitPolicy.NameOf(Runtime.ExitPolicyKind.EntropyReduction),
                Thresholds = thresholds,
                Mechanisms = mechanisms,
                Conformal = conformal,
                SlfnGateCenter = gateCenter,
                ExitTemperatures = temperatures,
            };
            try
            {
                model.Validate();
            }
            catch (ModelFormatException e)
            {
                throw new ConversionException($"{source}: {e.Message}", e);
            }
            return new SourceConfig(model, lowercase, Str("task"), Str("train_data"), metrics, json,
                Str("unk_token") ?? "[UNK]", Str("cls_token") ?? "[CLS]", Str("sep_token") ?? "[SEP]", Str("pad_token") ?? "[PAD]");
        }
    }

    /// <summary>Config <paramref name="key"/> as an object group → {parameter: number} (thresholds, conformal); empty when absent.</summary>
    private static Dictionary<string, IReadOnlyDictionary<string, double>> NumberTable(JsonElement root, string key, string group, string source)
    {
        var table = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        if (!root.TryGetProperty(key, out var e))
            return table;
        if (e.ValueKind != JsonValueKind.Object)
            throw new ConversionException($"{source}: config '{key}' must be an object {group} → {{parameter: number}}");
        foreach (var g in e.EnumerateObject())
            table[g.Name] = Numbers(g.Value, $"{key}.{g.Name}", source);
        return table;
    }

    /// <summary>An object of numbers, e.g. <c>{"tau": 0.5}</c> or a mechanism's <c>{"hidden": 128}</c>.</summary>
    private static Dictionary<string, double> Numbers(JsonElement e, string what, string source)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new ConversionException($"{source}: config {what} must be an object of numbers");
        var numbers = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
            numbers[p.Name] = p.Value.ValueKind == JsonValueKind.Number ? p.Value.GetDouble()
                : throw new ConversionException($"{source}: config {what}.{p.Name} = {p.Value.GetRawText()}; a number is required");
        return numbers;
    }

    /// <summary>Metrics as metadata: numbers (integers stay integers), strings, bools; nested objects join keys with '.'; arrays and null as their JSON text.</summary>
    private static void Flatten(JsonElement e, string prefix, List<KeyValuePair<string, MetadataValue>> into)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in e.EnumerateObject())
                Flatten(p.Value, prefix.Length == 0 ? p.Name : prefix + "." + p.Name, into);
            return;
        }
        string key = prefix.Length == 0 ? "value" : prefix;
        MetadataValue value = e.ValueKind switch
        {
            JsonValueKind.Number when e.TryGetInt64(out long l) && !e.GetRawText().Contains('.') && !e.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase) => MetadataValue.FromInt64(l),
            JsonValueKind.Number => MetadataValue.FromFloat64(e.GetDouble()),
            JsonValueKind.String => MetadataValue.FromString(e.GetString()!),
            JsonValueKind.True => MetadataValue.FromBool(true),
            JsonValueKind.False => MetadataValue.FromBool(false),
            _ => MetadataValue.FromString(e.GetRawText()),
        };
        into.Add(new(key, value));
    }

    internal static string Format(double d) => d.ToString("R", CultureInfo.InvariantCulture);
}
