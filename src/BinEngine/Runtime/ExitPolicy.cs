namespace BinEngine.Runtime;

/// <summary>The exit policies of docs/MODEL.md. All of them read the same per-block outputs.</summary>
public enum ExitPolicyKind
{
    /// <summary>BEExformer: exit when the fractional entropy drop δ_i = (H_{i−1} − H_i)/H_{i−1} &lt; τ and H_i/ln C &lt; κ;
    /// block 1 has no earlier block, so δ_1 = 0 (it exits when H_1/ln C &lt; κ; docs/MODEL.md, Exits).</summary>
    EntropyReduction,
    /// <summary>DeeBERT: exit when H_i &lt; τ.</summary>
    Entropy,
    /// <summary>FastBERT: exit when H_i / ln C &lt; τ.</summary>
    NormalizedEntropy,
    /// <summary>CALM-style: exit when max_c p_ic ≥ τ.</summary>
    Confidence,
    /// <summary>PABEE: exit when the argmax has agreed with the previous block's for t blocks in a row.</summary>
    Patience,
    /// <summary>PALBERT's Q-exit: exit when the cumulative halting mass Σ_{j≤i} λ_j Π_{k&lt;j}(1 − λ_k) &gt; q (needs the model's <c>q_exit</c> λ-MLP).</summary>
    QExit,
    /// <summary>JEI-DNN: exit when the exit's learned gate g_i ≥ τ (needs the model's <c>learned_gate</c>).</summary>
    LearnedGate,
    /// <summary>Never exit early: all L blocks.</summary>
    None,
}

/// <summary>
/// An exit policy with its thresholds. Immutable; the per-sample state it needs (previous entropy,
/// previous argmax, patience run) lives in <see cref="ExitState"/>, so one policy serves many threads.
/// </summary>
public sealed record ExitPolicy
{
    /// <summary>Which rule decides.</summary>
    public ExitPolicyKind Kind { get; }
    /// <summary>τ: the main threshold (entropy, normalized entropy, confidence, entropy-reduction's δ bound, the learned gate's bound, or q_exit's q).</summary>
    public float Tau { get; }
    /// <summary>κ: entropy-reduction's bound on the normalized entropy (ignored by the other policies).</summary>
    public float Kappa { get; }
    /// <summary>t: patience's run length (ignored by the other policies).</summary>
    public int Patience { get; }

    /// <summary>A policy with its thresholds (docs/MODEL.md, "Exit policies").</summary>
    /// <param name="kind">Which rule.</param>
    /// <param name="tau">τ (every policy but patience).</param>
    /// <param name="kappa">κ (entropy reduction only).</param>
    /// <param name="patience">t (patience only), at least 1.</param>
    /// <exception cref="ArgumentException">A threshold is NaN.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Patience below 1.</exception>
    public ExitPolicy(ExitPolicyKind kind, float tau = 0f, float kappa = 1f, int patience = 1)
    {
        if (float.IsNaN(tau) || float.IsNaN(kappa))
            throw new ArgumentException("exit policy thresholds must be numbers, not NaN");
        if (kind == ExitPolicyKind.Patience && patience < 1)
            throw new ArgumentOutOfRangeException(nameof(patience), patience, "patience t must be at least 1");
        Kind = kind;
        Tau = tau;
        Kappa = kappa;
        Patience = patience;
    }

    /// <summary>
    /// True when every controller the model carries (q_exit's λ, learned_gate's g) is evaluated at every exit the call
    /// visits and recorded in its result. Otherwise a controller runs only for the policy that reads it (q_exit reads λ,
    /// learned_gate g): q_exit's λ-MLP (≈ 100 k multiply-adds an exit as ≈ 400 dot products) cost ≈ 8–10 % of a W1A1 pass
    /// that never read it (engine A/B 1.08–1.11×, bench/README.md, "Levers").
    /// </summary>
    public bool RecordsControllers { get; private init; }

    /// <summary>The policy that runs every block.</summary>
    public static ExitPolicy Never { get; } = new(ExitPolicyKind.None);

    /// <summary>
    /// Every block, like <see cref="Never"/>, with every controller recorded at every exit (<see cref="RecordsControllers"/>):
    /// the trace <c>binengine eval</c> and <c>calibrate</c> replay every policy from.
    /// </summary>
    public static ExitPolicy Trace { get; } = new(ExitPolicyKind.None) { RecordsControllers = true };

    /// <summary>Whether a call with this policy evaluates q_exit's λ (when the model has it).</summary>
    internal bool ReadsLambda => RecordsControllers || Kind == ExitPolicyKind.QExit;

    /// <summary>Whether a call with this policy evaluates learned_gate's g (when the model has it).</summary>
    internal bool ReadsGate => RecordsControllers || Kind == ExitPolicyKind.LearnedGate;

