using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// W1A1 on AVX-512: with <see cref="BinaryWeights"/>, the carry-save (Harley-Seal, vpternlog) per-lane count with VBMI popcount lookups over
/// interleaved blocks (<see cref="LaneCountAvx512HarleySeal"/>); with bare rows, the 4×4 nibble-lookup blocks.
/// </summary>
internal sealed class XnorGemmAvx512HarleySeal : XnorGemm
{
    /// <inheritdoc/>
    public override string Name => "xnor-avx512-harleyseal";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx512;
    /// <inheritdoc/>
    public override bool IsSupported => Avx512BW.IsSupported && Avx512Vbmi.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        if (g.WInterleaved != null) LaneCountAvx512HarleySeal.Xnor(g, m0, m1, n0, n1);
        else BinaryGemmDriver<PopCountBlockNibble<NibbleLanes512, Vector512<byte>>>.Xnor(g, m0, m1, n0, n1);
    }
}
