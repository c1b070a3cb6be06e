using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>W1A1 XNOR-popcount on AVX2 (<see cref="NibbleLanes256"/> blocks).</summary>
internal sealed class XnorGemmAvx2Nibble : XnorGemm
{
    /// <inheritdoc/>
    public override string Name => "xnor-avx2-nibble";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx2;
    /// <inheritdoc/>
    public override bool IsSupported => Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        BinaryGemmDriver<PopCountBlockNibble<NibbleLanes256, Vector256<byte>>>.Xnor(g, m0, m1, n0, n1);
}