    /// <summary>The names used in model files, config.json and the CLI (snake_case, as docs/MODEL.md).</summary>
    public static string NameOf(ExitPolicyKind kind) => kind switch
    {
        ExitPolicyKind.EntropyReduction => "entropy_reduction",
        ExitPolicyKind.Entropy => "entropy",
        ExitPolicyKind.NormalizedEntropy => "normalized_entropy",
        ExitPolicyKind.Confidence => "confidence",
        ExitPolicyKind.Patience => "patience",
        ExitPolicyKind.QExit => Format.Mechanisms.QExit,
        ExitPolicyKind.LearnedGate => Format.Mechanisms.LearnedGate,
        ExitPolicyKind.None => "none",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Parses a policy name of <see cref="NameOf"/>; throws naming the accepted names otherwise.</summary>
    public static ExitPolicyKind ParseKind(string name)
    {
        foreach (var kind in Enum.GetValues<ExitPolicyKind>())
            if (string.Equals(NameOf(kind), name, StringComparison.OrdinalIgnoreCase))
                return kind;
        throw new ArgumentException(
            $"unknown exit policy '{name}'; expected one of: {string.Join(", ", Enum.GetValues<ExitPolicyKind>().Select(NameOf))}");
    }

    /// <summary>
    /// The mechanism a policy reads besides the exits' softmax (docs/MODEL.md, "Mechanisms from the seeds"):
    /// <c>q_exit</c> and <c>learned_gate</c> are learned controllers a model file must carry; null for the rules.
    /// </summary>
    public static string? ControllerOf(ExitPolicyKind kind) => kind switch
    {
        ExitPolicyKind.QExit => Format.Mechanisms.QExit,
        ExitPolicyKind.LearnedGate => Format.Mechanisms.LearnedGate,
        _ => null,
    };

    /// <summary>The policy's name as in <see cref="NameOf"/>.</summary>
    public string Name => NameOf(Kind);

    /// <summary>
    /// Decides whether a sample exits after the block whose softmax is <paramref name="probabilities"/>
    /// and entropy <paramref name="entropy"/>; <paramref name="state"/> carries what earlier blocks saw
    /// and is updated (start it at <see cref="ExitState.Start"/>). <paramref name="lambda"/> and
    /// <paramref name="gate"/> are the controllers' outputs for this exit, λ_i of q_exit and g_i of
    /// learned_gate (NaN when the model has none; only their own policies read them). The caller makes
    /// the last block answer regardless.
    /// </summary>
    internal bool ShouldExit(ref ExitState state, ReadOnlySpan<float> probabilities, float entropy, float lambda = float.NaN, float gate = float.NaN)
    {
        // Q-exit's halting distribution, in docs/MODEL.md's float32 order: p_i = λ_i·R_{i−1}, S_i = S_{i−1} + p_i,
        // R_i = R_{i−1}·(1 − λ_i). Kept for every policy (cheap) so the state means the same whoever reads it.
        float halt = lambda * state.Remaining;
        state.Halted += halt;
        state.Remaining *= 1f - lambda;
        int classes = probabilities.Length;
        float lnC = MathF.Log(classes);
        int argmax = ArgMax(probabilities);
        bool agrees = state.Blocks > 0 && argmax == state.PreviousArgMax;
        state.Run = agrees ? state.Run + 1 : 0;
        bool first = state.Blocks == 0;
        float previousEntropy = state.PreviousEntropy;
        state.PreviousEntropy = entropy;
        state.PreviousArgMax = argmax;
        state.Blocks++;

        return Kind switch
        {
            ExitPolicyKind.EntropyReduction => EntropyReductionExits(first, previousEntropy, entropy, lnC, Tau, Kappa),
            ExitPolicyKind.Entropy => entropy < Tau,
            ExitPolicyKind.NormalizedEntropy => entropy / lnC < Tau,
            ExitPolicyKind.Confidence => probabilities[argmax] >= Tau,
            ExitPolicyKind.Patience => state.Run >= Patience,
            ExitPolicyKind.QExit => state.Halted > Tau,
            ExitPolicyKind.LearnedGate => gate >= Tau,
            _ => false,
        };
    }

    /// <summary>The parameter names a policy takes, by their config.json names (docs/MODEL.md): tau and kappa, tau, t, q, or none.</summary>
    public static IReadOnlyList<string> ParameterNames(ExitPolicyKind kind) => kind switch
    {
        ExitPolicyKind.EntropyReduction => ["tau", "kappa"],
        ExitPolicyKind.Patience => ["t"],
        ExitPolicyKind.QExit => ["q"],
        ExitPolicyKind.None => [],
        _ => ["tau"],
    };

    /// <summary>
    /// The one way a policy is built from named parameters (the model file's thresholds, the CLI's options
    /// over them): <paramref name="parameter"/> returns the value of each of the kind's
    /// <see cref="ParameterNames"/>, or throws when it has none.
    /// </summary>
    internal static ExitPolicy Create(ExitPolicyKind kind, Func<string, double> parameter) => kind switch
    {
        ExitPolicyKind.None => Never,
        ExitPolicyKind.Patience => new ExitPolicy(kind, patience: (int)parameter("t")),
        ExitPolicyKind.QExit => new ExitPolicy(kind, tau: (float)parameter("q")),
        ExitPolicyKind.EntropyReduction => new ExitPolicy(kind, tau: (float)parameter("tau"), kappa: (float)parameter("kappa")),
        _ => new ExitPolicy(kind, tau: (float)parameter("tau")),
    };

    /// <summary>
    /// Checks one policy's stored thresholds (config <c>thresholds.&lt;policy&gt;</c>): a known policy, exactly its
    /// parameters, finite, <c>t</c> a positive integer.
    /// </summary>
    /// <exception cref="Format.ModelFormatException">The first defect, named.</exception>
    internal static void ValidateStored(string policy, IReadOnlyDictionary<string, double> parameters)
    {
        ExitPolicyKind kind;
        try
        {
            kind = ParseKind(policy);
        }
        catch (ArgumentException)
        {
            throw new Format.ModelFormatException($"thresholds for unknown policy '{policy}' (known: {string.Join(", ", Enum.GetValues<ExitPolicyKind>().Select(NameOf))})");
        }
        IReadOnlyList<string> names = ParameterNames(kind);
        foreach (string name in names)
            if (!parameters.ContainsKey(name))
                throw new Format.ModelFormatException($"thresholds of policy '{policy}' lack '{name}' (needs {string.Join(", ", names)})");
        foreach (var (name, value) in parameters)
        {
            string shown = value.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!names.Contains(name))
                throw new Format.ModelFormatException($"thresholds of policy '{policy}' have unknown parameter '{name}' (takes {string.Join(", ", names)})");
            if (!double.IsFinite(value))
                throw new Format.ModelFormatException($"threshold {policy}.{name} = {shown} is not finite");
            if (name == "t" && (value < 1 || value != Math.Floor(value) || value > int.MaxValue))
                throw new Format.ModelFormatException($"threshold {policy}.t = {shown}; expected a positive integer");
        }
    }

