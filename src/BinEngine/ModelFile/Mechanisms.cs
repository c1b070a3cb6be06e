using System.Globalization;

namespace BinEngine.Format;

/// <summary>
/// The optional mechanisms of docs/MODEL.md, "Mechanisms from the seeds": their names (config keys,
/// <c>inspect --json</c>'s <c>"mechanisms"</c>), the numeric parameters each takes, and the tensors each
/// adds to a model file. The one definition the converter, the reader and the runtime consult.
/// </summary>
internal static class Mechanisms
{
    /// <summary>PALBERT's Q-exit: a λ-MLP over the pooled states of two consecutive blocks (exit controller).</summary>
    public const string QExit = "q_exit";
    /// <summary>JEI-DNN's gate: a logistic gate per exit over four features of its softmax (exit controller).</summary>
    public const string LearnedGate = "learned_gate";
    /// <summary>SmartBERT's skipping gates: a pooled MLP before every block but the last decides whether it runs.</summary>
    public const string SkipGates = "skip_gates";
    /// <summary>DYNAMAX's exit classifier: a Mamba block over the token states before each linear exit head.</summary>
    public const string MambaExits = "mamba_exits";
    /// <summary>The lexical n-gram head: hashed word uni+bigram presence, a linear model whose logits every exit adds (not from the seeds).</summary>
    public const string Lexical = "lexical";

    /// <summary>Metadata prefix: <c>mechanism.{name}.{parameter}</c> (Int64 for integer parameters, else Float64).</summary>
    public const string MetadataPrefix = "mechanism.";

    private sealed record Parameter(string Name, bool Integer, double Min, double Max);

    // The ranges keep every derived size far from overflow (widths as d and f are bounded) and the
    // arithmetic meaningful (ρ a probability, k a positive power).
    private static readonly Dictionary<string, Parameter[]> Definitions = new(StringComparer.Ordinal)
    {
        [QExit] = [new("hidden", true, 1, ModelConfig.MaxWidth)],
        [LearnedGate] = [new("power", false, 1e-3, 64)],
        [SkipGates] = [new("hidden", true, 1, ModelConfig.MaxWidth), new("rho", false, 0, 1)],
        [MambaExits] =
        [
            new("d_inner", true, 1, ModelConfig.MaxWidth), new("d_state", true, 1, 256),
            new("d_conv", true, 1, 64), new("dt_rank", true, 1, ModelConfig.MaxWidth),
        ],
        // 2^24 buckets × C classes of int8 is the most a table may take (C ≤ the config's class limit).
        [Lexical] = [new("bits", true, 8, 24)],
    };

    /// <summary>Every mechanism name, in the order docs/MODEL.md lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = [QExit, LearnedGate, SkipGates, MambaExits, Lexical];

    /// <summary>Whether parameter <paramref name="parameter"/> of <paramref name="mechanism"/> is an integer (stored as Int64).</summary>
    public static bool IsInteger(string mechanism, string parameter) =>
        Definitions.TryGetValue(mechanism, out var ps) && ps.Any(p => p.Name == parameter && p.Integer);

