using System.Runtime.CompilerServices;

namespace BinEngine.Kernels;

/// <summary>Reference int8 W1Ak: C[i, j] = Σ_t (2·b_jt − 1)·q_it, plain loops.</summary>
internal sealed class CodeGemmScalar : CodeGemm
{
    /// <inheritdoc/>
    public override string Name => "code-scalar";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Scalar;
    /// <inheritdoc/>
    public override bool IsSupported => true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        sbyte* a = (sbyte*)g.A;
        byte* w = (byte*)g.W;
        int* c = (int*)g.C;
        for (int i = m0; i < m1; i++)
            for (int j = n0; j < n1; j++)
            {
                byte* row = w + BinaryWeights.GroupedRowOffset(j, g.K);   // elements 4g..4g+3 at g·GroupBytes + 0..3
                sbyte* q = a + (long)i * g.K;
                int sum = 0;
                for (int t = 0; t < g.K; t += 4, row += BinaryWeights.GroupBytes)
                    for (int e = 0; e < 4 && t + e < g.K; e++)
                        sum += (2 * row[e] - 1) * q[t + e];
                c[(long)i * g.N + j] = sum;
            }
    }
}
