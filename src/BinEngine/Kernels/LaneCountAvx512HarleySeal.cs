using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector512;
using VecU = System.Runtime.Intrinsics.Vector512<uint>;

namespace BinEngine.Kernels;

/// <summary>
/// Per-lane popcount sums over one interleaved weight block (<see cref="BinaryWeights"/>) on AVX-512, Harley-Seal
/// carry-save style: lane l of the result = Σ_t popcount(Op(a[t], W_l[t])) over 32-bit words t, for the block's
/// 16 rows.
/// </summary>
/// <remarks>
/// Input t is x_t = Op(broadcast a[t], block word t): 512 bits, 32 per row. Instead of popcounting every x_t, a
/// carry-save adder (CSA) network adds them bit-wise: CSA(a, b, c) = (a ⊕ b ⊕ c, majority(a, b, c)) turns three
/// vectors of one weight into one of that weight (the sum) and one of twice the weight (the carry), and each is a
/// single vpternlogd (truth tables 0x96 and 0xE8). State vectors ones, twos, fours hold the running sum bit-sliced;
/// every 8 inputs produce one vector of weight 8 ("eights") that is popcounted. So 8 inputs cost 8 Op + 14 ternlog
/// + one popcount instead of 8 popcounts. Popcounts are byte-table lookups (VBMI vpermb); bytes are summed into
/// their 32-bit lane by two multiply-adds by one (vpmaddubsw to 16 bits, vpmaddwd to 32): the lane is the row.
/// A row has 8·ceil(K/256) 32-bit words, so the 8-input steps cover it exactly.
/// Byte bounds: eights are counted with weight 8 (≤ 64 per byte per step) and widened every 3 steps (see Count for
/// the end).
/// </remarks>
internal static unsafe class LaneCountAvx512HarleySeal
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU Xor3(VecU a, VecU b, VecU c) => Avx512F.TernaryLogic(a, b, c, 0x96);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU Majority(VecU a, VecU b, VecU c) => Avx512F.TernaryLogic(a, b, c, 0xE8);

    /// <summary>
    /// Byte-wise popcount times a weight, with two VBMI table lookups: vpermb indexes a 64-byte table with the low 6
    /// bits of each byte (it ignores the top 2, so no mask is needed), giving the count of bits 0..5; shifting the
    /// 32-bit lanes right by 6 brings bits 6..7 of each byte to its bits 0..1, counted by a second table that looks
    /// only at those two bits (what the shift pulls in from the next byte lands in bits 2..5 and is ignored).
    /// 4 operations instead of a nibble lookup's 6.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> PopCountBytes(VecU x, Vector512<byte> low6, Vector512<byte> high2) =>
        Avx512Vbmi.PermuteVar64x8(low6, x.AsByte()) + Avx512Vbmi.PermuteVar64x8(high2, Vec.ShiftRightLogical(x, 6).AsByte());

    /// <summary>Sums the 4 bytes of each 32-bit lane: vpmaddubsw by 1 (pairs to 16 bits), vpmaddwd by 1 (to 32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU LaneSums(Vector512<byte> bytes) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(bytes, Vec.Create((sbyte)1)), Vec.Create((short)1)).AsUInt32();

    /// <summary>The lookup tables (popcount of the low 6 bits and of the low 2 bits, times 1, 2, 4 and 8).</summary>
    internal readonly struct Luts
    {
        public readonly Vector512<byte> Low6x1, High2x1, Low6x2, High2x2, Low6x4, High2x4, Low6x8, High2x8;

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
            Low6x8 = Low6x4 + Low6x4;
            High2x8 = High2x4 + High2x4;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU In<TOp>(uint a, uint* w) where TOp : struct, IBitOp =>
        TOp.Apply(Vec.Create(a).AsByte(), Vec.Load(w).AsByte()).AsUInt32();

    /// <summary>Lane l = Σ_t popcount(Op(a[t], block[t·16 + l])), t &lt; words32 (a multiple of 8).</summary>
    /// <remarks>
    /// The first 8 inputs start the state instead of being added to zeros: three CSAs chained through ones take x0..x6
    /// (ones, and three vectors of weight 2), one more turns those three into twos and fours, and x7 is kept aside and
    /// counted at the end with weight 1. 4 CSAs and one extra popcount instead of the loop's 7 CSAs (3 of them against
    /// zero states) and a popcount of eights: 6 fewer vector operations per (row, 16 outputs), ≈ 10 % of a K = 256 count.
    /// Byte bounds at the end: ones + spare + 2·twos + 4·fours ≤ 8 + 8 + 16 + 32 = 64, so at most 2 steps of eights
    /// (≤ 128) may still be pending: 192 ≤ 255.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecU Count<TOp>(uint* a, uint* block, int words32, in Luts luts) where TOp : struct, IBitOp
    {
        VecU x0 = In<TOp>(a[0], block), x1 = In<TOp>(a[1], block + 16), x2 = In<TOp>(a[2], block + 32);
        VecU twosA = Majority(x0, x1, x2), ones = Xor3(x0, x1, x2);
        x0 = In<TOp>(a[3], block + 48); x1 = In<TOp>(a[4], block + 64);
        VecU twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
        x0 = In<TOp>(a[5], block + 80); x1 = In<TOp>(a[6], block + 96);
        VecU twosC = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
        VecU fours = Majority(twosA, twosB, twosC), twos = Xor3(twosA, twosB, twosC);
        VecU spare = In<TOp>(a[7], block + 112), total = VecU.Zero;
        Vector512<byte> bytes = Vector512<byte>.Zero;   // eights' counts times 8
        int pending = 0;
        for (int t = 8; t < words32; t += 8)
        {
            uint* w = block + t * 16;   // t + 8 ≤ words32: the block's words t..t+7, 16 lanes each
            x0 = In<TOp>(a[t], w); x1 = In<TOp>(a[t + 1], w + 16);
            twosA = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            x0 = In<TOp>(a[t + 2], w + 32); x1 = In<TOp>(a[t + 3], w + 48);
            twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            VecU foursA = Majority(twos, twosA, twosB); twos = Xor3(twos, twosA, twosB);
            x0 = In<TOp>(a[t + 4], w + 64); x1 = In<TOp>(a[t + 5], w + 80);
            twosA = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            x0 = In<TOp>(a[t + 6], w + 96); x1 = In<TOp>(a[t + 7], w + 112);
            twosB = Majority(ones, x0, x1); ones = Xor3(ones, x0, x1);
            VecU foursB = Majority(twos, twosA, twosB); twos = Xor3(twos, twosA, twosB);
            VecU eights = Majority(fours, foursA, foursB); fours = Xor3(fours, foursA, foursB);
            if (pending == 3)
            {
                total += LaneSums(bytes);
                bytes = Vector512<byte>.Zero;
                pending = 0;
            }
            bytes += PopCountBytes(eights, luts.Low6x8, luts.High2x8);
            pending++;
        }
        if (pending == 3)
        {
            total += LaneSums(bytes);
            bytes = Vector512<byte>.Zero;
        }
        bytes += PopCountBytes(ones, luts.Low6x1, luts.High2x1) + PopCountBytes(spare, luts.Low6x1, luts.High2x1)
            + PopCountBytes(twos, luts.Low6x2, luts.High2x2) + PopCountBytes(fours, luts.Low6x4, luts.High2x4);
        return total + LaneSums(bytes);
    }

    /// <summary>W1A1 over prepared weights: C[i, j] = K − 2·count for the blocks of [n0, n1) and rows [m0, m1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Xnor(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words32 = 2 * BitPacking.RowWords(g.K);
        uint* a = (uint*)g.A, lanes = (uint*)g.WInterleaved;
        int* c = (int*)g.C;
        var k = Vector512.Create(g.K);
        var luts = new Luts(true);
        // Weight block outer: its 16·words32 words stay in L1 while the activation rows pass by.
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            uint* block = lanes + (long)j * words32;   // block j / 16 starts at (j / 16)·words32·16 = j·words32
            int rows = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                Vector512<int> d = Count<XorOp>(a + (long)i * words32, block, words32, luts).AsInt32();
                Vector512<int> dot = k - (d + d);
                int* ci = c + (long)i * g.N + j;
                if (rows == BinaryWeights.BlockRows) dot.Store(ci);
                else for (int l = 0; l < rows; l++) ci[l] = dot.GetElement(l);
            }
        }
    }

    /// <summary>W1Ak over prepared weights, the bit-plane identity of <see cref="PlaneGemm"/> per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Plane(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K), words32 = 2 * words, bits = g.Bits, top = BitPacking.MaxCode(bits);
        ulong* a = (ulong*)g.A;
        uint* lanes = (uint*)g.WInterleaved;
        int* c = (int*)g.C;
        var luts = new Luts(true);
        long* sumU = stackalloc long[PlaneSums.RowChunk];
        for (int i0 = m0; i0 < m1; i0 += PlaneSums.RowChunk)
        {
            int i1 = Math.Min(m1, i0 + PlaneSums.RowChunk);
            for (int i = i0; i < i1; i++) sumU[i - i0] = PlaneSums.SumU(a + (long)i * bits * words, bits, words);
            for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
            {
                uint* block = lanes + (long)j * words32;
                int rows = Math.Min(BinaryWeights.BlockRows, n1 - j);
                for (int i = i0; i < i1; i++)
                {
                    uint* planes = (uint*)(a + (long)i * bits * words);
                    // Lane l: Σ_p 2^p·popcount(b_l AND P_p) ≤ 255·K: fits 32 bits for K < 2^23.
                    VecU bu = VecU.Zero;
                    for (int p = 0; p < bits; p++) bu += Count<AndOp>(planes + p * words32, block, words32, luts) << p;
                    int* ci = c + (long)i * g.N + j;
                    long u = sumU[i - i0];
                    for (int l = 0; l < rows; l++) ci[l] = (int)(2 * (long)bu.GetElement(l) - u - (long)top * g.RowSums[j + l]);
                }
            }
        }
    }
}
