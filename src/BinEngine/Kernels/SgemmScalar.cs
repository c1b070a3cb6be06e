using System.Runtime.CompilerServices;
namespace BinEngine.Kernels;

/// <summary>Reference SGEMM: C[i, j] = Σ_t A[i, t]·W[j, t], accumulated in float in order t = 0..K−1.</summary>
internal sealed class SgemmScalar : Sgemm
{
    /// <inheritdoc/>
    public override string Name => "sgemm-scalar";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Scalar;
    /// <inheritdoc/>
    public override bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        float* a = (float*)g.A, w = (float*)g.W, c = (float*)g.C;
        for (int i = m0; i < m1; i++)
        {
            for (int j = n0; j < n1; j++)
            {
                float sum = 0f;
                for (int t = 0; t < g.K; t++) sum += a[(long)i * g.K + t] * w[(long)j * g.K + t];
                c[(long)i * g.N + j] = sum;
            }
        }
    }
}
