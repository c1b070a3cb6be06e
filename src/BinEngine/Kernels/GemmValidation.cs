namespace BinEngine.Kernels;

internal static class GemmValidation
{
    public static void Shape(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM shape must be non-negative, got M={m}, N={n}, K={k}");
    }

    /// <summary>Σ b·u ≤ 254·K must fit an int (with the factor 2 of the identity): K ≤ 2^22.</summary>
    public static void PlaneRowLength(int k)
    {
        if (k > 1 << 22) throw new ArgumentOutOfRangeException(nameof(k), $"bit-plane GEMM rows are limited to 2^22 elements, got K={k}");
    }
}
