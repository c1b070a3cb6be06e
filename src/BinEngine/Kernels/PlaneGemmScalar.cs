using System.Numerics;
using System.Runtime.CompilerServices;

namespace BinEngine.Kernels;

/// <summary>Reference W1Ak: the bit-plane identity (see <see cref="PlaneGemm"/>) with one popcount per word pair.</summary>
internal sealed class PlaneGemmScalar : PlaneGemm
{
    /// <inheritdoc/>
    public override string Name => "plane-scalar";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Scalar;
    /// <inheritdoc/>
    public override bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K), bits = g.Bits, m = BitPacking.MaxCode(bits);
        ulong* a = (ulong*)g.A, w = (ulong*)g.W;
        int* c = (int*)g.C;
        for (int i = m0; i < m1; i++)
        {
            ulong* planes = a + (long)i * bits * words;   // plane p of row i at planes + p·words
            int sumU = 0;                                 // Σ_t u_t = Σ_p 2^p·popcount(P_p)
            for (int p = 0; p < bits; p++)
                for (int t = 0; t < words; t++) sumU += BitOperations.PopCount(planes[p * words + t]) << p;
            for (int j = n0; j < n1; j++)
            {
                ulong* b = w + (long)j * words;
                int bu = 0;                               // Σ_t b_t·u_t = Σ_p 2^p·popcount(b AND P_p)
                for (int p = 0; p < bits; p++)
                {
                    int cnt = 0;
                    for (int t = 0; t < words; t++) cnt += BitOperations.PopCount(b[t] & planes[p * words + t]);
                    bu += cnt << p;
                }
                c[(long)i * g.N + j] = 2 * bu - sumU - m * g.RowSums[j];
            }
        }
    }
}
