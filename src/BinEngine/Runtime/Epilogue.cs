using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// The epilogue of a binarized linear layer, y_o = (α_o · s) · p_o + b_o for one token row: the exact
/// integer product p = B·q turned into floats, scaled and biased in one pass over the row.
/// </summary>
/// <remarks>
/// It replaces three TensorPrimitives passes (ConvertTruncating into y, α·s into a scratch row,
/// MultiplyAdd over y, the scratch row and b) that each read and write the row; the arithmetic is the
/// same and in the same order, so the result is bit for bit the same: int → float rounds to nearest,
/// α_o · s is rounded to float first, then the product and the sum are each rounded, unfused, as
/// TensorPrimitives.MultiplyAdd computes them (it does not fuse; measured, bench/README.md).
/// Measured gain: bench/README.md, "Levers".
/// </remarks>
internal static class Epilogue
{
    /// <summary>
    /// y = (α · s_t) · p + b over <paramref name="scales"/>.Length rows of <paramref name="n"/> outputs (row t: products
    /// and y at t·n, scale s_t = scales[t]), checked once per layer rather than per row (the forward pass made 600 calls
    /// a sentence). <paramref name="isa"/> caps the vector width (the plan passes its kernels' ISA, so a forced scalar,
    /// Vector128 or AVX2 set runs no wider code here either); every width gives the same bits.
    /// </summary>
    public static void ScaleBias(ReadOnlySpan<int> products, ReadOnlySpan<float> alpha, ReadOnlySpan<float> scales, ReadOnlySpan<float> bias,
        Span<float> y, int n, KernelIsa isa)
    {
        int rows = scales.Length;
        if (n < 0 || alpha.Length < n || bias.Length < n || products.Length < (long)rows * n || y.Length < (long)rows * n)
            throw new ArgumentException("alpha and bias need n entries, products and y rows · n");
        ref int p = ref MemoryMarshal.GetReference(products);
        ref float a = ref MemoryMarshal.GetReference(alpha);
        ref float b = ref MemoryMarshal.GetReference(bias);
        ref float o = ref MemoryMarshal.GetReference(y);
        for (int t = 0; t < rows; t++)
            Row(ref Unsafe.Add(ref p, t * n), ref a, scales[t], ref b, ref Unsafe.Add(ref o, t * n), n, isa);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(ref int p, ref float a, float scale, ref float b, ref float o, int n, KernelIsa isa)
    {
        int i = 0;
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s = Vector512.Create(scale);
            for (; i + Vector512<float>.Count <= n; i += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.ConvertToSingle(Vector512.LoadUnsafe(ref p, (nuint)i));
                Vector512<float> rowScale = Vector512.LoadUnsafe(ref a, (nuint)i) * s;
                (v * rowScale + Vector512.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref o, (nuint)i);
            }
        }
        else if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale);
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.ConvertToSingle(Vector256.LoadUnsafe(ref p, (nuint)i));
                Vector256<float> rowScale = Vector256.LoadUnsafe(ref a, (nuint)i) * s;
                (v * rowScale + Vector256.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref o, (nuint)i);
            }
        }
        else if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
        {
            Vector128<float> s = Vector128.Create(scale);
            for (; i + Vector128<float>.Count <= n; i += Vector128<float>.Count)
            {
                Vector128<float> v = Vector128.ConvertToSingle(Vector128.LoadUnsafe(ref p, (nuint)i));
                Vector128<float> rowScale = Vector128.LoadUnsafe(ref a, (nuint)i) * s;
                (v * rowScale + Vector128.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref o, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref o, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref a, i) * scale) + Unsafe.Add(ref b, i);
    }
}
