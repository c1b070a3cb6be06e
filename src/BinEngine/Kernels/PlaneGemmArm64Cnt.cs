using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace BinEngine.Kernels;

/// <summary>
/// W1Ak bit-plane AND-popcount on Arm64 AdvSimd: the Vector128 blocks with CNT byte popcounts (<see cref="CntLanes128"/>). Ahead of the
/// portable nibble-table kernel on instruction count (3 operations per 16 bytes against 8); not timed: the development
/// machines are x64, where AdvSimd is unsupported (tools/check-arm64.sh checks its results under emulation).
/// </summary>
internal sealed class PlaneGemmArm64Cnt : PlaneGemm
{
    /// <inheritdoc/>
    public override string Name => "plane-v128-cnt";
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Vector128;
    /// <inheritdoc/>
    public override bool IsSupported => AdvSimd.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1) =>
        BinaryGemmDriver<PopCountBlockNibble<CntLanes128, Vector128<byte>>>.Plane(g, m0, m1, n0, n1);
}
