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
        int groups = BinaryWeights.ByteGroupCount(g.K), rows = BinaryWeights.BlockRows;
        for (int i = m0; i < m1; i++)
            for (int j = n0; j < n1; j++)
            {
                int sum = 0;
                for (int t = 0; t < g.K; t++)   // byte t of row j in BinaryWeights.GroupedBytes
                    sum += (2 * w[(((long)(j / rows) * groups + t / 4) * rows + j % rows) * 4 + t % 4] - 1) * a[(long)i * g.K + t];
                c[(long)i * g.N + j] = sum;
            }
    }
}
