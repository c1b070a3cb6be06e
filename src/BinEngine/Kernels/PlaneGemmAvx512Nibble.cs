using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>W1Ak bit-plane AND-popcount on AVX-512BW (<see cref="NibbleLanes512"/> blocks).</summary>
internal sealed class PlaneGemmAvx512Nibble : PlaneGemm
{
    /// <inheritdoc/>
    public override string Name => "plane-avx512-nibble";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx512;
    /// <inheritdoc/>
    public override bool IsSupported => Avx512BW.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        BinaryGemmDriver<PopCountBlockNibble<NibbleLanes512, Vector512<byte>>>.Plane(g, m0, m1, n0, n1);
}