    /// <summary>Checks one mechanism's stored parameters: a known name, exactly its parameters, each in range.</summary>
    /// <exception cref="ModelFormatException">The first defect, named.</exception>
    public static void Validate(string mechanism, IReadOnlyDictionary<string, double> parameters)
    {
        if (!Definitions.TryGetValue(mechanism, out Parameter[]? expected))
            throw new ModelFormatException($"unknown mechanism '{mechanism}' (known: {string.Join(", ", Names)})");
        foreach (Parameter p in expected)
            if (!parameters.ContainsKey(p.Name))
                throw new ModelFormatException($"mechanism '{mechanism}' lacks '{p.Name}' (needs {string.Join(", ", expected.Select(e => e.Name))})");
        foreach (var (name, value) in parameters)
        {
            Parameter? p = expected.FirstOrDefault(e => e.Name == name)
                ?? throw new ModelFormatException($"mechanism '{mechanism}' has unknown parameter '{name}' (takes {string.Join(", ", expected.Select(e => e.Name))})");
            string shown = value.ToString(CultureInfo.InvariantCulture);
            // Written so that NaN fails: every comparison with NaN is false.
            if (!(value >= p.Min && value <= p.Max) || (p.Integer && value != Math.Floor(value)))
                throw new ModelFormatException(
                    $"{mechanism}.{name} = {shown}; expected {(p.Integer ? "an integer" : "a number")} in {p.Min.ToString(CultureInfo.InvariantCulture)}..{p.Max.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>
    /// The tensors the mechanisms of <paramref name="config"/> add, in file order after the exit heads
    /// (docs/MODEL.md gives their meaning): float32 but for the lexical head's int8 table and int32 bitmap.
    /// </summary>
    public static IEnumerable<ExpectedTensor> Tensors(ModelConfig config)
    {
        int d = config.Dim, layers = config.Layers;
        ExpectedTensor F32(string name, params int[] shape) => new(name, TensorElementType.F32, 0, shape);
        if (config.Has(QExit))
        {
            int h = config.MechanismInt(QExit, "hidden");
            yield return F32("q_exit.pos", layers, 2 * d);
            yield return F32("q_exit.mlp.0.weight", h, 2 * d);
            yield return F32("q_exit.mlp.0.bias", h);
            for (int i = 1; i <= 2; i++)
            {
                yield return F32($"q_exit.mlp.{i}.weight", h, h);
                yield return F32($"q_exit.mlp.{i}.bias", h);
            }
            yield return F32("q_exit.mlp.3.weight", 1, h);
            yield return F32("q_exit.mlp.3.bias", 1);
        }
        if (config.Has(LearnedGate))
        {
            yield return F32("learned_gate.weight", layers, LearnedGateFeatures);
            yield return F32("learned_gate.bias", layers);
        }
        if (config.Has(SkipGates))
        {
            int h = config.MechanismInt(SkipGates, "hidden");
            for (int i = 0; i < layers - 1; i++)
            {
                yield return F32($"skip.{i}.0.weight", h, d);
                yield return F32($"skip.{i}.0.bias", h);
                yield return F32($"skip.{i}.1.weight", 1, h);
                yield return F32($"skip.{i}.1.bias", 1);
            }
        }
        if (config.Has(MambaExits))
        {
            int e = config.MechanismInt(MambaExits, "d_inner"), n = config.MechanismInt(MambaExits, "d_state");
            int k = config.MechanismInt(MambaExits, "d_conv"), r = config.MechanismInt(MambaExits, "dt_rank");
            for (int i = 0; i < layers; i++)
            {
                string p = $"exits.{i}.mamba.";
                yield return F32(p + "in_proj.weight", 2 * e, d);
                yield return F32(p + "conv.weight", e, k);
                yield return F32(p + "conv.bias", e);
                yield return F32(p + "x_proj.weight", r + 2 * n, e);
                yield return F32(p + "dt_proj.weight", e, r);
                yield return F32(p + "dt_proj.bias", e);
                yield return F32(p + "A_log", e, n);
                yield return F32(p + "D", e);
                yield return F32(p + "out_proj.weight", d, e);
            }
        }
        if (config.Has(Lexical))
        {
            int buckets = 1 << config.MechanismInt(Lexical, "bits");
            if ((long)buckets * config.Classes > Array.MaxLength)
                throw new ModelFormatException($"lexical table of 2^{config.MechanismInt(Lexical, "bits")} buckets × {config.Classes} classes exceeds an array's limit");
            yield return new ExpectedTensor("lexical.weight", TensorElementType.I8, 0, [buckets, config.Classes]);
            yield return F32("lexical.scale", 1);
            yield return F32("lexical.bias", config.Classes);
            yield return new ExpectedTensor(LexicalContinues, TensorElementType.I32, 0, [(config.VocabSize + 31) / 32]);
        }
    }

    /// <summary>The lexical head's bitmap of continuation ("##") ids: derived from the vocabulary, not a parameter.</summary>
    public const string LexicalContinues = "lexical.continues";

    /// <summary>φ of the learned gate: max p, entropy, top-1 − top-2 margin, entropy of the powered probabilities.</summary>
    public const int LearnedGateFeatures = 4;
}
