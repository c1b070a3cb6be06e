using System.Globalization;

namespace BinEngine.Format;

/// <summary>
/// The hyper-parameters, labels and exit policy of a BEExformer model (docs/MODEL.md,
/// config.json). <see cref="Validate"/> checks the values a runtime relies on; a model file's
/// config is always validated when it is opened.
/// </summary>
internal sealed class ModelConfig
{
    /// <summary>Largest accepted vocabulary (a sanity bound that keeps size arithmetic far from overflow).</summary>
    public const int MaxVocabSize = 1 << 24;
    /// <summary>Largest accepted head or class count.</summary>
    public const int MaxDimension = 1 << 16;
    /// <summary>
    /// Largest max_len the engine serves: one head's attention scores are T² floats per forward pass
    /// (64 MiB at 4,096), allocated only as long texts arrive.
    /// </summary>
    public const int MaxSequenceLength = 4096;
    /// <summary>
    /// Largest d_model and d_ff: together with <see cref="MaxMagnitude"/> this bounds every value of the
    /// forward pass far inside float32 (the derivation is at <see cref="MaxMagnitude"/>).
    /// </summary>
    public const int MaxWidth = 8192;
    /// <summary>
    /// Largest |value| of any float tensor (LayerNorm γ and β, biases, α, embedding scales, exit heads,
    /// FP32 weights). Why 64 cannot overflow float32 with widths K ≤ <see cref="MaxWidth"/> (B = 64):
    /// a LayerNorm output is bounded by |γ|·√(d−1) + |β| ≤ 91.5·B (a normalized vector has no component
    /// over √(d−1)); quantization reconstructs at most the row's largest |value|; a linear layer adds K
    /// products: ≤ B·K·91.5·B ≈ 7.5e5·B² for Q, K, V, G1, F1; attention averages V; the output
    /// projection gives ≤ B·K·7.5e5·B² ≈ 6.1e9·B³ ≈ 1.6e15; the SLFN product is ≤ (B·K)² ≈ 2.7e11 (its
    /// inputs are σ and tanh); LayerNorm's variance sums K squares of at most twice that: ≤ 4·K·(1.6e15)²
    /// ≈ 8.4e34, under float32's 3.4e38 with a margin of 4,000; attention scores are ≤ d_h·(7.5e5·B²)²
    /// ≈ 7.7e22 and exit logits ≤ B·d·91.5·B ≈ 3.1e9. Trained weights are far smaller (γ ≈ 1, α &lt; 1).
    /// </summary>
    public const float MaxMagnitude = 64;

    /// <summary>V: ids the tokenizer can emit.</summary>
    public required int VocabSize { get; init; }
    /// <summary>T: max tokens per text, [CLS] and [SEP] included.</summary>
    public required int MaxLength { get; init; }
    /// <summary>d: model width.</summary>
    public required int Dim { get; init; }
    /// <summary>h: attention heads.</summary>
    public required int Heads { get; init; }
    /// <summary>L: blocks (= exits).</summary>
    public required int Layers { get; init; }
    /// <summary>f: SLFN inner width.</summary>
    public required int FfDim { get; init; }
    /// <summary>C: classes.</summary>
    public required int Classes { get; init; }
    /// <summary>1 (binarized BinLinear weights) or 32 (the FP32 twin).</summary>
    public required int WeightBits { get; init; }
    /// <summary>a: activation bits at every BinLinear input: 1, 2, 4, 8 or 32.</summary>
    public required int ActBits { get; init; }
    /// <summary>e: bits per embedding value: 1, 2, 4, 8 or 32.</summary>
    public required int EmbBits { get; init; }
    /// <summary>LayerNorm epsilon.</summary>
    public double LnEps { get; init; } = 1e-5;
    /// <summary>G2 quantizes σ(G1 h) − ½ instead of σ(G1 h) (config <c>slfn_gate_center</c>; false = the original contract).</summary>
    public bool SlfnGateCenter { get; init; }
    /// <summary>One temperature per exit (config <c>exit_temperatures</c>; null = all 1): exit i's logits are divided by T_i.</summary>
    public IReadOnlyList<double>? ExitTemperatures { get; init; }
    /// <summary>Class names, index = class id (C of them).</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>The default exit policy (a name of <see cref="Runtime.ExitPolicy.NameOf"/>).</summary>
    public string Policy { get; init; } = Runtime.ExitPolicy.NameOf(Runtime.ExitPolicyKind.EntropyReduction);
    /// <summary>Policy name → parameter name → value, chosen on dev.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Thresholds { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, double>>();

    /// <summary>
    /// The optional mechanisms the model carries (docs/MODEL.md, "Mechanisms from the seeds"): name → parameter → value,
    /// e.g. <c>skip_gates</c> → {hidden: 128, rho: 0.5}. Empty for a plain BEExformer.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Mechanisms { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, double>>();

    /// <summary>Split-conformal calibrations (config <c>conformal</c>): policy name → {alpha, qhat} (docs/MODEL.md, learned_gate).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Conformal { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, double>>();

    /// <summary>Whether the model carries mechanism <paramref name="mechanism"/> (a <see cref="Format.Mechanisms"/> name).</summary>
    public bool Has(string mechanism) => Mechanisms.ContainsKey(mechanism);

