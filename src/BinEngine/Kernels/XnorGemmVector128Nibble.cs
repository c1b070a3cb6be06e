using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>W1A1 XNOR-popcount on Vector128 (<see cref="NibbleLanes128"/> blocks).</summary>
internal sealed class XnorGemmVector128Nibble : XnorGemm
{
    /// <inheritdoc/>
    public override string Name => "xnor-v128-nibble";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Vector128;
    /// <inheritdoc/>
    public override bool IsSupported => Vector128.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        BinaryGemmDriver<PopCountBlockNibble<NibbleLanes128, Vector128<byte>>>.Xnor(g, m0, m1, n0, n1);
}
