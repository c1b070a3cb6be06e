using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// One vector width's float operations, the only per-width code of the float-activation kernels (SGEMM and W1A32),
/// of attention's direct path (Runtime/Attention.cs), LayerNorm, the 1-bit packer and VectorMath's functions:
/// <see cref="FloatGemm{TLanes, TVec, TRows}"/> is written once against these static members and the JIT compiles one
/// specialised copy per width with every call inlined (TensorPrimitives' pattern; .NET 10 keeps its own
/// ISimdVector internal). Each width keeps the horizontal reduction its hand-written kernel had, so the results are
/// the same bits as before the drivers were merged.
/// </summary>
internal interface IFloatLanes<TVec> where TVec : struct
{
    /// <summary>The ISA the width needs (names the kernel: sgemm-avx2, sign-avx512, …).</summary>
    static abstract KernelIsa Isa { get; }

    /// <summary>True when the process runs this width's code at full speed.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>Floats per vector.</summary>
    static abstract int Count { get; }

    static abstract TVec Zero { get; }

    static abstract unsafe TVec Load(float* p);

    /// <summary>a·b + c, rounded once.</summary>
    static abstract TVec FusedMultiplyAdd(TVec a, TVec b, TVec c);

    /// <summary>+1.0f in lane i when bit i of <paramref name="bits"/> is set, else −1.0f (bits above Count ignored).</summary>
    static abstract TVec Signs(uint bits);

    /// <summary>[Σ s0, Σ s1, Σ s2, Σ s3].</summary>
    static abstract Vector128<float> Reduce4(TVec s0, TVec s1, TVec s2, TVec s3);

    // The element-wise rest that attention's softmax and weighted sums need (Runtime/Attention.cs).

    static abstract TVec Create(float x);

    static abstract unsafe void Store(TVec v, float* p);

    static abstract TVec Subtract(TVec a, TVec b);

    static abstract TVec Add(TVec a, TVec b);

    /// <summary>a·b, rounded once (no FMA contraction: the embedding's dequantisation must equal code · scale).</summary>
    static abstract TVec Multiply(TVec a, TVec b);

    static abstract TVec Divide(TVec a, TVec b);

    /// <summary>
    /// e^x per lane: <see cref="Runtime.VectorMath"/>'s (within 2 ulp; 0 below −87.3, so e^−∞ = 0). The runtime's
    /// Vector512.Exp costs about twice as much (it evaluates in double), measured on the softmax rows.
    /// </summary>
    static abstract TVec Exp(TVec x);

    /// <summary>v with the lanes from <paramref name="count"/> on replaced by <paramref name="fill"/> (count ≥ Count: v).</summary>
    static abstract TVec FillFrom(TVec v, int count, float fill);

    /// <summary>Σ over the lanes.</summary>
    static abstract float Sum(TVec v);

    /// <summary>
    /// The larger of a and b per lane, the hardware's instruction (vmaxps; IEEE Max costs two fix-ups more per call): on
    /// x86 a NaN in either operand gives b, so a NaN does not always survive; the softmax that uses it still ends in NaN
    /// through the NaN lane's own exponential.
    /// </summary>
    static abstract TVec Max(TVec a, TVec b);

    /// <summary>The largest lane.</summary>
    static abstract float MaxAcross(TVec v);

    // What the 1-bit packer needs (Runtime/ActivationPacker.cs, PackSigns).

    static abstract TVec Abs(TVec v);

    /// <summary>Bit i set when lane i is ≥ 0 (so −0 and +0 give 1, NaN gives 0).</summary>
    static abstract uint NonNegativeBits(TVec v);

    // What VectorMath's exp, log, σ, tanh, SiLU and softplus need (Runtime/VectorMath.cs).

    /// <summary>The smaller of a and b per lane, the hardware's instruction (vminps: on x86 a NaN in either gives b).</summary>
    static abstract TVec Min(TVec a, TVec b);

    /// <summary>Round to the nearest integer, ties to even.</summary>
    static abstract TVec Round(TVec v);

    /// <summary>2^k for lanes holding an integer k in [−126, 127], built in the exponent bits.</summary>
    static abstract TVec Pow2(TVec k);

    /// <summary>f ∈ [½, 1) and k with s = 2^k · f, for a positive normal s (frexp, from the bits).</summary>
    static abstract TVec Frexp(TVec s, out TVec k);

    static abstract TVec Negate(TVec v);

    /// <summary>|magnitude| with the sign of <paramref name="sign"/>.</summary>
    static abstract TVec CopySign(TVec magnitude, TVec sign);

