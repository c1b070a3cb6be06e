using System.Numerics.Tensors;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>The one-pass epilogue against the three TensorPrimitives passes it replaced: bit for bit, every length around the vector widths.</summary>
[Trait("Category", "Isa")]
public class EpilogueTests
{
    /// <summary>Every length around the vector widths, at every width cap the plan can pass.</summary>
    public static TheoryData<int, string> Lengths()
    {
        var data = new TheoryData<int, string>();
        foreach (string isa in Enum.GetNames<BinEngine.Kernels.KernelIsa>())
            foreach (int n in new[] { 0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 512 })
                data.Add(n, isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EqualsConvertScaleMultiplyAdd(int n, string isaName)
    {
        var isa = Enum.Parse<BinEngine.Kernels.KernelIsa>(isaName);
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
        var isa = Enum.Parse<BinEngine.Kernels.KernelIsa>(isaName);
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
}
