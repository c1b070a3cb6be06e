using BinEngine.Kernels;
using BinEngine.Runtime;
using System.Runtime.Intrinsics;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// VectorMath: each function against double precision (within a stated ulp bound), every width (Vector128/256/512)
/// against the scalar bits, and the span drivers at every ISA cap against the scalar function.
/// </summary>
[Trait("Category", "Isa")]
public class VectorMathTests
{
    [Fact]
    public void ExpIsWithinTwoUlpsAndEveryWidthGivesItsBits()
    {
        var inputs = new List<float>();
        for (float x = -87.3f; x <= 88f; x += 0.0137f) inputs.Add(x);
        inputs.AddRange([0f, -0f, 1e-8f, -1e-8f, -87.33f, -87.3365f, -87.33652f, -87.34f, -100f, float.NegativeInfinity, -1e30f]);
        float[] scalar = inputs.Select(VectorMath.Exp).ToArray();
        for (int i = 0; i < inputs.Count; i++)
        {
            float x = inputs[i];
            float exact = (float)Math.Exp(x);
            if (x < -87.3365f) Assert.Equal(0f, scalar[i]);   // the bound: a few ulps above ln 2^−126, so no product is subnormal
            else Assert.True(UlpDistance(exact, scalar[i]) <= 2, $"exp({x:R}) = {scalar[i]:R}, exact {exact:R}");
        }
        AssertEveryWidth(inputs.ToArray(), scalar, VectorMath.Exp, VectorMath.Exp, VectorMath.Exp, "exp");
    }

    [Fact]
    public void LogIsWithinTwoUlpsAndEveryWidthGivesItsBits()
    {
        var inputs = new List<float>();
        for (float s = 1f; s < 5e8f; s *= 1.0173f) inputs.Add(s);
        inputs.AddRange([1f, 1.0000001f, MathF.Sqrt(2f), 0.99999994f * MathF.Sqrt(2f), 2f, 4.85165e8f]);
        float[] scalar = inputs.Select(VectorMath.Log).ToArray();
        for (int i = 0; i < inputs.Count; i++)
        {
            float exact = (float)Math.Log(inputs[i]);
            Assert.True(UlpDistance(exact, scalar[i]) <= 2 || Math.Abs(exact - scalar[i]) <= 1e-7f,
                $"log({inputs[i]:R}) = {scalar[i]:R}, exact {exact:R}");
        }
        AssertEveryWidth(inputs.ToArray(), scalar, VectorMath.Log, VectorMath.Log, VectorMath.Log, "log");
    }

