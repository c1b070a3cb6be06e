namespace BinEngine.Kernels;

/// <summary>FP32 SGEMM C[M, N] = A[M, K] · W[N, K]ᵀ (weights rows = outputs, like nn.Linear).</summary>
internal abstract class Sgemm : GemmKernel
{
    /// <summary>C[M, N] = A · Wᵀ, all row-major floats.</summary>
    /// <param name="a">A[M, K].</param>
    /// <param name="m">Rows of A.</param>
    /// <param name="w">W[N, K].</param>
    /// <param name="n">Rows of W (outputs).</param>
    /// <param name="k">Shared length.</param>
    /// <param name="c">C[M, N], at least M·N.</param>
    /// <param name="threads">Threads; 1 runs on the calling thread.</param>
    public unsafe void Multiply(ReadOnlySpan<float> a, int m, ReadOnlySpan<float> w, int n, int k, Span<float> c, int threads = 1)
    {
        ThrowIfUnsupported();
        GemmValidation.Shape(m, n, k);
        BitPacking.CheckLength(a.Length, (long)m * k, nameof(a));
        BitPacking.CheckLength(w.Length, (long)n * k, nameof(w));
        BitPacking.CheckLength(c.Length, (long)m * n, nameof(c));
        fixed (float* pa = a)
        fixed (float* pw = w)
        fixed (float* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, M = m, N = n, K = k };
            GemmThreads.Run(this, g, threads, (long)m * n * k / 8);
        }
    }
}
