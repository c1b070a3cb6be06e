using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// One instruction sequence for Σ_t b_t·q_t over unsigned weight bytes b ∈ {0, 1} and signed codes q: the only per-width,
/// per-instruction code of the int8 kernels (<see cref="CodeGemmBlocked{TDot, TAcc, TBytes}"/> is written once against it).
/// </summary>
internal interface IByteDot<TAcc, TBytes> where TAcc : struct where TBytes : struct
{
    /// <summary>The kernel's name (code-avx2-vnni, …).</summary>
    static abstract string Name { get; }
    static abstract KernelIsa Isa { get; }
    static abstract bool IsSupported { get; }

    /// <summary>Bytes per step.</summary>
    static abstract int Count { get; }

    /// <summary>Steps an accumulator takes before <see cref="Sum4"/> must widen it (int.MaxValue: never overflows).</summary>
    static abstract int StepsPerFlush { get; }

    static abstract TAcc Zero { get; }

    /// <summary>Count bytes (weights or codes; the dot reads codes as signed).</summary>
    static abstract unsafe TBytes Load(void* p);

    /// <summary>acc + the products of Count weight bytes and codes, summed within lanes.</summary>
    static abstract TAcc Dot(TAcc acc, TBytes w, TBytes a);

    /// <summary>[Σ s0, Σ s1, Σ s2, Σ s3] as 32-bit integers.</summary>
    static abstract Vector128<int> Sum4(TAcc s0, TAcc s1, TAcc s2, TAcc s3);
}

/// <summary>
/// AVX-VNNI (vpdpbusd): each group of four byte products added into a 32-bit lane in one instruction; 32-bit lanes
/// cannot overflow (|Σ b·q| ≤ 127·K), so no flushes. Against vpmaddubsw it replaces the multiply-add, the 16-bit
/// add and the periodic widening by one instruction. 256-bit only: .NET 10 exposes VNNI on 512-bit vectors through
/// AVX10 alone, which the machines we measured do not report.
/// </summary>
internal readonly struct VnniDot256 : IByteDot<Vector256<int>, Vector256<byte>>
{
    public static string Name => "code-avx2-vnni";
    public static KernelIsa Isa => KernelIsa.Avx2;
    public static bool IsSupported => AvxVnni.IsSupported;
    public static int Count => 32;
    public static int StepsPerFlush => int.MaxValue;
    public static Vector256<int> Zero => Vector256<int>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Load(void* p) => Vector256.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> w, Vector256<byte> a) => AvxVnni.MultiplyWideningAndAdd(acc, w, a.AsSByte());

    /// <summary>Three horizontal adds leave each accumulator's half sums in order in both 128-bit halves; one add joins them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sum4(Vector256<int> s0, Vector256<int> s1, Vector256<int> s2, Vector256<int> s3)
    {
        Vector256<int> h = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));
        return h.GetLower() + h.GetUpper();
    }
}

