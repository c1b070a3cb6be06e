using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// W1A1 on AVX2: with <see cref="BinaryWeights"/>, the carry-save (Harley-Seal) per-lane count, nibble-lookup popcounts over
/// interleaved blocks (<see cref="LaneCountAvx2HarleySeal"/>); with bare rows, the 4×4 nibble-lookup blocks.
/// </summary>
internal sealed class XnorGemmAvx2HarleySeal : XnorGemm
{
    /// <inheritdoc/>
    public override string Name => "xnor-avx2-harleyseal";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx2;
    /// <inheritdoc/>
    public override bool IsSupported => Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        if (g.WInterleaved != null) LaneCountAvx2HarleySeal.Xnor(g, m0, m1, n0, n1);
        else BinaryGemmDriver<PopCountBlockNibble<NibbleLanes256, Vector256<byte>>>.Xnor(g, m0, m1, n0, n1);
    }
}