    /// <summary>The parameters the policy reads, by their config.json names (docs/MODEL.md): tau and kappa, tau, t, or q (held as τ); none for none.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> Parameters =>
        ParameterNames(Kind).Select(name => new KeyValuePair<string, double>(name, name switch
        {
            "kappa" => Kappa,
            "t" => Patience,
            _ => Tau,
        })).ToArray();

    /// <summary>
    /// The entropy-reduction rule alone: exit after a block whose entropy is <paramref name="entropy"/>
    /// when δ &lt; τ and H/ln C &lt; κ, where δ = (H_{i−1} − H_i)/H_{i−1} after an earlier block and
    /// δ = 0 at block 1 (<paramref name="firstBlock"/>): with no earlier block no reduction is observed,
    /// so the entropy bound alone decides (the shared spec's H_0 = ln C gave a sure block 1 δ_1 ≈ 1 and
    /// kept exactly the sure samples from leaving; docs/MODEL.md, Exits).
    /// </summary>
    public static bool EntropyReductionExits(bool firstBlock, float previousEntropy, float entropy, float lnC, float tau, float kappa)
    {
        // δ is undefined when H_{i−1} = 0 (a saturated softmax). The plain IEEE division gives NaN
        // (never < τ: no exit) when H_i = 0 too, and −∞ (exit) when H_i > 0: exactly what the
        // trainer's numpy computes, so both sides decide alike even there.
        float delta = firstBlock ? 0f : (previousEntropy - entropy) / previousEntropy;
        return delta < tau && entropy / lnC < kappa;
    }

    /// <summary>Index of the largest value; the first one on ties (as torch.argmax and numpy).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best])
                best = i;
        return best;
    }

    /// <summary>The policy and its thresholds, e.g. <c>entropy_reduction(tau=0.5, kappa=0.8)</c>.</summary>
    public override string ToString() => Kind == ExitPolicyKind.None
        ? Name
        : $"{Name}({string.Join(", ", Parameters.Select(p => FormattableString.Invariant($"{p.Key}={(float)p.Value}")))})";
}

/// <summary>What a policy remembers about one sample between blocks.</summary>
internal struct ExitState
{
    /// <summary>The state before the first block (q_exit's remaining mass R_0 = 1; everything else 0).</summary>
    public static ExitState Start => new() { Remaining = 1f };

    /// <summary>q_exit: S_i, the halting mass so far (NaN for a model without the controller; read only by q_exit).</summary>
    public float Halted;
    /// <summary>q_exit: R_i = Π_{j≤i}(1 − λ_j), the mass not yet halted.</summary>
    public float Remaining;
    /// <summary>Blocks seen so far.</summary>
    public int Blocks;
    /// <summary>H of the previous block (unused before the first).</summary>
    public float PreviousEntropy;
    /// <summary>argmax of the previous block.</summary>
    public int PreviousArgMax;
    /// <summary>How many consecutive blocks agreed with their predecessor.</summary>
    public int Run;
}
