using System.Numerics;
using System.Runtime.Intrinsics.X86;
using BinEngine.Kernels;
using static BinEngine.Tests.Kernels.KernelTestData;

namespace BinEngine.Tests.Kernels;

/// <summary>The regroupings the table-lookup XNOR kernels read (SixBitGroups, NibbleGroups), against their written definitions.</summary>
public class LookupGroupsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(256)]
    [InlineData(300)]
    [InlineData(512)]
    [InlineData(1000)]
    public unsafe void GroupsFollowTheDefinition(int k)
    {
        int words = BitPacking.RowWords(k), count = SixBitGroups.Count(k);
        Assert.Equal(8 * words + 11 * (words / 4), count);   // RowWords is a multiple of 4
        ulong[] row = PackSignRows(Signs(k, 7 + k), 1, k);
        byte[] groups = new byte[count];
        fixed (ulong* r = row)
        fixed (byte* g = groups)
            SixBitGroups.Row(r, words, g);

        bool Bit(int t) => ((row[t >> 6] >> (t & 63)) & 1) == 1;
        // Groups 0 … 8w − 1: bits 8j … 8j + 5 in their low 6 bits (bits 6 and 7 are not read by the kernel).
        for (int j = 0; j < 8 * words; j++)
            for (int b = 0; b < 6; b++)
                Assert.Equal(Bit(8 * j + b), ((groups[j] >> b) & 1) == 1);
        // Then per 4 words: the 64 bits at 8j + 6, 8j + 7 in position order, six to a group, 11 groups (the last 4 bits).
        for (int chunk = 0; chunk < words / 4; chunk++)
            for (int i = 0; i < 64; i++)
            {
                int t = 256 * chunk + 8 * (i / 2) + 6 + i % 2;
                byte group = groups[8 * words + 11 * chunk + i / 6];
                Assert.Equal(Bit(t), ((group >> (i % 6)) & 1) == 1);
            }
        for (int chunk = 0; chunk < words / 4; chunk++)
            Assert.Equal(0, groups[8 * words + 11 * chunk + 10] >> 4);   // the last group holds 4 bits
    }

    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    [InlineData(777)]
    public void GroupPopcountsSumToTheRowsDifference(int k)
    {
        GroupPopcountsSum<SixBitGroups>(k);
        GroupPopcountsSum<NibbleGroups>(k);
    }

    // Every real position in exactly one group, in the bits the lookup reads: Σ_g popcount(w_g ⊕ a_g) over those bits
    // = popcount(w ⊕ a); and the bits it must not see (a nibble group's high nibble, which vpshufb's bit 7 would zero)
    // are 0.
    private static unsafe void GroupPopcountsSum<TGroups>(int k) where TGroups : struct, ILookupGroups
    {
        int words = BitPacking.RowWords(k), count = TGroups.Count(k);
        uint read = (1u << TGroups.Bits) - 1;
        for (int seed = 0; seed < 20; seed++)
        {
            ulong[] a = PackSignRows(Signs(k, 100 + seed), 1, k), w = PackSignRows(Signs(k, 200 + seed), 1, k);
            if (seed == 0) Array.Copy(a, w, a.Length);
            if (seed == 1)   // every real position differs
                for (int q = 0; q < words; q++)
                {
                    int real = Math.Clamp(k - 64 * q, 0, 64);
                    w[q] = a[q] ^ (real == 64 ? ulong.MaxValue : (1UL << real) - 1);
                }
            byte[] ga = new byte[count], gw = new byte[count];
            fixed (ulong* pa = a, pw = w)
            fixed (byte* qa = ga, qw = gw)
            {
                TGroups.Row(pa, words, qa);
                TGroups.Row(pw, words, qw);
            }
            int expected = 0, actual = 0;
            for (int t = 0; t < words; t++) expected += BitOperations.PopCount(a[t] ^ w[t]);
            for (int g = 0; g < count; g++) actual += BitOperations.PopCount((uint)(ga[g] ^ gw[g]) & read);
            Assert.Equal(expected, actual);
            if (TGroups.Bits == 4)
                Assert.All(ga.Concat(gw), b => Assert.Equal(0, b >> 4));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(300)]
    public unsafe void NibbleGroupsFollowTheDefinition(int k)
    {
        int words = BitPacking.RowWords(k);
        Assert.Equal(16 * words, NibbleGroups.Count(k));
        ulong[] row = PackSignRows(Signs(k, 9 + k), 1, k);
        byte[] groups = new byte[NibbleGroups.Count(k)];
        fixed (ulong* r = row)
        fixed (byte* g = groups)
            NibbleGroups.Row(r, words, g);
        for (int t = 0; t < 64 * words; t++)   // group j = positions 4j … 4j + 3 in its low nibble
            Assert.Equal(((row[t >> 6] >> (t & 63)) & 1) == 1, ((groups[t / 4] >> (t % 4)) & 1) == 1);
    }

    [Fact]
    public void PortableBitMovesEqualPextAndPdep()
    {
        var rng = new Random(5);
        ulong[] values = [0, ulong.MaxValue, SixBitGroups.HighPairs, SixBitGroups.LowSixes, 1, 1UL << 63];
        foreach (ulong x in values.Concat(Enumerable.Range(0, 1000).Select(_ => (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40))))
        {
            if (Bmi2.X64.IsSupported)
            {
                Assert.Equal(Bmi2.X64.ParallelBitExtract(x, SixBitGroups.HighPairs), BitMoves.ExtractPortable(x, SixBitGroups.HighPairs));
                Assert.Equal(Bmi2.X64.ParallelBitDeposit(x, SixBitGroups.LowSixes), BitMoves.DepositPortable(x, SixBitGroups.LowSixes));
                Assert.Equal(Bmi2.X64.ParallelBitDeposit(x, NibbleGroups.LowNibbles), BitMoves.DepositPortable(x, NibbleGroups.LowNibbles));
            }
            // Without BMI2: the definitions themselves (bits 6, 7 of byte b → bits 2b, 2b + 1; bits 6b … 6b + 5 → byte b).
            for (int b = 0; b < 8; b++)
            {
                Assert.Equal((x >> (8 * b + 6)) & 3, (BitMoves.ExtractPortable(x, SixBitGroups.HighPairs) >> (2 * b)) & 3);
                Assert.Equal((x >> (6 * b)) & 63, (BitMoves.DepositPortable(x, SixBitGroups.LowSixes) >> (8 * b)) & 0xFF);
                Assert.Equal((x >> (4 * b)) & 15, (BitMoves.DepositPortable(x, NibbleGroups.LowNibbles) >> (8 * b)) & 0xFF);
            }
        }
    }
}
