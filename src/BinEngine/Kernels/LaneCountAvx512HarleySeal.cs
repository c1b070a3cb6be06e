using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector512;
using VecL = System.Runtime.Intrinsics.Vector512<ulong>;

namespace BinEngine.Kernels;

/// <summary>
/// Per-lane popcount sums over one interleaved weight block (<see cref="BinaryWeights"/>) on AVX-512, Harley-Seal
/// carry-save style: lane l of the result = Σ_t popcount(Op(a[t], W_l[t])) for the block's 8 rows.
/// </summary>
/// <remarks>
/// Input t is x_t = Op(broadcast a[t], block word t): 512 bits, 64 per row. Instead of popcounting every x_t, a
/// carry-save adder (CSA) network adds them bit-wise: CSA(a, b, c) = (a ⊕ b ⊕ c, majority(a, b, c)) turns three
/// vectors of one weight into one of that weight (the sum) and one of twice the weight (the carry), and each is a
/// single vpternlogq (truth tables 0x96 and 0xE8). State vectors ones, twos, fours hold the running sum bit-sliced;
/// every 8 inputs produce one vector of weight 8 ("eights") that is popcounted. So 8 inputs cost 8 Op + 14
/// ternlog + one popcount instead of 8 popcounts. Popcounts use the nibble lookup (vpshufb) per byte and
/// sum-of-absolute-differences against zero, which adds the 8 bytes of each 64-bit lane: the lane is the row.
/// Rows have a multiple of 4 words (MODEL.md), so after the 8-input steps at most one 4-input step is left.
/// Bounds: the eights' byte counts (≤ 8 per step) are flushed every 31 steps (31·8 ≤ 255); the final
/// ones + 2·twos + 4·fours per byte is ≤ 8 + 16 + 32 = 56.
/// </remarks>
internal static unsafe class LaneCountAvx512HarleySeal
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL Xor3(VecL a, VecL b, VecL c) => Avx512F.TernaryLogic(a, b, c, 0x96);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL Majority(VecL a, VecL b, VecL c) => Avx512F.TernaryLogic(a, b, c, 0xE8);

    /// <summary>Byte-wise popcount, each byte's count looked up in <paramref name="lut"/> (popcount of a nibble, scaled).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> PopCountBytes(VecL x, Vector512<byte> lut, Vector512<byte> low)
    {
        Vector512<byte> b = x.AsByte();
        return Avx512BW.Shuffle(lut, b & low) + Avx512BW.Shuffle(lut, Vec.ShiftRightLogical(x, 4).AsByte() & low);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL LaneSums(Vector512<byte> bytes) => Avx512BW.SumAbsoluteDifferences(bytes, Vector512<byte>.Zero).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibbles(byte scale) => Vec.Create(Vector128.Create(
        (byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4) * scale);

    /// <summary>Lane l = Σ_t popcount(Op(a[t], block[t·8 + l])), t &lt; words (a multiple of 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecL Count<TOp>(ulong* a, ulong* block, int words) where TOp : struct, IBitOp
    {
        Vector512<byte> low = Vec.Create((byte)15), lut1 = Nibbles(1);
        VecL ones = VecL.Zero, twos = VecL.Zero, fours = VecL.Zero, total = VecL.Zero;
        Vector512<byte> eightsBytes = Vector512<byte>.Zero;
        int steps = 0, t = 0;
        for (; t <= words - 8; t += 8)
        {
            ulong* w = block + t * 8;   // t + 8 ≤ words: the block's words t..t+7, 8 lanes each
            VecL x0 = In<TOp>(a[t], w), x1 = In<TOp>(a[t + 1], w + 8);
            VecL twosA = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            x0 = In<TOp>(a[t + 2], w + 16); x1 = In<TOp>(a[t + 3], w + 24);
            VecL twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            VecL foursA = Majority(twos, twosA, twosB); twos = Xor3(twos, twosA, twosB);
            x0 = In<TOp>(a[t + 4], w + 32); x1 = In<TOp>(a[t + 5], w + 40);
            twosA = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            x0 = In<TOp>(a[t + 6], w + 48); x1 = In<TOp>(a[t + 7], w + 56);
            twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            VecL foursB = Majority(twos, twosA, twosB); twos = Xor3(twos, twosA, twosB);
            VecL eights = Majority(fours, foursA, foursB); fours = Xor3(fours, foursA, foursB);
            eightsBytes += PopCountBytes(eights, lut1, low);
            if (++steps == 31)
            {
                total += LaneSums(eightsBytes) << 3;
                eightsBytes = Vector512<byte>.Zero;
                steps = 0;
            }
        }
        if (t < words)
        {
            ulong* w = block + t * 8;   // exactly 4 words left
            VecL x0 = In<TOp>(a[t], w), x1 = In<TOp>(a[t + 1], w + 8);
            VecL twosA = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            x0 = In<TOp>(a[t + 2], w + 16); x1 = In<TOp>(a[t + 3], w + 24);
            VecL twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            VecL foursA = Majority(twos, twosA, twosB); twos = Xor3(twos, twosA, twosB);
            VecL eights = fours & foursA; fours ^= foursA;   // half adder
            eightsBytes += PopCountBytes(eights, lut1, low);
        }
        total += LaneSums(eightsBytes) << 3;
        Vector512<byte> rest = PopCountBytes(ones, lut1, low) + PopCountBytes(twos, Nibbles(2), low) + PopCountBytes(fours, Nibbles(4), low);
        return total + LaneSums(rest);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL In<TOp>(ulong a, ulong* w) where TOp : struct, IBitOp =>
        TOp.Apply(Vec.Create(a).AsByte(), Vec.Load(w).AsByte()).AsUInt64();

    /// <summary>W1A1 over prepared weights: C[i, j] = K − 2·count for the blocks of [n0, n1) and rows [m0, m1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Xnor(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K);
        ulong* a = (ulong*)g.A;
        int* c = (int*)g.C;
        var k = Vector256.Create(g.K);
        // Weight block outer: its 8·words words stay in L1 while the activation rows pass by.
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            ulong* block = g.WInterleaved + (long)j * words;   // block j / 8 starts at (j / 8)·words·8 = j·words
            int lanes = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                Vector256<int> d = Avx512F.ConvertToVector256Int32(Count<XorOp>(a + (long)i * words, block, words));
                Vector256<int> dot = k - (d + d);
                int* ci = c + (long)i * g.N + j;
                if (lanes == BinaryWeights.BlockRows) dot.Store(ci);
                else for (int l = 0; l < lanes; l++) ci[l] = dot.GetElement(l);
            }
        }
    }

    /// <summary>W1Ak over prepared weights, the bit-plane identity of <see cref="PlaneGemm"/> per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Plane(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K), bits = g.Bits, top = BitPacking.MaxCode(bits);
        ulong* a = (ulong*)g.A;
        int* c = (int*)g.C;
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            ulong* block = g.WInterleaved + (long)j * words;
            int lanes = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                ulong* planes = a + (long)i * bits * words;
                VecL bu = VecL.Zero;          // lane l: Σ_p 2^p·popcount(b_l AND P_p)
                long sumU = 0;                // Σ_p 2^p·popcount(P_p)
                for (int p = 0; p < bits; p++)
                {
                    bu += Count<AndOp>(planes + p * words, block, words) << p;
                    for (int t = 0; t < words; t++) sumU += (long)System.Numerics.BitOperations.PopCount(planes[p * words + t]) << p;
                }
                int* ci = c + (long)i * g.N + j;
                for (int l = 0; l < lanes; l++) ci[l] = (int)(2 * (long)bu.GetElement(l) - sumU - (long)top * g.RowSums[j + l]);
            }
        }
    }
}
