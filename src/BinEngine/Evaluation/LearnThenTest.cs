using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>One threshold setting of a calibration chain, tested.</summary>
/// <param name="Policy">The setting.</param>
/// <param name="Losses">k: samples whose exit answer is wrong while the full-depth answer is right.</param>
/// <param name="Risk">R̂ = k / n.</param>
/// <param name="PValue">P(Bin(n, ε) ≤ k): a valid p-value for the null "risk &gt; ε".</param>
/// <param name="Rejected">Whether fixed-sequence testing rejected the null here (this and every earlier p-value ≤ δ).</param>
/// <param name="Accuracy">Accuracy of the setting's answers on the calibration data.</param>
/// <param name="MeanBlocks">Mean blocks run per sample.</param>
/// <param name="ComputeSaved">Fraction of full-depth FLOPs skipped.</param>
internal sealed record CalibrationStep(ExitPolicy Policy, int Losses, double Risk, double PValue, bool Rejected,
    double Accuracy, double MeanBlocks, double ComputeSaved);

/// <summary>The outcome of <see cref="LearnThenTest.Calibrate"/>.</summary>
/// <param name="Chosen">The most aggressive setting certified, or null when the first (safest) one already fails.</param>
/// <param name="Steps">Every setting of the chain, safest first.</param>
/// <param name="N">Calibration samples.</param>
/// <param name="MaxDrop">ε, the accuracy drop allowed (a fraction: 0.005 = half a point).</param>
/// <param name="Delta">δ: the guarantee holds with probability at least 1 − δ over the draw of the calibration data.</param>
/// <param name="FullDepthAccuracy">Accuracy at full depth on the calibration data.</param>
internal sealed record CalibrationResult(ExitPolicy? Chosen, IReadOnlyList<CalibrationStep> Steps, int N, double MaxDrop, double Delta,
    double FullDepthAccuracy)
{
    /// <summary>The step of <see cref="Chosen"/>, or null.</summary>
    public CalibrationStep? ChosenStep => Steps.LastOrDefault(s => s.Rejected);
}

/// <summary>
/// Exit thresholds with a stated guarantee: Learn then Test (Angelopoulos, Bates, Candès, Jordan, Lei, 2021),
/// as CALM (Schuster et al., 2022) applies it to early exits.
///
/// The risk. For a setting λ let E_λ(x) be the exit answer, F(x) the full-depth answer, y the gold label, and
///   L_i(λ) = 1[E_λ(x_i) ≠ y_i and F(x_i) = y_i]        (the exit breaks an answer full depth gets right).
/// The accuracy drop against full depth is
///   acc(F) − acc(E_λ) = P(E wrong) − P(F wrong) = P(E wrong, F right) − P(E right, F wrong) ≤ P(E wrong, F right) = R(λ),
/// so bounding R(λ) = E[L(λ)] ≤ ε bounds the drop by ε (exits that repair full depth's mistakes only help).
///
/// The p-value. L_i ∈ {0, 1} are independent draws, so k = Σ L_i ~ Bin(n, R(λ)). Under the null H_λ: R(λ) &gt; ε,
/// Bin(n, R) is stochastically larger than Bin(n, ε), so P(k ≤ k_obs) ≤ P(Bin(n, ε) ≤ k_obs) =: p_λ, which makes
/// p_λ a valid (super-uniform) p-value: P(p_λ ≤ u) ≤ u under the null. It is exact, no normal approximation.
///
/// The test. The settings are ordered from safest to most aggressive before looking at the data (the chain of
/// <see cref="Chain"/>). Fixed-sequence testing rejects H_λ1, H_λ2, … in order while p ≤ δ and stops at the first
/// p &gt; δ; it controls the family-wise error at δ without splitting δ (a false rejection needs the first true
/// null in the sequence to be rejected at level δ). So with probability ≥ 1 − δ every rejected setting has
/// R(λ) ≤ ε, in particular the most aggressive one rejected, which is the one chosen. The guarantee is about new
/// data from the same distribution as the calibration set, and about the risk (an expectation), not any one batch.
///
/// Note on n: with no loss at all (k = 0) p = (1 − ε)^n, so nothing is certified unless n ≥ ln δ / ln(1 − ε)
/// (598 samples for ε = 0.005, δ = 0.05); <see cref="MinimumSamples"/> computes it.
/// </summary>
internal static class LearnThenTest
{
    /// <summary>
    /// The calibration chain of a policy kind, safest first (see the remarks in the source: κ rises at a pinned τ
    /// for entropy_reduction, the threshold moves towards exiting for the others, t falls for patience).
    /// </summary>
    /// <param name="kind">The policy.</param>
    /// <param name="classes">C (the entropy and confidence ranges depend on it).</param>
    /// <param name="layers">L (patience's range).</param>
    /// <param name="tau">entropy_reduction's τ, held fixed along the chain (ignored by the other kinds).</param>
    public static IReadOnlyList<ExitPolicy> Chain(ExitPolicyKind kind, int classes, int layers, float tau = 0.5f) =>
        PolicyGrid.Chain(kind, classes, layers, tau);

