namespace BinEngine.Kernels;

/// <summary>
/// W1A1: C[i, j] = B_j · s_i for packed ±1 activation rows s_i (A, M rows) and packed ±1 weight rows B_j (W, N rows).
/// </summary>
/// <remarks>
/// With bit 1 = +1, a position contributes +1 where the bits agree and −1 where they differ, so over the K real
/// positions B·s = (K − d) − d = K − 2d with d = popcount(b XOR s). Padding bits are 0 in both rows, XOR to 0 and add
/// nothing to d.
/// </remarks>
internal abstract class XnorGemm : GemmKernel
{
    /// <summary>C[M, N] (row-major, M·N ints) = K − 2·popcount(A_i XOR W_j).</summary>
    /// <param name="a">M packed rows of RowWords(k) words.</param>
    /// <param name="m">Activation rows.</param>
    /// <param name="w">N packed weight rows of RowWords(k) words.</param>
    /// <param name="n">Weight rows (outputs).</param>
    /// <param name="k">Unpadded row length in elements.</param>
    /// <param name="c">Output, at least M·N.</param>
    /// <param name="threads">Threads to split over N (and M); 1 runs on the calling thread.</param>
    public unsafe void Multiply(ReadOnlySpan<ulong> a, int m, ReadOnlySpan<ulong> w, int n, int k, Span<int> c, int threads = 1)
    {
        ThrowIfUnsupported();
        GemmValidation.Shape(m, n, k);
        int words = BitPacking.RowWords(k);
        BitPacking.CheckLength(a.Length, (long)m * words, nameof(a));
        BitPacking.CheckLength(w.Length, (long)n * words, nameof(w));
        BitPacking.CheckLength(c.Length, (long)m * n, nameof(c));
        BitPacking.AssertPadding(a, m, k);
        BitPacking.AssertPadding(w, n, k);
        fixed (ulong* pa = a)
        fixed (ulong* pw = w)
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, M = m, N = n, K = k };
            GemmThreads.Run(this, g, threads, (long)m * n * words);
        }
    }

    /// <summary>C[M, N] = K − 2·popcount(A_i XOR W_j) with prepared weights (the fast path of the blocked kernels).</summary>
    public unsafe void Multiply(ReadOnlySpan<ulong> a, int m, BinaryWeights w, Span<int> c, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowIfUnsupported();
        GemmValidation.Shape(m, w.N, w.K);
        BitPacking.CheckLength(a.Length, (long)m * w.RowWords, nameof(a));
        BitPacking.CheckLength(c.Length, (long)m * w.N, nameof(c));
        BitPacking.AssertPadding(a, m, w.K);
        fixed (ulong* pa = a)
        fixed (ulong* pw = w.RowMajor)
        fixed (ulong* pi = w.Interleaved)
        fixed (byte* pg = w.LookupGroupBlocks(LookupLayout))
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, WInterleaved = pi, WLookupGroups = pg, C = pc, M = m, N = w.N, K = w.K };
            GemmThreads.Run(this, g, threads, (long)m * w.N * w.RowWords);
        }
    }

    /// <summary>The regrouped weight layout this kernel reads (<see cref="BinaryWeights.LookupGroupBlocks"/>); none for most.</summary>
    internal virtual LookupLayouts LookupLayout => LookupLayouts.None;

    /// <summary>True when this kernel can apply a linear layer's epilogue to these weights' products as it stores them.</summary>
    public virtual bool FusesEpilogue(BinaryWeights w) => false;

    /// <summary>
    /// y[i, o] = p_io · (α_o · s_i) + b_o with p = K − 2·popcount(A_i XOR W_o): the product and the linear layer's
    /// epilogue (Runtime's Epilogue.ScaleBias: p converted to float, α_o · s_i rounded first, then an unfused multiply
    /// and add, so the same bits) in one call, for the kernels whose <see cref="FusesEpilogue"/> is true.
    /// </summary>
    public unsafe void MultiplyScaled(ReadOnlySpan<ulong> a, int m, BinaryWeights w, ReadOnlySpan<float> scales,
        ReadOnlySpan<float> alpha, ReadOnlySpan<float> bias, Span<float> y, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowIfUnsupported();
        if (!FusesEpilogue(w)) throw new NotSupportedException($"kernel {Name} does not apply the epilogue to these weights");
        GemmValidation.Shape(m, w.N, w.K);
        BitPacking.CheckLength(a.Length, (long)m * w.RowWords, nameof(a));
        BitPacking.CheckLength(scales.Length, m, nameof(scales));
        BitPacking.CheckLength(alpha.Length, w.N, nameof(alpha));
        BitPacking.CheckLength(bias.Length, w.N, nameof(bias));
        BitPacking.CheckLength(y.Length, (long)m * w.N, nameof(y));
        BitPacking.AssertPadding(a, m, w.K);
        fixed (ulong* pa = a)
        fixed (ulong* pw = w.RowMajor)
        fixed (byte* pg = w.LookupGroupBlocks(LookupLayout))
        fixed (float* ps = scales, pal = alpha, pb = bias, py = y)
        {
            var g = new GemmArgs { A = pa, W = pw, WLookupGroups = pg, M = m, N = w.N, K = w.K, Scales = ps, Alpha = pal, Bias = pb, Y = py };
            GemmThreads.Run(this, g, threads, (long)m * w.N * w.RowWords);
        }
    }
}
