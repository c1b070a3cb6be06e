using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecF = System.Runtime.Intrinsics.Vector256<float>;

namespace BinEngine.Kernels;

/// <summary>
/// SGEMM on Vector256 (AVX2 + FMA). C[i, j] = A_i · W_j: both operands are K-contiguous rows, so a 4×4 register block
/// keeps 16 vector accumulators of A_i[t..t+L)·W_j[t..t+L) and, per step of L = 8 floats, loads 4 W vectors and 4 A
/// vectors for 16 fused multiply-adds (2 loads per FMA at most, so the FMA ports, not the loads, bound it). Each
/// accumulator is reduced once at the end; the last K mod 8 products are added one by one.
/// Blocks walk W in groups of 4 rows (outer: the 4·K floats stay in L1) and all rows of A inside (A stays in L2).
/// </summary>
internal sealed class SgemmAvx2 : Sgemm
{
    /// <inheritdoc/>
    public override string Name => "sgemm-avx2";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx2;
    /// <inheritdoc/>
    public override bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        float* a = (float*)g.A, w = (float*)g.W, c = (float*)g.C;
        int k = g.K, ldc = g.N;
        for (int j = n0; j < n1; j += 4)
        {
            // A block missing columns repeats the last real W row; those sums are computed and dropped.
            int cols = Math.Min(4, n1 - j);
            float* w0 = w + (long)j * k;
            float* w1 = w + (long)(j + Math.Min(1, cols - 1)) * k;
            float* w2 = w + (long)(j + Math.Min(2, cols - 1)) * k;
            float* w3 = w + (long)(j + Math.Min(3, cols - 1)) * k;
            int i = m0;
            if (ManyRegisters)
            {
                for (; i + 4 <= m1; i += 4) Block4x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, ldc, cols);
            }
            else
            {
                for (; i + 2 <= m1; i += 2) Block2x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, ldc, cols);
            }
            for (; i < m1; i++) Block1x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, cols);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(float* a0, int k, float* w0, float* w1, float* w2, float* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        VecF s00 = VecF.Zero, s01 = VecF.Zero, s02 = VecF.Zero, s03 = VecF.Zero;
        VecF s10 = VecF.Zero, s11 = VecF.Zero, s12 = VecF.Zero, s13 = VecF.Zero;
        VecF s20 = VecF.Zero, s21 = VecF.Zero, s22 = VecF.Zero, s23 = VecF.Zero;
        VecF s30 = VecF.Zero, s31 = VecF.Zero, s32 = VecF.Zero, s33 = VecF.Zero;
        int t = 0;
        // t + L ≤ k: every load lies inside its row.
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF b0 = Vec.Load(w0 + t), b1 = Vec.Load(w1 + t), b2 = Vec.Load(w2 + t), b3 = Vec.Load(w3 + t);
            VecF x = Vec.Load(a0 + t);
            s00 = Vec.FusedMultiplyAdd(x, b0, s00); s01 = Vec.FusedMultiplyAdd(x, b1, s01);
            s02 = Vec.FusedMultiplyAdd(x, b2, s02); s03 = Vec.FusedMultiplyAdd(x, b3, s03);
            x = Vec.Load(a1 + t);
            s10 = Vec.FusedMultiplyAdd(x, b0, s10); s11 = Vec.FusedMultiplyAdd(x, b1, s11);
            s12 = Vec.FusedMultiplyAdd(x, b2, s12); s13 = Vec.FusedMultiplyAdd(x, b3, s13);
            x = Vec.Load(a2 + t);
            s20 = Vec.FusedMultiplyAdd(x, b0, s20); s21 = Vec.FusedMultiplyAdd(x, b1, s21);
            s22 = Vec.FusedMultiplyAdd(x, b2, s22); s23 = Vec.FusedMultiplyAdd(x, b3, s23);
            x = Vec.Load(a3 + t);
            s30 = Vec.FusedMultiplyAdd(x, b0, s30); s31 = Vec.FusedMultiplyAdd(x, b1, s31);
            s32 = Vec.FusedMultiplyAdd(x, b2, s32); s33 = Vec.FusedMultiplyAdd(x, b3, s33);
        }
        Finish(Reduce4(s00, s01, s02, s03), a0, t, k, w0, w1, w2, w3, c, cols);
        Finish(Reduce4(s10, s11, s12, s13), a1, t, k, w0, w1, w2, w3, c + ldc, cols);
        Finish(Reduce4(s20, s21, s22, s23), a2, t, k, w0, w1, w2, w3, c + 2 * ldc, cols);
        Finish(Reduce4(s30, s31, s32, s33), a3, t, k, w0, w1, w2, w3, c + 3 * ldc, cols);
    }

    /// <summary>
    /// True when the JIT has 32 vector registers (x86 with AVX-512 enabled, ARM64): the 4×4 block needs 21. With 16
    /// (AVX2 only, or DOTNET_EnableAVX512=0) it spills, measured at half speed, so a 2×4 block (13 registers) runs.
    /// </summary>
    private static bool ManyRegisters => !System.Runtime.Intrinsics.X86.X86Base.IsSupported || System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block2x4(float* a0, int k, float* w0, float* w1, float* w2, float* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k;
        VecF s00 = VecF.Zero, s01 = VecF.Zero, s02 = VecF.Zero, s03 = VecF.Zero;
        VecF s10 = VecF.Zero, s11 = VecF.Zero, s12 = VecF.Zero, s13 = VecF.Zero;
        int t = 0;
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF b0 = Vec.Load(w0 + t), b1 = Vec.Load(w1 + t), b2 = Vec.Load(w2 + t), b3 = Vec.Load(w3 + t);
            VecF x = Vec.Load(a0 + t);
            s00 = Vec.FusedMultiplyAdd(x, b0, s00); s01 = Vec.FusedMultiplyAdd(x, b1, s01);
            s02 = Vec.FusedMultiplyAdd(x, b2, s02); s03 = Vec.FusedMultiplyAdd(x, b3, s03);
            x = Vec.Load(a1 + t);
            s10 = Vec.FusedMultiplyAdd(x, b0, s10); s11 = Vec.FusedMultiplyAdd(x, b1, s11);
            s12 = Vec.FusedMultiplyAdd(x, b2, s12); s13 = Vec.FusedMultiplyAdd(x, b3, s13);
        }
        Finish(Reduce4(s00, s01, s02, s03), a0, t, k, w0, w1, w2, w3, c, cols);
        Finish(Reduce4(s10, s11, s12, s13), a1, t, k, w0, w1, w2, w3, c + ldc, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block1x4(float* a0, int k, float* w0, float* w1, float* w2, float* w3, float* c, int cols)
    {
        VecF s0 = VecF.Zero, s1 = VecF.Zero, s2 = VecF.Zero, s3 = VecF.Zero;
        int t = 0;
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF x = Vec.Load(a0 + t);
            s0 = Vec.FusedMultiplyAdd(x, Vec.Load(w0 + t), s0);
            s1 = Vec.FusedMultiplyAdd(x, Vec.Load(w1 + t), s1);
            s2 = Vec.FusedMultiplyAdd(x, Vec.Load(w2 + t), s2);
            s3 = Vec.FusedMultiplyAdd(x, Vec.Load(w3 + t), s3);
        }
        // Same reduction and tail order as Block4x4, so a row's result does not depend on which block computed it.
        Finish(Reduce4(s0, s1, s2, s3), a0, t, k, w0, w1, w2, w3, c, cols);
    }

    /// <summary>Adds the last k − t products of each column to its reduced sum and stores the real columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(Vector128<float> sums, float* a, int t, int k, float* w0, float* w1, float* w2, float* w3, float* c, int cols)
    {
        float c0 = sums.GetElement(0), c1 = sums.GetElement(1), c2 = sums.GetElement(2), c3 = sums.GetElement(3);
        for (; t < k; t++)
        {
            float x = a[t];
            c0 += x * w0[t]; c1 += x * w1[t]; c2 += x * w2[t]; c3 += x * w3[t];
        }
        c[0] = c0;
        if (cols > 1) c[1] = c1;
        if (cols > 2) c[2] = c2;
        if (cols > 3) c[3] = c3;
    }

    /// <summary>[Σ s0, Σ s1, Σ s2, Σ s3] with three horizontal adds: hadd(hadd(s0, s1), hadd(s2, s3)) leaves, in each
    /// 128-bit half, the four partial sums of that half; adding the halves finishes them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce4(VecF s0, VecF s1, VecF s2, VecF s3)
    {
        VecF h = Avx.HorizontalAdd(Avx.HorizontalAdd(s0, s1), Avx.HorizontalAdd(s2, s3));
        return h.GetLower() + h.GetUpper();
    }
}
