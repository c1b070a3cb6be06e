using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>The fused quantize-and-pack, and the vectorised int8 quantizer, against the scalar definition: quantize to codes, then pack.</summary>
[Trait("Category", "Isa")]
public class ActivationPackerTests
{
    /// <summary>Both paths of the helpers (the plan picks one from the kernels' ISA) for every width and awkward length.</summary>
    public static TheoryData<int, int, bool> Cases()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (bool vectorised in new[] { true, false })
            foreach (int bits in new[] { 1, 2, 3, 4, 8 })
                foreach (int k in new[] { 1, 7, 8, 9, 63, 64, 65, 255, 256, 257, 512, 768 })
                    data.Add(bits, k, vectorised);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PlanesEqualQuantizeThenPack(int bits, int k, bool vectorised)
    {
        var random = new Random(bits * 1000 + k);
        int words = BitPacking.RowWords(k);
        for (int trial = 0; trial < 20; trial++)
        {
            var x = new float[k];
            for (int i = 0; i < k; i++)
                x[i] = trial switch
                {
                    0 => 0f,                                               // all-zero row: s = 0
                    1 => (random.Next(9) - 4) * 0.25f,                     // exact halves: rounding ties
                    2 => i % 5 == 3 ? float.PositiveInfinity : i % 5 == 4 ? float.NegativeInfinity : i, // s = ∞: ∞/∞ = NaN codes
                    3 or 4 => 0f, // filled below: quotients at and next to half-integers
                    _ => (float)(random.NextDouble() * 2 - 1) * (1 + trial),
                };
            if (trial is 3 or 4 && bits >= 2)
                FillNearTies(x, BitPacking.MaxCode(bits), trial == 3 ? 0.0137f : 3.1f, random);
            var codes = new sbyte[k];
            float expectedScale = Quantizer.QuantizeRow(x, bits, codes);
            var expected = new ulong[bits * words];
            if (bits == 1)
                BitPacking.PackSigns(codes, expected);
            else
                BitPacking.PackOffsetPlanes(codes, bits, expected);

            if (bits >= 2)
            {
                var codesFast = new sbyte[k];
                codesFast.AsSpan().Fill(99); // stale codes must not survive
                Assert.Equal(expectedScale, ActivationPacker.QuantizeCodes(x, bits, codesFast, vectorised));
                Assert.Equal(codes, codesFast);
            }

            var actual = new ulong[bits * words];
            actual.AsSpan().Fill(ulong.MaxValue); // stale bits from an earlier row must not survive
            float scale = ActivationPacker.Pack(x, bits, actual, vectorised ? KernelIsa.Avx512 : KernelIsa.Scalar);
            Assert.Equal(expected, actual);
            // β = mean|x| (a = 1) is summed in another order: ulps. s = max|x| / m is exact.
            if (bits == 1)
                Assert.Equal(expectedScale, scale, 1e-5f * Math.Max(1f, expectedScale));
            else
                Assert.Equal(expectedScale, scale);
        }
    }

    /// <summary>
    /// PackSigns at every width cap against the scalar definition (quantize, then pack), bit for bit; β = mean|x| within
    /// ulps (summed in per-lane partial sums). Lengths around the widths and the 64-bit words; inputs include ±0, tiny
    /// values and ±∞.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(100)]
    [InlineData(257)]
    [InlineData(512)]
    public void SignsAtEveryWidthEqualQuantizeThenPack(int k)
    {
        var random = new Random(k);
        float[] special = [0f, -0f, 1e-8f, -1e-8f, 1e-30f, -1e-30f, 0.5f, -0.5f, 30f, -30f, float.PositiveInfinity, float.NegativeInfinity];
        for (int trial = 0; trial < 8; trial++)
        {
            var x = new float[k];
            for (int i = 0; i < k; i++)
                x[i] = trial == 0 ? special[i % special.Length] : (float)(random.NextDouble() * 12 - 6) * (trial % 3 == 0 ? 1e-7f : 1f);
            var codes = new sbyte[k];
            float expectedScale = Quantizer.QuantizeRow(x, 1, codes);
            var expected = new ulong[BitPacking.RowWords(k)];
            BitPacking.PackSigns(codes, expected);
            foreach (KernelIsa isa in Enum.GetValues<KernelIsa>())
            {
                var actual = new ulong[expected.Length];
                actual.AsSpan().Fill(ulong.MaxValue); // stale bits must not survive
                float scale = ActivationPacker.PackSigns(x, actual, isa);
                Assert.Equal(expected, actual);
                if (float.IsFinite(expectedScale))
                    Assert.Equal(expectedScale, scale, 1e-5f * Math.Max(1f, expectedScale));
                else
                    Assert.Equal(expectedScale, scale);
            }
        }
    }

    /// <summary>
    /// x₀ = m·c fixes s = fl(x₀ / m); every other element is fl((k + ½)·s) moved by −2…+2 ulps, so x / s falls on or
    /// within a few ulps of a half-integer, where x·(1/s) can round the other way (the vector path must divide there).
    /// </summary>
    private static void FillNearTies(float[] x, int m, float c, Random random)
    {
        x[0] = m * c;
        float s = x[0] / m;
        for (int i = 1; i < x.Length; i++)
        {
            float v = (float)((random.Next(-m, m) + 0.5) * s);
            for (int step = random.Next(-2, 3); step != 0; step -= Math.Sign(step))
                v = step > 0 ? MathF.BitIncrement(v) : MathF.BitDecrement(v);
            x[i] = v;
        }
    }

    /// <summary>Many random rows: the multiply-by-reciprocal quotient must give the codes of the exact division everywhere.</summary>
    [Fact]
    public void VectorCodesEqualDivisionOnManyRows()
    {
        var random = new Random(7);
        const int k = 256;
        var x = new float[k];
        var expected = new sbyte[k];
        var actual = new sbyte[k];
        for (int row = 0; row < 4000; row++)
        {
            float spread = MathF.Pow(10, random.Next(-6, 7));
            for (int i = 0; i < k; i++)
                x[i] = (float)(random.NextDouble() * 2 - 1) * spread;
            int bits = row % 2 == 0 ? 8 : 4;
            Assert.Equal(ActivationPacker.QuantizeCodes(x, bits, expected, vectorised: false), ActivationPacker.QuantizeCodes(x, bits, actual, vectorised: true));
            Assert.Equal(expected, actual);
        }
    }
}
