using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>
/// The threshold grids evaluation walks: each policy's curve (every parameter over its meaningful range) and
/// the calibration chain (one parameter, from the safest setting to the most aggressive).
/// </summary>
internal static class PolicyGrid
{
    /// <summary>The policies a curve is drawn for (none is the full-depth point, static depth 1..L the baseline).</summary>
    public static readonly ExitPolicyKind[] Kinds =
    [
        ExitPolicyKind.EntropyReduction, ExitPolicyKind.Entropy, ExitPolicyKind.NormalizedEntropy, ExitPolicyKind.Confidence, ExitPolicyKind.Patience,
        ExitPolicyKind.QExit, ExitPolicyKind.LearnedGate,
    ];

    private static float[] Steps(float from, float to, int intervals) =>
        Enumerable.Range(0, intervals + 1).Select(i => from + (to - from) * i / intervals).ToArray();

    /// <summary>
    /// The curve of a policy: entropy_reduction over τ ∈ {0, 0.1, …, 1} (δ, the fractional entropy drop, is at
    /// most 1) × κ ∈ {0, 0.05, …, 1} (H/ln C lies in [0, 1]); entropy over τ ∈ [0, ln C], normalized_entropy over
    /// [0, 1], confidence over [1/C, 1] (the top probability's range), q_exit's q and learned_gate's τ over [0, 1]
    /// (a probability and a gate value), 21 points each; patience t = 1..L.
    /// </summary>
    public static IReadOnlyList<ExitPolicy> Curve(ExitPolicyKind kind, int classes, int layers) => kind switch
    {
        ExitPolicyKind.EntropyReduction =>
            (from tau in Steps(0f, 1f, 10) from kappa in Steps(0f, 1f, 20) select new ExitPolicy(kind, tau: tau, kappa: kappa)).ToList(),
        ExitPolicyKind.Entropy => Steps(0f, MathF.Log(classes), 20).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
        ExitPolicyKind.NormalizedEntropy => Steps(0f, 1f, 20).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
        ExitPolicyKind.Confidence => Steps(1f / classes, 1f, 20).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
        ExitPolicyKind.Patience => Enumerable.Range(1, layers).Select(t => new ExitPolicy(kind, patience: t)).ToList(),
        ExitPolicyKind.QExit or ExitPolicyKind.LearnedGate => Steps(0f, 1f, 20).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
        _ => [ExitPolicy.Never],
    };

    /// <summary>Points of a calibration chain for a continuous threshold (100 intervals).</summary>
    public const int ChainIntervals = 100;

    /// <summary>
    /// The calibration chain of a policy, safest first. The order must not depend on the calibration data (it is
    /// what makes fixed-sequence testing valid), so it follows the rule's monotonicity in its parameter: each step
    /// lets at least the samples of the previous step exit at the same block or earlier.
    ///   entropy_reduction: κ from 0 (H/ln C &lt; 0: no early exit) up to 1, τ held at <paramref name="tau"/>
    ///     (κ decides most exits; pinning τ keeps the chain one-dimensional);
    ///   entropy: τ from 0 up to ln C; normalized_entropy: τ from 0 up to 1;
    ///   confidence: τ from 1 down to 1/C; patience: t from L − 1 (exits only where block L would answer) down to 1;
    ///   q_exit: q from 1 (S_i ≤ 1 never exceeds it) down to 0; learned_gate: τ from just above 1 (g &lt; 1 never reaches it)
    ///   down to 0.
    /// </summary>
    public static IReadOnlyList<ExitPolicy> Chain(ExitPolicyKind kind, int classes, int layers, float tau)
    {
        int n = ChainIntervals;
        return kind switch
        {
            ExitPolicyKind.EntropyReduction => Steps(0f, 1f, n).Select(k => new ExitPolicy(kind, tau: tau, kappa: k)).ToList(),
            ExitPolicyKind.Entropy => Steps(0f, MathF.Log(classes), n).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
            ExitPolicyKind.NormalizedEntropy => Steps(0f, 1f, n).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
            ExitPolicyKind.Confidence => Steps(1f, 1f / classes, n).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
            ExitPolicyKind.Patience => Enumerable.Range(1, Math.Max(1, layers - 1)).Reverse().Select(t => new ExitPolicy(kind, patience: t)).ToList(),
            ExitPolicyKind.QExit => Steps(1f, 0f, n).Select(q => new ExitPolicy(kind, tau: q)).ToList(),
            ExitPolicyKind.LearnedGate => Steps(1.01f, 0f, n).Select(t => new ExitPolicy(kind, tau: t)).ToList(),
            _ => throw new ArgumentException("policy none has no thresholds to calibrate", nameof(kind)),
        };
    }
}
