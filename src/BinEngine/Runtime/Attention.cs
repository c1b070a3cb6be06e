using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// Softmax attention of one sample over its own n tokens, every head: out_i = Σ_j softmax_j(Q_i·K_j / √d_h) V_j,
/// head h owning columns [h·d_h, (h+1)·d_h) of rows that are <c>stride</c> floats apart (the residual layout).
/// </summary>
/// <remarks>
/// Two paths, chosen by n alone (so a sample's result never depends on its batch):
/// <list type="bullet">
/// <item><see cref="Direct"/> (n ≤ <see cref="DirectMaxTokens"/>): per query row and head, the n scores are dot
/// products read straight from the strided Q and K rows, the stable softmax runs on that one row, and the output
/// row is Σ_j p_j V_j accumulated in registers and stored once into its columns: no copies, no transposes, no
/// GEMM calls. Short sentences (median ≈ 24 tokens, d_h = 64) spent most of their attention time in the per-head
/// copies and in kernel-call overheads of 25 × 25 × 64 GEMMs (bench/README.md, "stage profile", "Levers").</item>
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
    /// <summary>Longest sample the direct path takes; measured, bench/README.md "Levers".</summary>
    public const int DirectMaxTokens = 48;

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

    /// <summary>The direct path (see the class remarks); <paramref name="scores"/> needs n·n floats (one head's scores).</summary>
    public static unsafe void Direct(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int n, int stride, int heads, int dh, Span<float> scores, KernelIsa isa)
    {
        long needed = (long)(n - 1) * stride + (long)heads * dh;
        if (n < 1 || heads * dh > stride || q.Length < needed || k.Length < needed || v.Length < needed || output.Length < needed
            || scores.Length < (long)n * n)
            throw new ArgumentException("attention spans too short for n rows of the given stride and heads");
        float scale = 1f / MathF.Sqrt(dh);
        Span<float> sums = n <= 256 ? stackalloc float[n] : new float[n];
        fixed (float* q0 = q, k0 = k, v0 = v, o0 = output, s0 = scores)
        {
            for (int head = 0; head < heads; head++)
            {
                int c0 = head * dh;
                // All of a head's score rows first, then all of its weighted sums: K_h and V_h are n rows `stride` floats
                // apart (1 KiB at d = 256), which fall into a few L1 sets; reading both for every query evicted one with
                // the other from ≈ 25 tokens on (measured: the cost per row doubled between 16 and 25 tokens).
                for (int i = 0; i < n; i++)
                {
                    float* s = s0 + i * n;
                    float max = Scores(q0 + i * stride + c0, k0 + c0, stride, n, dh, scale, s, isa);
                    // The max-shifted softmax of ForwardPass.StableSoftmax, its division moved after the weighted sum:
                    // out = (Σ_j e_j V_j) / Σ_j e_j with e_j = exp(s_j − max), one pass less over the row.
                    sums[i] = ExpShifted(s, n, max, isa);
                }
                for (int i = 0; i < n; i++)
                    WeightedSum(s0 + i * n, n, v0 + c0, stride, dh, sums[i], o0 + i * stride + c0, isa);
            }
        }
    }

    // Each step below dispatches once on the width cap to one generic body (IFloatLanes: the per-width operations),
    // then finishes the rows or columns the vectors left with plain loops, which are also the Scalar reference.

    /// <summary>s_j = (q · k_j) · scale for the n rows k_j = k + j·stride (dh floats each); returns max_j s_j (NaN if any is).</summary>
    internal static unsafe float Scores(float* q, float* k, int stride, int n, int dh, float scale, float* s, KernelIsa isa)
    {
        int j = 0;
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported && dh >= Lanes512.Count)
            j = ScoresLanes<Lanes512, Vector512<float>>(q, k, stride, n, dh, scale, s);
        else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported && dh >= Lanes256.Count)
            j = ScoresLanes<Lanes256, Vector256<float>>(q, k, stride, n, dh, scale, s);
        else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported && dh >= Lanes128.Count)
            j = ScoresLanes<Lanes128, Vector128<float>>(q, k, stride, n, dh, scale, s);
        for (; j < n; j++)
        {
            float* kj = k + j * stride;
            float d0 = 0f;
            for (int c = 0; c < dh; c++)
                d0 += q[c] * kj[c];
            s[j] = d0 * scale;
        }
        return TensorPrimitives.Max(new ReadOnlySpan<float>(s, n)); // vectorised; a scalar MathF.Max chain cost more than the dot products
    }

    /// <summary>
    /// The scores of the keys in groups of four (one q load feeds four FMAs; one <see cref="IFloatLanes{TVec}.Reduce4"/>
    /// finishes four dot products), the last dh mod L products of each added one by one; returns how many keys it did
    /// (all of them: the single-key loop takes what the groups leave).
    /// </summary>
    private static unsafe int ScoresLanes<TLanes, TVec>(float* q, float* k, int stride, int n, int dh, float scale, float* s)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count, j = 0;
        for (; j + 4 <= n; j += 4)
        {
            float* k1 = k + j * stride;
            TVec a0 = TLanes.Zero, a1 = a0, a2 = a0, a3 = a0;
            int c = 0;
            for (; c + w <= dh; c += w)
            {
                TVec qv = TLanes.Load(q + c);
                a0 = TLanes.FusedMultiplyAdd(qv, TLanes.Load(k1 + c), a0);
                a1 = TLanes.FusedMultiplyAdd(qv, TLanes.Load(k1 + c + stride), a1);
                a2 = TLanes.FusedMultiplyAdd(qv, TLanes.Load(k1 + c + 2 * stride), a2);
                a3 = TLanes.FusedMultiplyAdd(qv, TLanes.Load(k1 + c + 3 * stride), a3);
            }
            Vector128<float> sums = TLanes.Reduce4(a0, a1, a2, a3);
            float d0 = sums.GetElement(0), d1 = sums.GetElement(1), d2 = sums.GetElement(2), d3 = sums.GetElement(3);
            for (; c < dh; c++)
            {
                float qc = q[c];
                d0 += qc * k1[c];
                d1 += qc * k1[c + stride];
                d2 += qc * k1[c + 2 * stride];
                d3 += qc * k1[c + 3 * stride];
            }
            s[j] = d0 * scale;
            s[j + 1] = d1 * scale;
            s[j + 2] = d2 * scale;
            s[j + 3] = d3 * scale;
        }
        for (; j < n; j++)
        {
            float* kj = k + j * stride;
            TVec a0 = TLanes.Zero;
            int c = 0;
            for (; c + w <= dh; c += w)
                a0 = TLanes.FusedMultiplyAdd(TLanes.Load(q + c), TLanes.Load(kj + c), a0);
            float d0 = TLanes.Sum(a0);
            for (; c < dh; c++)
                d0 += q[c] * kj[c];
            s[j] = d0 * scale;
        }
        return j;
    }

    /// <summary>s_j ← exp(s_j − max) in place over n scores; returns Σ_j s_j (the vector widths' Exp, MathF.Exp on the tail).</summary>
    internal static unsafe float ExpShifted(float* s, int n, float max, KernelIsa isa)
    {
        int j = 0;
        float sum = 0f;
        // widest first, then the narrower widths on what is left (a 25-score row: 16 + 8 + 1)
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            sum += ExpShiftedLanes<Lanes512, Vector512<float>>(s, n, max, ref j);
        if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            sum += ExpShiftedLanes<Lanes256, Vector256<float>>(s, n, max, ref j);
        if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            sum += ExpShiftedLanes<Lanes128, Vector128<float>>(s, n, max, ref j);
        for (; j < n; j++)
            sum += s[j] = MathF.Exp(s[j] - max);
        return sum;
    }

    private static unsafe float ExpShiftedLanes<TLanes, TVec>(float* s, int n, float max, ref int j)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        TVec m = TLanes.Create(max), acc = TLanes.Zero;
        for (; j + TLanes.Count <= n; j += TLanes.Count)
        {
            TVec e = TLanes.Exp(TLanes.Subtract(TLanes.Load(s + j), m));
            TLanes.Store(e, s + j);
            acc = TLanes.Add(acc, e);
        }
        return TLanes.Sum(acc);
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
