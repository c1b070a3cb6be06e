using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecU = System.Runtime.Intrinsics.Vector256<uint>;

namespace BinEngine.Kernels;

/// <summary>
/// The AVX2 twin of <see cref="LaneCountAvx512HarleySeal"/>: the same carry-save (Harley-Seal) per-lane count over
/// interleaved weight blocks, on 256-bit vectors, so a 16-row block is two 8-lane halves (at 32-bit offsets 0 and 8
/// of each 16-word group). Without vpternlog a carry-save adder is 5 operations: u = a ⊕ b, sum = u ⊕ c,
/// carry = (a ∧ b) ∨ (u ∧ c). Popcounts are nibble lookups (vpshufb) with tables scaled by the input's weight; bytes
/// are summed per 32-bit lane by vpmaddubsw and vpmaddwd by one. Same byte bounds as the AVX-512 path.
/// </summary>
internal static unsafe class LaneCountAvx2HarleySeal
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU Csa(VecU a, VecU b, VecU c, out VecU carry)
    {
        VecU u = a ^ b;
        carry = (a & b) | (u & c);
        return u ^ c;
    }

    /// <summary>Nibble tables: popcount of 0..15 times 1, 2, 4 and 8, in both 128-bit lanes (vpshufb looks up per lane).</summary>
    internal readonly struct Luts
    {
        public readonly Vector256<byte> X1, X2, X4, X8, Low;

        public Luts(bool unused)
        {
            _ = unused;
            X1 = Vec.Create(Vector128.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
            X2 = X1 + X1;
            X4 = X2 + X2;
            X8 = X4 + X4;
            Low = Vec.Create((byte)15);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PopCountBytes(VecU x, Vector256<byte> table, Vector256<byte> low) =>
        Avx2.Shuffle(table, x.AsByte() & low) + Avx2.Shuffle(table, Vec.ShiftRightLogical(x, 4).AsByte() & low);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU LaneSums(Vector256<byte> bytes) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(bytes, Vec.Create((sbyte)1)), Vec.Create((short)1)).AsUInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecU In<TOp>(uint a, uint* w) where TOp : struct, IBitOp =>
        TOp.Apply(Vec.Create(a).AsByte(), Vec.Load(w).AsByte()).AsUInt32();

    /// <summary>Lane l = Σ_t popcount(Op(a[t], half[t·16 + l])), l &lt; 8, t &lt; words32 (a multiple of 8).</summary>
    /// <remarks>The first 8 inputs start the state, x7 counted aside, as in <see cref="LaneCountAvx512HarleySeal.Count"/>
    /// (same byte bounds): 4 CSAs instead of 7, here 15 fewer operations per (row, 8 outputs).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecU Count<TOp>(uint* a, uint* half, int words32, in Luts luts) where TOp : struct, IBitOp
    {
        VecU ones = Csa(In<TOp>(a[0], half), In<TOp>(a[1], half + 16), In<TOp>(a[2], half + 32), out VecU twosA);
        ones = Csa(ones, In<TOp>(a[3], half + 48), In<TOp>(a[4], half + 64), out VecU twosB);
        ones = Csa(ones, In<TOp>(a[5], half + 80), In<TOp>(a[6], half + 96), out VecU twosC);
        VecU twos = Csa(twosA, twosB, twosC, out VecU fours);
        VecU spare = In<TOp>(a[7], half + 112), total = VecU.Zero;
        Vector256<byte> bytes = Vector256<byte>.Zero;   // eights' counts times 8
        int pending = 0;
        for (int t = 8; t < words32; t += 8)
        {
            uint* w = half + t * 16;   // t + 8 ≤ words32
            ones = Csa(ones, In<TOp>(a[t], w), In<TOp>(a[t + 1], w + 16), out twosA);
            ones = Csa(ones, In<TOp>(a[t + 2], w + 32), In<TOp>(a[t + 3], w + 48), out twosB);
            twos = Csa(twos, twosA, twosB, out VecU foursA);
            ones = Csa(ones, In<TOp>(a[t + 4], w + 64), In<TOp>(a[t + 5], w + 80), out twosA);
            ones = Csa(ones, In<TOp>(a[t + 6], w + 96), In<TOp>(a[t + 7], w + 112), out twosB);
            twos = Csa(twos, twosA, twosB, out VecU foursB);
            fours = Csa(fours, foursA, foursB, out VecU eights);
            if (pending == 3)
            {
                total += LaneSums(bytes);
                bytes = Vector256<byte>.Zero;
                pending = 0;
            }
            bytes += PopCountBytes(eights, luts.X8, luts.Low);
            pending++;
        }
        if (pending == 3)
        {
            total += LaneSums(bytes);
            bytes = Vector256<byte>.Zero;
        }
        bytes += PopCountBytes(ones, luts.X1, luts.Low) + PopCountBytes(spare, luts.X1, luts.Low)
            + PopCountBytes(twos, luts.X2, luts.Low) + PopCountBytes(fours, luts.X4, luts.Low);
        return total + LaneSums(bytes);
    }

    /// <summary>W1A1 over prepared weights (see <see cref="LaneCountAvx512HarleySeal.Xnor"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Xnor(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words32 = 2 * BitPacking.RowWords(g.K);
        uint* a = (uint*)g.A, lanes = (uint*)g.WInterleaved;
        int* c = (int*)g.C;
        var k = Vector256.Create(g.K);
        var luts = new Luts(true);
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            uint* block = lanes + (long)j * words32;
            int rows = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                uint* ai = a + (long)i * words32;
                Vector256<int> d0 = Count<XorOp>(ai, block, words32, luts).AsInt32();
                Vector256<int> d1 = Count<XorOp>(ai, block + 8, words32, luts).AsInt32();
                Vector256<int> dot0 = k - (d0 + d0), dot1 = k - (d1 + d1);
                int* ci = c + (long)i * g.N + j;
                if (rows == BinaryWeights.BlockRows)
                {
                    dot0.Store(ci);
                    dot1.Store(ci + 8);
                }
                else
                {
                    for (int l = 0; l < rows; l++) ci[l] = l < 8 ? dot0.GetElement(l) : dot1.GetElement(l - 8);
                }
            }
        }
    }

    /// <summary>W1Ak over prepared weights (see <see cref="LaneCountAvx512HarleySeal.Plane"/>).</summary>
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
                    VecU lo = VecU.Zero, hi = VecU.Zero;   // lane l: Σ_p 2^p·popcount(b_l AND P_p)
                    for (int p = 0; p < bits; p++)
                    {
                        lo += Count<AndOp>(planes + p * words32, block, words32, luts) << p;
                        hi += Count<AndOp>(planes + p * words32, block + 8, words32, luts) << p;
                    }
                    int* ci = c + (long)i * g.N + j;
                    long u = sumU[i - i0];
                    for (int l = 0; l < rows; l++)
                        ci[l] = (int)(2 * (long)(l < 8 ? lo.GetElement(l) : hi.GetElement(l - 8)) - u - (long)top * g.RowSums[j + l]);
                }
            }
        }
    }
}
