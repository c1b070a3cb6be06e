using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// Softmax attention of one sample over its own n tokens, every head: out_i = Σ_j softmax_j(Q_i·K_j / √d_h) V_j,
/// head h owning columns [h·d_h, (h+1)·d_h) of rows that are <c>stride</c> floats apart (the residual layout).
/// </summary>
/// <remarks>
/// Two paths, chosen by n alone (so a sample's result never depends on its batch):
/// <list type="bullet">
/// <item><see cref="Direct"/> (n ≤ <see cref="DirectMaxTokens"/>): per head, the head's keys are copied transposed
/// (d_h × n′, n′ = n rounded up to 32) and every score row is Σ_c q_ic · Kᵀ_c, vectors of keys at a time with no
/// horizontal reduction; the stable softmax runs on each row, and the output row is Σ_j p_j V_j accumulated in
/// registers and stored once into its columns: no other copies, no V transpose, no GEMM calls. Short sentences
/// (median ≈ 24 tokens, d_h = 64) spent most of their attention time in the per-head copies and in kernel-call
/// overheads of 25 × 25 × 64 GEMMs, then in the four-way reductions of per-key dot products (bench/README.md,
/// "stage profile", "Levers").</item>
/// <item><see cref="Gemm"/> (longer samples): each head's columns copied into contiguous blocks (V transposed) and
/// two FP32 GEMMs, S = Q_h K_hᵀ and O_h = P V_h, where the kernel's register blocking pays for the copies.</item>
/// </list>
/// Both compute the same formula in the same order of operations per score (dot product, then × 1/√d_h, then the
/// max-shifted softmax of <see cref="ForwardPass.StableSoftmax"/>); they differ only in the summation order inside
/// the dot products and the weighted sums, i.e. by float rounding. The <c>isa</c> argument caps the vector width of
/// the direct path's dot products and weighted sums (the plan passes <see cref="ExecutionPlan.HelperIsa"/>);
/// <see cref="KernelIsa.Scalar"/> is the plain-loop reference the vector widths are tested against.
/// </remarks>
internal static class Attention
{
    /// <summary>
    /// Longest sample the direct path takes (`bench -- attention`, bench/README.md "Levers": with the transposed-key
    /// scores and the four-query weighted sums it is 1.4–2.2× the copies + SGEMMs from 25 to 192 tokens, the longest
    /// measured; 48 before them).
    /// </summary>
    public const int DirectMaxTokens = 192;

    /// <summary>One sample: <paramref name="q"/>, <paramref name="k"/>, <paramref name="v"/> and <paramref name="output"/> start at its first row.</summary>
    public static void Sample(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int n, int stride, int heads, int dh, in GemmScratch gemm, Sgemm sgemm, KernelIsa isa)
    {
        if (n <= DirectMaxTokens)
            Direct(q, k, v, output, n, stride, heads, dh, gemm.Scores, isa);
        else
            Gemm(q, k, v, output, n, stride, heads, dh, gemm, sgemm);
    }

    /// <summary>The workspace blocks the GEMM path copies a head into (and the scores row(s) both paths use).</summary>
    public readonly ref struct GemmScratch(Span<float> headQ, Span<float> headK, Span<float> headVt, Span<float> headOut, Span<float> scores)
    {
        public readonly Span<float> HeadQ = headQ, HeadK = headK, HeadVt = headVt, HeadOut = headOut, Scores = scores;
    }

