using BinEngine.ModelFile;

namespace BinEngine.Converter;

/// <summary>
/// The offline quantizers of docs/MODEL.md, applied once by the converter so the runtime only
/// maps and runs (LCE's principle).
/// </summary>
public static class Quantizers
{
    /// <summary>
    /// BinLinear weights W [rows, k] → B = sign(W) packed one plane per row (bit 1 = +1,
    /// sign(0) = +1, so the test is W ≥ 0; −0.0 ≥ 0 holds too) and α_o = mean_i |W_oi|.
    /// α is summed in float64 and rounded once to float32: within an ulp or two of the trainer's
    /// float32 <c>W.abs().mean(1)</c>, whose reduction order is PyTorch's; the runtime's parity
    /// tolerance absorbs that.
    /// </summary>
    public static (ulong[] Bits, float[] Alpha) Binarize(ReadOnlySpan<float> weights, int rows, int k)
    {
        if (weights.Length != (long)rows * k)
            throw new ArgumentException($"{weights.Length} weights for [{rows}, {k}]", nameof(weights));
        int rowWords = TensorInfo.PackedRowWords(k);
        var bits = new ulong[checked(rows * rowWords)];
        var alpha = new float[rows];
        for (int o = 0; o < rows; o++)
        {
            var w = weights.Slice(o * k, k);
            var packed = bits.AsSpan(o * rowWords, rowWords);
            double sum = 0;
            for (int i = 0; i < k; i++)
            {
                sum += Math.Abs(w[i]);
                if (w[i] >= 0)
                    packed[i >> 6] |= 1UL << (i & 63);
            }
            alpha[o] = (float)(sum / k);
        }
        return (bits, alpha);
    }

    /// <summary>
    /// Q_n per row (docs/MODEL.md "Quantizers") of a [rows, k] table, n ∈ {1, 2, 4, 8}: the
    /// integer codes and the per-row scale whose product <c>code · scale</c> (float32) is Q_n(x).
    /// n = 1: scale β = mean|x| (float64 sum, rounded once, as α above), code sign(x), sign(0) = +1.
    /// 2 ≤ n ≤ 8: m = 2^(n−1) − 1, s = max|x| / m in float32, q = clamp(round_half_even(x / s), −m, m)
    /// with x / s in float32 — the trainer's order of operations, so codes agree bit for bit;
    /// max|x| = 0 gives s = 0 and q = 0.
    /// </summary>
    public static (sbyte[] Codes, float[] Scales) QuantizeRows(ReadOnlySpan<float> table, int rows, int k, int bits)
    {
        if (bits is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "1, 2, 4 or 8 bits");
        if (table.Length != (long)rows * k)
            throw new ArgumentException($"{table.Length} values for [{rows}, {k}]", nameof(table));
        var codes = new sbyte[table.Length];
        var scales = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            var x = table.Slice(r * k, k);
            var q = codes.AsSpan(r * k, k);
            if (bits == 1)
            {
                double sum = 0;
                for (int j = 0; j < k; j++)
                {
                    sum += Math.Abs(x[j]);
                    q[j] = x[j] >= 0 ? (sbyte)1 : (sbyte)-1;
                }
                scales[r] = (float)(sum / k);
                continue;
            }
            int m = (1 << (bits - 1)) - 1;
            float maxAbs = 0;
            for (int j = 0; j < k; j++)
                maxAbs = Math.Max(maxAbs, Math.Abs(x[j]));
            float s = maxAbs / m;
            scales[r] = s;
            if (maxAbs == 0)
                continue; // codes stay 0
            for (int j = 0; j < k; j++)
            {
                float v = MathF.Round(x[j] / s, MidpointRounding.ToEven);
                q[j] = (sbyte)Math.Clamp(v, -m, m);
            }
        }
        return (codes, scales);
    }
}
