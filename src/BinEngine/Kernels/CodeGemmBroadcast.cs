using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// The per-width, per-instruction part of the int8 kernels (<see cref="CodeGemmBroadcast{TDot, TAcc, TBytes}"/> is written
/// once against it): a vector of <see cref="Lanes"/> 32-bit lanes, lane l holding 4 consecutive weight bytes
/// b ∈ {0, 1} of output column l (<see cref="BinaryWeights.GroupedBytes"/>), multiplied by the same 4 signed codes
/// broadcast to every lane, products summed within the lane.
/// </summary>
internal interface IByteLanes<TAcc, TBytes> where TAcc : struct where TBytes : struct
{
    /// <summary>The kernel's name (code-avx2-vnni, …).</summary>
    static abstract string Name { get; }
    static abstract KernelIsa Isa { get; }
    static abstract bool IsSupported { get; }

    /// <summary>Output columns per vector (one 32-bit lane each): 8 for 256 bits, 16 for 512.</summary>
    static abstract int Lanes { get; }

    /// <summary>Steps an accumulator takes before <see cref="Flush"/> must widen it (int.MaxValue: never overflows).</summary>
    static abstract int StepsPerFlush { get; }

    static abstract TAcc Zero { get; }

    /// <summary>4·Lanes bytes.</summary>
    static abstract unsafe TBytes Load(void* p);

    /// <summary>The 4 bytes at <paramref name="p"/> in every 32-bit lane.</summary>
    static abstract unsafe TBytes Broadcast(void* p);

    /// <summary>acc + Σ of each lane's 4 products b·q (unsigned weight bytes, codes read as signed).</summary>
    static abstract TAcc Dot(TAcc acc, TBytes w, TBytes q);

    /// <summary>totals[l] += lane l of <paramref name="acc"/> widened to 32 bits, l &lt; Lanes.</summary>
    static abstract unsafe void Flush(TAcc acc, int* totals);
}

/// <summary>
/// AVX-VNNI (vpdpbusd): a lane's 4 byte products added into it in one instruction. 32-bit lanes cannot overflow
/// (|Σ b·q| ≤ 128·K), so no flushes. 256-bit only: .NET 10 exposes VNNI on 512-bit vectors through AVX10 alone, which
/// the machines we measured do not report.
/// </summary>
internal readonly struct VnniLanes256 : IByteLanes<Vector256<int>, Vector256<byte>>
{
    public static string Name => "code-avx2-vnni";
    public static KernelIsa Isa => KernelIsa.Avx2;
    public static bool IsSupported => AvxVnni.IsSupported;
    public static int Lanes => 8;
    public static int StepsPerFlush => int.MaxValue;
    public static Vector256<int> Zero => Vector256<int>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Load(void* p) => Vector256.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Broadcast(void* p) => Avx2.BroadcastScalarToVector256((int*)p).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> w, Vector256<byte> q) => AvxVnni.MultiplyWideningAndAdd(acc, w, q.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Flush(Vector256<int> acc, int* totals) => (Vector256.Load(totals) + acc).Store(totals);
}

