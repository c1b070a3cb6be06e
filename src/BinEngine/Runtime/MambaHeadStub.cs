// TEMPORARY: replaced by the mambacs branch's MambaHead.cs at merge.
using BinEngine.Kernels;
namespace BinEngine.Runtime;
internal sealed class MambaHeadWeights
{
    public required int Dim { get; init; }
    public required int Inner { get; init; }
    public required int State { get; init; }
    public required int ConvWidth { get; init; }
    public required int DtRank { get; init; }
    public required TensorView<float> InProj { get; init; }
    public required TensorView<float> ConvWeight { get; init; }
    public required TensorView<float> ConvBias { get; init; }
    public required TensorView<float> XProj { get; init; }
    public required TensorView<float> DtProjWeight { get; init; }
    public required TensorView<float> DtProjBias { get; init; }
    public required TensorView<float> ALog { get; init; }
    public required TensorView<float> D { get; init; }
    public required TensorView<float> OutProj { get; init; }
}
internal sealed class MambaScratch { }
internal static class MambaHead
{
    public static void PoolResidual(MambaHeadWeights w, ReadOnlySpan<float> u, int n, Span<float> pooled, MambaScratch s, Sgemm sgemm, KernelIsa isa) => throw new NotImplementedException();
    public static float[] PoolResidualReference(MambaHeadWeights w, float[,] u) => throw new NotImplementedException();
    public static long Flops(MambaHeadWeights w, int n) => throw new NotImplementedException();
}
