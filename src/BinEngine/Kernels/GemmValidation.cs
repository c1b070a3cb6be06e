namespace BinEngine.Kernels;

internal static class GemmValidation
{
    public static void Shape(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM shape must be non-negative, got M={m}, N={n}, K={k}");
    }
}
