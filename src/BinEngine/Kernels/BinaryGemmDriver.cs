using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>The bitwise operation whose popcount a binary kernel sums: XOR for W1A1, AND for bit planes.</summary>
internal interface IBitOp
{
    static abstract ulong Apply(ulong a, ulong w);
    static abstract Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> w);
    static abstract Vector256<byte> Apply(Vector256<byte> a, Vector256<byte> w);
    static abstract Vector512<byte> Apply(Vector512<byte> a, Vector512<byte> w);
}

internal readonly struct XorOp : IBitOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong Apply(ulong a, ulong w) => a ^ w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> w) => a ^ w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> Apply(Vector256<byte> a, Vector256<byte> w) => a ^ w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> Apply(Vector512<byte> a, Vector512<byte> w) => a ^ w;
}

internal readonly struct AndOp : IBitOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong Apply(ulong a, ulong w) => a & w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> w) => a & w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> Apply(Vector256<byte> a, Vector256<byte> w) => a & w;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> Apply(Vector512<byte> a, Vector512<byte> w) => a & w;
}

/// <summary>
/// A register-blocked popcount micro-kernel: counts[r·Cols + c] = Σ_t popcount(Op(a_r[t], w_c[t])) over `words` words
/// for Rows A rows (stride aStride words) and Cols W rows (stride wStride). Rows past aRows / wRows repeat the last
/// real one (their counts are computed and ignored), so every block runs the same straight-line code.
/// </summary>
internal unsafe interface IPopCountBlock
{
    static abstract int Rows { get; }
    static abstract int Cols { get; }
    static abstract void Count<TOp>(ulong* a, nint aStride, int aRows, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp;
    /// <summary>One A row against Cols W rows: counts[c].</summary>
    static abstract void CountRow<TOp>(ulong* a, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp;
}

/// <summary>
/// W1A1 and W1Ak drivers over any <see cref="IPopCountBlock"/>: they walk the (M, N) range in blocks and turn popcounts
/// into dot products (formulas derived on <see cref="XnorGemm"/> and <see cref="PlaneGemm"/>).
/// </summary>
internal static unsafe class BinaryGemmDriver<TBlock> where TBlock : struct, IPopCountBlock
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Xnor(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K), rows = TBlock.Rows, cols = TBlock.Cols;
        ulong* a = (ulong*)g.A, w = (ulong*)g.W;
        int* c = (int*)g.C;
        int* counts = stackalloc int[rows * cols];
        // W block outer: its cols·words words stay in L1 while every A row of the range passes by.
        for (int j = n0; j < n1; j += cols)
        {
            int wRows = Math.Min(cols, n1 - j);
            ulong* wj = w + (long)j * words;
            int i = m0;
            for (; i + rows <= m1; i += rows)
            {
                TBlock.Count<XorOp>(a + (long)i * words, words, rows, wj, words, wRows, words, counts);
                for (int r = 0; r < rows; r++)
                {
                    int* ci = c + (long)(i + r) * g.N + j;
                    for (int q = 0; q < wRows; q++) ci[q] = g.K - 2 * counts[r * cols + q];
                }
            }
            for (; i < m1; i++)
            {
                TBlock.CountRow<XorOp>(a + (long)i * words, wj, words, wRows, words, counts);
                int* ci = c + (long)i * g.N + j;
                for (int q = 0; q < wRows; q++) ci[q] = g.K - 2 * counts[q];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Plane(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int words = BitPacking.RowWords(g.K), rows = TBlock.Rows, cols = TBlock.Cols;
        int bits = g.Bits, m = BitPacking.MaxCode(bits);
        ulong* a = (ulong*)g.A, w = (ulong*)g.W;
        int* c = (int*)g.C;
        int* counts = stackalloc int[rows * cols];
        int* bu = stackalloc int[cols];
        // A row outer: its bits·words words stay in L1 while the W range passes by.
        for (int i = m0; i < m1; i++)
        {
            ulong* planes = a + (long)i * bits * words;
            int sumU = 0;                                   // Σ_t u_t = Σ_p 2^p·popcount(P_p)
            for (int p = 0; p < bits; p++)
                for (int t = 0; t < words; t++) sumU += BitOperations.PopCount(planes[p * words + t]) << p;
            int* ci = c + (long)i * g.N;
            for (int j = n0; j < n1; j += cols)
            {
                int wRows = Math.Min(cols, n1 - j);
                ulong* wj = w + (long)j * words;
                for (int q = 0; q < cols; q++) bu[q] = 0;   // Σ_t b_t·u_t = Σ_p 2^p·popcount(b AND P_p)
                for (int p0 = 0; p0 < bits; p0 += rows)
                {
                    int planeRows = Math.Min(rows, bits - p0);
                    if (planeRows == 1)
                    {
                        TBlock.CountRow<AndOp>(planes + p0 * words, wj, words, wRows, words, counts);
                        for (int q = 0; q < wRows; q++) bu[q] += counts[q] << p0;
                        continue;
                    }
                    TBlock.Count<AndOp>(planes + p0 * words, words, planeRows, wj, words, wRows, words, counts);
                    for (int r = 0; r < planeRows; r++)
                        for (int q = 0; q < wRows; q++) bu[q] += counts[r * cols + q] << (p0 + r);
                }
                for (int q = 0; q < wRows; q++) ci[j + q] = 2 * bu[q] - sumU - m * g.RowSums[j + q];
            }
        }
    }
}

/// <summary>The activation-side term of the bit-plane identity.</summary>
internal static unsafe class PlaneSums
{
    /// <summary>Activation rows whose Σu the interleaved plane kernels keep at once (on the stack).</summary>
    public const int RowChunk = 64;

    /// <summary>Σ_t u_t = Σ_p 2^p·popcount(P_p) for one row's planes.</summary>
    public static long SumU(ulong* planes, int bits, int words)
    {
        long sum = 0;
        for (int p = 0; p < bits; p++)
        {
            long count = 0;
            for (int t = 0; t < words; t++) count += BitOperations.PopCount(planes[p * words + t]);
            sum += count << p;
        }
        return sum;
    }
}
