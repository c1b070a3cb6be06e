using System.Numerics.Tensors;
using BinEngine.Kernels;
using BinEngine.Runtime;
using static BinEngine.Tests.Kernels.KernelTestData;

namespace BinEngine.Tests.Runtime;

/// <summary>The one-pass epilogue against the three TensorPrimitives passes it replaced: bit for bit, every length around the vector widths.</summary>
[Trait("Category", "Isa")]
public class EpilogueTests
{
    /// <summary>Every length around the vector widths, at every width cap the plan can pass.</summary>
    public static TheoryData<int, string> Lengths()
    {
        var data = new TheoryData<int, string>();
        foreach (string isa in Enum.GetNames<KernelIsa>())
            foreach (int n in new[] { 0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 512 })
                data.Add(n, isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EqualsConvertScaleMultiplyAdd(int n, string isaName)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        var random = new Random(n + 11);
        for (int trial = 0; trial < 20; trial++)
        {
            int[] p = Enumerable.Range(0, n).Select(_ => random.Next(-130_000, 130_000)).ToArray();
            float[] alpha = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble() * 2).ToArray();
            float[] bias = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5) * 4).ToArray();
            float scale = (float)random.NextDouble() * 0.05f;
            var expected = new float[n];
            var rowScale = new float[n];
            TensorPrimitives.ConvertTruncating<int, float>(p, expected);
            TensorPrimitives.Multiply(alpha, scale, rowScale);
            TensorPrimitives.MultiplyAdd(expected, rowScale, bias, expected);
            var actual = new float[n];
            Epilogue.ScaleBias(p, alpha, [scale], bias, actual, n, isa);
            for (int i = 0; i < n; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"n={n} trial={trial} i={i}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    /// <summary>Several rows in one call: row t is row t's one-row call with scale t, bit for bit; short spans are refused.</summary>
    [Theory]
    [MemberData(nameof(Lengths))]
    public void RowsInOneCallEqualRowByRow(int n, string isaName)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        var random = new Random(n + 29);
        const int rows = 3;
        int[] p = Enumerable.Range(0, rows * n).Select(_ => random.Next(-130_000, 130_000)).ToArray();
        float[] alpha = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble() * 2).ToArray();
        float[] bias = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5) * 4).ToArray();
        float[] scales = [0.01f, 0.003f, 0.047f];
        var together = new float[rows * n];
        Epilogue.ScaleBias(p, alpha, scales, bias, together, n, isa);
        for (int t = 0; t < rows; t++)
        {
            var alone = new float[n];
            Epilogue.ScaleBias(p.AsSpan(t * n, n), alpha, scales.AsSpan(t, 1), bias, alone, n, isa);
            Assert.Equal(alone, together.AsSpan(t * n, n).ToArray());
        }
        if (n == 0) return;
        Assert.Throws<ArgumentException>(() => Epilogue.ScaleBias(p.AsSpan(0, rows * n - 1), alpha, scales, bias, together, n, isa));
        Assert.Throws<ArgumentException>(() => Epilogue.ScaleBias(p, alpha, scales, bias, new float[rows * n - 1], n, isa));
    }

    /// <summary>
    /// XNOR kernels that apply the epilogue as they store (XnorGemm.MultiplyScaled) give the bits of the integer product
    /// followed by this epilogue: on every shape of the kernel tests (N off every block, K around 256 and 512), on one
    /// thread and split over three.
    /// </summary>
    [Fact]
    public void FusedXnorEpilogueEqualsProductThenEpilogue()
    {
        var kernels = KernelRegistry.XnorGemms.Where(k => k.IsSupported).ToArray();
        int fused = 0;
        foreach (var (m, k, n) in Shapes.Append((67, 1000, 1201)))
        {
            if (m == 0 || n == 0) continue;
            var random = new Random(m * 7 + k + n);
            ulong[] a = PackSignRows(Signs(m * k, 60 + k), m, k);
            var w = new BinaryWeights(
                PackSignRows(Signs(n * k, 61 + k), n, k), n, k);
            float[] scales = Enumerable.Range(0, m).Select(_ => (float)random.NextDouble() * 0.05f).ToArray();
            float[] alpha = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble() * 2).ToArray();
            float[] bias = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5) * 4).ToArray();
            var products = new int[m * n];
            new XnorGemmScalar().Multiply(a, m, w, products);
            var expected = new float[m * n];
            Epilogue.ScaleBias(products, alpha, scales, bias, expected, n, KernelIsa.Scalar);
            foreach (var kernel in kernels.Where(kernel => kernel.FusesEpilogue(w)))
                foreach (int threads in new[] { 1, 3 })
                {
                    var actual = new float[m * n];
                    kernel.MultiplyScaled(a, m, w, scales, alpha, bias, actual, threads);
                    for (int i = 0; i < actual.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"{kernel.Name} M={m} K={k} N={n} threads={threads} at {i}: {actual[i]} vs {expected[i]}");
                    fused++;
                }
        }
        // Where a lookup kernel runs, the fused path was exercised (no other kernel fuses, and the engine keeps the two passes).
        Assert.Equal(kernels.Any(k => k.LookupLayout != LookupLayouts.None), fused > 0);
        Assert.All(kernels.Where(k => k.LookupLayout == LookupLayouts.None), k => Assert.False(k.FusesEpilogue(new BinaryWeights(new ulong[4], 1, 1))));
    }
}
