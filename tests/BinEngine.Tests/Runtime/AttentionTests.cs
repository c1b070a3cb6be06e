using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// One sample's attention (Runtime/Attention.cs) against the formula in double precision: the direct path at every
/// width cap (scalar is its plain-loop reference), the copy + GEMM path, and the choice between them.
/// </summary>
[Trait("Category", "Isa")]
public class AttentionTests
{
    /// <summary>Lengths around the 4-key groups and the threshold, head sizes around the vector widths (with tails), strides with padding.</summary>
    public static TheoryData<string, int, int, int, int> Shapes()
    {
        var data = new TheoryData<string, int, int, int, int>();
        foreach (string isa in Enum.GetNames<KernelIsa>())
            foreach (var (n, heads, dh, pad) in new[]
            {
                (1, 1, 1, 0), (1, 4, 64, 0), (2, 2, 3, 1), (3, 1, 4, 0), (4, 2, 8, 0), (5, 4, 16, 3), (7, 3, 20, 0),
                (8, 1, 33, 5), (9, 4, 64, 0), (17, 2, 7, 0), (25, 4, 64, 0), (31, 2, 48, 16), (33, 4, 64, 0),
                (Attention.DirectMaxTokens, 4, 64, 0), (Attention.DirectMaxTokens + 1, 2, 32, 0),
            })
                data.Add(isa, n, heads, dh, pad);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DirectMatchesFormula(string isaName, int n, int heads, int dh, int pad)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        var (q, k, v, stride) = Inputs(n, heads, dh, pad, n * 7 + dh, 1f);
        var output = Filled(n * stride, 42f);
        Attention.Direct(q, k, v, output, n, stride, heads, dh, new float[Attention.DirectScratch(n, dh)], isa);
        AssertClose(Formula(q, k, v, n, stride, heads, dh), output, n, stride, heads * dh, 2e-6);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GemmPathMatchesFormula(string isaName, int n, int heads, int dh, int pad)
    {
        if (KernelRegistry.Select(Enum.Parse<KernelIsa>(isaName)) is not { } set)
            return; // this CPU has no kernels of that ISA
        var (q, k, v, stride) = Inputs(n, heads, dh, pad, n * 5 + dh, 1f);
        var output = Filled(n * stride, 42f);
        var scratch = new Attention.GemmScratch(new float[n * dh], new float[n * dh], new float[n * dh], new float[n * dh], new float[n * n]);
        Attention.Gemm(q, k, v, output, n, stride, heads, dh, scratch, set.Sgemm);
        AssertClose(Formula(q, k, v, n, stride, heads, dh), output, n, stride, heads * dh, 2e-6);
    }

    /// <summary>Scores far beyond exp's range (≈ ±3000) stay finite: the softmax is shifted by the row's max.</summary>
    [Theory]
    [InlineData("Scalar")]
    [InlineData("Vector128")]
    [InlineData("Avx2")]
    [InlineData("Avx512")]
    public void LargeScoresStayFinite(string isaName)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        const int n = 13, heads = 4, dh = 64;
        var (q, k, v, stride) = Inputs(n, heads, dh, 0, 3, 20f);
        var output = new float[n * stride];
        Attention.Direct(q, k, v, output, n, stride, heads, dh, new float[Attention.DirectScratch(n, dh)], isa);
        Assert.All(output, x => Assert.True(float.IsFinite(x)));
        AssertClose(Formula(q, k, v, n, stride, heads, dh), output, n, stride, heads * dh, 1e-2); // scores ~1e3: their rounding moves the weights by ~1e-4
    }