    /// <summary>The copy + two-GEMM path (one head at a time; see the class remarks).</summary>
    public static void Gemm(ReadOnlySpan<float> qs, ReadOnlySpan<float> ks, ReadOnlySpan<float> vs, Span<float> output,
        int n, int stride, int heads, int dh, in GemmScratch scratch, Sgemm sgemm)
    {
        float scale = 1f / MathF.Sqrt(dh);
        Span<float> q = scratch.HeadQ[..(n * dh)], k = scratch.HeadK[..(n * dh)];
        Span<float> vt = scratch.HeadVt[..(dh * n)], scores = scratch.Scores[..(n * n)], headOut = scratch.HeadOut[..(n * dh)];
        for (int head = 0; head < heads; head++)
        {
            int c0 = head * dh;
            for (int t = 0; t < n; t++)
            {
                int row = t * stride + c0;
                qs.Slice(row, dh).CopyTo(q.Slice(t * dh, dh));
                ks.Slice(row, dh).CopyTo(k.Slice(t * dh, dh));
                for (int c = 0; c < dh; c++)
                    vt[c * n + t] = vs[row + c];
            }
            sgemm.Multiply(q, n, k, n, dh, scores);
            for (int i = 0; i < n; i++)
            {
                Span<float> si = scores.Slice(i * n, n);
                TensorPrimitives.Multiply(si, scale, si);
                ForwardPass.StableSoftmax(si, si);
            }
            sgemm.Multiply(scores, n, vt, dh, n, headOut);
            for (int t = 0; t < n; t++)
                headOut.Slice(t * dh, dh).CopyTo(output.Slice(t * stride + c0, dh));
        }
    }

    /// <summary>Keys rounded up to a whole number of 32-float groups: the width of the direct path's Kᵀ and score rows.</summary>
    private static int PaddedKeys(int n) => (n + 31) & ~31;

    /// <summary>Floats of scratch <see cref="Direct"/> needs: one head's Kᵀ (d_h × n′) and its scores (n × n′), n′ = n rounded up to 32.</summary>
    public static long DirectScratch(int n, int dh) => (long)PaddedKeys(n) * (dh + n);

    /// <summary>Floats of score scratch a sample of up to <paramref name="t"/> tokens needs on either path: t² (copies + SGEMMs) or <see cref="DirectScratch"/>.</summary>
    public static long ScoresScratch(int t, int dh) => Math.Max((long)t * t, DirectScratch(Math.Min(t, DirectMaxTokens), dh));

    /// <summary>The direct path (see the class remarks); <paramref name="scratch"/> holds <see cref="DirectScratch"/> floats.</summary>
    public static unsafe void Direct(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int n, int stride, int heads, int dh, Span<float> scratch, KernelIsa isa)
    {
        long needed = (long)(n - 1) * stride + (long)heads * dh;
        if (n < 1 || heads * dh > stride || q.Length < needed || k.Length < needed || v.Length < needed || output.Length < needed
            || scratch.Length < DirectScratch(n, dh))
            throw new ArgumentException("attention spans too short for n rows of the given stride and heads");
        float scale = 1f / MathF.Sqrt(dh);
        int np = PaddedKeys(n);
        Span<float> sums = n <= 256 ? stackalloc float[n] : new float[n];
        fixed (float* q0 = q, k0 = k, v0 = v, o0 = output, kt = scratch, s0 = scratch[(dh * np)..], divisors = sums)
        {
            for (int head = 0; head < heads; head++)
            {
                int c0 = head * dh;
                // All of a head's score rows first, then all of its weighted sums: K_h and V_h are n rows `stride` floats
                // apart (1 KiB at d = 256), which fall into a few L1 sets; reading both for every query evicted one with
                // the other from ≈ 25 tokens on (measured: the cost per row doubled between 16 and 25 tokens).
                Scores(q0 + c0, k0 + c0, stride, n, dh, scale, kt, s0, isa);
                SoftmaxNumerators(s0, n, np, divisors, isa);
                WeightedSums(s0, np, n, v0 + c0, stride, dh, divisors, o0 + c0, isa);
            }
        }
    }

    // Each step below dispatches once on the width cap to one generic body (IFloatLanes: the per-width operations),
    // then finishes the rows or columns the vectors left with plain loops, which are also the Scalar reference.

