using BinEngine.Kernels;
using System.Runtime.Intrinsics;

namespace BinEngine.Runtime;

/// <summary>
/// LayerNorm of every row of a tile in one call, in place: x ← (x − mean) · (1/√(var + eps)) · γ + β per row of d
/// floats, with the biased variance (as torch), written once against <see cref="IFloatLanes{TVec}"/> and compiled per
/// width, with a scalar tail.
/// </summary>
/// <remarks>
/// Three passes over a row: Σ x and Σ (x − mean)², each over four vector accumulators (four independent add chains
/// instead of one latency-bound chain), then the affine map rounded as <see cref="ReferenceForward.LayerNorm"/>
/// rounds it (two products and a sum, nothing fused). So the two differ only in the order of the two sums and in
/// the fused square-and-add, a few ulps. It replaced five TensorPrimitives calls per row: 7 × 25 rows a sentence for
/// the default model, each call with its own checks and dispatch (measured: bench/README.md, "Levers").
/// </remarks>
internal static class LayerNorm
{
    /// <summary>Every row of <paramref name="x"/> (a whole number of rows of <paramref name="d"/>); <paramref name="isa"/> caps the width.</summary>
    public static unsafe void Rows(Span<float> x, int d, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps, KernelIsa isa)
    {
        if (d <= 0 || x.Length % d != 0 || gamma.Length < d || beta.Length < d)
            throw new ArgumentException("x must be whole rows of d floats, gamma and beta at least d long");
        int rows = x.Length / d;
        fixed (float* x0 = x, g = gamma, b = beta)
        {
            for (int r = 0; r < rows; r++)
            {
                float* row = x0 + (long)r * d;
                if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
                    Row<Lanes512, Vector512<float>>(row, d, g, b, eps);
                else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
                    Row<Lanes256, Vector256<float>>(row, d, g, b, eps);
                else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
                    Row<Lanes128, Vector128<float>>(row, d, g, b, eps);
                else
                    ScalarRow(row, d, g, b, eps);
            }
        }
    }

    private static unsafe void Row<TLanes, TVec>(float* x, int d, float* g, float* b, float eps)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count, i = 0;
        TVec s0 = TLanes.Zero, s1 = s0, s2 = s0, s3 = s0;
        for (; i + 4 * w <= d; i += 4 * w)
        {
            s0 = TLanes.Add(s0, TLanes.Load(x + i));
            s1 = TLanes.Add(s1, TLanes.Load(x + i + w));
            s2 = TLanes.Add(s2, TLanes.Load(x + i + 2 * w));
            s3 = TLanes.Add(s3, TLanes.Load(x + i + 3 * w));
        }
        for (; i + w <= d; i += w)
            s0 = TLanes.Add(s0, TLanes.Load(x + i));
        float sum = TLanes.Sum(TLanes.Add(TLanes.Add(s0, s1), TLanes.Add(s2, s3)));
        for (int j = i; j < d; j++)
            sum += x[j];
        float mean = sum / d;

        TVec m = TLanes.Create(mean);
        s0 = TLanes.Zero; s1 = s0; s2 = s0; s3 = s0;
        i = 0;
        for (; i + 4 * w <= d; i += 4 * w)
        {
            TVec c0 = TLanes.Subtract(TLanes.Load(x + i), m), c1 = TLanes.Subtract(TLanes.Load(x + i + w), m);
            TVec c2 = TLanes.Subtract(TLanes.Load(x + i + 2 * w), m), c3 = TLanes.Subtract(TLanes.Load(x + i + 3 * w), m);
            s0 = TLanes.FusedMultiplyAdd(c0, c0, s0);
            s1 = TLanes.FusedMultiplyAdd(c1, c1, s1);
            s2 = TLanes.FusedMultiplyAdd(c2, c2, s2);
            s3 = TLanes.FusedMultiplyAdd(c3, c3, s3);
        }
        for (; i + w <= d; i += w)
        {
            TVec c = TLanes.Subtract(TLanes.Load(x + i), m);
            s0 = TLanes.FusedMultiplyAdd(c, c, s0);
        }
        float squares = TLanes.Sum(TLanes.Add(TLanes.Add(s0, s1), TLanes.Add(s2, s3)));
        for (int j = i; j < d; j++)
            squares += (x[j] - mean) * (x[j] - mean);
        float inv = 1f / MathF.Sqrt(squares / d + eps);

        TVec iv = TLanes.Create(inv);
        for (i = 0; i + w <= d; i += w)
            TLanes.Store(TLanes.Add(TLanes.Multiply(TLanes.Multiply(TLanes.Subtract(TLanes.Load(x + i), m), iv), TLanes.Load(g + i)), TLanes.Load(b + i)), x + i);
        Affine(x, i, d, g, b, mean, inv);
    }

    /// <summary>The scalar reference: both sums in column order, then the affine map.</summary>
    private static unsafe void ScalarRow(float* x, int d, float* g, float* b, float eps)
    {
        float sum = 0f, squares = 0f;
        for (int j = 0; j < d; j++)
            sum += x[j];
        float mean = sum / d;
        for (int j = 0; j < d; j++)
            squares += (x[j] - mean) * (x[j] - mean);
        Affine(x, 0, d, g, b, mean, 1f / MathF.Sqrt(squares / d + eps));
    }

    /// <summary>x_j ← (x_j − mean) · inv · γ_j + β_j for columns from … d − 1, rounded as the reference rounds it.</summary>
    private static unsafe void Affine(float* x, int from, int d, float* g, float* b, float mean, float inv)
    {
        for (int j = from; j < d; j++)
            x[j] = (x[j] - mean) * inv * g[j] + b[j];
    }
}
