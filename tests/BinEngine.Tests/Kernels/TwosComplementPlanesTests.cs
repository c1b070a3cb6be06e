using BinEngine.Kernels;
using BinEngine.Format;

namespace BinEngine.Tests.Kernels;

public class PackedPlanesTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(257)]
    [InlineData(300)]
    [InlineData(513)]
    public void PackUnpackRoundTripsEveryPlaneCount(int k)
    {
        var rng = new Random(k);
        for (int planes = 1; planes <= 8; planes++)
        {
            int lo = planes == 1 ? -1 : -(1 << (planes - 1)), hi = planes == 1 ? 1 : (1 << (planes - 1)) - 1;
            var codes = new sbyte[k];
            for (int j = 0; j < k; j++)
                codes[j] = planes == 1 ? (sbyte)(rng.Next(2) * 2 - 1) : (sbyte)rng.Next(lo, hi + 1);
            var row = new ulong[TwosComplementPlanes.RowWords(k, planes)];
            TwosComplementPlanes.PackRow(codes, planes, row);
            Assert.True(TwosComplementPlanes.PaddingIsZero(row, k, planes));
            var back = new sbyte[k];
            TwosComplementPlanes.UnpackRow(row, planes, back);
            Assert.Equal(codes, back);
            // Every width against code · scale, bit for bit (a scale with a full mantissa: any rounding difference shows).
            const float scale = 0.0123456789f;
            foreach (KernelIsa isa in Enum.GetValues<KernelIsa>())
            {
                var floats = new float[k];
                TwosComplementPlanes.DequantizeRow(row, planes, scale, floats, isa);
                for (int j = 0; j < k; j++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(codes[j] * scale), BitConverter.SingleToInt32Bits(floats[j]));
            }
        }
    }

    [Fact]
    public void LayoutIsTheContractsBitOrder()
    {
        // docs/MODEL.md: element j is bit (j mod 64) of word j/64, bit 1 = +1; rows are ceil(K/256)·4 words.
        var codes = Enumerable.Repeat((sbyte)-1, 70).ToArray();
        codes[0] = 1;
        codes[65] = 1;
        var row = new ulong[4];
        TwosComplementPlanes.PackRow(codes, 1, row);
        Assert.Equal([1UL, 2UL, 0UL, 0UL], row);
        Assert.Equal(4, TensorInfo.PackedRowWords(1));
        Assert.Equal(4, TensorInfo.PackedRowWords(256));
        Assert.Equal(8, TensorInfo.PackedRowWords(257));

        // Two planes, two's complement: −2 = 0b10, −1 = 0b11, 0 = 0b00, 1 = 0b01 (plane p = bit p).
        var twoBit = new sbyte[] { -2, -1, 0, 1 };
        var planes = new ulong[8];
        TwosComplementPlanes.PackRow(twoBit, 2, planes);
        Assert.Equal(0b1010UL, planes[0]); // bit 0 of each code
        Assert.Equal(0b0011UL, planes[4]); // bit 1 (sign) of each code
    }

    [Fact]
    public void PaddingCheckFindsAStrayBit()
    {
        var row = new ulong[8];
        Assert.True(TwosComplementPlanes.PaddingIsZero(row, 100, 2));
        row[4 + 1] = 1UL << 40; // plane 1, element 104 ≥ K
        Assert.False(TwosComplementPlanes.PaddingIsZero(row, 100, 2));
        row[5] = 0;
        row[3] = 1; // plane 0, word 3: elements 192.. ≥ K
        Assert.False(TwosComplementPlanes.PaddingIsZero(row, 100, 2));
    }

    [Fact]
    public void CodesOutsideThePlanesAreRejected()
    {
        var row = new ulong[4];
        Assert.Throws<ArgumentException>(() => TwosComplementPlanes.PackRow([0], 1, row));
        Assert.Throws<ArgumentException>(() => TwosComplementPlanes.PackRow([2], 2, row));
        Assert.Throws<ArgumentException>(() => TwosComplementPlanes.PackRow([-3], 2, row));
    }
}
