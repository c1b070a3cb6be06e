using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecI = System.Runtime.Intrinsics.Vector256<int>;

namespace BinEngine.Kernels;

/// <summary>
/// Int8 W1Ak on AVX-VNNI: 4×4 register blocks of vpdpbusd, which multiplies weight bytes b ∈ {0, 1} (unsigned) by
/// activation codes q (signed) and adds each group of four products into a 32-bit lane in one instruction, then
/// B·q = 2·Σ b·q − Σ q (see <see cref="CodeGemm"/>). Against <see cref="CodeGemmAvx2MaddUbs"/> it replaces
/// vpmaddubsw + vpaddw and the periodic widening (vpmaddwd) by one instruction; 32-bit lanes cannot overflow
/// (|Σ b·q| ≤ 127·K). A step of 32 elements loads 4 weight and 4 activation vectors for 16 multiply-adds; the
/// last K mod 32 elements are added one by one. 256-bit only: .NET 10 exposes VNNI on 512-bit vectors through
/// AVX10 alone, which the machines we measured do not report.
/// </summary>
internal sealed class CodeGemmAvxVnni : CodeGemm
{
    /// <inheritdoc/>
    public override string Name => "code-avx2-vnni";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx2;
    /// <inheritdoc/>
    public override bool IsSupported => AvxVnni.IsSupported;

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
                sumQ[i - i0] = SumOfCodes(a + (long)i * k, k);
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
    private static VecI Dot(VecI sum, Vector256<byte> w, Vector256<sbyte> a) => AvxVnni.MultiplyWideningAndAdd(sum, w, a);

    /// <summary>Σ_t q[t]: the same multiply-add against bytes of 1 (a scalar loop here cost as much as a tenth of the products).</summary>
    private static unsafe int SumOfCodes(sbyte* q, int k)
    {
        VecI sum = VecI.Zero;
        Vector256<byte> ones = Vec.Create((byte)1);
        int t = 0;
        for (; t <= k - 32; t += 32)
            sum = Dot(sum, ones, Vec.Load(q + t));
        int s = Vec.Sum(sum);
        for (; t < k; t++)
            s += q[t];
        return s;
    }

    /// <summary>
    /// [Σ s0, Σ s1, Σ s2, Σ s3]: three horizontal adds leave each accumulator's lane-half sums in order in both
    /// 128-bit halves, one add joins the halves. Four separate reductions cost more than the 8 steps of K = 256.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Sum4(VecI s0, VecI s1, VecI s2, VecI s3)
    {
        VecI h = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>dots[r·4 + c] = Σ_t b_c[t]·q_r[t] for 4 activation rows (stride k) and 4 weight rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(sbyte* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, int* dots)
    {
        sbyte* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        VecI s00 = VecI.Zero, s01 = VecI.Zero, s02 = VecI.Zero, s03 = VecI.Zero;
        VecI s10 = VecI.Zero, s11 = VecI.Zero, s12 = VecI.Zero, s13 = VecI.Zero;
        VecI s20 = VecI.Zero, s21 = VecI.Zero, s22 = VecI.Zero, s23 = VecI.Zero;
        VecI s30 = VecI.Zero, s31 = VecI.Zero, s32 = VecI.Zero, s33 = VecI.Zero;
        int t = 0;
        // t + 32 ≤ k: the activation loads stay in the row (weight rows are padded further).
        for (; t <= k - 32; t += 32)
        {
            Vector256<byte> b0 = Vec.Load(w0 + t), b1 = Vec.Load(w1 + t), b2 = Vec.Load(w2 + t), b3 = Vec.Load(w3 + t);
            Vector256<sbyte> q = Vec.Load(a0 + t);
            s00 = Dot(s00, b0, q); s01 = Dot(s01, b1, q); s02 = Dot(s02, b2, q); s03 = Dot(s03, b3, q);
            q = Vec.Load(a1 + t);
            s10 = Dot(s10, b0, q); s11 = Dot(s11, b1, q); s12 = Dot(s12, b2, q); s13 = Dot(s13, b3, q);
            q = Vec.Load(a2 + t);
            s20 = Dot(s20, b0, q); s21 = Dot(s21, b1, q); s22 = Dot(s22, b2, q); s23 = Dot(s23, b3, q);
            q = Vec.Load(a3 + t);
            s30 = Dot(s30, b0, q); s31 = Dot(s31, b1, q); s32 = Dot(s32, b2, q); s33 = Dot(s33, b3, q);
        }
        Sum4(s00, s01, s02, s03).Store(dots);
        Sum4(s10, s11, s12, s13).Store(dots + 4);
        Sum4(s20, s21, s22, s23).Store(dots + 8);
        Sum4(s30, s31, s32, s33).Store(dots + 12);
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
        VecI s0 = VecI.Zero, s1 = VecI.Zero, s2 = VecI.Zero, s3 = VecI.Zero;
        int t = 0;
        for (; t <= k - 32; t += 32)
        {
            Vector256<sbyte> q = Vec.Load(a0 + t);
            s0 = Dot(s0, Vec.Load(w0 + t), q); s1 = Dot(s1, Vec.Load(w1 + t), q);
            s2 = Dot(s2, Vec.Load(w2 + t), q); s3 = Dot(s3, Vec.Load(w3 + t), q);
        }
        Sum4(s0, s1, s2, s3).Store(dots);
        for (; t < k; t++)
        {
            int q = a0[t];
            dots[0] += w0[t] * q; dots[1] += w1[t] * q; dots[2] += w2[t] * q; dots[3] += w3[t] * q;
        }
    }
}
