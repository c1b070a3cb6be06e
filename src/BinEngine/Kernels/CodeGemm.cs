namespace BinEngine.Kernels;

/// <summary>
/// W1Ak for any k ≤ 8 through int8 multiply-adds: C[i, j] = B_j · q_i, exact, from the activation codes themselves
/// (one signed byte each, A[M, K] row-major) and the weights as bytes b ∈ {0, 1} (<see cref="BinaryWeights.GroupedBytes"/>,
/// built with withBytes).
/// </summary>
/// <remarks>
/// With B = 2b − 1: B·q = 2·Σ_t b_t·q_t − Σ_t q_t. The sum Σ b·q is what an unsigned-by-signed byte multiply-add
/// (vpmaddubsw) computes, two products per 16-bit lane; |b·q| ≤ 128, so a pair is at most 256 in magnitude and a 16-bit
/// lane can take 127 such pairs before it could overflow; the kernels widen every 64. VNNI's vpdpbusd adds 4 products
/// straight into a 32-bit lane and never needs to.
/// </remarks>
internal abstract class CodeGemm : GemmKernel
{
    /// <summary>C[M, N] = B·q exactly.</summary>
    /// <param name="codes">A[M, K] row-major signed bytes (the quantizer's integer codes).</param>
    /// <param name="m">Activation rows.</param>
    /// <param name="w">Weights prepared with withBytes: true.</param>
    /// <param name="c">Output, at least M·N.</param>
    /// <param name="threads">Threads; 1 runs on the calling thread.</param>
    public unsafe void Multiply(ReadOnlySpan<sbyte> codes, int m, BinaryWeights w, Span<int> c, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowIfUnsupported();
        if (!w.HasBytes) throw new ArgumentException("the int8 kernels need BinaryWeights built with withBytes: true", nameof(w));
        GemmValidation.Shape(m, w.N, w.K);
        BitPacking.CheckLength(codes.Length, (long)m * w.K, nameof(codes));
        BitPacking.CheckLength(c.Length, (long)m * w.N, nameof(c));
        fixed (sbyte* pa = codes)
        fixed (byte* pw = w.GroupedBytes)
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, M = m, N = w.N, K = w.K };
            GemmThreads.Run(this, g, threads, (long)m * w.N * w.K / 32);
        }
    }
}
