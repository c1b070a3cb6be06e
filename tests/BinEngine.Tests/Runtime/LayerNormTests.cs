using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// LayerNorm.Rows at every width cap against ReferenceForward.LayerNorm (the oracle), row by row, for widths around
/// the vector lengths. The two differ only in the order of the mean's and the variance's sums (four vector
/// accumulators and a fused square-and-add against one scalar chain). Two summation orders of d terms differ by
/// ≈ √d·ε·|Σ| (ε = 2^−23), so the means by ≈ √d·ε·|mean|, which moves an output by that over σ, times γ (≤ 1.5):
/// tolerance 2e-6 (outputs of magnitude ≲ 4, a few ulps) + 4·√d·ε·|mean|/σ·1.5. Row 3 is offset by 40 so that the
/// second term is exercised (|mean|/σ ≈ 24).
/// </summary>
[Trait("Category", "Isa")]
public class LayerNormTests
{
    public static TheoryData<int, string> Widths()
    {
        var data = new TheoryData<int, string>();
        foreach (string isa in Enum.GetNames<KernelIsa>())
            foreach (int d in new[] { 1, 3, 4, 8, 15, 16, 17, 63, 64, 65, 128, 256, 257 })
                data.Add(d, isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void RowsMatchTheReference(int d, string isaName)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        var random = new Random(d * 7 + 1);
        const int rows = 5;
        float[] x = Enumerable.Range(0, rows * d).Select(i => (float)(random.NextDouble() * 6 - 2) + (i / d == 3 ? 40f : 0f)).ToArray();
        Array.Fill(x, 1.25f, 2 * d, d);   // a constant row: variance 0, the output is β
        var ln = new LayerNormWeights(
            TensorView<float>.Pinned(Enumerable.Range(0, d).Select(_ => (float)(random.NextDouble() + 0.5)).ToArray()),
            TensorView<float>.Pinned(Enumerable.Range(0, d).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray()));
        float[] expected = (float[])x.Clone(), input = (float[])x.Clone();
        for (int r = 0; r < rows; r++)
            ReferenceForward.LayerNorm(expected.AsSpan(r * d, d), ln, 1e-5f);
        LayerNorm.Rows(x, d, ln.Gamma.Span, ln.Beta.Span, 1e-5f, isa);
        for (int i = 0; i < x.Length; i++)
        {
            ReadOnlySpan<float> row = input.AsSpan(i / d * d, d);
            double mean = 0, variance = 0;
            foreach (float v in row) mean += v / (double)d;
            foreach (float v in row) variance += (v - mean) * (v - mean) / d;
            double tolerance = 2e-6 + 4 * Math.Sqrt(d) * Math.Pow(2, -23) * Math.Abs(mean) / Math.Sqrt(variance + 1e-5) * 1.5;
            Assert.True(Math.Abs(expected[i] - x[i]) <= tolerance, $"d={d} {isa} row {i / d} col {i % d}: expected {expected[i]:R}, got {x[i]:R}");
        }
        for (int i = 2 * d; i < 3 * d; i++)
            Assert.Equal(ln.Beta.Span[i - 2 * d], x[i]);
    }

    [Fact]
    public void RefusesPartialRowsAndShortWeights()
    {
        var g = new float[8];
        Assert.Throws<ArgumentException>(() => LayerNorm.Rows(new float[12], 8, g, g, 1e-5f, KernelIsa.Avx512));
        Assert.Throws<ArgumentException>(() => LayerNorm.Rows(new float[16], 8, g.AsSpan(0, 7), g, 1e-5f, KernelIsa.Avx512));
        Assert.Throws<ArgumentException>(() => LayerNorm.Rows(new float[16], 0, g, g, 1e-5f, KernelIsa.Avx512));
    }
}
