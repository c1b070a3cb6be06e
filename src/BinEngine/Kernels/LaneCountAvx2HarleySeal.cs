using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecL = System.Runtime.Intrinsics.Vector256<ulong>;

namespace BinEngine.Kernels;

/// <summary>
/// The AVX2 twin of <see cref="LaneCountAvx512HarleySeal"/>: the same carry-save (Harley-Seal) per-lane count over
/// interleaved weight blocks, on 256-bit vectors, so an 8-row block is two 4-lane halves (at word offsets 0 and 4 of
/// each 8-word group). Without vpternlog a carry-save adder is 5 operations: u = a ⊕ b, sum = u ⊕ c,
/// carry = (a ∧ b) ∨ (u ∧ c). Popcounts are nibble lookups (vpshufb) with tables scaled by the input's weight, summed
/// per 64-bit lane by vpsadbw. Same bounds as the AVX-512 path: eights' byte counts flushed every 31 steps, final
/// ones + 2·twos + 4·fours ≤ 56 per byte.
/// </summary>
internal static unsafe class LaneCountAvx2HarleySeal
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL Csa(VecL a, VecL b, VecL c, out VecL carry)
    {
        VecL u = a ^ b;
        carry = (a & b) | (u & c);
        return u ^ c;
    }

    /// <summary>Nibble tables: popcount of 0..15, times 1, 2 and 4, in both 128-bit lanes (vpshufb looks up per lane).</summary>
    internal readonly struct Luts
    {
        public readonly Vector256<byte> X1, X2, X4, Low;

        public Luts(bool unused)
        {
            _ = unused;
            X1 = Vec.Create(Vector128.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
            X2 = X1 + X1;
            X4 = X2 + X2;
            Low = Vec.Create((byte)15);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PopCountBytes(VecL x, Vector256<byte> table, Vector256<byte> low) =>
        Avx2.Shuffle(table, x.AsByte() & low) + Avx2.Shuffle(table, Vec.ShiftRightLogical(x, 4).AsByte() & low);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL LaneSums(Vector256<byte> bytes) => Avx2.SumAbsoluteDifferences(bytes, Vector256<byte>.Zero).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecL In<TOp>(ulong a, ulong* w) where TOp : struct, IBitOp =>
        TOp.Apply(Vec.Create(a).AsByte(), Vec.Load(w).AsByte()).AsUInt64();

    /// <summary>Lane l = Σ_t popcount(Op(a[t], half[t·8 + l])), l &lt; 4, t &lt; words (a multiple of 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecL Count<TOp>(ulong* a, ulong* half, int words, in Luts luts) where TOp : struct, IBitOp
    {
        VecL ones = VecL.Zero, twos = VecL.Zero, fours = VecL.Zero, total = VecL.Zero;
        Vector256<byte> eightsBytes = Vector256<byte>.Zero;
        int steps = 0, t = 0;
        for (; t <= words - 8; t += 8)
        {
            ulong* w = half + t * 8;   // t + 8 ≤ words
            ones = Csa(ones, In<TOp>(a[t], w), In<TOp>(a[t + 1], w + 8), out VecL twosA);
            ones = Csa(ones, In<TOp>(a[t + 2], w + 16), In<TOp>(a[t + 3], w + 24), out VecL twosB);
            twos = Csa(twos, twosA, twosB, out VecL foursA);
            ones = Csa(ones, In<TOp>(a[t + 4], w + 32), In<TOp>(a[t + 5], w + 40), out twosA);
            ones = Csa(ones, In<TOp>(a[t + 6], w + 48), In<TOp>(a[t + 7], w + 56), out twosB);
            twos = Csa(twos, twosA, twosB, out VecL foursB);
            fours = Csa(fours, foursA, foursB, out VecL eights);
            eightsBytes += PopCountBytes(eights, luts.X1, luts.Low);
            if (++steps == 31)
            {
                total += LaneSums(eightsBytes) << 3;
                eightsBytes = Vector256<byte>.Zero;
                steps = 0;
            }
        }
        if (t < words)
        {
            ulong* w = half + t * 8;   // exactly 4 words left
            ones = Csa(ones, In<TOp>(a[t], w), In<TOp>(a[t + 1], w + 8), out VecL twosA);
            ones = Csa(ones, In<TOp>(a[t + 2], w + 16), In<TOp>(a[t + 3], w + 24), out VecL twosB);
            twos = Csa(twos, twosA, twosB, out VecL foursA);
            VecL eights = fours & foursA;   // half adder
            fours ^= foursA;
            eightsBytes += PopCountBytes(eights, luts.X1, luts.Low);
        }
        total += LaneSums(eightsBytes) << 3;
        Vector256<byte> rest = PopCountBytes(ones, luts.X1, luts.Low) + PopCountBytes(twos, luts.X2, luts.Low) + PopCountBytes(fours, luts.X4, luts.Low);
        return total + LaneSums(rest);
    }

    /// <summary>W1A1 over prepared weights (see <see cref="LaneCountAvx512HarleySeal.Xnor"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Xnor(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K);
        ulong* a = (ulong*)g.A;
        int* c = (int*)g.C;
        var k = Vector256.Create(g.K);
        var luts = new Luts(true);
        for (int j = n0; j < n1; j += BinaryWeights.BlockRows)
        {
            ulong* block = g.WInterleaved + (long)j * words;
            int lanes = Math.Min(BinaryWeights.BlockRows, n1 - j);
            for (int i = m0; i < m1; i++)
            {
                ulong* ai = a + (long)i * words;
                Vector256<int> d = Vec.Narrow(Count<XorOp>(ai, block, words, luts), Count<XorOp>(ai, block + 4, words, luts)).AsInt32();
                Vector256<int> dot = k - (d + d);
                int* ci = c + (long)i * g.N + j;
                if (lanes == BinaryWeights.BlockRows) dot.Store(ci);
                else for (int l = 0; l < lanes; l++) ci[l] = dot.GetElement(l);
            }
        }
    }

    /// <summary>W1Ak over prepared weights (see <see cref="LaneCountAvx512HarleySeal.Plane"/>).</summary>
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
                    VecL lo = VecL.Zero, hi = VecL.Zero;   // lane l: Σ_p 2^p·popcount(b_l AND P_p)
                    for (int p = 0; p < bits; p++)
                    {
                        lo += Count<AndOp>(planes + p * words, block, words, luts) << p;
                        hi += Count<AndOp>(planes + p * words, block + 4, words, luts) << p;
                    }
                    int* ci = c + (long)i * g.N + j;
                    long u = sumU[i - i0];
                    for (int l = 0; l < lanes; l++)
                        ci[l] = (int)(2 * (long)(l < 4 ? lo.GetElement(l) : hi.GetElement(l - 4)) - u - (long)top * g.RowSums[j + l]);
                }
            }
        }
    }
}
