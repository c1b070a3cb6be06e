namespace BinEngine.Kernels;

/// <summary>
/// W1A1: C[i, j] = B_j · s_i for packed ±1 activation rows s_i (A, M rows) and packed ±1 weight rows B_j (W, N rows).
/// </summary>
/// <remarks>
/// With bit 1 = +1, a position contributes +1 where the bits agree and −1 where they differ, so over the K real
/// positions B·s = (K − d) − d = K − 2d with d = popcount(b XOR s). Padding bits are 0 in both rows, XOR to 0 and add
/// nothing to d.
/// </remarks>
public abstract class XnorGemm : GemmKernel
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
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, WInterleaved = pi, C = pc, M = m, N = w.N, K = w.K };
            GemmThreads.Run(this, g, threads, (long)m * w.N * w.RowWords);
        }
    }
}

/// <summary>
/// W1Ak, k = 2..8: C[i, j] = B_j · q_i, exact, for packed ±1 weight rows B_j and k-bit activation codes q_i given as
/// bit planes (<see cref="BitPacking.PackPlanes"/>).
/// </summary>
/// <remarks>
/// The bit-plane identity. With u = q + m ∈ [0, 2m] stored as planes P_p (u = Σ_p 2^p·P_p) and B = 2b − 1:
/// B·q = Σ_i (2b_i − 1)(u_i − m) = 2·Σ_i b_i·u_i − Σ_i u_i − m·Σ_i B_i
///     = 2·Σ_p 2^p·popcount(b AND P_p) − Σ_p 2^p·popcount(P_p) − m·rowsum(B).
/// rowsum(B) = 2·popcount(b) − K depends only on the weights (<see cref="BitPacking.RowSums"/>, once per matrix); the
/// middle term only on the activation row. Padding is 0 in b and in every plane, so it adds to no popcount.
/// </remarks>
public abstract class PlaneGemm : GemmKernel
{
    /// <summary>C[M, N] = B·q exactly.</summary>
    /// <param name="aPlanes">M activation rows, each <paramref name="bits"/> planes of RowWords(k) words.</param>
    /// <param name="m">Activation rows.</param>
    /// <param name="bits">Activation bits, 2..8.</param>
    /// <param name="w">N packed weight rows.</param>
    /// <param name="wRowSums">rowsum(B_j) = 2·popcount(b_j) − K for each weight row (<see cref="BitPacking.RowSums"/>).</param>
    /// <param name="n">Weight rows.</param>
    /// <param name="k">Unpadded row length.</param>
    /// <param name="c">Output, at least M·N.</param>
    /// <param name="threads">Threads; 1 runs on the calling thread.</param>
    public unsafe void Multiply(ReadOnlySpan<ulong> aPlanes, int m, int bits, ReadOnlySpan<ulong> w, ReadOnlySpan<int> wRowSums,
        int n, int k, Span<int> c, int threads = 1)
    {
        ThrowIfUnsupported();
        GemmValidation.Shape(m, n, k);
        BitPacking.ValidateBits(bits);
        int words = BitPacking.RowWords(k);
        BitPacking.CheckLength(aPlanes.Length, (long)m * bits * words, nameof(aPlanes));
        BitPacking.CheckLength(w.Length, (long)n * words, nameof(w));
        BitPacking.CheckLength(wRowSums.Length, n, nameof(wRowSums));
        BitPacking.CheckLength(c.Length, (long)m * n, nameof(c));
        BitPacking.AssertPadding(aPlanes, m * bits, k);
        BitPacking.AssertPadding(w, n, k);
        fixed (ulong* pa = aPlanes)
        fixed (ulong* pw = w)
        fixed (int* ps = wRowSums)
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, RowSums = ps, M = m, N = n, K = k, Bits = bits };
            GemmThreads.Run(this, g, threads, (long)m * bits * n * words);
        }
    }

    /// <summary>C[M, N] = B·q exactly, with prepared weights (row sums included).</summary>
    public unsafe void Multiply(ReadOnlySpan<ulong> aPlanes, int m, int bits, BinaryWeights w, Span<int> c, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowIfUnsupported();
        GemmValidation.Shape(m, w.N, w.K);
        BitPacking.ValidateBits(bits);
        BitPacking.CheckLength(aPlanes.Length, (long)m * bits * w.RowWords, nameof(aPlanes));
        BitPacking.CheckLength(c.Length, (long)m * w.N, nameof(c));
        BitPacking.AssertPadding(aPlanes, m * bits, w.K);
        fixed (ulong* pa = aPlanes)
        fixed (ulong* pw = w.RowMajor)
        fixed (ulong* pi = w.Interleaved)
        fixed (int* ps = w.RowSums)
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, WInterleaved = pi, C = pc, RowSums = ps, M = m, N = w.N, K = w.K, Bits = bits };
            GemmThreads.Run(this, g, threads, (long)m * bits * w.N * w.RowWords);
        }
    }
}

/// <summary>W1A32: C[i, j] = Σ_t B_jt·A_it for float activations A[M, K] and packed ±1 weight rows B_j.</summary>
public abstract class SignGemm : GemmKernel
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
}

/// <summary>FP32 SGEMM C[M, N] = A[M, K] · W[N, K]ᵀ (weights rows = outputs, like nn.Linear).</summary>
public abstract class Sgemm : GemmKernel
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

/// <summary>
/// W1Ak for any k ≤ 8 through int8 multiply-adds: C[i, j] = B_j · q_i, exact, from the activation codes themselves
/// (one signed byte each, A[M, K] row-major) and the weights as bytes b ∈ {0, 1} (<see cref="BinaryWeights"/> built
/// with withBytes).
/// </summary>
/// <remarks>
/// With B = 2b − 1: B·q = 2·Σ_t b_t·q_t − Σ_t q_t. The sum Σ b·q is what an unsigned-by-signed byte multiply-add
/// (vpmaddubsw) computes, two products per 16-bit lane; |b·q| ≤ 128, so a pair is at most 256 in magnitude and a 16-bit
/// lane can take 127 such pairs before it could overflow; the kernels widen every 64.
/// </remarks>
public abstract class CodeGemm : GemmKernel
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
        fixed (byte* pw = w.Bytes)
        fixed (int* pc = c)
        {
            var g = new GemmArgs { A = pa, W = pw, C = pc, M = m, N = w.N, K = w.K, Bits = w.ByteStride };
            GemmThreads.Run(this, g, threads, (long)m * w.N * w.K / 32);
        }
    }
}

internal static class GemmValidation
{
    public static void Shape(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM shape must be non-negative, got M={m}, N={n}, K={k}");
    }
}