/// <summary>
/// AVX2 vpmaddubsw: a lane's 4 products as two 16-bit pair sums. |b·q| ≤ 128, so a pair is at most 256 in magnitude and
/// a 16-bit half can take 127 steps before it could overflow; flushed every 64 (vpmaddwd by 1 joins the halves in 32 bits).
/// </summary>
internal readonly struct MaddUbsLanes256 : IByteLanes<Vector256<short>, Vector256<byte>>
{
    public static string Name => "code-avx2-maddubs";
    public static KernelIsa Isa => KernelIsa.Avx2;
    public static bool IsSupported => Avx2.IsSupported;
    public static int Lanes => 8;
    public static int StepsPerFlush => 64;
    public static Vector256<short> Zero => Vector256<short>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Load(void* p) => Vector256.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Broadcast(void* p) => Avx2.BroadcastScalarToVector256((int*)p).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Dot(Vector256<short> acc, Vector256<byte> w, Vector256<byte> q) => acc + Avx2.MultiplyAddAdjacent(w, q.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Flush(Vector256<short> acc, int* totals) =>
        (Vector256.Load(totals) + Avx2.MultiplyAddAdjacent(acc, Vector256.Create((short)1))).Store(totals);
}

/// <summary>AVX-512BW vpmaddubsw: <see cref="MaddUbsLanes256"/> on 16 columns a vector.</summary>
internal readonly struct MaddUbsLanes512 : IByteLanes<Vector512<short>, Vector512<byte>>
{
    public static string Name => "code-avx512-maddubs";
    public static KernelIsa Isa => KernelIsa.Avx512;
    public static bool IsSupported => Avx512BW.IsSupported;
    public static int Lanes => 16;
    public static int StepsPerFlush => 64;
    public static Vector512<short> Zero => Vector512<short>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Load(void* p) => Vector512.Load((byte*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Broadcast(void* p) => Vector512.Create(*(int*)p).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> Dot(Vector512<short> acc, Vector512<byte> w, Vector512<byte> q) => acc + Avx512BW.MultiplyAddAdjacent(w, q.AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Flush(Vector512<short> acc, int* totals) =>
        (Vector512.Load(totals) + Avx512BW.MultiplyAddAdjacent(acc, Vector512.Create((short)1))).Store(totals);
}

/// <summary>
/// Int8 W1Ak written once for every byte-lane instruction <typeparamref name="TDot"/>, in the layout of oneDNN's int8
/// kernels rather than row dot products: each 32-bit lane of an accumulator is one output column, so a step loads two
/// weight vectors (2·Lanes columns × 4 elements, <see cref="BinaryWeights.GroupedBytes"/>), broadcasts 4 codes of each
/// of 4 activation rows, and issues 8 multiply-adds into 8 accumulators (4 rows × 2·Lanes columns) that end as the
/// outputs themselves: no horizontal sums. (The row-dot layout it replaced ended every 4 outputs with 3 horizontal adds
/// on the port the multiply-adds also use, and ran at 0.4–1.0× this rate on the engine's shapes, M 16–64, K and N
/// 256–512; bench/README.md, "Levers".) Then B·q = 2·Σ b·q − Σ q
/// (<see cref="CodeGemm"/>), Σ q by the same multiply-add against bytes of 1.
/// </summary>
internal sealed class CodeGemmBroadcast<TDot, TAcc, TBytes> : CodeGemm where TDot : IByteLanes<TAcc, TBytes> where TAcc : struct where TBytes : struct
{
    /// <inheritdoc/>
    public override string Name => TDot.Name;
    /// <inheritdoc/>
    public override KernelIsa Isa => TDot.Isa;
    /// <inheritdoc/>
    public override bool IsSupported => TDot.IsSupported;

    /// <summary>Two accumulators of Lanes columns per row: 16 or 32 columns, a multiple of the layout's 16-row blocks.</summary>
    internal override int ColBlock => 2 * TDot.Lanes;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        sbyte* a = (sbyte*)g.A;
        byte* w = (byte*)g.W;
        int* c = (int*)g.C;
        int k = g.K, ldc = g.N, lanes = TDot.Lanes, cols = 2 * lanes;
        int* sumQ = stackalloc int[PlaneSums.RowChunk];
        int* totals = stackalloc int[4 * 32];
        for (int i0 = m0; i0 < m1; i0 += PlaneSums.RowChunk)
        {
            int i1 = Math.Min(m1, i0 + PlaneSums.RowChunk);
            for (int i = i0; i < i1; i++)
                sumQ[i - i0] = SumOfCodes(a + (long)i * k, k);
            // n0 is a multiple of ColBlock (GemmThreads splits N in ColBlocks), so j starts a 16-row block.
            for (int j = n0; j < n1; j += cols)
            {
                // Columns j.. and j + Lanes..: at 256 bits the upper half of the same 64-byte groups, at 512 the next
                // 16-row block (the layout pads N to 32 rows, so it exists).
                byte* p0 = w + BinaryWeights.GroupedRowOffset(j, k), p1 = w + BinaryWeights.GroupedRowOffset(j + lanes, k);
                int width = Math.Min(cols, n1 - j);
                for (int i = i0; i < i1; i += 4)
                {
                    // Fewer than 4 rows left: the missing ones repeat the last real row and are dropped, which
                    // costs less than a one-row block (2 accumulator chains: latency-bound).
                    int rows = Math.Min(4, i1 - i);
                    sbyte* a0 = a + (long)i * k;
                    Block4(a0, a0 + (long)Math.Min(1, rows - 1) * k, a0 + (long)Math.Min(2, rows - 1) * k, a0 + (long)Math.Min(3, rows - 1) * k,
                        k, p0, p1, totals);
                    for (int r = 0; r < rows; r++)
                        Write(totals + r * cols, sumQ[i + r - i0], c + (long)(i + r) * ldc + j, width);
                }
            }
        }
    }

    /// <summary>c[l] = 2·totals[l] − Σq for the block's <paramref name="width"/> real columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Write(int* totals, int sumQ, int* c, int width)
    {
        int l = 0;
        Vector256<int> s = Vector256.Create(sumQ);
        for (; l + 8 <= width; l += 8)
        {
            Vector256<int> t = Vector256.Load(totals + l);
            (t + t - s).Store(c + l);
        }
        for (; l < width; l++) c[l] = 2 * totals[l] - sumQ;
    }

    /// <summary>
    /// The last, partial group of 4 codes of a row (K mod 4 ≠ 0) copied into <paramref name="scratch"/> with zeros after K:
    /// the weights are zero there, but reading past the row could run off the end of the buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe sbyte* TailGroup(sbyte* row, int k, int* scratch)
    {
        *scratch = 0;
        for (int t = k & ~3; t < k; t++) ((sbyte*)scratch)[t & 3] = row[t];
        return (sbyte*)scratch;
    }

    /// <summary>totals[r·2L + l] = Σ_t b_l[t]·q_r[t] for 4 activation rows of k codes and the block's 2·Lanes columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block4(sbyte* a0, sbyte* a1, sbyte* a2, sbyte* a3, int k, byte* p0, byte* p1, int* totals)
    {
        int cols = 2 * TDot.Lanes, full = k >> 2, groups = BinaryWeights.ByteGroupCount(k);
        new Span<int>(totals, 4 * cols).Clear();
        int g = 0;
        while (g < full)
        {
            TAcc s00 = TDot.Zero, s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
            for (int end = (int)Math.Min(full, (long)g + TDot.StepsPerFlush); g < end; g++)
            {
                long o = (long)g * BinaryWeights.GroupBytes;
                TBytes w0 = TDot.Load(p0 + o), w1 = TDot.Load(p1 + o);
                TBytes q = TDot.Broadcast(a0 + 4 * g);
                s00 = TDot.Dot(s00, w0, q); s01 = TDot.Dot(s01, w1, q);
                q = TDot.Broadcast(a1 + 4 * g);
                s10 = TDot.Dot(s10, w0, q); s11 = TDot.Dot(s11, w1, q);
                q = TDot.Broadcast(a2 + 4 * g);
                s20 = TDot.Dot(s20, w0, q); s21 = TDot.Dot(s21, w1, q);
                q = TDot.Broadcast(a3 + 4 * g);
                s30 = TDot.Dot(s30, w0, q); s31 = TDot.Dot(s31, w1, q);
            }
            int l = TDot.Lanes;
            TDot.Flush(s00, totals); TDot.Flush(s01, totals + l);
            TDot.Flush(s10, totals + cols); TDot.Flush(s11, totals + cols + l);
            TDot.Flush(s20, totals + 2 * cols); TDot.Flush(s21, totals + 2 * cols + l);
            TDot.Flush(s30, totals + 3 * cols); TDot.Flush(s31, totals + 3 * cols + l);
        }
        if (full < groups)
        {
            int scratch;
            long o = (long)full * BinaryWeights.GroupBytes;
            TBytes w0 = TDot.Load(p0 + o), w1 = TDot.Load(p1 + o);
            sbyte** rows = stackalloc sbyte*[] { a0, a1, a2, a3 };
            for (int r = 0; r < 4; r++)
            {
                TBytes q = TDot.Broadcast(TailGroup(rows[r], k, &scratch));
                TDot.Flush(TDot.Dot(TDot.Zero, w0, q), totals + r * cols);
                TDot.Flush(TDot.Dot(TDot.Zero, w1, q), totals + r * cols + TDot.Lanes);
            }
        }
    }

    /// <summary>Σ_t q[t]: the multiply-add against bytes of 1, 4·Lanes codes a step, the rest one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int SumOfCodes(sbyte* q, int k)
    {
        int* lanes = stackalloc int[16];
        new Span<int>(lanes, 16).Clear();
        int ones = 0x01010101;
        TBytes one = TDot.Broadcast(&ones);
        int t = 0, step = 4 * TDot.Lanes;
        while (t <= k - step)
        {
            TAcc s = TDot.Zero;
            for (int steps = 0; steps < TDot.StepsPerFlush && t <= k - step; steps++, t += step)
                s = TDot.Dot(s, one, TDot.Load(q + t));
            TDot.Flush(s, lanes);
        }
        int sum = 0;
        for (int l = 0; l < TDot.Lanes; l++) sum += lanes[l];
        for (; t < k; t++)
            sum += q[t];
        return sum;
    }
}
