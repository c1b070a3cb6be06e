using System.Numerics;
using System.Runtime.CompilerServices;

namespace BinEngine.Kernels;

/// <summary>Reference W1A1: one popcount per word pair, plain loops. The oracle the vector paths are tested against.</summary>
internal sealed class XnorGemmScalar : XnorGemm
{
    /// <inheritdoc/>
    public override string Name => "xnor-scalar";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Scalar;
    /// <inheritdoc/>
    public override bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K);
        ulong* a = (ulong*)g.A, w = (ulong*)g.W;
        int* c = (int*)g.C;
        for (int i = m0; i < m1; i++)          // A row i: words [i·words, (i+1)·words)
        {
            for (int j = n0; j < n1; j++)      // W row j
            {
                int d = 0;                     // d = popcount(a_i XOR w_j): positions where the signs differ
                for (int t = 0; t < words; t++) d += BitOperations.PopCount(a[(long)i * words + t] ^ w[(long)j * words + t]);
                c[(long)i * g.N + j] = g.K - 2 * d;
            }
        }
    }
}