    [Fact]
    public void SoftplusAndSiluMatchDoubleAndEveryWidthGivesTheirBits()
    {
        var inputs = new List<float>();
        for (float v = -90f; v <= 90f; v += 0.0311f) inputs.Add(v);
        inputs.AddRange([20f, 20.000002f, 19.999998f, 0f, -17f, -16f, 1e30f]);
        float[] values = inputs.ToArray();
        float[] softplus = values.Select(VectorMath.Softplus).ToArray();
        float[] silu = values.Select(VectorMath.Silu).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            double s = 1.0 + Math.Exp(v);
            double log1p = s == 1.0 ? Math.Exp(v) : Math.Log(s) * Math.Exp(v) / (s - 1.0);
            float expectedSoftplus = v > 20 ? (float)v : (float)log1p;
            Assert.True(UlpDistance(expectedSoftplus, softplus[i]) <= 4 || Math.Abs(expectedSoftplus - softplus[i]) < 1e-37,
                $"softplus({v:R}) = {softplus[i]:R}, expected {expectedSoftplus:R}");
            float expectedSilu = (float)(v / (1.0 + Math.Exp(-v)));
            Assert.True(UlpDistance(expectedSilu, silu[i]) <= 4 || Math.Abs(expectedSilu - silu[i]) < 1e-30,
                $"silu({v:R}) = {silu[i]:R}, expected {expectedSilu:R}");
        }
        AssertEveryWidth(values, softplus, VectorMath.Softplus, VectorMath.Softplus, VectorMath.Softplus, "softplus");
        AssertEveryWidth(values, silu, VectorMath.Silu, VectorMath.Silu, VectorMath.Silu, "silu");
    }

    [Fact]
    public void SigmoidAndTanhMatchDoubleAndEveryWidthGivesTheirBits()
    {
        var inputs = new List<float>();
        for (float v = -95f; v <= 95f; v += 0.0173f) inputs.Add(v);
        for (float v = 1e-30f; v < 1f; v *= 3.1f) { inputs.Add(v); inputs.Add(-v); }
        for (float v = 0.1f; v < 0.5f; v += 0.000731f) { inputs.Add(v); inputs.Add(-v); } // where tanh's expm1 changes k (|x| ≈ 0.173, 0.52)
        inputs.AddRange([0f, -0f, 0.625f, 0.62499994f, -0.625f, 9f, -9f, 9.02f, 10f, -10f, 1e30f, -1e30f]);
        float[] values = inputs.ToArray();
        float[] sigmoid = values.Select(VectorMath.Sigmoid).ToArray();
        float[] tanh = values.Select(VectorMath.Tanh).ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            float expectedSigmoid = (float)(1.0 / (1.0 + Math.Exp(-v)));
            // Below x ≈ −87 σ is under the least normal float; VectorMath returns ≈ 6e−39 there (its exp is clamped at e^88).
            Assert.True(UlpDistance(expectedSigmoid, sigmoid[i]) <= 4 || Math.Abs(expectedSigmoid - sigmoid[i]) < 1e-37,
                $"sigmoid({v:R}) = {sigmoid[i]:R}, expected {expectedSigmoid:R}");
            float expectedTanh = (float)Math.Tanh(v);
            Assert.True(UlpDistance(expectedTanh, tanh[i]) <= 2, $"tanh({v:R}) = {tanh[i]:R}, expected {expectedTanh:R}");
            // F2's 1-bit input is the plane bit (tanh x ≥ 0): it must be (x ≥ 0) exactly, however small x is.
            Assert.True((values[i] >= 0f) == (tanh[i] >= 0f), $"sign of tanh({v:R}) = {tanh[i]:R}");
        }
        AssertEveryWidth(values, sigmoid, VectorMath.Sigmoid, VectorMath.Sigmoid, VectorMath.Sigmoid, "sigmoid");
        AssertEveryWidth(values, tanh, VectorMath.Tanh, VectorMath.Tanh, VectorMath.Tanh, "tanh");
    }

    /// <summary>
    /// A NaN argument gives NaN at every width, so a broken model's NaN reaches its logits instead of turning into a
    /// plausible number: the vector exp clamps with MaxNative/MinNative, whose x86 form returns its second operand when
    /// either is NaN, so the argument is passed second.
    /// </summary>
    [Fact]
    public void NaNStaysNaNAtEveryWidth()
    {
        foreach (var (name, scalar, v128, v256, v512) in new (string, Func<float, float>, Func<Vector128<float>, Vector128<float>>,
                     Func<Vector256<float>, Vector256<float>>, Func<Vector512<float>, Vector512<float>>)[]
                 {
                     ("exp", VectorMath.Exp, VectorMath.Exp, VectorMath.Exp, VectorMath.Exp),
                     ("sigmoid", VectorMath.Sigmoid, VectorMath.Sigmoid, VectorMath.Sigmoid, VectorMath.Sigmoid),
                     ("tanh", VectorMath.Tanh, VectorMath.Tanh, VectorMath.Tanh, VectorMath.Tanh),
                 })
        {
            Assert.True(float.IsNaN(scalar(float.NaN)), name + " scalar");
            Assert.True(float.IsNaN(v128(Vector128.Create(float.NaN)).GetElement(0)), name + " Vector128");
            Assert.True(float.IsNaN(v256(Vector256.Create(float.NaN)).GetElement(3)), name + " Vector256");
            Assert.True(float.IsNaN(v512(Vector512.Create(float.NaN)).GetElement(9)), name + " Vector512");
        }
    }

    /// <summary>The span drivers the blocks call, at every ISA cap and awkward lengths (16-, 8-, 4-lane and scalar tails), in place.</summary>
    [Theory]
    [InlineData("scalar")]
    [InlineData("v128")]
    [InlineData("avx2")]
    [InlineData("avx512")]
    public void SpanDriversGiveTheScalarBitsAtEveryCap(string isaName)
    {
        Assert.True(KernelIsaNames.TryParse(isaName, out KernelIsa isa));
        var random = new Random(7);
        foreach (int n in new[] { 1, 3, 4, 7, 8, 15, 16, 17, 31, 512, 525 })
        {
            float[] x = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
            foreach (float shift in new[] { 0f, 0.5f })
            {
                float[] y = (float[])x.Clone();
                VectorMath.Sigmoid(y, shift, y, isa);
                AssertSameBits(x.Select(v => VectorMath.Sigmoid(v) - shift).ToArray(), y, $"sigmoid − {shift} {isa} n={n}");
            }
            float[] t = (float[])x.Clone();
            VectorMath.Tanh(t, t, isa);
            AssertSameBits(x.Select(VectorMath.Tanh).ToArray(), t, $"tanh {isa} n={n}");
        }
    }

    // ---- helpers ----

    private static void AssertEveryWidth(float[] inputs, float[] scalar, Func<Vector128<float>, Vector128<float>> f128,
        Func<Vector256<float>, Vector256<float>> f256, Func<Vector512<float>, Vector512<float>> f512, string what)
    {
        int padded = (inputs.Length + 15) / 16 * 16;
        var x = new float[padded];
        inputs.CopyTo(x, 0);
        var y = new float[padded];
        for (int i = 0; i < padded; i += 4) f128(Vector128.Create(x, i)).CopyTo(y, i);
        AssertSameBits(scalar, y.AsSpan(0, inputs.Length).ToArray(), $"{what} Vector128");
        for (int i = 0; i < padded; i += 8) f256(Vector256.Create(x, i)).CopyTo(y, i);
        AssertSameBits(scalar, y.AsSpan(0, inputs.Length).ToArray(), $"{what} Vector256");
        for (int i = 0; i < padded; i += 16) f512(Vector512.Create(x, i)).CopyTo(y, i);
        AssertSameBits(scalar, y.AsSpan(0, inputs.Length).ToArray(), $"{what} Vector512");
    }

    private static long UlpDistance(float a, float b)
    {
        if (a == b) return 0;
        static long Ordered(float v)
        {
            int bits = BitConverter.SingleToInt32Bits(v);
            return bits < 0 ? int.MinValue - (long)bits : bits;
        }
        return Math.Abs(Ordered(a) - Ordered(b));
    }

    private static void AssertSameBits(float[] expected, float[] actual, string label)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{label}: i={i} expected {expected[i]:R}, got {actual[i]:R}");
    }
}
