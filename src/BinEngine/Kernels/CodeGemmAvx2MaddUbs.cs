using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecS = System.Runtime.Intrinsics.Vector256<short>;

namespace BinEngine.Kernels;

/// <summary>
/// Int8 W1Ak on AVX2: 4×4 register blocks of unsigned-by-signed byte multiply-adds (vpmaddubsw) of weight bytes
/// b ∈ {0, 1} with activation codes q, 16-bit accumulators widened (vpmaddwd by 1) and summed every 64 steps and at
/// the end, then B·q = 2·Σ b·q − Σ q (see <see cref="CodeGemm"/>). Each step of 32 elements loads 4 weight and
/// 4 activation vectors for 16 multiply-adds; the last K mod 32 elements are added one by one.
/// </summary>
internal sealed class CodeGemmAvx2MaddUbs : CodeGemm
{
    /// <summary>Steps between widenings: a 16-bit lane gains at most 2·128 per step, 64·256 &lt; 2^15.</summary>
    private const int StepsPerFlush = 64;

    /// <inheritdoc/>
    public override string Name => "code-avx2-maddubs";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx2;
    /// <inheritdoc/>
    public override bool IsSupported => Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        sbyte* a = (sbyte*)g.A;
        byte* w = (byte*)g.W;
        int* c = (int*)g.C;
        int k = g.K, stride = g.Bits, ldc = g.N;
        int* sumQ = stackalloc int[PlaneSums.RowChunk];
        int* dots = stackalloc int[16];
        for (int i0 = m0; i0 < m1; i0 += PlaneSums.RowChunk)
        {
            int i1 = Math.Min(m1, i0 + PlaneSums.RowChunk);
            for (int i = i0; i < i1; i++)
            {
                int s = 0;
                for (int t = 0; t < k; t++) s += a[(long)i * k + t];
                sumQ[i - i0] = s;
            }
            for (int j = n0; j < n1; j += 4)
            {
                int cols = Math.Min(4, n1 - j);   // missing columns repeat the last real row and are dropped
                byte* w0 = w + (long)j * stride;
                byte* w1 = w + (long)(j + Math.Min(1, cols - 1)) * stride;
                byte* w2 = w + (long)(j + Math.Min(2, cols - 1)) * stride;
                byte* w3 = w + (long)(j + Math.Min(3, cols - 1)) * stride;
                int i = i0;
                for (; i + 4 <= i1; i += 4)
                {
                    Block4x4(a + (long)i * k, k, w0, w1, w2, w3, dots);
                    for (int r = 0; r < 4; r++)
                        for (int q = 0; q < cols; q++) c[(long)(i + r) * ldc + j + q] = 2 * dots[r * 4 + q] - sumQ[i + r - i0];
                }
                for (; i < i1; i++)
                {
                    Block1x4(a + (long)i * k, k, w0, w1, w2, w3, dots);
                    for (int q = 0; q < cols; q++) c[(long)i * ldc + j + q] = 2 * dots[q] - sumQ[i - i0];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe VecS MulAdd(byte* w, sbyte* a) => Avx2.MultiplyAddAdjacent(Vec.Load(w), Vec.Load(a));

    /// <summary>Adds the four 16-bit accumulators' totals to sums[0..3] (vpmaddwd by 1 widens pairs to 32 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Flush(VecS s0, VecS s1, VecS s2, VecS s3, int* sums)
    {
        VecS one = Vec.Create((short)1);
        sums[0] += Vec.Sum(Avx2.MultiplyAddAdjacent(s0, one));
        sums[1] += Vec.Sum(Avx2.MultiplyAddAdjacent(s1, one));
        sums[2] += Vec.Sum(Avx2.MultiplyAddAdjacent(s2, one));
        sums[3] += Vec.Sum(Avx2.MultiplyAddAdjacent(s3, one));
    }

    /// <summary>dots[r·4 + c] = Σ_t b_c[t]·q_r[t] for 4 activation rows (stride k) and 4 weight rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(sbyte* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, int* dots)
    {
        sbyte* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        for (int x = 0; x < 16; x++) dots[x] = 0;
        int t = 0;
        while (t <= k - VecS.Count * 2)
        {
            VecS s00 = VecS.Zero, s01 = VecS.Zero, s02 = VecS.Zero, s03 = VecS.Zero;
            VecS s10 = VecS.Zero, s11 = VecS.Zero, s12 = VecS.Zero, s13 = VecS.Zero;
            VecS s20 = VecS.Zero, s21 = VecS.Zero, s22 = VecS.Zero, s23 = VecS.Zero;
            VecS s30 = VecS.Zero, s31 = VecS.Zero, s32 = VecS.Zero, s33 = VecS.Zero;
            // t + 32 ≤ k: the activation loads stay in the row (weight rows are padded further).
            for (int steps = 0; steps < StepsPerFlush && t <= k - VecS.Count * 2; steps++, t += VecS.Count * 2)
            {
                s00 += MulAdd(w0 + t, a0 + t); s01 += MulAdd(w1 + t, a0 + t); s02 += MulAdd(w2 + t, a0 + t); s03 += MulAdd(w3 + t, a0 + t);
                s10 += MulAdd(w0 + t, a1 + t); s11 += MulAdd(w1 + t, a1 + t); s12 += MulAdd(w2 + t, a1 + t); s13 += MulAdd(w3 + t, a1 + t);
                s20 += MulAdd(w0 + t, a2 + t); s21 += MulAdd(w1 + t, a2 + t); s22 += MulAdd(w2 + t, a2 + t); s23 += MulAdd(w3 + t, a2 + t);
                s30 += MulAdd(w0 + t, a3 + t); s31 += MulAdd(w1 + t, a3 + t); s32 += MulAdd(w2 + t, a3 + t); s33 += MulAdd(w3 + t, a3 + t);
            }
            Flush(s00, s01, s02, s03, dots);
            Flush(s10, s11, s12, s13, dots + 4);
            Flush(s20, s21, s22, s23, dots + 8);
            Flush(s30, s31, s32, s33, dots + 12);
        }
        for (; t < k; t++)
        {
            int q0 = a0[t], q1 = a1[t], q2 = a2[t], q3 = a3[t];
            int b0 = w0[t], b1 = w1[t], b2 = w2[t], b3 = w3[t];
            dots[0] += b0 * q0; dots[1] += b1 * q0; dots[2] += b2 * q0; dots[3] += b3 * q0;
            dots[4] += b0 * q1; dots[5] += b1 * q1; dots[6] += b2 * q1; dots[7] += b3 * q1;
            dots[8] += b0 * q2; dots[9] += b1 * q2; dots[10] += b2 * q2; dots[11] += b3 * q2;
            dots[12] += b0 * q3; dots[13] += b1 * q3; dots[14] += b2 * q3; dots[15] += b3 * q3;
        }
    }

    /// <summary>dots[c] = Σ_t b_c[t]·q[t] for one activation row and 4 weight rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block1x4(sbyte* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, int* dots)
    {
        for (int x = 0; x < 4; x++) dots[x] = 0;
        int t = 0;
        while (t <= k - VecS.Count * 2)
        {
            VecS s0 = VecS.Zero, s1 = VecS.Zero, s2 = VecS.Zero, s3 = VecS.Zero;
            for (int steps = 0; steps < StepsPerFlush && t <= k - VecS.Count * 2; steps++, t += VecS.Count * 2)
            {
                s0 += MulAdd(w0 + t, a0 + t); s1 += MulAdd(w1 + t, a0 + t); s2 += MulAdd(w2 + t, a0 + t); s3 += MulAdd(w3 + t, a0 + t);
            }
            Flush(s0, s1, s2, s3, dots);
        }
        for (; t < k; t++)
        {
            int q = a0[t];
            dots[0] += w0[t] * q; dots[1] += w1[t] * q; dots[2] += w2[t] * q; dots[3] += w3[t] * q;
        }
    }
}
