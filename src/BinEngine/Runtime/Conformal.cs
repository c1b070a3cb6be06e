namespace BinEngine.Runtime;

/// <summary>
/// Split-conformal prediction sets (docs/MODEL.md, learned_gate): with the nonconformity score s = 1 − p_y of the
/// answering exit's softmax, q̂ is the ⌈(n + 1)(1 − α)⌉-th smallest score over n calibration samples, and the set
/// {c : 1 − p_c ≤ q̂} holds the true class with probability ≥ 1 − α for a new sample exchangeable with them
/// (Vovk et al.; Angelopoulos and Bates, "A Gentle Introduction to Conformal Prediction", §1).
/// </summary>
internal static class Conformal
{
    /// <summary>The classes c with 1 − p_c ≤ q̂, ascending.</summary>
    public static int[] PredictionSet(ReadOnlySpan<float> probabilities, float qhat)
    {
        var set = new List<int>(probabilities.Length);
        for (int c = 0; c < probabilities.Length; c++)
            if (1f - probabilities[c] <= qhat)
                set.Add(c);
        return set.ToArray();
    }

    /// <summary>
    /// q̂ for miscoverage <paramref name="alpha"/> from the calibration scores 1 − p_y: the ⌈(n + 1)(1 − α)⌉-th smallest,
    /// or 1 (every class: no finite-sample guarantee is possible with so few samples) when that rank exceeds n.
    /// </summary>
    public static float Quantile(IReadOnlyList<float> scores, double alpha)
    {
        if (!(alpha > 0 && alpha < 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must lie in (0, 1)");
        int n = scores.Count;
        long rank = (long)Math.Ceiling((n + 1) * (1 - alpha));
        if (rank > n)
            return 1f;
        float[] sorted = scores.ToArray();
        Array.Sort(sorted);
        return sorted[rank - 1];
    }
}
