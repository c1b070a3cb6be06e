using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>How a float-activation kernel reads one weight row: its t-th vector of signs or floats, and its t-th element.</summary>
internal interface IWeightRows
{
    /// <summary>The vector W[t .. t + Count) of a row (t a multiple of the width).</summary>
    static abstract unsafe TVec Vector<TLanes, TVec>(void* row, int t) where TLanes : IFloatLanes<TVec> where TVec : struct;

    /// <summary>W[t] of a row.</summary>
    static abstract unsafe float Scalar(void* row, int t);

    /// <summary>Bytes from one row to the next for rows of <paramref name="k"/> weights.</summary>
    static abstract long RowBytes(int k);
}

/// <summary>FP32 weight rows of K floats (<see cref="Sgemm"/>).</summary>
internal readonly struct FloatRows : IWeightRows
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe TVec Vector<TLanes, TVec>(void* row, int t) where TLanes : IFloatLanes<TVec> where TVec : struct => TLanes.Load((float*)row + t);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Scalar(void* row, int t) => ((float*)row)[t];

    public static long RowBytes(int k) => 4L * k;
}

/// <summary>
/// Packed ±1 rows of <see cref="BitPacking.RowWords"/> words (<see cref="SignGemm"/>): each W vector is made from
/// Count bits instead of loaded (broadcast the bits, AND lane i with 2^i, compare, select ±1), 4 operations per
/// W row per step shared by the 4 A rows, reading 32× less weight memory than FP32. t is a multiple of the width
/// (≤ 16), so bits t .. t + Count lie in one word.
/// </summary>
internal readonly struct SignRows : IWeightRows
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe TVec Vector<TLanes, TVec>(void* row, int t) where TLanes : IFloatLanes<TVec> where TVec : struct =>
        TLanes.Signs((uint)(((ulong*)row)[t >> 6] >> (t & 63)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Scalar(void* row, int t) => ((((ulong*)row)[t >> 6] >> (t & 63)) & 1) != 0 ? 1f : -1f;

    public static long RowBytes(int k) => 8L * BitPacking.RowWords(k);
}

/// <summary>
/// C[i, j] = A_i · W_j for float activation rows A and weight rows W read through <typeparamref name="TRows"/>, written
/// once for every vector width <typeparamref name="TLanes"/>. A 4×4 register block keeps 16 vector accumulators of
/// A_i[t..t+L)·W_j[t..t+L) and, per step of L floats, reads 4 W vectors and 4 A vectors for 16 fused multiply-adds
/// (2 loads per FMA at most, so the FMA ports, not the loads, bound it). Each accumulator is reduced once at the end
/// (<see cref="IFloatLanes{TVec}.Reduce4"/>); the last K mod L products are added one by one, in the same order for
/// every block shape, so a row's result does not depend on which block computed it. Blocks walk W in groups of 4
/// rows (outer: the 4 rows stay in L1) and all rows of A inside (A stays in L2).
/// </summary>
internal static class FloatGemm<TLanes, TVec, TRows>
    where TLanes : IFloatLanes<TVec> where TVec : struct where TRows : IWeightRows
{
    /// <summary>
    /// True when the JIT has 32 vector registers (x86 with AVX-512 enabled, ARM64): the 4×4 block needs 21. With 16
    /// (AVX2 only, or DOTNET_EnableAVX512=0) it spills, measured at half speed, so a 2×4 block (13 registers) runs.
    /// </summary>
    private static bool ManyRegisters => !System.Runtime.Intrinsics.X86.X86Base.IsSupported || System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        float* a = (float*)g.A, c = (float*)g.C;
        byte* w = (byte*)g.W;
        int k = g.K, ldc = g.N;
        long stride = TRows.RowBytes(k);
        for (int j = n0; j < n1; j += 4)
        {
            // A block missing columns repeats the last real W row; those sums are computed and dropped.
            int cols = Math.Min(4, n1 - j);
            byte* w0 = w + j * stride;
            byte* w1 = w + (j + Math.Min(1, cols - 1)) * stride;
            byte* w2 = w + (j + Math.Min(2, cols - 1)) * stride;
            byte* w3 = w + (j + Math.Min(3, cols - 1)) * stride;
            int i = m0;
            if (ManyRegisters)
                for (; i + 4 <= m1; i += 4) Block4x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, ldc, cols);
            else
                for (; i + 2 <= m1; i += 2) Block2x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, ldc, cols);
            for (; i < m1; i++) Block1x4(a + (long)i * k, k, w0, w1, w2, w3, c + (long)i * ldc + j, cols);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe TVec W(byte* row, int t) => TRows.Vector<TLanes, TVec>(row, t);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Fma(TVec a, TVec b, TVec c) => TLanes.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(float* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        TVec s00 = TLanes.Zero, s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        TVec s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
        int t = 0, step = TLanes.Count;
        // t + L ≤ k: every load lies inside its row.
        for (; t <= k - step; t += step)
        {
            TVec b0 = W(w0, t), b1 = W(w1, t), b2 = W(w2, t), b3 = W(w3, t);
            TVec x = TLanes.Load(a0 + t);
            s00 = Fma(x, b0, s00); s01 = Fma(x, b1, s01); s02 = Fma(x, b2, s02); s03 = Fma(x, b3, s03);
            x = TLanes.Load(a1 + t);
            s10 = Fma(x, b0, s10); s11 = Fma(x, b1, s11); s12 = Fma(x, b2, s12); s13 = Fma(x, b3, s13);
            x = TLanes.Load(a2 + t);
            s20 = Fma(x, b0, s20); s21 = Fma(x, b1, s21); s22 = Fma(x, b2, s22); s23 = Fma(x, b3, s23);
            x = TLanes.Load(a3 + t);
            s30 = Fma(x, b0, s30); s31 = Fma(x, b1, s31); s32 = Fma(x, b2, s32); s33 = Fma(x, b3, s33);
        }
        Finish(TLanes.Reduce4(s00, s01, s02, s03), a0, t, k, w0, w1, w2, w3, c, cols);
        Finish(TLanes.Reduce4(s10, s11, s12, s13), a1, t, k, w0, w1, w2, w3, c + ldc, cols);
        Finish(TLanes.Reduce4(s20, s21, s22, s23), a2, t, k, w0, w1, w2, w3, c + 2 * ldc, cols);
        Finish(TLanes.Reduce4(s30, s31, s32, s33), a3, t, k, w0, w1, w2, w3, c + 3 * ldc, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block2x4(float* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, float* c, int ldc, int cols)
    {
        float* a1 = a0 + k;
        TVec s00 = TLanes.Zero, s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        int t = 0, step = TLanes.Count;
        for (; t <= k - step; t += step)
        {
            TVec b0 = W(w0, t), b1 = W(w1, t), b2 = W(w2, t), b3 = W(w3, t);
            TVec x = TLanes.Load(a0 + t);
            s00 = Fma(x, b0, s00); s01 = Fma(x, b1, s01); s02 = Fma(x, b2, s02); s03 = Fma(x, b3, s03);
            x = TLanes.Load(a1 + t);
            s10 = Fma(x, b0, s10); s11 = Fma(x, b1, s11); s12 = Fma(x, b2, s12); s13 = Fma(x, b3, s13);
        }
        Finish(TLanes.Reduce4(s00, s01, s02, s03), a0, t, k, w0, w1, w2, w3, c, cols);
        Finish(TLanes.Reduce4(s10, s11, s12, s13), a1, t, k, w0, w1, w2, w3, c + ldc, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block1x4(float* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, float* c, int cols)
    {
        TVec s0 = TLanes.Zero, s1 = s0, s2 = s0, s3 = s0;
        int t = 0, step = TLanes.Count;
        for (; t <= k - step; t += step)
        {
            TVec x = TLanes.Load(a0 + t);
            s0 = Fma(x, W(w0, t), s0); s1 = Fma(x, W(w1, t), s1); s2 = Fma(x, W(w2, t), s2); s3 = Fma(x, W(w3, t), s3);
        }
        Finish(TLanes.Reduce4(s0, s1, s2, s3), a0, t, k, w0, w1, w2, w3, c, cols);
    }

    /// <summary>Adds the last k − t products of each column to its reduced sum and stores the real columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Finish(Vector128<float> sums, float* a, int t, int k, byte* w0, byte* w1, byte* w2, byte* w3, float* c, int cols)
    {
        float c0 = sums.GetElement(0), c1 = sums.GetElement(1), c2 = sums.GetElement(2), c3 = sums.GetElement(3);
        for (; t < k; t++)
        {
            float x = a[t];
            c0 += x * TRows.Scalar(w0, t); c1 += x * TRows.Scalar(w1, t); c2 += x * TRows.Scalar(w2, t); c3 += x * TRows.Scalar(w3, t);
        }
        c[0] = c0;
        if (cols > 1) c[1] = c1;
        if (cols > 2) c[2] = c2;
        if (cols > 3) c[3] = c3;
    }
}

/// <summary>The SGEMM on one vector width: sgemm-avx2, sgemm-avx512, sgemm-v128.</summary>
internal sealed class SgemmVectorised<TLanes, TVec> : Sgemm where TLanes : IFloatLanes<TVec> where TVec : struct
{
    /// <inheritdoc/>
    public override string Name => "sgemm-" + TLanes.Isa.ToName();
    /// <inheritdoc/>
    public override KernelIsa Isa => TLanes.Isa;
    /// <inheritdoc/>
    public override bool IsSupported => TLanes.IsSupported;

    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        FloatGemm<TLanes, TVec, FloatRows>.Compute(g, m0, m1, n0, n1);
}

/// <summary>W1A32 on one vector width: sign-avx2, sign-avx512, sign-v128.</summary>
internal sealed class SignGemmVectorised<TLanes, TVec> : SignGemm where TLanes : IFloatLanes<TVec> where TVec : struct
{
    /// <inheritdoc/>
    public override string Name => "sign-" + TLanes.Isa.ToName();
    /// <inheritdoc/>
    public override KernelIsa Isa => TLanes.Isa;
    /// <inheritdoc/>
    public override bool IsSupported => TLanes.IsSupported;

    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        FloatGemm<TLanes, TVec, SignRows>.Compute(g, m0, m1, n0, n1);
}