    /// <summary>A parameter of a mechanism the model carries (validated: present and in range).</summary>
    public double MechanismValue(string mechanism, string parameter) => Mechanisms[mechanism][parameter];

    /// <summary>An integer parameter of a mechanism the model carries.</summary>
    public int MechanismInt(string mechanism, string parameter) => (int)MechanismValue(mechanism, parameter);

    /// <summary>The hyper-parameters the forward pass needs, under the same names.</summary>
    public Runtime.Architecture Architecture =>
        new(VocabSize, MaxLength, Dim, Heads, Layers, FfDim, Classes, WeightBits, ActBits, EmbBits, (float)LnEps, SlfnGateCenter);

    /// <summary>d_h = d / h.</summary>
    public int HeadDim => Dim / Heads;

    /// <summary>Throws <see cref="ModelFormatException"/> naming the first value that is out of range or inconsistent.</summary>
    public void Validate()
    {
        if (!(LnEps > 0 && double.IsFinite(LnEps) && LnEps <= float.MaxValue))
            throw new ModelFormatException($"config 'ln_eps' = {LnEps.ToString(CultureInfo.InvariantCulture)}; expected a positive finite number");
        try
        {
            Architecture.Validate(); // the one validator of the shape and bit widths
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException(e.Message, e);
        }
        if (Labels is null || Labels.Count != Classes)
            throw new ModelFormatException($"config 'labels' has {Labels?.Count ?? 0} names; 'n_classes' = {Classes}");
        if (ExitTemperatures is not null)
        {
            if (ExitTemperatures.Count != Layers)
                throw new ModelFormatException($"config 'exit_temperatures' has {ExitTemperatures.Count} values; 'n_layers' = {Layers}");
            foreach (double t in ExitTemperatures)
                if (!(t > 0 && double.IsFinite(t) && (float)t > 0 && float.IsFinite((float)t)))
                    throw new ModelFormatException($"config 'exit_temperatures' holds {t.ToString(CultureInfo.InvariantCulture)}; expected positive finite numbers");
        }
        foreach (var (mechanism, parameters) in Mechanisms)
            Format.Mechanisms.Validate(mechanism, parameters);
        foreach (var (policy, parameters) in Thresholds)
        {
            Runtime.ExitPolicy.ValidateStored(policy, parameters);
            RequireController(policy, $"thresholds for policy '{policy}'");
        }
        foreach (var (policy, parameters) in Conformal)
            ValidateConformal(policy, parameters);
        Runtime.ExitPolicyKind kind;
        try
        {
            kind = Runtime.ExitPolicy.ParseKind(Policy);
        }
        catch (ArgumentException)
        {
            throw new ModelFormatException($"config 'policy' = '{Policy}' is not a known policy ({string.Join(", ", Enum.GetValues<Runtime.ExitPolicyKind>().Select(Runtime.ExitPolicy.NameOf))})");
        }
        RequireController(Policy, $"the default policy '{Policy}'");
        IReadOnlyList<string> needed = Runtime.ExitPolicy.ParameterNames(kind);
        if (needed.Count > 0 && !Thresholds.ContainsKey(Policy))
            throw new ModelFormatException($"config 'thresholds' has no entry for the default policy '{Policy}' (needs {string.Join(", ", needed)})");
    }

    // A controller policy (q_exit, learned_gate) runs on tensors only a model with that mechanism has.
    private void RequireController(string policy, string what)
    {
        string? mechanism = Runtime.ExitPolicy.ControllerOf(Runtime.ExitPolicy.ParseKind(policy));
        if (mechanism is not null && !Has(mechanism))
            throw new ModelFormatException($"{what} needs the '{mechanism}' mechanism, which the config does not declare");
    }

    private void ValidateConformal(string policy, IReadOnlyDictionary<string, double> parameters)
    {
        try
        {
            Runtime.ExitPolicy.ParseKind(policy);
        }
        catch (ArgumentException)
        {
            throw new ModelFormatException($"conformal calibration for unknown policy '{policy}'");
        }
        RequireController(policy, $"the conformal calibration of '{policy}'");
        // q̂ holds for the thresholds it was calibrated with: the stored ones.
        if (Runtime.ExitPolicy.ParameterNames(Runtime.ExitPolicy.ParseKind(policy)).Count > 0 && !Thresholds.ContainsKey(policy))
            throw new ModelFormatException($"conformal.{policy} has no thresholds.{policy} to hold for");
        string[] names = ["alpha", "qhat"];
        foreach (string name in names)
            if (!parameters.ContainsKey(name))
                throw new ModelFormatException($"conformal.{policy} lacks '{name}' (needs alpha, qhat)");
        foreach (var (name, value) in parameters)
        {
            if (!names.Contains(name))
                throw new ModelFormatException($"conformal.{policy} has unknown parameter '{name}' (takes alpha, qhat)");
            // α is a miscoverage rate in (0, 1); q̂ a quantile of scores 1 − p_y in [0, 1]. NaN fails both.
            bool ok = name == "alpha" ? value > 0 && value < 1 : value >= 0 && value <= 1;
            if (!ok)
                throw new ModelFormatException($"conformal.{policy}.{name} = {value.ToString(CultureInfo.InvariantCulture)}; expected {(name == "alpha" ? "0 < alpha < 1" : "0 ≤ qhat ≤ 1")}");
        }
    }
}
