using BinEngine.Kernels;

namespace BinEngine.Tests.Kernels;

public class BitPackingTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 4)]
    [InlineData(256, 4)]
    [InlineData(257, 8)]
    [InlineData(768, 12)]
    [InlineData(3072, 48)]
    public void RowWordsIsCeilK256Times4(int k, int words) => Assert.Equal(words, BitPacking.RowWords(k));

    [Fact]
    public void PackSignsFollowsTheLayout()
    {
        // Element j is bit (j mod 64) of word j / 64, bit 1 = +1, sign(0) = +1, padding 0.
        var row = new float[70];
        for (int j = 0; j < row.Length; j++) row[j] = j % 3 == 0 ? -1f : j % 3 == 1 ? 0f : 2f;
        var packed = new ulong[BitPacking.RowWords(row.Length) + 1];
        packed[^1] = 0xDEAD;   // beyond the row: must not be touched
        BitPacking.PackSigns(row, packed);
        for (int j = 0; j < row.Length; j++) Assert.Equal(row[j] >= 0, ((packed[j / 64] >> (j % 64)) & 1) == 1);
        Assert.True(BitPacking.PaddingIsZero(packed, 1, row.Length));
        Assert.Equal(0xDEADUL, packed[^1]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(300)]
    [InlineData(768)]
    public void SignsRoundTrip(int k)
    {
        var s = KernelTestData.Signs(k, k);
        var packed = new ulong[BitPacking.RowWords(k)];
        BitPacking.PackSigns(s, packed);
        var back = new sbyte[k];
        BitPacking.UnpackSigns(packed, k, back);
        Assert.Equal(s, back);
        Assert.True(BitPacking.PaddingIsZero(packed, 1, k));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 257)]
    [InlineData(3, 100)]
    [InlineData(4, 64)]
    [InlineData(5, 513)]
    [InlineData(8, 768)]
    public void PlanesRoundTrip(int bits, int k)
    {
        var q = KernelTestData.Codes(k, bits, k + bits);
        int words = BitPacking.RowWords(k);
        var packed = new ulong[bits * words];
        BitPacking.PackOffsetPlanes(q, bits, packed);
        var back = new sbyte[k];
        BitPacking.UnpackOffsetPlanes(packed, k, bits, back);
        Assert.Equal(q, back);
        Assert.True(BitPacking.PaddingIsZero(packed, bits, k));
        // Plane p holds bit p of u = q + m.
        int m = BitPacking.MaxCode(bits);
        for (int j = 0; j < k; j++)
            for (int p = 0; p < bits; p++)
                Assert.Equal(((q[j] + m) >> p) & 1, (int)((packed[p * words + j / 64] >> (j % 64)) & 1));
    }

    [Fact]
    public void PackPlanesMatrixIsRowsOfPlanes()
    {
        const int rows = 3, k = 70, bits = 3;
        var q = KernelTestData.Codes(rows * k, bits, 5);
        var packed = new ulong[rows * bits * BitPacking.RowWords(k)];
        BitPacking.PackOffsetPlanesMatrix(q, rows, k, bits, packed);
        Assert.Equal(KernelTestData.PackPlaneRows(q, rows, k, bits), packed);
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(4, -8)]
    [InlineData(8, -128)]
    public void PackPlanesRejectsCodesOutsideRange(int bits, int code)
    {
        var q = new sbyte[] { 0, (sbyte)code };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => BitPacking.PackOffsetPlanes(q, bits, new ulong[bits * 4]));
        Assert.Contains("index 1", e.Message);
    }

    [Fact]
    public void PackRejectsShortDestinationAndBadBits()
    {
        Assert.Throws<ArgumentException>(() => BitPacking.PackSigns(new float[257], new ulong[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BitPacking.PackOffsetPlanes(new sbyte[4], 1, new ulong[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BitPacking.PackOffsetPlanes(new sbyte[4], 9, new ulong[36]));
    }

    [Fact]
    public void RowSumsCountPlusMinusOnes()
    {
        const int rows = 3, k = 300;
        var s = KernelTestData.Signs(rows * k, 7);
        var packed = KernelTestData.PackSignRows(s, rows, k);
        var sums = new int[rows];
        BitPacking.RowSums(packed, rows, k, sums);
        for (int r = 0; r < rows; r++) Assert.Equal(s.Skip(r * k).Take(k).Sum(x => (int)x), sums[r]);
    }

    [Fact]
    public void PaddingIsZeroDetectsADirtyPadBit()
    {
        var packed = new ulong[4];
        Assert.True(BitPacking.PaddingIsZero(packed, 1, 70));
        packed[1] = 1UL << 6;     // element 70: first padding bit
        Assert.False(BitPacking.PaddingIsZero(packed, 1, 70));
        packed[1] = 1UL << 5;     // element 69: real
        Assert.True(BitPacking.PaddingIsZero(packed, 1, 70));
    }

    [Fact]
    public void BinaryWeightsInterleavesBlocksOfSixteenRowsIn32BitWords()
    {
        const int n = 19, k = 300;
        int words = BitPacking.RowWords(k), words32 = 2 * words;
        var packed = KernelTestData.PackSignRows(KernelTestData.Signs(n * k, 9), n, k);
        var w = new BinaryWeights(packed, n, k);
        Assert.Equal(2 * 16 * words, w.Interleaved.Length);   // 2 blocks, the second padded with zero rows
        var lanes = System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, uint>(w.Interleaved);
        for (int r = 0; r < 32; r++)
            for (int t = 0; t < words32; t++)
            {
                // 32-bit word t of row r: elements 32t..32t+31, i.e. half t % 2 of 64-bit word t / 2.
                uint expected = r < n ? (uint)(packed[r * words + t / 2] >> (32 * (t % 2))) : 0u;
                Assert.Equal(expected, lanes[((r / 16) * words32 + t) * 16 + r % 16]);
            }
        var sums = new int[n];
        BitPacking.RowSums(packed, n, k, sums);
        Assert.Equal(sums, w.RowSums.ToArray());
    }

    [Fact]
    public void BinaryWeightsRejectsDirtyPadding()
    {
        var packed = new ulong[4];
        packed[3] = 1UL << 63;
        var e = Assert.Throws<ArgumentException>(() => new BinaryWeights(packed, 1, 200));
        Assert.Contains("padding", e.Message);
    }
}
