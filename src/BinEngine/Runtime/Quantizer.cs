namespace BinEngine.Runtime;

/// <summary>
/// The quantizer Q_n of docs/MODEL.md, per row (a token's activations, one embedding row, or one
/// weight row binarized by the converter): integer codes plus one float scale, so that
/// Q(x) = scale · code. The one definition: the converter, the reference forward pass and the tests
/// of the fused packer (<see cref="ActivationPacker"/>) all call it.
///
///   n = 1:      β = mean|x|, code = sign(x) ∈ {−1, +1} (sign(0) = +1), scale = β.
///   2 ≤ n ≤ 8:  m = 2^(n−1) − 1, s = max|x| / m, code = clamp(round_half_even(x / s), −m, m), scale = s.
///
/// The float32 operations run in the order the trainer runs them (x / s, round, clamp), so for equal
/// inputs the codes are equal bit for bit; a zero row gets s = 0 and all-zero codes.
/// </summary>
internal static class Quantizer
{
    /// <summary>Quantizes one row to <paramref name="bits"/> ∈ [1, 8]; returns the scale.</summary>
    public static float QuantizeRow(ReadOnlySpan<float> x, int bits, Span<sbyte> codes)
    {
        if (bits == 1)
        {
            // β summed in float64: a weight row's α is stored once and read forever, so it gets the
            // correctly rounded mean (the fast activation packer sums in float32: ulps apart).
            double sumAbs = 0;
            for (int i = 0; i < x.Length; i++)
            {
                sumAbs += Math.Abs(x[i]);
                codes[i] = x[i] >= 0f ? (sbyte)1 : (sbyte)-1;
            }
            return x.Length == 0 ? 0f : (float)(sumAbs / x.Length);
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
