using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>
/// The epilogue of a binarized linear layer, y_o = (α_o · s) · p_o + b_o for one token row: the exact
/// integer product p = B·q turned into floats, scaled and biased in one pass over the row.
/// </summary>
/// <remarks>
/// The arithmetic, defined once in <see cref="Apply(int, float, float, float)"/> and its vector forms: int → float rounds
/// to nearest, α_o · s is rounded to float first, then the product and the sum are each rounded, unfused, as
/// TensorPrimitives.MultiplyAdd computes them (it does not fuse; measured, bench/README.md) and as
/// <see cref="Runtime.ReferenceForward"/> writes it. So every width, and every place it runs, gives the same bits.
/// <para>
/// A GEMM given a <see cref="ScaleBias"/> ends with it. The kernels that fuse it (the interleaved XNOR kernels, the
/// W1A1 fast path) apply it to the products still in registers and never store the integers; every other kernel
/// stores them and <see cref="GemmThreads"/> runs <see cref="Tile"/> over the tile just computed, while it is in cache
/// and on the thread that computed it. <see cref="ScaleBias(ReadOnlySpan{int}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, KernelIsa)"/>
/// is the same over a whole layer's stored products (tests, the stage profile).
/// </para>
/// </remarks>
internal static class Epilogue
{
    /// <summary>
    /// y = (α · s_t) · p + b over <paramref name="scales"/>.Length rows of <paramref name="n"/> outputs (row t: products
    /// and y at t·n, scale s_t = scales[t]). <paramref name="isa"/> caps the vector width (the plan passes its kernels'
    /// ISA, so a forced scalar, Vector128 or AVX2 set runs no wider code here either); every width gives the same bits.
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

    /// <summary>The epilogue over the tile [m0, m1) × [n0, n1) of <paramref name="g"/>'s stored products (g.Y not null).</summary>
    internal static unsafe void Tile(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int* c = (int*)g.C;
        for (int t = m0; t < m1; t++)
        {
            long at = (long)t * g.N + n0;
            Row(ref c[at], ref g.Alpha[n0], g.RowScales[t], ref g.Bias[n0], ref g.Y[at], n1 - n0, g.EpilogueIsa);
        }
    }

    /// <summary>
    /// A kernel's last <paramref name="count"/> (&lt; a block) products of row <paramref name="t"/> from column
    /// <paramref name="j"/>: stored as integers into C, or as y into Y when <paramref name="g"/> has an epilogue.
    /// </summary>
    internal static unsafe void StorePartial(in GemmArgs g, int t, int j, int* products, int count)
    {
        long at = (long)t * g.N + j;
        if (g.Y == null)
            for (int l = 0; l < count; l++) ((int*)g.C)[at + l] = products[l];
        else
            for (int l = 0; l < count; l++) g.Y[at + l] = Apply(products[l], g.Alpha[j + l], g.RowScales[t], g.Bias[j + l]);
    }

    /// <summary>One product.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Apply(int p, float alpha, float scale, float bias) => p * (alpha * scale) + bias;

    /// <summary>One vector of products (in registers, for the kernels that fuse the epilogue).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Apply(Vector512<int> p, Vector512<float> alpha, Vector512<float> scale, Vector512<float> bias) =>
        Vector512.ConvertToSingle(p) * (alpha * scale) + bias;

    /// <inheritdoc cref="Apply(Vector512{int}, Vector512{float}, Vector512{float}, Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Apply(Vector256<int> p, Vector256<float> alpha, Vector256<float> scale, Vector256<float> bias) =>
        Vector256.ConvertToSingle(p) * (alpha * scale) + bias;

    /// <inheritdoc cref="Apply(Vector512{int}, Vector512{float}, Vector512{float}, Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Apply(Vector128<int> p, Vector128<float> alpha, Vector128<float> scale, Vector128<float> bias) =>
        Vector128.ConvertToSingle(p) * (alpha * scale) + bias;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(ref int p, ref float a, float scale, ref float b, ref float o, int n, KernelIsa isa)
    {
        int i = 0;
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s = Vector512.Create(scale);
            for (; i + Vector512<float>.Count <= n; i += Vector512<float>.Count)
                Apply(Vector512.LoadUnsafe(ref p, (nuint)i), Vector512.LoadUnsafe(ref a, (nuint)i), s, Vector512.LoadUnsafe(ref b, (nuint)i))
                    .StoreUnsafe(ref o, (nuint)i);
        }
        else if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale);
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
                Apply(Vector256.LoadUnsafe(ref p, (nuint)i), Vector256.LoadUnsafe(ref a, (nuint)i), s, Vector256.LoadUnsafe(ref b, (nuint)i))
                    .StoreUnsafe(ref o, (nuint)i);
        }
        else if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
        {
            Vector128<float> s = Vector128.Create(scale);
            for (; i + Vector128<float>.Count <= n; i += Vector128<float>.Count)
                Apply(Vector128.LoadUnsafe(ref p, (nuint)i), Vector128.LoadUnsafe(ref a, (nuint)i), s, Vector128.LoadUnsafe(ref b, (nuint)i))
                    .StoreUnsafe(ref o, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref o, i) = Apply(Unsafe.Add(ref p, i), Unsafe.Add(ref a, i), scale, Unsafe.Add(ref b, i));
    }
}