    /// <summary>Sample takes the direct path up to the threshold and the GEMM path above it, and is deterministic.</summary>
    [Theory]
    [InlineData(Attention.DirectMaxTokens)]
    [InlineData(Attention.DirectMaxTokens + 1)]
    public void SamplePicksPathByLength(int n)
    {
        const int heads = 4, dh = 64;
        KernelSet set = KernelRegistry.Selected;
        var (q, k, v, stride) = Inputs(n, heads, dh, 0, n, 1f);
        float[] Run(Func<float[], float[]> path) => path(new float[n * stride]);
        var scratch = () => new Attention.GemmScratch(new float[n * dh], new float[n * dh], new float[n * dh], new float[n * dh], new float[Attention.ScoresScratch(n, dh)]);
        float[] viaSample = Run(o => { Attention.Sample(q, k, v, o, n, stride, heads, dh, scratch(), set.Sgemm, set.Xnor.Isa); return o; });
        float[] again = Run(o => { Attention.Sample(q, k, v, o, n, stride, heads, dh, scratch(), set.Sgemm, set.Xnor.Isa); return o; });
        float[] expected = n <= Attention.DirectMaxTokens
            ? Run(o => { Attention.Direct(q, k, v, o, n, stride, heads, dh, new float[Attention.DirectScratch(n, dh)], set.Xnor.Isa); return o; })
            : Run(o => { Attention.Gemm(q, k, v, o, n, stride, heads, dh, scratch(), set.Sgemm); return o; });
        Assert.Equal(expected, viaSample);
        Assert.Equal(viaSample, again);
    }

    [Fact]
    public void DirectRejectsShortSpans()
    {
        var x = new float[3 * 8];
        var scratch = new float[Attention.DirectScratch(4, 4)];
        Attention.Direct(x, x, x, x, 3, 8, 2, 4, scratch, KernelIsa.Scalar);                                                   // fits
        Assert.Throws<ArgumentException>(() => Attention.Direct(x, x, x, x, 4, 8, 2, 4, scratch, KernelIsa.Scalar));          // 4 rows
        Assert.Throws<ArgumentException>(() => Attention.Direct(x, x, x, x, 3, 8, 3, 4, scratch, KernelIsa.Scalar));          // 3 heads × 4 > 8
        Assert.Throws<ArgumentException>(() => Attention.Direct(x, x, x, x, 3, 8, 2, 4, new float[Attention.DirectScratch(3, 4) - 1], KernelIsa.Scalar)); // scratch
    }

    private static (float[] Q, float[] K, float[] V, int Stride) Inputs(int n, int heads, int dh, int pad, int seed, float magnitude)
    {
        int stride = heads * dh + pad;
        var random = new Random(seed);
        float[] Make() => Enumerable.Range(0, n * stride).Select(_ => (float)(random.NextDouble() * 2 - 1) * magnitude).ToArray();
        return (Make(), Make(), Make(), stride);
    }

    private static float[] Filled(int length, float value) => Enumerable.Repeat(value, length).ToArray();

    /// <summary>out_i = Σ_j softmax_j(Q_i·K_j / √d_h) V_j per head, in double.</summary>
    private static double[] Formula(float[] q, float[] k, float[] v, int n, int stride, int heads, int dh)
    {
        var result = new double[n * stride];
        var s = new double[n];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
            {
                int c0 = h * dh;
                for (int j = 0; j < n; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < dh; c++)
                        dot += (double)q[i * stride + c0 + c] * k[j * stride + c0 + c];
                    s[j] = dot / Math.Sqrt(dh);
                }
                double max = s.Take(n).Max(), sum = 0;
                for (int j = 0; j < n; j++)
                    sum += s[j] = Math.Exp(s[j] - max);
                for (int c = 0; c < dh; c++)
                {
                    double o = 0;
                    for (int j = 0; j < n; j++)
                        o += s[j] / sum * v[j * stride + c0 + c];
                    result[i * stride + c0 + c] = o;
                }
            }
        return result;
    }

    /// <summary>Every head column within <paramref name="tolerance"/> (relative to the row's scale, at least 1); the padding untouched.</summary>
    private static void AssertClose(double[] expected, float[] actual, int n, int stride, int width, double tolerance)
    {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < stride; c++)
            {
                int at = i * stride + c;
                if (c >= width)
                {
                    Assert.True(actual[at] is 0f or 42f, $"row {i} column {c}: padding was written");
                    continue;
                }
                Assert.True(Math.Abs(expected[at] - actual[at]) <= tolerance * Math.Max(1, Math.Abs(expected[at])),
                    $"row {i} column {c}: expected {expected[at]:R}, got {actual[at]:R}");
            }
    }
}