/// <summary>
/// AVX2 vpmaddubsw: two byte products per 16-bit lane. |b·q| ≤ 128, so a pair is at most 256 in magnitude and a lane
/// can take 127 steps before it could overflow; flushed (vpmaddwd by 1 widens pairs to 32 bits) every 64.
/// </summary>
internal readonly struct MaddUbsDot256 : IByteDot<Vector256<short>, Vector256<byte>>
{
    public static string Name => "code-avx2-maddubs";
    public static KernelIsa Isa => KernelIsa.Avx2;
    public static bool IsSupported => Avx2.IsSupported;
    public static int Count => 32;
    public static int StepsPerFlush => 64;
    public static Vector256<short> Zero => Vector256<short>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Load(void* p) => Vector256.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Dot(Vector256<short> acc, Vector256<byte> w, Vector256<byte> a) => acc + Avx2.MultiplyAddAdjacent(w, a.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sum4(Vector256<short> s0, Vector256<short> s1, Vector256<short> s2, Vector256<short> s3)
    {
        Vector256<short> one = Vector256.Create((short)1);
        return VnniDot256.Sum4(Avx2.MultiplyAddAdjacent(s0, one), Avx2.MultiplyAddAdjacent(s1, one),
            Avx2.MultiplyAddAdjacent(s2, one), Avx2.MultiplyAddAdjacent(s3, one));
    }
}

/// <summary>AVX-512BW vpmaddubsw: <see cref="MaddUbsDot256"/> on 64 bytes a step.</summary>
internal readonly struct MaddUbsDot512 : IByteDot<Vector512<short>, Vector512<byte>>
{
    public static string Name => "code-avx512-maddubs";
    public static KernelIsa Isa => KernelIsa.Avx512;
    public static bool IsSupported => Avx512BW.IsSupported;
    public static int Count => 64;
    public static int StepsPerFlush => 64;
    public static Vector512<short> Zero => Vector512<short>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Load(void* p) => Vector512.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> Dot(Vector512<short> acc, Vector512<byte> w, Vector512<byte> a) => acc + Avx512BW.MultiplyAddAdjacent(w, a.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sum4(Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3)
    {
        Vector512<short> one = Vector512.Create((short)1);
        Vector512<int> w0 = Avx512BW.MultiplyAddAdjacent(s0, one), w1 = Avx512BW.MultiplyAddAdjacent(s1, one);
        Vector512<int> w2 = Avx512BW.MultiplyAddAdjacent(s2, one), w3 = Avx512BW.MultiplyAddAdjacent(s3, one);
        return VnniDot256.Sum4(w0.GetLower() + w0.GetUpper(), w1.GetLower() + w1.GetUpper(), w2.GetLower() + w2.GetUpper(), w3.GetLower() + w3.GetUpper());
    }
}

/// <summary>
/// Int8 W1Ak written once for every byte-dot instruction <typeparamref name="TDot"/>: 4×4 register blocks (4 activation
/// rows × 4 weight rows, 16 accumulators), each step of Count elements loading 4 weight and 4 activation vectors for
/// 16 dots; accumulators widened every StepsPerFlush steps and at the end; the last K mod Count elements added one by
/// one; then B·q = 2·Σ b·q − Σ q (<see cref="CodeGemm"/>), Σ q by the same dot against bytes of 1 (a scalar loop
/// there cost a tenth of the products at K = 256).
/// </summary>
internal sealed class CodeGemmBlocked<TDot, TAcc, TBytes> : CodeGemm where TDot : IByteDot<TAcc, TBytes> where TAcc : struct where TBytes : struct
{
    /// <inheritdoc/>
    public override string Name => TDot.Name;
    /// <inheritdoc/>
    public override KernelIsa Isa => TDot.Isa;
    /// <inheritdoc/>
    public override bool IsSupported => TDot.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        sbyte* a = (sbyte*)g.A;
        byte* w = (byte*)g.W;
        int* c = (int*)g.C;
        int k = g.K, stride = g.Bits, ldc = g.N;
        int* sumQ = stackalloc int[PlaneSums.RowChunk];
        int* dots = stackalloc int[16];
        byte* ones = stackalloc byte[TDot.Count];
        new Span<byte>(ones, TDot.Count).Fill(1);
        for (int i0 = m0; i0 < m1; i0 += PlaneSums.RowChunk)
        {
            int i1 = Math.Min(m1, i0 + PlaneSums.RowChunk);
            for (int i = i0; i < i1; i++)
                sumQ[i - i0] = SumOfCodes(a + (long)i * k, k, ones);
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

    /// <summary>dots[r·4 + c] = Σ_t b_c[t]·q_r[t] for 4 activation rows (stride k) and 4 weight rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4x4(sbyte* a0, int k, byte* w0, byte* w1, byte* w2, byte* w3, int* dots)
    {
        sbyte* a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        Vector128<int> d0 = Vector128<int>.Zero, d1 = d0, d2 = d0, d3 = d0;
        int t = 0, step = TDot.Count;
        while (t <= k - step)
        {
            TAcc s00 = TDot.Zero, s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
            TAcc s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
            // t + Count ≤ k: the activation loads stay in the row (weight rows are padded further).
            for (int steps = 0; steps < TDot.StepsPerFlush && t <= k - step; steps++, t += step)
            {
                TBytes b0 = TDot.Load(w0 + t), b1 = TDot.Load(w1 + t), b2 = TDot.Load(w2 + t), b3 = TDot.Load(w3 + t);
                TBytes q = TDot.Load(a0 + t);
                s00 = TDot.Dot(s00, b0, q); s01 = TDot.Dot(s01, b1, q); s02 = TDot.Dot(s02, b2, q); s03 = TDot.Dot(s03, b3, q);
                q = TDot.Load(a1 + t);
                s10 = TDot.Dot(s10, b0, q); s11 = TDot.Dot(s11, b1, q); s12 = TDot.Dot(s12, b2, q); s13 = TDot.Dot(s13, b3, q);
                q = TDot.Load(a2 + t);
                s20 = TDot.Dot(s20, b0, q); s21 = TDot.Dot(s21, b1, q); s22 = TDot.Dot(s22, b2, q); s23 = TDot.Dot(s23, b3, q);
                q = TDot.Load(a3 + t);
                s30 = TDot.Dot(s30, b0, q); s31 = TDot.Dot(s31, b1, q); s32 = TDot.Dot(s32, b2, q); s33 = TDot.Dot(s33, b3, q);
            }
            d0 += TDot.Sum4(s00, s01, s02, s03);
            d1 += TDot.Sum4(s10, s11, s12, s13);
            d2 += TDot.Sum4(s20, s21, s22, s23);
            d3 += TDot.Sum4(s30, s31, s32, s33);
        }
        d0.Store(dots);
        d1.Store(dots + 4);
        d2.Store(dots + 8);
        d3.Store(dots + 12);
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
        Vector128<int> d = Vector128<int>.Zero;
        int t = 0, step = TDot.Count;
        while (t <= k - step)
        {
            TAcc s0 = TDot.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (int steps = 0; steps < TDot.StepsPerFlush && t <= k - step; steps++, t += step)
            {
                TBytes q = TDot.Load(a0 + t);
                s0 = TDot.Dot(s0, TDot.Load(w0 + t), q); s1 = TDot.Dot(s1, TDot.Load(w1 + t), q);
                s2 = TDot.Dot(s2, TDot.Load(w2 + t), q); s3 = TDot.Dot(s3, TDot.Load(w3 + t), q);
            }
            d += TDot.Sum4(s0, s1, s2, s3);
        }
        d.Store(dots);
        for (; t < k; t++)
        {
            int q = a0[t];
            dots[0] += w0[t] * q; dots[1] += w1[t] * q; dots[2] += w2[t] * q; dots[3] += w3[t] * q;
        }
    }

    /// <summary>Σ_t q[t]: the dot against <paramref name="ones"/> (Count bytes of 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int SumOfCodes(sbyte* q, int k, byte* ones)
    {
        Vector128<int> d = Vector128<int>.Zero;
        TBytes one = TDot.Load(ones);
        int t = 0, step = TDot.Count;
        while (t <= k - step)
        {
            TAcc s = TDot.Zero;
            for (int steps = 0; steps < TDot.StepsPerFlush && t <= k - step; steps++, t += step)
                s = TDot.Dot(s, one, TDot.Load(q + t));
            d += TDot.Sum4(s, TDot.Zero, TDot.Zero, TDot.Zero);
        }
        int sum = d.GetElement(0);
        for (; t < k; t++)
            sum += q[t];
        return sum;
    }
}
