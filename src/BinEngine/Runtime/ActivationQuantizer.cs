namespace BinEngine.Runtime;

/// <summary>
/// The quantizer Q_n of docs/MODEL.md, per row (a token's activations, or one embedding row):
/// integer codes plus one float scale, so that Q(x) = scale · code.
///
///   n = 1:      β = mean|x|, code = sign(x) ∈ {−1, +1} (sign(0) = +1), scale = β.
///   2 ≤ n ≤ 8:  m = 2^(n−1) − 1, s = max|x| / m, code = clamp(round_half_even(x / s), −m, m), scale = s.
///
/// The float32 operations run in the order the trainer runs them (x / s, round, clamp), so for equal
/// inputs the codes are equal bit for bit; a zero row gets s = 0 and all-zero codes.
/// </summary>
internal static class ActivationQuantizer
{
    /// <summary>Quantizes one row to <paramref name="bits"/> ∈ [1, 8]; returns the scale.</summary>
    public static float QuantizeRow(ReadOnlySpan<float> x, int bits, Span<sbyte> codes)
    {
        if (bits == 1)
        {
            float sumAbs = 0f;
            for (int i = 0; i < x.Length; i++)
            {
                sumAbs += MathF.Abs(x[i]);
                codes[i] = x[i] >= 0f ? (sbyte)1 : (sbyte)-1;
            }
            return x.Length == 0 ? 0f : sumAbs / x.Length;
        }

        int m = Kernels.BitPacking.MaxCode(bits);
        float maxAbs = 0f;
        for (int i = 0; i < x.Length; i++)
            maxAbs = MathF.Max(maxAbs, MathF.Abs(x[i]));
        float s = maxAbs / m;
        if (!(s > 0f))
        {
            codes[..x.Length].Clear();
            return 0f;
        }
        for (int i = 0; i < x.Length; i++)
        {
            float r = MathF.Round(x[i] / s, MidpointRounding.ToEven);
            codes[i] = (sbyte)Math.Clamp(r, -m, m);
        }
        return s;
    }
}
