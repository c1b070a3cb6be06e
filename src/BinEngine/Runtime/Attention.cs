using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
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
    public static void Direct(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int n, int stride, int heads, int dh, Span<float> scores, KernelIsa isa)
    {
        long needed = (long)(n - 1) * stride + (long)heads * dh;
        if (n < 1 || heads * dh > stride || q.Length < needed || k.Length < needed || v.Length < needed || output.Length < needed
            || scores.Length < (long)n * n)
            throw new ArgumentException("attention spans too short for n rows of the given stride and heads");
        float scale = 1f / MathF.Sqrt(dh);
        Span<float> sums = n <= 256 ? stackalloc float[n] : new float[n];
        ref float k0 = ref MemoryMarshal.GetReference(k);
        ref float v0 = ref MemoryMarshal.GetReference(v);
        for (int head = 0; head < heads; head++)
        {
            int c0 = head * dh;
            // All of a head's score rows first, then all of its weighted sums: K_h and V_h are n rows `stride` floats
            // apart (1 KiB at d = 256), which fall into a few L1 sets; reading both for every query evicted one with
            // the other from ≈ 25 tokens on (measured: the cost per row doubled between 16 and 25 tokens).
            for (int i = 0; i < n; i++)
            {
                Span<float> s = scores.Slice(i * n, n);
                float max = Scores(q.Slice(i * stride + c0, dh), ref Unsafe.Add(ref k0, c0), stride, n, dh, scale, s, isa);
                // The max-shifted softmax of ForwardPass.StableSoftmax, its division moved after the weighted sum:
                // out = (Σ_j e_j V_j) / Σ_j e_j with e_j = exp(s_j − max), one pass less over the row.
                sums[i] = ExpShifted(s, max, isa);
            }
            for (int i = 0; i < n; i++)
                WeightedSum(scores.Slice(i * n, n), ref Unsafe.Add(ref v0, c0), stride, dh, sums[i], output.Slice(i * stride + c0, dh), isa);
        }
    }

    /// <summary>s_j = (q · k_j) · scale for the n rows k_j = k[j·stride ..][..dh]; returns max_j s_j (NaN if any is).</summary>
    internal static float Scores(ReadOnlySpan<float> q, ref float k, int stride, int n, int dh, float scale, Span<float> s, KernelIsa isa)
    {
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float sr = ref MemoryMarshal.GetReference(s);
        int j = 0;
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated && dh >= Vector512<float>.Count)
        {
            const int W = 16;
            for (; j + 4 <= n; j += 4)
            {
                ref float k1 = ref Unsafe.Add(ref k, j * stride);
                Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                int c = 0;
                for (; c + W <= dh; c += W)
                {
                    Vector512<float> qv = Vector512.LoadUnsafe(ref qr, (nuint)c);
                    a0 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k1, (nuint)c), a0);
                    a1 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k1, (nuint)(c + stride)), a1);
                    a2 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k1, (nuint)(c + 2 * stride)), a2);
                    a3 = Vector512.FusedMultiplyAdd(qv, Vector512.LoadUnsafe(ref k1, (nuint)(c + 3 * stride)), a3);
                }
                Vector128<float> sums = Sum4(Fold(Fold(a0)), Fold(Fold(a1)), Fold(Fold(a2)), Fold(Fold(a3)));
                float d0 = sums.GetElement(0), d1 = sums.GetElement(1), d2 = sums.GetElement(2), d3 = sums.GetElement(3);
                for (; c < dh; c++)
                {
                    float qc = Unsafe.Add(ref qr, c);
                    d0 += qc * Unsafe.Add(ref k1, c);
                    d1 += qc * Unsafe.Add(ref k1, c + stride);
                    d2 += qc * Unsafe.Add(ref k1, c + 2 * stride);
                    d3 += qc * Unsafe.Add(ref k1, c + 3 * stride);
                }
                Unsafe.Add(ref sr, j) = d0 * scale;
                Unsafe.Add(ref sr, j + 1) = d1 * scale;
                Unsafe.Add(ref sr, j + 2) = d2 * scale;
                Unsafe.Add(ref sr, j + 3) = d3 * scale;
            }
            for (; j < n; j++)
            {
                ref float kj = ref Unsafe.Add(ref k, j * stride);
                Vector512<float> a0 = Vector512<float>.Zero;
                int c = 0;
                for (; c + W <= dh; c += W)
                    a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref qr, (nuint)c), Vector512.LoadUnsafe(ref kj, (nuint)c), a0);
                float d0 = Vector128.Sum(Fold(Fold(a0)));
                for (; c < dh; c++)
                    d0 += Unsafe.Add(ref qr, c) * Unsafe.Add(ref kj, c);
                Unsafe.Add(ref sr, j) = d0 * scale;
            }
        }
        else if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated && dh >= Vector256<float>.Count)
        {
            const int W = 8;
            for (; j + 4 <= n; j += 4)
            {
                ref float k1 = ref Unsafe.Add(ref k, j * stride);
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                int c = 0;
                for (; c + W <= dh; c += W)
                {
                    Vector256<float> qv = Vector256.LoadUnsafe(ref qr, (nuint)c);
                    a0 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k1, (nuint)c), a0);
                    a1 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k1, (nuint)(c + stride)), a1);
                    a2 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k1, (nuint)(c + 2 * stride)), a2);
                    a3 = Vector256.FusedMultiplyAdd(qv, Vector256.LoadUnsafe(ref k1, (nuint)(c + 3 * stride)), a3);
                }
                Vector128<float> sums = Sum4(Fold(a0), Fold(a1), Fold(a2), Fold(a3));
                float d0 = sums.GetElement(0), d1 = sums.GetElement(1), d2 = sums.GetElement(2), d3 = sums.GetElement(3);
                for (; c < dh; c++)
                {
                    float qc = Unsafe.Add(ref qr, c);
                    d0 += qc * Unsafe.Add(ref k1, c);
                    d1 += qc * Unsafe.Add(ref k1, c + stride);
                    d2 += qc * Unsafe.Add(ref k1, c + 2 * stride);
                    d3 += qc * Unsafe.Add(ref k1, c + 3 * stride);
                }
                Unsafe.Add(ref sr, j) = d0 * scale;
                Unsafe.Add(ref sr, j + 1) = d1 * scale;
                Unsafe.Add(ref sr, j + 2) = d2 * scale;
                Unsafe.Add(ref sr, j + 3) = d3 * scale;
            }
            for (; j < n; j++)
            {
                ref float kj = ref Unsafe.Add(ref k, j * stride);
                Vector256<float> a0 = Vector256<float>.Zero;
                int c = 0;
                for (; c + W <= dh; c += W)
                    a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref qr, (nuint)c), Vector256.LoadUnsafe(ref kj, (nuint)c), a0);
                float d0 = Vector128.Sum(Fold(a0));
                for (; c < dh; c++)
                    d0 += Unsafe.Add(ref qr, c) * Unsafe.Add(ref kj, c);
                Unsafe.Add(ref sr, j) = d0 * scale;
            }
        }
        else if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated && dh >= Vector128<float>.Count)
        {
            // multiply then add (not fused: Vector128 may run where FMA is emulated)
            const int W = 4;
            for (; j < n; j++)
            {
                ref float kj = ref Unsafe.Add(ref k, j * stride);
                Vector128<float> a0 = Vector128<float>.Zero;
                int c = 0;
                for (; c + W <= dh; c += W)
                    a0 += Vector128.LoadUnsafe(ref qr, (nuint)c) * Vector128.LoadUnsafe(ref kj, (nuint)c);
                float d0 = Vector128.Sum(a0);
                for (; c < dh; c++)
                    d0 += Unsafe.Add(ref qr, c) * Unsafe.Add(ref kj, c);
                Unsafe.Add(ref sr, j) = d0 * scale;
            }
        }
        for (; j < n; j++)
        {
            ref float kj = ref Unsafe.Add(ref k, j * stride);
            float d0 = 0f;
            for (int c = 0; c < dh; c++)
                d0 += Unsafe.Add(ref qr, c) * Unsafe.Add(ref kj, c);
            Unsafe.Add(ref sr, j) = d0 * scale;
        }
        return TensorPrimitives.Max(s[..n]); // vectorised; a scalar MathF.Max chain cost more than the dot products
    }

    /// <summary>s_j ← exp(s_j − max) in place; returns Σ_j s_j (one pass, the vector widths' Exp, MathF.Exp on the tail).</summary>
    internal static float ExpShifted(Span<float> s, float max, KernelIsa isa)
    {
        int n = s.Length, j = 0;
        ref float sr = ref MemoryMarshal.GetReference(s);
        float sum = 0f;
        // widest first, then the narrower widths on what is left (a 25-score row: 16 + 8 + 1)
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(max), acc = Vector512<float>.Zero;
            for (; j + Vector512<float>.Count <= n; j += Vector512<float>.Count)
            {
                Vector512<float> e = Vector512.Exp(Vector512.LoadUnsafe(ref sr, (nuint)j) - m);
                e.StoreUnsafe(ref sr, (nuint)j);
                acc += e;
            }
            sum += Vector512.Sum(acc);
        }
        if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(max), acc = Vector256<float>.Zero;
            for (; j + Vector256<float>.Count <= n; j += Vector256<float>.Count)
            {
                Vector256<float> e = Vector256.Exp(Vector256.LoadUnsafe(ref sr, (nuint)j) - m);
                e.StoreUnsafe(ref sr, (nuint)j);
                acc += e;
            }
            sum += Vector256.Sum(acc);
        }
        if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
        {
            Vector128<float> m = Vector128.Create(max), acc = Vector128<float>.Zero;
            for (; j + Vector128<float>.Count <= n; j += Vector128<float>.Count)
            {
                Vector128<float> e = Vector128.Exp(Vector128.LoadUnsafe(ref sr, (nuint)j) - m);
                e.StoreUnsafe(ref sr, (nuint)j);
                acc += e;
            }
            sum += Vector128.Sum(acc);
        }
        for (; j < n; j++)
            sum += Unsafe.Add(ref sr, j) = MathF.Exp(Unsafe.Add(ref sr, j) - max);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fold(Vector512<float> a) => a.GetLower() + a.GetUpper();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fold(Vector256<float> a) => a.GetLower() + a.GetUpper();

    /// <summary>The four horizontal sums [Σx0, Σx1, Σx2, Σx3] at once (three pairwise adds on SSE3, else one sum each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector128<float> x0, Vector128<float> x1, Vector128<float> x2, Vector128<float> x3)
    {
        if (Sse3.IsSupported)
            return Sse3.HorizontalAdd(Sse3.HorizontalAdd(x0, x1), Sse3.HorizontalAdd(x2, x3));
        if (AdvSimd.Arm64.IsSupported)
            return AdvSimd.Arm64.AddPairwise(AdvSimd.Arm64.AddPairwise(x0, x1), AdvSimd.Arm64.AddPairwise(x2, x3));
        return Vector128.Create(Vector128.Sum(x0), Vector128.Sum(x1), Vector128.Sum(x2), Vector128.Sum(x3));
    }

    /// <summary>o = (Σ_j p_j · v_j) / <paramref name="divisor"/> over the n rows v_j = v[j·stride ..][..dh], in j order.</summary>
    internal static void WeightedSum(ReadOnlySpan<float> p, ref float v, int stride, int dh, float divisor, Span<float> o, KernelIsa isa)
    {
        int n = p.Length;
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float or = ref MemoryMarshal.GetReference(o);
        int c = 0;
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
        {
            const int W = 16;
            for (; c + 4 * W <= dh; c += 4 * W)
            {
                Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                ref float vc = ref Unsafe.Add(ref v, c);
                for (int j = 0; j < n; j++)
                {
                    Vector512<float> pj = Vector512.Create(Unsafe.Add(ref pr, j));
                    ref float vj = ref Unsafe.Add(ref vc, j * stride);
                    a0 = Vector512.FusedMultiplyAdd(pj, Vector512.LoadUnsafe(ref vj), a0);
                    a1 = Vector512.FusedMultiplyAdd(pj, Vector512.LoadUnsafe(ref vj, W), a1);
                    a2 = Vector512.FusedMultiplyAdd(pj, Vector512.LoadUnsafe(ref vj, 2 * W), a2);
                    a3 = Vector512.FusedMultiplyAdd(pj, Vector512.LoadUnsafe(ref vj, 3 * W), a3);
                }
                (a0 / divisor).StoreUnsafe(ref or, (nuint)c);
                (a1 / divisor).StoreUnsafe(ref or, (nuint)(c + W));
                (a2 / divisor).StoreUnsafe(ref or, (nuint)(c + 2 * W));
                (a3 / divisor).StoreUnsafe(ref or, (nuint)(c + 3 * W));
            }
            for (; c + W <= dh; c += W)
            {
                Vector512<float> a0 = Vector512<float>.Zero;
                ref float vc = ref Unsafe.Add(ref v, c);
                for (int j = 0; j < n; j++)
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref pr, j)), Vector512.LoadUnsafe(ref Unsafe.Add(ref vc, j * stride)), a0);
                (a0 / divisor).StoreUnsafe(ref or, (nuint)c);
            }
        }
        else if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
        {
            const int W = 8;
            for (; c + 4 * W <= dh; c += 4 * W)
            {
                Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                ref float vc = ref Unsafe.Add(ref v, c);
                for (int j = 0; j < n; j++)
                {
                    Vector256<float> pj = Vector256.Create(Unsafe.Add(ref pr, j));
                    ref float vj = ref Unsafe.Add(ref vc, j * stride);
                    a0 = Vector256.FusedMultiplyAdd(pj, Vector256.LoadUnsafe(ref vj), a0);
                    a1 = Vector256.FusedMultiplyAdd(pj, Vector256.LoadUnsafe(ref vj, W), a1);
                    a2 = Vector256.FusedMultiplyAdd(pj, Vector256.LoadUnsafe(ref vj, 2 * W), a2);
                    a3 = Vector256.FusedMultiplyAdd(pj, Vector256.LoadUnsafe(ref vj, 3 * W), a3);
                }
                (a0 / divisor).StoreUnsafe(ref or, (nuint)c);
                (a1 / divisor).StoreUnsafe(ref or, (nuint)(c + W));
                (a2 / divisor).StoreUnsafe(ref or, (nuint)(c + 2 * W));
                (a3 / divisor).StoreUnsafe(ref or, (nuint)(c + 3 * W));
            }
            for (; c + W <= dh; c += W)
            {
                Vector256<float> a0 = Vector256<float>.Zero;
                ref float vc = ref Unsafe.Add(ref v, c);
                for (int j = 0; j < n; j++)
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(Unsafe.Add(ref pr, j)), Vector256.LoadUnsafe(ref Unsafe.Add(ref vc, j * stride)), a0);
                (a0 / divisor).StoreUnsafe(ref or, (nuint)c);
            }
        }
        else if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
        {
            const int W = 4;
            for (; c + W <= dh; c += W)
            {
                Vector128<float> a0 = Vector128<float>.Zero;
                ref float vc = ref Unsafe.Add(ref v, c);
                for (int j = 0; j < n; j++)
                    a0 += Vector128.Create(Unsafe.Add(ref pr, j)) * Vector128.LoadUnsafe(ref Unsafe.Add(ref vc, j * stride));
                (a0 / divisor).StoreUnsafe(ref or, (nuint)c);
            }
        }
        for (; c < dh; c++)
        {
            float a = 0f;
            for (int j = 0; j < n; j++)
                a += Unsafe.Add(ref pr, j) * Unsafe.Add(ref v, j * stride + c);
            Unsafe.Add(ref or, c) = a / divisor;
        }
    }
}
