namespace BinEngine.Kernels;

/// <summary>
/// W1Ak, k = 2..8: C[i, j] = B_j · q_i, exact, for packed ±1 weight rows B_j and k-bit activation codes q_i given as
/// bit planes (<see cref="BitPacking.PackOffsetPlanes"/>).
/// </summary>
/// <remarks>
/// The bit-plane identity. With u = q + m ∈ [0, 2m] stored as planes P_p (u = Σ_p 2^p·P_p) and B = 2b − 1:
/// B·q = Σ_i (2b_i − 1)(u_i − m) = 2·Σ_i b_i·u_i − Σ_i u_i − m·Σ_i B_i
///     = 2·Σ_p 2^p·popcount(b AND P_p) − Σ_p 2^p·popcount(P_p) − m·rowsum(B).
/// rowsum(B) = 2·popcount(b) − K depends only on the weights (<see cref="BitPacking.RowSums"/>, once per matrix); the
/// middle term only on the activation row. Padding is 0 in b and in every plane, so it adds to no popcount.
/// </remarks>
internal abstract class PlaneGemm : GemmKernel
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
        GemmValidation.PlaneRowLength(k);
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
        GemmValidation.PlaneRowLength(w.K);
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
