namespace BinEngine.Kernels;

/// <summary>W1A32: C[i, j] = Σ_t B_jt·A_it for float activations A[M, K] and packed ±1 weight rows B_j.</summary>
internal abstract class SignGemm : GemmKernel
{
    /// <summary>C[M, N] = A · Bᵀ with B the ±1 matrix packed in <paramref name="w"/>.</summary>
    /// <param name="a">A[M, K] row-major floats.</param>
    /// <param name="m">Activation rows.</param>
    /// <param name="w">N packed weight rows of RowWords(k) words.</param>
    /// <param name="n">Weight rows.</param>
    /// <param name="k">Row length.</param>
    /// <param name="c">Output C[M, N], at least M·N.</param>
    /// <param name="threads">Threads; 1 runs on the calling thread.</param>
    public unsafe void Multiply(ReadOnlySpan<float> a, int m, ReadOnlySpan<ulong> w, int n, int k, Span<float> c, int threads = 1)
    {
        ThrowIfUnsupported();
        GemmValidation.Shape(m, n, k);
        int words = BitPacking.RowWords(k);
        BitPacking.CheckLength(a.Length, (long)m * k, nameof(a));
        BitPacking.CheckLength(w.Length, (long)n * words, nameof(w));
        BitPacking.CheckLength(c.Length, (long)m * n, nameof(c));
        fixed (float* pa = a)
        fixed (ulong* pw = w)
        fixed (float* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, M = m, N = n, K = k };
            GemmThreads.Run(this, g, threads, (long)m * n * k / 8);
        }
    }

    /// <summary>C[M, N] = A · Bᵀ with prepared weights (reads their row-major rows).</summary>
    public void Multiply(ReadOnlySpan<float> a, int m, BinaryWeights w, Span<float> c, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(w);
        Multiply(a, m, w.RowMajor, w.N, w.K, c, threads);
    }
}
