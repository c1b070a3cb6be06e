using System.Runtime.CompilerServices;
namespace BinEngine.Kernels;

/// <summary>Reference W1A32: C[i, j] = Σ_t (bit_jt ? +A_it : −A_it), accumulated in float in order t = 0..K−1.</summary>
internal sealed class SignGemmScalar : SignGemm
{
    /// <inheritdoc/>
    public override string Name => "sign-scalar";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Scalar;
    /// <inheritdoc/>
    public override bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K);
        float* a = (float*)g.A, c = (float*)g.C;
        ulong* w = (ulong*)g.W;
        for (int i = m0; i < m1; i++)
        {
            float* row = a + (long)i * g.K;
            for (int j = n0; j < n1; j++)
            {
                ulong* b = w + (long)j * words;
                float sum = 0f;
                for (int t = 0; t < g.K; t++) sum += ((b[t >> 6] >> (t & 63)) & 1) != 0 ? row[t] : -row[t];
                c[(long)i * g.N + j] = sum;
            }
        }
    }
}
