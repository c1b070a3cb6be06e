namespace BinEngine.Evaluation;

/// <summary>How well an answer's probability matches how often such answers are right.</summary>
internal static class Calibration
{
    /// <summary>Bins of <see cref="ExpectedCalibrationError"/> (Guo et al., 2017, use 15).</summary>
    public const int DefaultBins = 15;

    /// <summary>
    /// Expected calibration error (Guo et al., "On Calibration of Modern Neural Networks", 2017): split the
    /// answers by confidence into M equal-width bins B_m = ((m−1)/M, m/M] (a confidence of exactly 0 joins the
    /// first), and average the gap between each bin's accuracy and mean confidence, weighted by its share:
    ///
    ///   ECE = Σ_m (|B_m| / n) · | acc(B_m) − conf(B_m) |.
    ///
    /// 0 is perfect calibration; an over-confident model has conf &gt; acc in its high bins. 0 when n = 0.
    /// </summary>
    /// <param name="confidences">The probability of each answer.</param>
    /// <param name="predicted">The answered class per sample.</param>
    /// <param name="gold">The right class per sample.</param>
    /// <param name="bins">M.</param>
    public static double ExpectedCalibrationError(ReadOnlySpan<float> confidences, ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold, int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        if (confidences.Length != predicted.Length || predicted.Length != gold.Length)
            throw new ArgumentException($"{confidences.Length} confidences, {predicted.Length} predictions and {gold.Length} gold labels");
        int n = gold.Length;
        if (n == 0) return 0;
        var count = new int[bins];
        var right = new int[bins];
        var confidenceSum = new double[bins];
        for (int i = 0; i < n; i++)
        {
            double c = confidences[i];
            if (!(c >= 0 && c <= 1))
                throw new ArgumentOutOfRangeException(nameof(confidences), c, $"sample {i}: a confidence is a probability");
            int m = Math.Clamp((int)Math.Ceiling(c * bins) - 1, 0, bins - 1);
            count[m]++;
            confidenceSum[m] += c;
            if (predicted[i] == gold[i]) right[m]++;
        }
        // (|B_m|/n)·|acc − conf| = |right_m − Σconf_m| / n.
        double ece = 0;
        for (int m = 0; m < bins; m++)
            ece += Math.Abs(right[m] - confidenceSum[m]);
        return ece / n;
    }
}