    /// <summary>
    /// One head's scores s_ij = (q_i · k_j) · scale for the n query rows q_i = q + i·stride and key rows k_j = k + j·stride
    /// (dh floats each) into the rows s + i·n′ (n′ = n rounded up to 32; columns n … n′ − 1 are scratch). The vector
    /// widths first copy the head's keys transposed into <paramref name="kt"/> (dh × n′, padding zero), so a score row is
    /// Σ_c q_ic · Kᵀ_c: broadcasts and FMAs down whole vectors of keys, four queries at a time, with no horizontal
    /// reduction (the dot-product form spent ≈ 13 cycles a score on its four-way reductions and extracts; bench/README.md,
    /// "Levers"). Each score is then the FMA chain over c in order, times scale; the scalar reference rounds the
    /// products and sums separately, so the two differ by float rounding only.
    /// </summary>
    internal static unsafe void Scores(float* q, float* k, int stride, int n, int dh, float scale, float* kt, float* s, KernelIsa isa)
    {
        int np = PaddedKeys(n);
        if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            TransposeKeys(k, stride, n, dh, kt, isa);
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            ScoresLanes<Lanes512, Vector512<float>>(q, stride, n, dh, scale, kt, s);
        else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            ScoresLanes<Lanes256, Vector256<float>>(q, stride, n, dh, scale, kt, s);
        else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            ScoresLanes<Lanes128, Vector128<float>>(q, stride, n, dh, scale, kt, s);
        else
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    float* qi = q + i * stride, kj = k + j * stride;
                    float d0 = 0f;
                    for (int c = 0; c < dh; c++)
                        d0 += qi[c] * kj[c];
                    s[i * np + j] = d0 * scale;
                }
    }

    /// <summary>
    /// Kᵀ: the head's n key rows (k + j·stride, dh floats each) as dh rows of n′ = n rounded up to 32 floats at kt + c·n′,
    /// columns n … n′ − 1 zero. 16 × 16 (AVX-512) or 8 × 8 (AVX2) tiles transposed in registers where dh allows, key rows
    /// past n read as zero (which writes the padding); else one float at a time. A strided scalar copy cost ≈ 2 cycles a
    /// float, about half of the scores' time at 25 tokens (bench -- attention).
    /// </summary>
    private static unsafe void TransposeKeys(float* k, int stride, int n, int dh, float* kt, KernelIsa isa)
    {
        int np = PaddedKeys(n);
        if (isa == KernelIsa.Avx512 && Avx512F.IsSupported && dh % 16 == 0)
        {
            for (int j0 = 0; j0 < np; j0 += 16)
                for (int c0 = 0; c0 < dh; c0 += 16)
                    Transpose16(k + (long)j0 * stride + c0, stride, n - j0, kt + c0 * np + j0, np);
            return;
        }
        if (isa >= KernelIsa.Avx2 && Avx.IsSupported && dh % 8 == 0)
        {
            for (int j0 = 0; j0 < np; j0 += 8)
                for (int c0 = 0; c0 < dh; c0 += 8)
                    Transpose8(k + (long)j0 * stride + c0, stride, n - j0, kt + c0 * np + j0, np);
            return;
        }
        for (int c = 0; c < dh; c++)
        {
            float* row = kt + c * np;
            for (int j = 0; j < n; j++)
                row[j] = k[j * stride + c];
            for (int j = n; j < np; j++)
                row[j] = 0f;
        }
    }

    /// <summary>
    /// Row r of the 16 × 16 tile at src (rows <paramref name="stride"/> apart, those at r ≥ <paramref name="rows"/> read as
    /// zero) becomes column r at dst (rows <paramref name="dstRow"/> apart). Within each 128-bit lane, groups of four
    /// rows are 4 × 4-transposed by unpacks and shuffles (g_m: lane L holds column 4L + m of the group's rows); then the
    /// four groups' lanes are 4 × 4-transposed by two rounds of vshuff32x4 (0x88 takes lanes 0 and 2 of each operand,
    /// 0xDD lanes 1 and 3), which leaves column 4L + m in output L of the m-th set. 64 shuffles for 256 floats.
    /// </summary>
    private static unsafe void Transpose16(float* src, int stride, int rows, float* dst, int dstRow)
    {
        Group4(src, stride, rows, 0, out Vector512<float> a0, out Vector512<float> a1, out Vector512<float> a2, out Vector512<float> a3);
        Group4(src, stride, rows, 4, out Vector512<float> b0, out Vector512<float> b1, out Vector512<float> b2, out Vector512<float> b3);
        Group4(src, stride, rows, 8, out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3);
        Group4(src, stride, rows, 12, out Vector512<float> d0, out Vector512<float> d1, out Vector512<float> d2, out Vector512<float> d3);
        Lanes4(a0, b0, c0, d0, dst, dstRow, 0);
        Lanes4(a1, b1, c1, d1, dst, dstRow, 1);
        Lanes4(a2, b2, c2, d2, dst, dstRow, 2);
        Lanes4(a3, b3, c3, d3, dst, dstRow, 3);
    }

    private static unsafe Vector512<float> Row512(float* src, int stride, int rows, int r) =>
        r < rows ? Vector512.Load(src + (long)r * stride) : Vector512<float>.Zero;

    /// <summary>Rows r0 … r0 + 3 transposed within each 128-bit lane: g_m lane L = (row r0 … r0 + 3, column 4L + m).</summary>
    private static unsafe void Group4(float* src, int stride, int rows, int r0,
        out Vector512<float> g0, out Vector512<float> g1, out Vector512<float> g2, out Vector512<float> g3)
    {
        Vector512<float> x0 = Row512(src, stride, rows, r0), x1 = Row512(src, stride, rows, r0 + 1);
        Vector512<float> x2 = Row512(src, stride, rows, r0 + 2), x3 = Row512(src, stride, rows, r0 + 3);
        Vector512<float> t0 = Avx512F.UnpackLow(x0, x1), t1 = Avx512F.UnpackHigh(x0, x1);   // r0[0] r1[0] r0[1] r1[1] | r0[2] r1[2] r0[3] r1[3]
        Vector512<float> t2 = Avx512F.UnpackLow(x2, x3), t3 = Avx512F.UnpackHigh(x2, x3);
        g0 = Avx512F.Shuffle(t0, t2, 0x44);
        g1 = Avx512F.Shuffle(t0, t2, 0xEE);
        g2 = Avx512F.Shuffle(t1, t3, 0x44);
        g3 = Avx512F.Shuffle(t1, t3, 0xEE);
    }

    /// <summary>The four groups' g_m (rows 0–3, 4–7, 8–11, 12–15): columns m, 4 + m, 8 + m, 12 + m stored as dst rows.</summary>
    private static unsafe void Lanes4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* dst, int dstRow, int m)
    {
        Vector512<float> u0 = Avx512F.Shuffle4x128(a, b, 0x88), u1 = Avx512F.Shuffle4x128(a, b, 0xDD);
        Vector512<float> u2 = Avx512F.Shuffle4x128(c, d, 0x88), u3 = Avx512F.Shuffle4x128(c, d, 0xDD);
        Avx512F.Shuffle4x128(u0, u2, 0x88).Store(dst + (long)m * dstRow);
        Avx512F.Shuffle4x128(u1, u3, 0x88).Store(dst + (long)(4 + m) * dstRow);
        Avx512F.Shuffle4x128(u0, u2, 0xDD).Store(dst + (long)(8 + m) * dstRow);
        Avx512F.Shuffle4x128(u1, u3, 0xDD).Store(dst + (long)(12 + m) * dstRow);
    }

    /// <summary>The 8 × 8 form of <see cref="Transpose16"/>: the in-lane 4 × 4 steps, then vperm2f128 joins the halves.</summary>
    private static unsafe void Transpose8(float* src, int stride, int rows, float* dst, int dstRow)
    {
        Vector256<float> x0 = Row256(src, stride, rows, 0), x1 = Row256(src, stride, rows, 1), x2 = Row256(src, stride, rows, 2), x3 = Row256(src, stride, rows, 3);
        Vector256<float> x4 = Row256(src, stride, rows, 4), x5 = Row256(src, stride, rows, 5), x6 = Row256(src, stride, rows, 6), x7 = Row256(src, stride, rows, 7);
        Vector256<float> t0 = Avx.UnpackLow(x0, x1), t1 = Avx.UnpackHigh(x0, x1), t2 = Avx.UnpackLow(x2, x3), t3 = Avx.UnpackHigh(x2, x3);
        Vector256<float> t4 = Avx.UnpackLow(x4, x5), t5 = Avx.UnpackHigh(x4, x5), t6 = Avx.UnpackLow(x6, x7), t7 = Avx.UnpackHigh(x6, x7);
        Vector256<float> g0 = Avx.Shuffle(t0, t2, 0x44), g1 = Avx.Shuffle(t0, t2, 0xEE), g2 = Avx.Shuffle(t1, t3, 0x44), g3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> h0 = Avx.Shuffle(t4, t6, 0x44), h1 = Avx.Shuffle(t4, t6, 0xEE), h2 = Avx.Shuffle(t5, t7, 0x44), h3 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(g0, h0, 0x20).Store(dst);
        Avx.Permute2x128(g1, h1, 0x20).Store(dst + dstRow);
        Avx.Permute2x128(g2, h2, 0x20).Store(dst + 2L * dstRow);
        Avx.Permute2x128(g3, h3, 0x20).Store(dst + 3L * dstRow);
        Avx.Permute2x128(g0, h0, 0x31).Store(dst + 4L * dstRow);
        Avx.Permute2x128(g1, h1, 0x31).Store(dst + 5L * dstRow);
        Avx.Permute2x128(g2, h2, 0x31).Store(dst + 6L * dstRow);
        Avx.Permute2x128(g3, h3, 0x31).Store(dst + 7L * dstRow);
    }

    private static unsafe Vector256<float> Row256(float* src, int stride, int rows, int r) =>
        r < rows ? Vector256.Load(src + (long)r * stride) : Vector256<float>.Zero;

    /// <summary>See <see cref="Scores"/>: <see cref="Tile4x2"/> tiles of four queries × two vectors of keys over Kᵀ, then the queries left one at a time.</summary>
    private static unsafe void ScoresLanes<TLanes, TVec>(float* q, int stride, int n, int dh, float scale, float* kt, float* s)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count, np = PaddedKeys(n); // 2w divides 32, so n′ is a whole number of key-vector pairs
        TVec sc = TLanes.Create(scale);
        float* scales = stackalloc float[] { scale, scale, scale, scale };
        int i = 0;
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < np; j += 2 * w)
                Tile4x2<TLanes, TVec>(q + i * stride, stride, kt + j, np, dh, scales, divide: false, s + i * np + j, np);
        for (; i < n; i++)
        {
            float* qi = q + i * stride;
            for (int j = 0; j < np; j += 2 * w)
            {
                TVec a0 = TLanes.Zero, a1 = a0;
                float* kc = kt + j;
                for (int c = 0; c < dh; c++, kc += np)
                {
                    TVec b = TLanes.Create(qi[c]);
                    a0 = TLanes.FusedMultiplyAdd(b, TLanes.Load(kc), a0);
                    a1 = TLanes.FusedMultiplyAdd(b, TLanes.Load(kc + w), a1);
                }
                TLanes.Store(TLanes.Multiply(a0, sc), s + i * np + j);
                TLanes.Store(TLanes.Multiply(a1, sc), s + i * np + j + w);
            }
        }
    }

    /// <summary>
    /// The max-shifted softmax of <see cref="ForwardPass.StableSoftmax"/> on each of the n score rows (s + i·n′), its
    /// division moved after the weighted sum: e_ij = exp(s_ij − max_j s_ij) in place and Σ_j e_ij into sums[i], so
    /// out_i = (Σ_j e_ij V_j) / Σ_j e_ij, one pass less over the row. The vector widths read each row in whole vectors
    /// (n′ is a multiple of 32) with the padding lanes n … n′ − 1 replaced by −∞ in registers (a scalar store of −∞ and
    /// a vector load over it would stall store forwarding): −∞ leaves the max alone and its exp is 0. The scalar
    /// reference loops over the n scores with MathF.Exp.
    /// </summary>
    internal static unsafe void SoftmaxNumerators(float* s, int n, int np, float* sums, KernelIsa isa)
    {
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            SoftmaxNumeratorsLanes<Lanes512, Vector512<float>>(s, n, np, sums);
        else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            SoftmaxNumeratorsLanes<Lanes256, Vector256<float>>(s, n, np, sums);
        else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            SoftmaxNumeratorsLanes<Lanes128, Vector128<float>>(s, n, np, sums);
        else
            for (int i = 0; i < n; i++)
            {
                float* row = s + i * np;
                float max = row[0], sum = 0f;
                for (int j = 1; j < n; j++)
                    max = MathF.Max(max, row[j]);
                for (int j = 0; j < n; j++)
                    sum += row[j] = MathF.Exp(row[j] - max);
                sums[i] = sum;
            }
    }

    private static unsafe void SoftmaxNumeratorsLanes<TLanes, TVec>(float* s, int n, int np, float* sums)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        // Two rows at a time: a row is a short chain (max, a horizontal max, exp's ≈ 15 dependent operations, a horizontal
        // sum) that left the vector units idle; two independent chains in one loop body overlap. Each row's values and
        // order of operations are those of the one-row loop below, so the bits are the same.
        int w = TLanes.Count, i = 0;
        for (; i + 2 <= n; i += 2)
        {
            float* row0 = s + i * np, row1 = row0 + np;
            TVec m0 = TLanes.Create(float.NegativeInfinity), m1 = m0;
            for (int j = 0; j < n; j += w)
            {
                m0 = TLanes.Max(m0, TLanes.FillFrom(TLanes.Load(row0 + j), n - j, float.NegativeInfinity));
                m1 = TLanes.Max(m1, TLanes.FillFrom(TLanes.Load(row1 + j), n - j, float.NegativeInfinity));
            }
            TVec max0 = TLanes.Create(TLanes.MaxAcross(m0)), max1 = TLanes.Create(TLanes.MaxAcross(m1));
            TVec acc0 = TLanes.Zero, acc1 = TLanes.Zero;
            for (int j = 0; j < n; j += w)
            {
                TVec e0 = TLanes.Exp(TLanes.Subtract(TLanes.FillFrom(TLanes.Load(row0 + j), n - j, float.NegativeInfinity), max0));
                TVec e1 = TLanes.Exp(TLanes.Subtract(TLanes.FillFrom(TLanes.Load(row1 + j), n - j, float.NegativeInfinity), max1));
                TLanes.Store(e0, row0 + j);
                TLanes.Store(e1, row1 + j);
                acc0 = TLanes.Add(acc0, e0);
                acc1 = TLanes.Add(acc1, e1);
            }
            sums[i] = TLanes.Sum(acc0);
            sums[i + 1] = TLanes.Sum(acc1);
        }
        for (; i < n; i++)
        {
            float* row = s + i * np;
            TVec m = TLanes.Create(float.NegativeInfinity);
            for (int j = 0; j < n; j += w)
                m = TLanes.Max(m, TLanes.FillFrom(TLanes.Load(row + j), n - j, float.NegativeInfinity));
            TVec max = TLanes.Create(TLanes.MaxAcross(m)), acc = TLanes.Zero;
            for (int j = 0; j < n; j += w)
            {
                TVec e = TLanes.Exp(TLanes.Subtract(TLanes.FillFrom(TLanes.Load(row + j), n - j, float.NegativeInfinity), max));
                TLanes.Store(e, row + j);
                acc = TLanes.Add(acc, e);
            }
            sums[i] = TLanes.Sum(acc);
        }
    }

    /// <summary>
    /// o_i = (Σ_j p_ij · v_j) / divisor_i for the n queries i (rows p + i·<paramref name="np"/>, outputs o + i·stride) over the
    /// n value rows v_j = v + j·stride (dh floats each): four queries at a time on two vectors of columns (eight
    /// independent FMA chains, each value row loaded once for the four; one query's four chains of 25 dependent FMAs
    /// were bound by their latency), the rest one query at a time. Every output is the same FMA chain over j in order
    /// either way, so the bits do not depend on the grouping.
    /// </summary>
    internal static unsafe void WeightedSums(float* p, int np, int n, float* v, int stride, int dh, float* divisors, float* o, KernelIsa isa)
    {
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            int c = 0;
            if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
                c = WeightedSumsTile<Lanes512, Vector512<float>>(p + i * np, np, n, v, stride, dh, divisors + i, o + i * stride);
            else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
                c = WeightedSumsTile<Lanes256, Vector256<float>>(p + i * np, np, n, v, stride, dh, divisors + i, o + i * stride);
            else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
                c = WeightedSumsTile<Lanes128, Vector128<float>>(p + i * np, np, n, v, stride, dh, divisors + i, o + i * stride);
            if (c < dh)
                for (int r = i; r < i + 4; r++)
                    WeightedSum(p + r * np, n, v + c, stride, dh - c, divisors[r], o + r * stride + c, isa);
        }
        for (; i < n; i++)
            WeightedSum(p + i * np, n, v, stride, dh, divisors[i], o + i * stride, isa);
    }

    /// <summary><see cref="Tile4x2"/> tiles of four queries × two vectors of columns (see <see cref="WeightedSums"/>); returns the columns done.</summary>
    private static unsafe int WeightedSumsTile<TLanes, TVec>(float* p, int np, int n, float* v, int stride, int dh, float* divisors, float* o)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count, c = 0;
        for (; c + 2 * w <= dh; c += 2 * w)
            Tile4x2<TLanes, TVec>(p, np, v + c, stride, n, divisors, divide: true, o + c, stride);
        return c;
    }

    /// <summary>
    /// The micro-kernel of both attention products: four rows × two vectors, out_r = (Σ_t a_r[t] · b_t) ∘ f_r with
    /// a_r = a + r·<paramref name="aRow"/> (t consecutive), b_t the two vectors at b + t·<paramref name="bRow"/>, and ∘
    /// a multiplication (scores: × 1/√d_h) or a division (weighted sums: ÷ Σ_j e_j), stored at o + r·<paramref name="oRow"/>.
    /// Eight independent FMA chains, each b vector loaded once for the four rows, each output the FMA chain over t in order.
    /// </summary>
    private static unsafe void Tile4x2<TLanes, TVec>(float* a, int aRow, float* b, int bRow, int depth, float* f, bool divide, float* o, int oRow)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        float* a0 = a, a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow, bt = b;
        int w = TLanes.Count;
        TVec c00 = TLanes.Zero, c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int t = 0; t < depth; t++, bt += bRow)
        {
            TVec b0 = TLanes.Load(bt), b1 = TLanes.Load(bt + w);
            TVec x = TLanes.Create(a0[t]);
            c00 = TLanes.FusedMultiplyAdd(x, b0, c00);
            c01 = TLanes.FusedMultiplyAdd(x, b1, c01);
            x = TLanes.Create(a1[t]);
            c10 = TLanes.FusedMultiplyAdd(x, b0, c10);
            c11 = TLanes.FusedMultiplyAdd(x, b1, c11);
            x = TLanes.Create(a2[t]);
            c20 = TLanes.FusedMultiplyAdd(x, b0, c20);
            c21 = TLanes.FusedMultiplyAdd(x, b1, c21);
            x = TLanes.Create(a3[t]);
            c30 = TLanes.FusedMultiplyAdd(x, b0, c30);
            c31 = TLanes.FusedMultiplyAdd(x, b1, c31);
        }
        StorePair<TLanes, TVec>(c00, c01, f[0], divide, o);
        StorePair<TLanes, TVec>(c10, c11, f[1], divide, o + oRow);
        StorePair<TLanes, TVec>(c20, c21, f[2], divide, o + 2 * oRow);
        StorePair<TLanes, TVec>(c30, c31, f[3], divide, o + 3 * oRow);
    }

    private static unsafe void StorePair<TLanes, TVec>(TVec c0, TVec c1, float f, bool divide, float* o)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        TVec fv = TLanes.Create(f);
        TLanes.Store(divide ? TLanes.Divide(c0, fv) : TLanes.Multiply(c0, fv), o);
        TLanes.Store(divide ? TLanes.Divide(c1, fv) : TLanes.Multiply(c1, fv), o + TLanes.Count);
    }

    /// <summary>o = (Σ_j p_j · v_j) / <paramref name="divisor"/> over the n rows v_j = v + j·stride (dh floats each), in j order.</summary>
    internal static unsafe void WeightedSum(float* p, int n, float* v, int stride, int dh, float divisor, float* o, KernelIsa isa)
    {
        int c = 0;
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            c = WeightedSumLanes<Lanes512, Vector512<float>>(p, n, v, stride, dh, divisor, o);
        else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            c = WeightedSumLanes<Lanes256, Vector256<float>>(p, n, v, stride, dh, divisor, o);
        else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            c = WeightedSumLanes<Lanes128, Vector128<float>>(p, n, v, stride, dh, divisor, o);
        for (; c < dh; c++)
        {
            float a = 0f;
            for (int j = 0; j < n; j++)
                a += p[j] * v[j * stride + c];
            o[c] = a / divisor;
        }
    }

    /// <summary>Four vectors of output columns at a time (four independent FMA chains over j), then one; returns the columns done.</summary>
    private static unsafe int WeightedSumLanes<TLanes, TVec>(float* p, int n, float* v, int stride, int dh, float divisor, float* o)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count, c = 0;
        TVec div = TLanes.Create(divisor);
        for (; c + 4 * w <= dh; c += 4 * w)
        {
            TVec a0 = TLanes.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < n; j++)
            {
                TVec pj = TLanes.Create(p[j]);
                float* vj = v + j * stride + c;
                a0 = TLanes.FusedMultiplyAdd(pj, TLanes.Load(vj), a0);
                a1 = TLanes.FusedMultiplyAdd(pj, TLanes.Load(vj + w), a1);
                a2 = TLanes.FusedMultiplyAdd(pj, TLanes.Load(vj + 2 * w), a2);
                a3 = TLanes.FusedMultiplyAdd(pj, TLanes.Load(vj + 3 * w), a3);
            }
            TLanes.Store(TLanes.Divide(a0, div), o + c);
            TLanes.Store(TLanes.Divide(a1, div), o + c + w);
            TLanes.Store(TLanes.Divide(a2, div), o + c + 2 * w);
            TLanes.Store(TLanes.Divide(a3, div), o + c + 3 * w);
        }
        for (; c + w <= dh; c += w)
        {
            TVec a0 = TLanes.Zero;
            for (int j = 0; j < n; j++)
                a0 = TLanes.FusedMultiplyAdd(TLanes.Create(p[j]), TLanes.Load(v + j * stride + c), a0);
            TLanes.Store(TLanes.Divide(a0, div), o + c);
        }
        return c;
    }
}