    /// <summary>All ones in the lanes where a &lt; b, else zero.</summary>
    static abstract TVec LessThan(TVec a, TVec b);

    /// <summary>All ones in the lanes where a &gt; b, else zero.</summary>
    static abstract TVec GreaterThan(TVec a, TVec b);

    /// <summary>All ones in the lanes where a = b, else zero.</summary>
    static abstract TVec Equal(TVec a, TVec b);

    /// <summary>Per lane, <paramref name="ifTrue"/> where <paramref name="mask"/> is all ones, else <paramref name="ifFalse"/>.</summary>
    static abstract TVec Select(TVec mask, TVec ifTrue, TVec ifFalse);

    static abstract TVec And(TVec a, TVec b);
}

/// <summary>Portable 128-bit vectors (SSE on x86, AdvSimd on ARM).</summary>
internal readonly struct Lanes128 : IFloatLanes<Vector128<float>>
{
    public static KernelIsa Isa => KernelIsa.Vector128;
    public static bool IsSupported => Vector128.IsHardwareAccelerated;
    public static int Count => Vector128<float>.Count;
    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector128<float> Load(float* p) => Vector128.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> FusedMultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Signs(uint bits)
    {
        Vector128<uint> lane = Vector128.Create(1u, 2, 4, 8);
        return Vector128.ConditionalSelect(Vector128.Equals(Vector128.Create(bits) & lane, lane).AsSingle(), Vector128.Create(1f), Vector128.Create(-1f));
    }

    /// <summary>One portable sum per accumulator (no horizontal add on every Vector128 target).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Reduce4(Vector128<float> s0, Vector128<float> s1, Vector128<float> s2, Vector128<float> s3) =>
        Vector128.Create(Vector128.Sum(s0), Vector128.Sum(s1), Vector128.Sum(s2), Vector128.Sum(s3));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Create(float x) => Vector128.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vector128<float> v, float* p) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x) => Runtime.VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> FillFrom(Vector128<float> v, int count, float fill) =>
        Vector128.ConditionalSelect(Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(count)).AsSingle(), v, Vector128.Create(fill));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v) => Vector128.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> v) => MathF.Max(MathF.Max(v.GetElement(0), v.GetElement(1)), MathF.Max(v.GetElement(2), v.GetElement(3)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Abs(Vector128<float> v) => Vector128.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonNegativeBits(Vector128<float> v) => (uint)Vector128.GreaterThanOrEqual(v, Vector128<float>.Zero).ExtractMostSignificantBits();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.MinNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Round(Vector128<float> v) => Vector128.Round(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Pow2(Vector128<float> k) => ((Vector128.ConvertToInt32Native(k) + Vector128.Create(127)) << 23).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Frexp(Vector128<float> s, out Vector128<float> k)
    {
        Vector128<int> bits = s.AsInt32();
        k = Vector128.ConvertToSingle(Vector128.ShiftRightArithmetic(bits, 23) - Vector128.Create(126));
        return ((bits & Vector128.Create(0x007FFFFF)) | Vector128.Create(0x3F000000)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Negate(Vector128<float> v) => -v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> CopySign(Vector128<float> magnitude, Vector128<float> sign) => Vector128.CopySign(magnitude, sign);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LessThan(Vector128<float> a, Vector128<float> b) => Vector128.LessThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> GreaterThan(Vector128<float> a, Vector128<float> b) => Vector128.GreaterThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Equal(Vector128<float> a, Vector128<float> b) => Vector128.Equals(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Select(Vector128<float> mask, Vector128<float> ifTrue, Vector128<float> ifFalse) => Vector128.ConditionalSelect(mask, ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> And(Vector128<float> a, Vector128<float> b) => a & b;
}

/// <summary>256-bit vectors with AVX2 + FMA.</summary>
internal readonly struct Lanes256 : IFloatLanes<Vector256<float>>
{
    public static KernelIsa Isa => KernelIsa.Avx2;
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<float> Load(float* p) => Vector256.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FusedMultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Signs(uint bits)
    {
        Vector256<uint> lane = Vector256.Create(1u, 2, 4, 8, 16, 32, 64, 128);
        return Vector256.ConditionalSelect(Vector256.Equals(Vector256.Create(bits) & lane, lane).AsSingle(), Vector256.Create(1f), Vector256.Create(-1f));
    }

    /// <summary>hadd(hadd(s0, s1), hadd(s2, s3)) leaves, in each 128-bit half, the four partial sums of that half; adding the halves finishes them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Reduce4(Vector256<float> s0, Vector256<float> s1, Vector256<float> s2, Vector256<float> s3)
    {
        Vector256<float> h = Avx.HorizontalAdd(Avx.HorizontalAdd(s0, s1), Avx.HorizontalAdd(s2, s3));
        return h.GetLower() + h.GetUpper();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Create(float x) => Vector256.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vector256<float> v, float* p) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x) => Runtime.VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FillFrom(Vector256<float> v, int count, float fill) =>
        Vector256.ConditionalSelect(Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle(), v, Vector256.Create(fill));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Vector256.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> v) => Lanes128.MaxAcross(Vector128.MaxNative(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Abs(Vector256<float> v) => Vector256.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonNegativeBits(Vector256<float> v) => (uint)Vector256.GreaterThanOrEqual(v, Vector256<float>.Zero).ExtractMostSignificantBits();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.MinNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> v) => Vector256.Round(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow2(Vector256<float> k) => ((Vector256.ConvertToInt32Native(k) + Vector256.Create(127)) << 23).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Frexp(Vector256<float> s, out Vector256<float> k)
    {
        Vector256<int> bits = s.AsInt32();
        k = Vector256.ConvertToSingle(Vector256.ShiftRightArithmetic(bits, 23) - Vector256.Create(126));
        return ((bits & Vector256.Create(0x007FFFFF)) | Vector256.Create(0x3F000000)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Negate(Vector256<float> v) => -v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> CopySign(Vector256<float> magnitude, Vector256<float> sign) => Vector256.CopySign(magnitude, sign);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GreaterThan(Vector256<float> a, Vector256<float> b) => Vector256.GreaterThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Equal(Vector256<float> a, Vector256<float> b) => Vector256.Equals(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Select(Vector256<float> mask, Vector256<float> ifTrue, Vector256<float> ifFalse) => Vector256.ConditionalSelect(mask, ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> And(Vector256<float> a, Vector256<float> b) => a & b;
}

/// <summary>512-bit vectors with AVX-512F.</summary>
internal readonly struct Lanes512 : IFloatLanes<Vector512<float>>
{
    public static KernelIsa Isa => KernelIsa.Avx512;
    public static bool IsSupported => Avx512F.IsSupported;
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<float> Load(float* p) => Vector512.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FusedMultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Signs(uint bits)
    {
        Vector512<uint> lane = Vector512.Create(1u, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
        return Vector512.ConditionalSelect(Vector512.Equals(Vector512.Create(bits) & lane, lane).AsSingle(), Vector512.Create(1f), Vector512.Create(-1f));
    }

    /// <summary>Fold each 512-bit sum to 256 bits, then <see cref="Lanes256.Reduce4"/>'s three horizontal adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Reduce4(Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3) =>
        Lanes256.Reduce4(s0.GetLower() + s0.GetUpper(), s1.GetLower() + s1.GetUpper(), s2.GetLower() + s2.GetUpper(), s3.GetLower() + s3.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Create(float x) => Vector512.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vector512<float> v, float* p) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) => Runtime.VectorMath.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FillFrom(Vector512<float> v, int count, float fill) =>
        Vector512.ConditionalSelect(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), v, Vector512.Create(fill));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> v) => Lanes256.MaxAcross(Vector256.MaxNative(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Abs(Vector512<float> v) => Vector512.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonNegativeBits(Vector512<float> v) => (uint)Vector512.GreaterThanOrEqual(v, Vector512<float>.Zero).ExtractMostSignificantBits();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.MinNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> v) => Vector512.Round(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Pow2(Vector512<float> k) => ((Vector512.ConvertToInt32Native(k) + Vector512.Create(127)) << 23).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Frexp(Vector512<float> s, out Vector512<float> k)
    {
        Vector512<int> bits = s.AsInt32();
        k = Vector512.ConvertToSingle(Vector512.ShiftRightArithmetic(bits, 23) - Vector512.Create(126));
        return ((bits & Vector512.Create(0x007FFFFF)) | Vector512.Create(0x3F000000)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Negate(Vector512<float> v) => -v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> CopySign(Vector512<float> magnitude, Vector512<float> sign) => Vector512.CopySign(magnitude, sign);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> GreaterThan(Vector512<float> a, Vector512<float> b) => Vector512.GreaterThan(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Equal(Vector512<float> a, Vector512<float> b) => Vector512.Equals(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Select(Vector512<float> mask, Vector512<float> ifTrue, Vector512<float> ifFalse) => Vector512.ConditionalSelect(mask, ifTrue, ifFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> And(Vector512<float> a, Vector512<float> b) => a & b;
}
