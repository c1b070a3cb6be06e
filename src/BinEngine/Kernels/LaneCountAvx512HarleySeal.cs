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
/// ternlog + one popcount instead of 8 popcounts. Popcounts use two VBMI byte-table lookups per byte and
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

    /// <summary>
    /// Byte-wise popcount with two VBMI table lookups: vpermb indexes a 64-byte table with the low 6 bits of each
    /// byte (ignoring the top 2, so no mask is needed), giving the count of bits 0..5; shifting the 64-bit lanes right
    /// by 6 brings bits 6..7 of each byte to its bits 0..1, counted by a second table that looks only at those two
    /// bits (what the shift pulls in from the next byte lands in bits 2..5 and is ignored). 4 operations instead of
    /// the nibble lookup's 6. <paramref name="luts"/> holds the tables scaled by the weight of the input.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> PopCountBytes(VecL x, in Luts luts, int scale)
    {
        (Vector512<byte> low6, Vector512<byte> high2) = scale switch { 1 => (luts.Low6x1, luts.High2x1), 2 => (luts.Low6x2, luts.High2x2), _ => (luts.Low6x4, luts.High2x4) };
        return Avx512Vbmi.PermuteVar64x8(low6, x.AsByte()) + Avx512Vbmi.PermuteVar64x8(high2, Vec.ShiftRightLogical(x, 6).AsByte());
    }

    /// <summary>The lookup tables, built once per kernel call and kept in registers.</summary>
    internal readonly struct Luts
    {
        public readonly Vector512<byte> Low6x1, High2x1, Low6x2, High2x2, Low6x4, High2x4;

        public Luts(bool unused)
        {
            _ = unused;
            Span<byte> low6 = stackalloc byte[64], high2 = stackalloc byte[64];
            for (int i = 0; i < 64; i++)
            {
                low6[i] = (byte)System.Numerics.BitOperations.PopCount((uint)i);
                high2[i] = (byte)System.Numerics.BitOperations.PopCount((uint)i & 3);
            }
            Low6x1 = Vec.Create<byte>(low6);
            High2x1 = Vec.Create<byte>(high2);
            Low6x2 = Low6x1 + Low6x1;
            High2x2 = High2x1 + High2x1;
            Low6x4 = Low6x2 + Low6x2;
            High2x4 = High2x2 + High2x2;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL LaneSums(Vector512<byte> bytes) => Avx512BW.SumAbsoluteDifferences(bytes, Vector512<byte>.Zero).AsUInt64();

    /// <summary>Lane l = Σ_t popcount(Op(a[t], block[t·8 + l])), t &lt; words (a multiple of 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecL Count<TOp>(ulong* a, ulong* block, int words, in Luts luts) where TOp : struct, IBitOp
    {
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
            eightsBytes += PopCountBytes(eights, luts, 1);
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
            eightsBytes += PopCountBytes(eights, luts, 1);
        }
        total += LaneSums(eightsBytes) << 3;
        Vector512<byte> rest = PopCountBytes(ones, luts, 1) + PopCountBytes(twos, luts, 2) + PopCountBytes(fours, luts, 4);
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
        var luts = new Luts(true);
        // Weight block outer: its 8·words words stay in L1 while the activation rows pass by.
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            ulong* block = g.WInterleaved + (long)j * words;   // block j / 8 starts at (j / 8)·words·8 = j·words
            int lanes = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                Vector256<int> d = Avx512F.ConvertToVector256Int32(Count<XorOp>(a + (long)i * words, block, words, luts));
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
        var luts = new Luts(true);
        long* sumU = stackalloc long[PlaneSums.RowChunk];
        for (int i0 = m0; i0 < m1; i0 += PlaneSums.RowChunk)
        {
            int i1 = Math.Min(m1, i0 + PlaneSums.RowChunk);
            for (int i = i0; i < i1; i++) sumU[i - i0] = PlaneSums.SumU(a + (long)i * bits * words, bits, words);
            for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
            {
                ulong* block = g.WInterleaved + (long)j * words;
                int lanes = Math.Min(BinaryWeights.BlockRows, n1 - j);
                for (int i = i0; i < i1; i++)
                {
                    ulong* planes = a + (long)i * bits * words;
                    VecL bu = VecL.Zero;   // lane l: Σ_p 2^p·popcount(b_l AND P_p)
                    for (int p = 0; p < bits; p++) bu += Count<AndOp>(planes + p * words, block, words, luts) << p;
                    int* ci = c + (long)i * g.N + j;
                    long u = sumU[i - i0];
                    for (int l = 0; l < lanes; l++) ci[l] = (int)(2 * (long)bu.GetElement(l) - u - (long)top * g.RowSums[j + l]);
                }
            }
        }
    }
}
