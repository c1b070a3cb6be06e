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
                    _ => (float)(random.NextDouble() * 2 - 1) * (1 + trial),
                };
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
            float scale = ActivationPacker.Pack(x, bits, actual, vectorised);
            Assert.Equal(expected, actual);
            // β = mean|x| (a = 1) is summed in another order: ulps. s = max|x| / m is exact.
            if (bits == 1)
                Assert.Equal(expectedScale, scale, 1e-5f * Math.Max(1f, expectedScale));
            else
                Assert.Equal(expectedScale, scale);
        }
    }
}