    /// <summary>
    /// Tests every setting of <paramref name="chain"/> on the replayed calibration data and returns the most
    /// aggressive one certified: with probability ≥ 1 − <paramref name="delta"/>, its accuracy drop against full
    /// depth is at most <paramref name="maxDrop"/> on new data from the same distribution.
    /// </summary>
    public static CalibrationResult Calibrate(ExitReplay replay, ReadOnlySpan<int> gold, IReadOnlyList<ExitPolicy> chain,
        double maxDrop, double delta)
    {
        replay.CheckGold(gold);
        if (!(maxDrop > 0 && maxDrop < 1))
            throw new ArgumentOutOfRangeException(nameof(maxDrop), maxDrop, "ε must lie in (0, 1)");
        if (!(delta > 0 && delta < 1))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must lie in (0, 1)");
        int n = replay.Count;
        if (n == 0)
            throw new ArgumentException("no calibration samples", nameof(gold));
        int[] full = replay.AtDepth(replay.Layers).Labels;
        double fullAccuracy = ClassificationMetrics.Compute(gold, full, replay.Classes).Accuracy;

        var steps = new List<CalibrationStep>(chain.Count);
        ExitPolicy? chosen = null;
        bool open = true; // no non-rejection yet
        foreach (ExitPolicy policy in chain)
        {
            ExitOutcome o = replay.Replay(policy);
            int losses = 0;
            for (int i = 0; i < n; i++)
                if (o.Labels[i] != gold[i] && full[i] == gold[i])
                    losses++;
            double p = BinomialCdf(losses, n, maxDrop);
            open &= p <= delta;
            if (open) chosen = policy;
            steps.Add(new CalibrationStep(policy, losses, (double)losses / n, p, open,
                o.Metrics(gold, replay.Classes).Accuracy, o.MeanBlocks, o.ComputeSaved));
        }
        return new CalibrationResult(chosen, steps, n, maxDrop, delta, fullAccuracy);
    }

    /// <summary>
    /// P(X ≤ k) for X ~ Bin(n, p), exactly: Σ_{i ≤ k} C(n, i) p^i (1 − p)^(n−i). The terms are summed in log
    /// space, t_0 = n·ln(1 − p) and t_{i+1} = t_i + ln((n − i)/(i + 1)) + ln(p/(1 − p)), so large n does not
    /// underflow the first term.
    /// </summary>
    public static double BinomialCdf(int k, int n, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a probability");
        if (k < 0) return 0;
        if (k >= n) return 1;
        if (p == 0) return 1;
        if (p == 1) return 0;
        double logOdds = Math.Log(p) - double.LogP1(-p);
        var terms = new double[k + 1];
        terms[0] = n * double.LogP1(-p);
        for (int i = 0; i < k; i++)
            terms[i + 1] = terms[i] + Math.Log((double)(n - i) / (i + 1)) + logOdds;
        double max = terms.Max();
        double sum = 0;
        foreach (double t in terms) sum += Math.Exp(t - max);
        return Math.Min(1, Math.Exp(max) * sum);
    }

    /// <summary>The fewest samples that can certify anything: the least n with (1 − ε)^n ≤ δ.</summary>
    public static int MinimumSamples(double maxDrop, double delta) => (int)Math.Ceiling(Math.Log(delta) / double.LogP1(-maxDrop));
}
