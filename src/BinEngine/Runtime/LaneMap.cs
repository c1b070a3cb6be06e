using System.Runtime.Intrinsics;

namespace BinEngine.Runtime;

/// <summary>
/// An element-wise function written once per width (scalar, Vector128, Vector256, Vector512) with the same bits at
/// every width, so a consumer can apply it lane by lane on its way to something else instead of storing it first:
/// <see cref="ActivationPacker.PackSigns{TMap}"/> packs the signs of f(x) and sums |f(x)| in one pass, which lets the
/// 1-bit forward pass feed σ(G1 h) − ½ and tanh(F1 h) to G2 and F2 without ever writing them (docs/MODEL.md, SLFN).
/// </summary>
internal interface ILaneMap
{
    static abstract float Apply(float x);
    static abstract Vector128<float> Apply(Vector128<float> x);
    static abstract Vector256<float> Apply(Vector256<float> x);
    static abstract Vector512<float> Apply(Vector512<float> x);
}

/// <summary>f(x) = x: plain quantization of a row.</summary>
internal readonly struct IdentityMap : ILaneMap
{
    public static float Apply(float x) => x;
    public static Vector128<float> Apply(Vector128<float> x) => x;
    public static Vector256<float> Apply(Vector256<float> x) => x;
    public static Vector512<float> Apply(Vector512<float> x) => x;
}

/// <summary>f(x) = σ(x): the learn gate of the original contract (every sign +1 at a = 1: docs/MODEL.md, SLFN).</summary>
internal readonly struct SigmoidMap : ILaneMap
{
    public static float Apply(float x) => VectorMath.Sigmoid(x);
    public static Vector128<float> Apply(Vector128<float> x) => VectorMath.Sigmoid(x);
    public static Vector256<float> Apply(Vector256<float> x) => VectorMath.Sigmoid(x);
    public static Vector512<float> Apply(Vector512<float> x) => VectorMath.Sigmoid(x);
}

/// <summary>f(x) = σ(x) − ½: the centred learn gate, the same operations as <see cref="VectorMath.Sigmoid(ReadOnlySpan{float}, float, Span{float}, Kernels.KernelIsa)"/> with shift ½.</summary>
internal readonly struct CentredSigmoidMap : ILaneMap
{
    public static float Apply(float x) => VectorMath.Sigmoid(x) - 0.5f;
    public static Vector128<float> Apply(Vector128<float> x) => VectorMath.Sigmoid(x) - Vector128.Create(0.5f);
    public static Vector256<float> Apply(Vector256<float> x) => VectorMath.Sigmoid(x) - Vector256.Create(0.5f);
    public static Vector512<float> Apply(Vector512<float> x) => VectorMath.Sigmoid(x) - Vector512.Create(0.5f);
}

/// <summary>f(x) = tanh(x): the forget path.</summary>
internal readonly struct TanhMap : ILaneMap
{
    public static float Apply(float x) => VectorMath.Tanh(x);
    public static Vector128<float> Apply(Vector128<float> x) => VectorMath.Tanh(x);
    public static Vector256<float> Apply(Vector256<float> x) => VectorMath.Tanh(x);
    public static Vector512<float> Apply(Vector512<float> x) => VectorMath.Tanh(x);
}
