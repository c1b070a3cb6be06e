using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Vec = System.Runtime.Intrinsics.Vector128;
using VecF = System.Runtime.Intrinsics.Vector128<float>;
using VecU = System.Runtime.Intrinsics.Vector128<uint>;

namespace BinEngine.Kernels;

/// <summary>
/// W1A32 on Vector128 (portable): the SGEMM's 4×4 block of fused multiply-adds with each W vector made from 4
/// packed bits instead of loaded: broadcast the bits, AND lane i with 2^i, compare → lane mask, select +1 / −1.
/// That costs 4 operations per W row per step, shared by the 4 A rows (4 FMAs each), and reads 32× less weight memory
/// than an FP32 W. The last K mod 4 terms are added one by one.
/// </summary>
internal sealed class SignGemmVector128 : SignGemm
{
    /// <inheritdoc/>
    public override string Name => "sign-v128";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Vector128;
    /// <inheritdoc/>
    public override bool IsSupported => Vector128.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        float* a = (float*)g.A, c = (float*)g.C;
        ulong* w = (ulong*)g.W;
        int k = g.K, ldc = g.N, words = BitPacking.RowWords(k);
        for (int j = n0; j < n1; j += 4)
        {
            int cols = Math.Min(4, n1 - j);   // missing columns repeat the last real row and are dropped
            ulong* w0 = w + (long)j * words;
            ulong* w1 = w + (long)(j + Math.Min(1, cols - 1)) * words;
            ulong* w2 = w + (long)(j + Math.Min(2, cols - 1)) * words;
            ulong* w3 = w + (long)(j + Math.Min(3, cols - 1)) * words;
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

    /// <summary>Lane i: 2^i, the bit of the broadcast chunk that lane owns.</summary>
    private static VecU LaneBits
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vec.Create(1u, 2, 4, 8);
    }

    /// <summary>±1.0f per lane from bits t..t+4 of a packed row (t a multiple of 4, so they share a word).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe VecF Signs(ulong* row, int t, VecU laneBits)
    {
        uint chunk = (uint)(((byte*)row)[t >> 3] >> (t & 4));
        VecU set = Vec.Equals(Vec.Create(chunk) & laneBits, laneBits);
        return Vec.ConditionalSelect(set.AsSingle(), Vec.Create(1f), Vec.Create(-1f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Sign(ulong* row, int t) => ((row[t >> 6] >> (t & 63)) & 1) != 0 ? 1f : -1f;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(float* a0, int k, ulong* w0, ulong* w1, ulong* w2, ulong* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        VecU lanes = LaneBits;
        VecF s00 = VecF.Zero, s01 = VecF.Zero, s02 = VecF.Zero, s03 = VecF.Zero;
        VecF s10 = VecF.Zero, s11 = VecF.Zero, s12 = VecF.Zero, s13 = VecF.Zero;
        VecF s20 = VecF.Zero, s21 = VecF.Zero, s22 = VecF.Zero, s23 = VecF.Zero;
        VecF s30 = VecF.Zero, s31 = VecF.Zero, s32 = VecF.Zero, s33 = VecF.Zero;
        int t = 0;
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF b0 = Signs(w0, t, lanes), b1 = Signs(w1, t, lanes), b2 = Signs(w2, t, lanes), b3 = Signs(w3, t, lanes);
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
    /// True when the JIT has 32 vector registers (x86 with AVX-512 enabled, ARM64): the 4×4 block needs more than 16.
    /// With 16 (AVX2 only, or DOTNET_EnableAVX512=0) a 2×4 block runs instead, as in the SGEMM.
    /// </summary>
    private static bool ManyRegisters => !System.Runtime.Intrinsics.X86.X86Base.IsSupported || System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block2x4(float* a0, int k, ulong* w0, ulong* w1, ulong* w2, ulong* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k;
        VecU lanes = LaneBits;
        VecF s00 = VecF.Zero, s01 = VecF.Zero, s02 = VecF.Zero, s03 = VecF.Zero;
        VecF s10 = VecF.Zero, s11 = VecF.Zero, s12 = VecF.Zero, s13 = VecF.Zero;
        int t = 0;
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF b0 = Signs(w0, t, lanes), b1 = Signs(w1, t, lanes), b2 = Signs(w2, t, lanes), b3 = Signs(w3, t, lanes);
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
    private static unsafe void Block1x4(float* a0, int k, ulong* w0, ulong* w1, ulong* w2, ulong* w3, float* c, int cols)
    {
        VecU lanes = LaneBits;
        VecF s0 = VecF.Zero, s1 = VecF.Zero, s2 = VecF.Zero, s3 = VecF.Zero;
        int t = 0;
        for (; t <= k - VecF.Count; t += VecF.Count)
        {
            VecF x = Vec.Load(a0 + t);
            s0 = Vec.FusedMultiplyAdd(x, Signs(w0, t, lanes), s0);
            s1 = Vec.FusedMultiplyAdd(x, Signs(w1, t, lanes), s1);
            s2 = Vec.FusedMultiplyAdd(x, Signs(w2, t, lanes), s2);
            s3 = Vec.FusedMultiplyAdd(x, Signs(w3, t, lanes), s3);
        }
        Finish(Reduce4(s0, s1, s2, s3), a0, t, k, w0, w1, w2, w3, c, cols);
    }

    /// <summary>Adds the last k − t terms of each column to its reduced sum and stores the real columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(Vector128<float> sums, float* a, int t, int k, ulong* w0, ulong* w1, ulong* w2, ulong* w3, float* c, int cols)
    {
        float c0 = sums.GetElement(0), c1 = sums.GetElement(1), c2 = sums.GetElement(2), c3 = sums.GetElement(3);
        for (; t < k; t++)
        {
            float x = a[t];
            c0 += x * Sign(w0, t); c1 += x * Sign(w1, t); c2 += x * Sign(w2, t); c3 += x * Sign(w3, t);
        }
        c[0] = c0;
        if (cols > 1) c[1] = c1;
        if (cols > 2) c[2] = c2;
        if (cols > 3) c[3] = c3;
    }

    /// <summary>[Σ s0, Σ s1, Σ s2, Σ s3], portable (AdvSimd has a pairwise add; Vector128.Sum picks it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce4(VecF s0, VecF s1, VecF s2, VecF s3) =>
        Vector128.Create(Vec.Sum(s0), Vec.Sum(s1), Vec.Sum(s2), Vec.Sum(s3));
}
