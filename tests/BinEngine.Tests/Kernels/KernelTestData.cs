using BinEngine.Kernels;

namespace BinEngine.Tests.Kernels;

/// <summary>Deterministic random operands and plain (unpacked) oracles for the kernel tests.</summary>
internal static class KernelTestData
{
    /// <summary>(M, K, N) shapes that hit every edge: K below, at and around multiples of 64, 256 and 512; M = 1 and
    /// odd; N odd and below every register block; K = 12,300, past the lookup kernel's six-bit groups (it falls back).</summary>
    public static readonly (int M, int K, int N)[] Shapes =
    [
        (1, 1, 1), (1, 5, 3), (2, 63, 2), (3, 64, 5), (4, 65, 4), (5, 127, 7), (1, 255, 9), (4, 256, 16),
        (7, 257, 17), (1, 511, 33), (6, 512, 3), (9, 513, 31), (8, 768, 8), (1, 768, 37), (5, 1000, 6),
        (13, 1024, 19), (3, 1280, 2), (2, 1792, 5), (4, 8000, 4), (2, 12300, 3), (17, 96, 65), (0, 64, 3), (3, 64, 0),
    ];

    public static float[] Floats(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        // Some exact zeros: sign(0) = +1 must pack as bit 1.
        for (int i = 0; i < count; i += 17) x[i] = 0f;
        return x;
    }

    public static sbyte[] Signs(int count, int seed)
    {
        var rng = new Random(seed);
        var s = new sbyte[count];
        for (int i = 0; i < count; i++) s[i] = rng.Next(2) == 0 ? (sbyte)-1 : (sbyte)1;
        return s;
    }

    /// <summary>Codes q ∈ [−m, m], with the extremes over-represented.</summary>
    public static sbyte[] Codes(int count, int bits, int seed)
    {
        int m = (1 << (bits - 1)) - 1;
        var rng = new Random(seed);
        var q = new sbyte[count];
        for (int i = 0; i < count; i++)
        {
            int r = rng.Next(10);
            q[i] = (sbyte)(r == 0 ? -m : r == 1 ? m : rng.Next(-m, m + 1));
        }
        return q;
    }

    public static ulong[] PackSignRows(sbyte[] signs, int rows, int k)
    {
        int words = BitPacking.RowWords(k);
        var packed = new ulong[rows * words];
        for (int r = 0; r < rows; r++) BitPacking.PackSigns(signs.AsSpan(r * k, k), packed.AsSpan(r * words, words));
        return packed;
    }

    public static ulong[] PackPlaneRows(sbyte[] codes, int rows, int k, int bits)
    {
        int words = BitPacking.RowWords(k);
        var packed = new ulong[rows * bits * words];
        for (int r = 0; r < rows; r++) BitPacking.PackOffsetPlanes(codes.AsSpan(r * k, k), bits, packed.AsSpan(r * bits * words, bits * words));
        return packed;
    }

    /// <summary>Plain integer C[i, j] = Σ_t a[i, t]·w[j, t].</summary>
    public static int[] IntDot(sbyte[] a, int m, sbyte[] w, int n, int k)
    {
        var c = new int[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int s = 0;
                for (int t = 0; t < k; t++) s += a[i * k + t] * w[j * k + t];
                c[i * n + j] = s;
            }
        return c;
    }

    /// <summary>
    /// Float GEMM oracle in double, plus the rounding-error bound of any float32 evaluation order:
    /// |fl(Σ x_t) − Σ x_t| ≤ γ_K·Σ|x_t| with γ_K = K·u / (1 − K·u), u = 2⁻²⁴ (Higham, Accuracy and Stability, §3.1;
    /// it holds for sequential, blocked and tree orders and with FMA). We allow (K + 2)·u·Σ|a·w| · 1.01 per entry.
    /// </summary>
    public static (double[] Exact, double[] Bound) FloatOracle(float[] a, int m, float[] w, int n, int k)
    {
        var exact = new double[m * n];
        var bound = new double[m * n];
        double u = Math.Pow(2, -24);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, abs = 0;
                for (int t = 0; t < k; t++)
                {
                    double p = (double)a[i * k + t] * w[j * k + t];
                    s += p;
                    abs += Math.Abs(p);
                }
                exact[i * n + j] = s;
                bound[i * n + j] = (k + 2) * u * abs * 1.01 + 1e-30;
            }
        return (exact, bound);
    }

    public static void AssertEqualInts(int[] expected, int[] actual, int n, string what)
    {
        var bad = new List<string>();
        for (int x = 0; x < expected.Length && bad.Count < 5; x++)
            if (expected[x] != actual[x]) bad.Add($"C[{x / Math.Max(1, n)},{x % Math.Max(1, n)}] expected {expected[x]} got {actual[x]}");
        Assert.True(bad.Count == 0, $"{what}: first mismatches: {string.Join("; ", bad)}");
    }

    public static void AssertWithin(double[] exact, double[] bound, float[] actual, int n, string what)
    {
        var bad = new List<string>();
        for (int x = 0; x < exact.Length && bad.Count < 5; x++)
            if (!(Math.Abs(actual[x] - exact[x]) <= bound[x]))
                bad.Add($"C[{x / Math.Max(1, n)},{x % Math.Max(1, n)}] exact {exact[x]:R} got {actual[x]:R} (bound {bound[x]:E2})");
        Assert.True(bad.Count == 0, $"{what}: first mismatches: {string.Join("; ", bad)}");
    }
}
