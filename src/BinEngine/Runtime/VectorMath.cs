using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// exp, log, SiLU, softplus (the Mamba head), σ and tanh (the blocks' SLFN), each written twice with the same
/// operations in the same order, fused where marked: for float (the reference) and once over
/// <see cref="IFloatLanes{TVec}"/> for Vector128, Vector256 and Vector512, so every width returns the same bits; span
/// drivers run the widest width the plan allows with a scalar tail.
/// </summary>
/// <remarks>
/// exp(x) = 2^k · e^r with k = round(x·log₂e) and r = x − k·ln2 (ln2 split in two so k·ln2_hi is exact and r carries
/// no cancellation error), e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2 with Cephes' expf minimax P (degree 5): within 2 ulp.
/// 2^k is built in the exponent bits; x is clamped to [−87.3365, 88] so k stays in [−126, 127], and exp returns 0
/// below −87.3365 instead of a subnormal, which slow some CPUs' multiplies down. The bound sits six ulps above
/// ln 2^−126 = −87.336545: at ln 2^−126 itself r rounds to ≈ 0⁻ and the product poly · 2^−126 can fall just under the
/// least normal float. Even in a lane that is then replaced by 0, a subnormal product costs a microcode assist (x86
/// cores of both vendors have one): attention's padding lanes (−∞, clamped to the bound) made its softmax rows 2.2×
/// slower with the old bound −87.33655 (4.8 against 2.2 µs for 100 rows of 25 scores, measured on an AMD EPYC). Between the two bounds exp now returns 0 instead
/// of ≈ 1.2e−38. Above 88 (e^88 ≈ 1.7e38) it returns e^88; the head only meets such arguments inside SiLU's
/// 1 + e^−v, where v/(1 + e^88) and v/∞ are both ≈ 0.
/// log(s) for s ≥ 1 (softplus' 1 + e^v): s = 2^k·f with f ∈ [√½, √2), log s = k·ln2 + log f, log f by Cephes' logf
/// minimax polynomial in f − 1 (degree 8): within 2 ulp.
/// σ(x) = 1 / (1 + e^−x), within a few ulp where σ is a normal float (below x ≈ −87 it returns ≈ 6e−39 for the
/// reference's 0). tanh(x) = sign(x) · u / (2 + u) with u = e^{−2|x|} − 1 ∈ (−1, 0] (so −u/(2 + u) = tanh|x|, the
/// sign put back by CopySign), u by the same reduction as exp without its 1: e^y − 1 = 2^k·(r + r²·P(r)) + (2^k − 1),
/// which for k = 0 (|y| &lt; ln2/2) is r + r²·P(r) with no cancellation, so tiny arguments keep their value and sign:
/// within 2 ulp of tanh over the float range (VectorMathTests sweeps it), and (tanh x ≥ 0) = (x ≥ 0) exactly, so the
/// sign plane the next product reads is x's. y is floored at −20 (tanh rounds to ±1 from |x| ≈ 9.01; the floor keeps
/// 2^k·(…) a normal float, see exp's bound). One branch-free formula: it replaced Cephes' tanhf (an odd polynomial
/// below 0.625, 1 − 2/(e^{2|x|} + 1) above, both computed for every vector and one selected), measured 5.9 → 2.8 µs
/// per 25 × 512 values. σ and tanh replace TensorPrimitives.Sigmoid/Tanh in the blocks, which the SLFN applies to
/// 2·f values per token and block (`bench -- activations`).
/// The vector exp clamps with MinNative/MaxNative and converts k with ConvertToInt32Native: the plain Min/Max (IEEE
/// 754:2019, NaN and ±0 handling) and the saturating conversion cost extra instructions for cases that cannot arise
/// here (k ∈ [−126, 127] after the clamp), ≈ 10 % of σ + tanh, same bits; the argument goes second so that a NaN
/// stays NaN (x86 returns the second operand when either is NaN; Arm propagates it).
/// </remarks>
internal static class VectorMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;       // 8 significant bits: k·Ln2High is exact for |k| ≤ 2^16
    private const float Ln2Low = -2.12194440e-4f;     // ln 2 − Ln2High
    private const float ExpLow = -87.3365f;           // six ulps above ln(2^−126) = −87.336545 (see the remarks)
    private const float ExpHigh = 88f;
    private const float ExpP0 = 1.9875691500e-4f, ExpP1 = 1.3981999507e-3f, ExpP2 = 8.3334519073e-3f,
        ExpP3 = 4.1665795894e-2f, ExpP4 = 1.6666665459e-1f, ExpP5 = 5.0000001201e-1f;
    private const float SqrtHalf = 0.707106781186547524f;
    private const float LogP0 = 7.0376836292e-2f, LogP1 = -1.1514610310e-1f, LogP2 = 1.1676998740e-1f, LogP3 = -1.2420140846e-1f,
        LogP4 = 1.4249322787e-1f, LogP5 = -1.6668057665e-1f, LogP6 = 2.0000714765e-1f, LogP7 = -2.4999993993e-1f, LogP8 = 3.3333331174e-1f;
    private const float SoftplusThreshold = 20f;      // torch's: softplus(v) = v above it
    private const float TanhClamp = -20f;             // expm1's argument −2|x| floored here: tanh rounds to ±1 from |x| ≈ 9.01

    // ---- scalar ----

    /// <summary>e^x (see the class remarks).</summary>
    public static float Exp(float x)
    {
        float clamped = MathF.Min(MathF.Max(x, ExpLow), ExpHigh);
        float pr = ReducedPoly(clamped, out float r, out float k);
        return x < ExpLow ? 0f : MathF.FusedMultiplyAdd(pr, r, r + 1f) * TwoTo(k);
    }

    /// <summary>x = k·ln2 + r (k = round(x·log₂e), ln2 in two parts) and P(r)·r, so e^r = 1 + r + (P(r)·r)·r.</summary>
    private static float ReducedPoly(float clamped, out float r, out float k)
    {
        k = MathF.Round(clamped * Log2E);
        r = MathF.FusedMultiplyAdd(k, -Ln2High, clamped);
        r = MathF.FusedMultiplyAdd(k, -Ln2Low, r);
        float poly = MathF.FusedMultiplyAdd(ExpP0, r, ExpP1);
        poly = MathF.FusedMultiplyAdd(poly, r, ExpP2);
        poly = MathF.FusedMultiplyAdd(poly, r, ExpP3);
        poly = MathF.FusedMultiplyAdd(poly, r, ExpP4);
        poly = MathF.FusedMultiplyAdd(poly, r, ExpP5);
        return poly * r;
    }

    /// <summary>2^k for an integral k in [−126, 127], built in the exponent bits.</summary>
    private static float TwoTo(float k) => BitConverter.Int32BitsToSingle(((int)k + 127) << 23);

    /// <summary>e^y − 1 for y ≤ 0 (floored at −20): 2^k·(r + (P(r)·r)·r) + (2^k − 1), no cancellation near 0 (see the remarks).</summary>
    private static float Expm1Negative(float y)
    {
        float pr = ReducedPoly(MathF.Max(y, TanhClamp), out float r, out float k);
        float scale = TwoTo(k);
        return MathF.FusedMultiplyAdd(scale, MathF.FusedMultiplyAdd(pr, r, r), scale - 1f);
    }

    /// <summary>ln s for s ≥ 1 (see the class remarks).</summary>
    public static float Log(float s)
    {
        int bits = BitConverter.SingleToInt32Bits(s);
        float k = (bits >> 23) - 126;
        float f = BitConverter.Int32BitsToSingle((bits & 0x007FFFFF) | 0x3F000000);   // s = 2^k · f, f ∈ [½, 1)
        bool small = f < SqrtHalf;                                                     // then use 2f ∈ [1, √2), k − 1
        k -= small ? 1f : 0f;
        f = (small ? f + f : f) - 1f;
        float z = f * f;
        float poly = MathF.FusedMultiplyAdd(LogP0, f, LogP1);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP2);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP3);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP4);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP5);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP6);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP7);
        poly = MathF.FusedMultiplyAdd(poly, f, LogP8);
        float tail = poly * f * z;
        tail = MathF.FusedMultiplyAdd(k, Ln2Low, tail);
        tail = MathF.FusedMultiplyAdd(-0.5f, z, tail);
        return MathF.FusedMultiplyAdd(k, Ln2High, f + tail);
    }

    /// <summary>SiLU(v) = v·σ(v) = v / (1 + e^−v).</summary>
    public static float Silu(float v) => v / (1f + Exp(-v));

    /// <summary>σ(x) = 1 / (1 + e^−x).</summary>
    public static float Sigmoid(float x) => 1f / (1f + Exp(-x));

    /// <summary>tanh(x) (see the class remarks).</summary>
    public static float Tanh(float x)
    {
        float u = Expm1Negative(-2f * MathF.Abs(x));
        return MathF.CopySign(u / (2f + u), x);
    }

    /// <summary>
    /// softplus(v) = v above 20, else log1p(e^v) as ln(s)·y/(s − 1), s = 1 + y rounded, y = e^v: 1 + y loses the low bits
    /// of a small y, and the ratio puts them back (Goldberg); s = 1 means y is below half an ulp of 1 and log1p(y) = y.
    /// </summary>
    public static float Softplus(float v)
    {
        float y = Exp(v);
        float s = 1f + y;
        float log1p = s == 1f ? y : Log(s) * y / (s - 1f);
        return v > SoftplusThreshold ? v : log1p;
    }

    // ---- vectors: each function written once over IFloatLanes, the same operations in the same order as the scalar
    // form above (so every width returns its bits), with a public entry per width ----

    /// <summary>e^x per lane, the same bits as <see cref="Exp(float)"/>.</summary>
    public static Vector512<float> Exp(Vector512<float> x) => Exp<Lanes512, Vector512<float>>(x);

    /// <inheritdoc cref="Exp(Vector512{float})"/>
    public static Vector256<float> Exp(Vector256<float> x) => Exp<Lanes256, Vector256<float>>(x);

    /// <inheritdoc cref="Exp(Vector512{float})"/>
    public static Vector128<float> Exp(Vector128<float> x) => Exp<Lanes128, Vector128<float>>(x);

    /// <summary>ln s per lane for s ≥ 1, the same bits as <see cref="Log(float)"/>.</summary>
    public static Vector512<float> Log(Vector512<float> s) => Log<Lanes512, Vector512<float>>(s);

    /// <inheritdoc cref="Log(Vector512{float})"/>
    public static Vector256<float> Log(Vector256<float> s) => Log<Lanes256, Vector256<float>>(s);

    /// <inheritdoc cref="Log(Vector512{float})"/>
    public static Vector128<float> Log(Vector128<float> s) => Log<Lanes128, Vector128<float>>(s);

    /// <summary>SiLU per lane, the same bits as <see cref="Silu(float)"/>.</summary>
    public static Vector512<float> Silu(Vector512<float> v) => Silu<Lanes512, Vector512<float>>(v);

    /// <inheritdoc cref="Silu(Vector512{float})"/>
    public static Vector256<float> Silu(Vector256<float> v) => Silu<Lanes256, Vector256<float>>(v);

    /// <inheritdoc cref="Silu(Vector512{float})"/>
    public static Vector128<float> Silu(Vector128<float> v) => Silu<Lanes128, Vector128<float>>(v);

    /// <summary>σ per lane, the same bits as <see cref="Sigmoid(float)"/>.</summary>
    public static Vector512<float> Sigmoid(Vector512<float> x) => Sigmoid<Lanes512, Vector512<float>>(x);

    /// <inheritdoc cref="Sigmoid(Vector512{float})"/>
    public static Vector256<float> Sigmoid(Vector256<float> x) => Sigmoid<Lanes256, Vector256<float>>(x);

    /// <inheritdoc cref="Sigmoid(Vector512{float})"/>
    public static Vector128<float> Sigmoid(Vector128<float> x) => Sigmoid<Lanes128, Vector128<float>>(x);

    /// <summary>tanh per lane, the same bits as <see cref="Tanh(float)"/>.</summary>
    public static Vector512<float> Tanh(Vector512<float> x) => Tanh<Lanes512, Vector512<float>>(x);

    /// <inheritdoc cref="Tanh(Vector512{float})"/>
    public static Vector256<float> Tanh(Vector256<float> x) => Tanh<Lanes256, Vector256<float>>(x);

    /// <inheritdoc cref="Tanh(Vector512{float})"/>
    public static Vector128<float> Tanh(Vector128<float> x) => Tanh<Lanes128, Vector128<float>>(x);

    /// <summary>softplus per lane, the same bits as <see cref="Softplus(float)"/>.</summary>
    public static Vector512<float> Softplus(Vector512<float> v) => Softplus<Lanes512, Vector512<float>>(v);

    /// <inheritdoc cref="Softplus(Vector512{float})"/>
    public static Vector256<float> Softplus(Vector256<float> v) => Softplus<Lanes256, Vector256<float>>(v);

    /// <inheritdoc cref="Softplus(Vector512{float})"/>
    public static Vector128<float> Softplus(Vector128<float> v) => Softplus<Lanes128, Vector128<float>>(v);

    /// <summary>The clamp on MinNative/MaxNative with the argument second (NaN stays NaN; see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Exp<TL, TV>(TV x) where TL : IFloatLanes<TV> where TV : struct
    {
        TV clamped = TL.Min(TL.Create(ExpHigh), TL.Max(TL.Create(ExpLow), x));
        TV pr = ReducedPoly<TL, TV>(clamped, out TV r, out TV k);
        return TL.Select(TL.LessThan(x, TL.Create(ExpLow)), TL.Zero,
            TL.Multiply(TL.FusedMultiplyAdd(pr, r, TL.Add(r, TL.Create(1f))), TL.Pow2(k)));
    }

    /// <summary>Per lane, the same bits as <see cref="ReducedPoly(float, out float, out float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ReducedPoly<TL, TV>(TV clamped, out TV r, out TV k) where TL : IFloatLanes<TV> where TV : struct
    {
        k = TL.Round(TL.Multiply(clamped, TL.Create(Log2E)));
        r = TL.FusedMultiplyAdd(k, TL.Create(-Ln2High), clamped);
        r = TL.FusedMultiplyAdd(k, TL.Create(-Ln2Low), r);
        TV poly = TL.FusedMultiplyAdd(TL.Create(ExpP0), r, TL.Create(ExpP1));
        poly = TL.FusedMultiplyAdd(poly, r, TL.Create(ExpP2));
        poly = TL.FusedMultiplyAdd(poly, r, TL.Create(ExpP3));
        poly = TL.FusedMultiplyAdd(poly, r, TL.Create(ExpP4));
        poly = TL.FusedMultiplyAdd(poly, r, TL.Create(ExpP5));
        return TL.Multiply(poly, r);
    }

    /// <summary>Per lane, the same bits as <see cref="Expm1Negative(float)"/> (the argument second: NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Expm1Negative<TL, TV>(TV y) where TL : IFloatLanes<TV> where TV : struct
    {
        TV pr = ReducedPoly<TL, TV>(TL.Max(TL.Create(TanhClamp), y), out TV r, out TV k);
        TV scale = TL.Pow2(k);
        return TL.FusedMultiplyAdd(scale, TL.FusedMultiplyAdd(pr, r, r), TL.Subtract(scale, TL.Create(1f)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Log<TL, TV>(TV s) where TL : IFloatLanes<TV> where TV : struct
    {
        TV f = TL.Frexp(s, out TV k);
        TV small = TL.LessThan(f, TL.Create(SqrtHalf));
        TV one = TL.Create(1f);
        k = TL.Subtract(k, TL.And(small, one));
        f = TL.Subtract(TL.Select(small, TL.Add(f, f), f), one);
        TV z = TL.Multiply(f, f);
        TV poly = TL.FusedMultiplyAdd(TL.Create(LogP0), f, TL.Create(LogP1));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP2));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP3));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP4));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP5));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP6));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP7));
        poly = TL.FusedMultiplyAdd(poly, f, TL.Create(LogP8));
        TV tail = TL.Multiply(TL.Multiply(poly, f), z);
        tail = TL.FusedMultiplyAdd(k, TL.Create(Ln2Low), tail);
        tail = TL.FusedMultiplyAdd(TL.Create(-0.5f), z, tail);
        return TL.FusedMultiplyAdd(k, TL.Create(Ln2High), TL.Add(f, tail));
    }

    /// <summary>SiLU on any width, the body of the public overloads (for drivers written once over <see cref="IFloatLanes{TVec}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Silu<TL, TV>(TV v) where TL : IFloatLanes<TV> where TV : struct =>
        TL.Divide(v, TL.Add(TL.Create(1f), TL.Exp(TL.Negate(v))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Sigmoid<TL, TV>(TV x) where TL : IFloatLanes<TV> where TV : struct =>
        TL.Divide(TL.Create(1f), TL.Add(TL.Create(1f), TL.Exp(TL.Negate(x))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Tanh<TL, TV>(TV x) where TL : IFloatLanes<TV> where TV : struct
    {
        TV u = Expm1Negative<TL, TV>(TL.Multiply(TL.Create(-2f), TL.Abs(x)));
        return TL.CopySign(TL.Divide(u, TL.Add(TL.Create(2f), u)), x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Softplus<TL, TV>(TV v) where TL : IFloatLanes<TV> where TV : struct
    {
        TV one = TL.Create(1f);
        TV y = TL.Exp(v);
        TV s = TL.Add(one, y);
        TV log1p = TL.Select(TL.Equal(s, one), y, TL.Divide(TL.Multiply(Log<TL, TV>(s), y), TL.Subtract(s, one)));
        return TL.Select(TL.GreaterThan(v, TL.Create(SoftplusThreshold)), v, log1p);
    }

    // ---- spans ----

    /// <summary>y = σ(x) − <paramref name="shift"/> (shift ½ for the centred learn gate, else 0) on the widest width <paramref name="isa"/> allows.</summary>
    public static void Sigmoid(ReadOnlySpan<float> x, float shift, Span<float> y, KernelIsa isa)
    {
        int n = x.Length, i = 0;
        if (y.Length < n) throw new ArgumentException("output shorter than input", nameof(y));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        if (isa >= KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
                (Sigmoid(Vector512.LoadUnsafe(ref xr, (nuint)i)) - Vector512.Create(shift)).StoreUnsafe(ref yr, (nuint)i);
        if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
                (Sigmoid(Vector256.LoadUnsafe(ref xr, (nuint)i)) - Vector256.Create(shift)).StoreUnsafe(ref yr, (nuint)i);
        if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4)
                (Sigmoid(Vector128.LoadUnsafe(ref xr, (nuint)i)) - Vector128.Create(shift)).StoreUnsafe(ref yr, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref yr, i) = Sigmoid(Unsafe.Add(ref xr, i)) - shift;
    }

    /// <summary>y = tanh(x) on the widest width <paramref name="isa"/> allows.</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y, KernelIsa isa)
    {
        int n = x.Length, i = 0;
        if (y.Length < n) throw new ArgumentException("output shorter than input", nameof(y));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        if (isa >= KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
                Tanh(Vector512.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
                Tanh(Vector256.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4)
                Tanh(Vector128.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref yr, i) = Tanh(Unsafe.Add(ref xr, i));
    }
}
