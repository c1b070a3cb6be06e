using System.Diagnostics;
using System.Numerics;

namespace BinEngine.Kernels;

/// <summary>
/// The packed-bit layout every binary kernel, the model file and the converter share (docs/MODEL.md, "Packed bits").
/// </summary>
/// <remarks>
/// A row of K signs (or one bit-plane of K activation codes) is <see cref="RowWords"/>(K) = ceil(K / 256) · 4
/// little-endian 64-bit words: element j is bit (j mod 64) of word ⌊j / 64⌋; bit 1 = +1 (for planes: the plane's bit
/// is set). Bits from K up to the end of the row are zero in both operands, so they cancel: XOR of 0 and 0 is 0, AND
/// with 0 is 0. The dot products therefore use the unpadded K. A packed matrix is its rows one after another.
/// A k-bit activation row is its k planes one after another (plane p at word p · RowWords(K)), so the planes of M
/// rows form an (M · k)-row packed matrix.
/// </remarks>
internal static class BitPacking
{
    /// <summary>Bits per block: every row is padded with zero bits to a multiple of this.</summary>
    public const int BlockBits = 256;

    /// <summary>64-bit words per block.</summary>
    public const int BlockWords = BlockBits / 64;

    /// <summary>
    /// How many words past the end of a packed row a kernel may read: none. Rows are padded to 256 bits, every
    /// vector path reads whole 128/256-bit pieces of a row, and the 512-bit paths finish a row with an odd number of
    /// 256-bit blocks with one 256-bit step, so no load crosses a row's end (and so none reads past a buffer).
    /// </summary>
    public const int ReadPastRowWords = 0;

    /// <summary>Words in one packed row of <paramref name="k"/> elements: ceil(k / 256) · 4.</summary>
    public static int RowWords(int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        return (int)(((long)k + BlockBits - 1) / BlockBits) * BlockWords;
    }

    /// <summary>Largest code magnitude m = 2^(bits−1) − 1 of a <paramref name="bits"/>-bit quantizer (MODEL.md).</summary>
    public static int MaxCode(int bits)
    {
        ValidateBits(bits);
        return (1 << (bits - 1)) - 1;
    }

    /// <summary>Packs the signs of one float row: bit j = 1 where row[j] ≥ 0 (sign(0) = +1), padding bits 0.</summary>
    /// <param name="row">K floats. NaN packs as −1 (NaN ≥ 0 is false).</param>
    /// <param name="dst">At least <see cref="RowWords"/>(K) words; exactly that many are written.</param>
    public static void PackSigns(ReadOnlySpan<float> row, Span<ulong> dst)
    {
        int words = RowWords(row.Length);
        CheckLength(dst.Length, words, nameof(dst));
        dst = dst[..words];
        dst.Clear();
        for (int j = 0; j < row.Length; j++)
        {
            if (row[j] >= 0f) dst[j >> 6] |= 1UL << (j & 63);
        }
    }

    /// <summary>Packs the signs of a row-major float matrix [rows, k] into rows · RowWords(k) words.</summary>
    public static void PackSignsMatrix(ReadOnlySpan<float> matrix, int rows, int k, Span<ulong> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        int words = RowWords(k);
        CheckLength(matrix.Length, (long)rows * k, nameof(matrix));
        CheckLength(dst.Length, (long)rows * words, nameof(dst));
        for (int r = 0; r < rows; r++) PackSigns(matrix.Slice(r * k, k), dst.Slice(r * words, words));
    }

    /// <summary>Packs ±1 codes (any code ≥ 0 counts as +1) of one row, like the float overload.</summary>
    public static void PackSigns(ReadOnlySpan<sbyte> signs, Span<ulong> dst)
    {
        int words = RowWords(signs.Length);
        CheckLength(dst.Length, words, nameof(dst));
        dst = dst[..words];
        dst.Clear();
        for (int j = 0; j < signs.Length; j++)
        {
            if (signs[j] >= 0) dst[j >> 6] |= 1UL << (j & 63);
        }
    }

    /// <summary>
    /// Packs one row of k-bit codes q ∈ [−m, m] (m = 2^(bits−1) − 1) as <paramref name="bits"/> planes of
    /// u = q + m ∈ [0, 2m]: plane p holds bit p of u, at dst[p · RowWords(K) ..]. 2m = 2^bits − 2 fits in bits bits.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A code lies outside [−m, m], or bits is not in 2..8.</exception>
    public static void PackOffsetPlanes(ReadOnlySpan<sbyte> codes, int bits, Span<ulong> dst)
    {
        int m = MaxCode(bits);
        int words = RowWords(codes.Length);
        CheckLength(dst.Length, (long)bits * words, nameof(dst));
        dst = dst[..(bits * words)];
        dst.Clear();
        for (int j = 0; j < codes.Length; j++)
        {
            int q = codes[j];
            if (q < -m || q > m)
                throw new ArgumentOutOfRangeException(nameof(codes), $"code {q} at index {j} is outside [-{m}, {m}] for {bits}-bit activations");
            uint u = (uint)(q + m);
            ulong bit = 1UL << (j & 63);
            for (int p = 0; p < bits; p++)
            {
                if (((u >> p) & 1) != 0) dst[p * words + (j >> 6)] |= bit;
            }
        }
    }

    /// <summary>
    /// Packs a row-major matrix of codes [rows, k] as rows of <paramref name="bits"/> planes each (row r at
    /// dst[r · bits · RowWords(k) ..]): the activation operand of <see cref="PlaneGemm"/>.
    /// </summary>
    public static void PackOffsetPlanesMatrix(ReadOnlySpan<sbyte> codes, int rows, int k, int bits, Span<ulong> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ValidateBits(bits);
        int rowWords = bits * RowWords(k);
        CheckLength(codes.Length, (long)rows * k, nameof(codes));
        CheckLength(dst.Length, (long)rows * rowWords, nameof(dst));
        for (int r = 0; r < rows; r++) PackOffsetPlanes(codes.Slice(r * k, k), bits, dst.Slice(r * rowWords, rowWords));
    }

    /// <summary>Unpacks a sign row to ±1 codes (tests, debugging).</summary>
    public static void UnpackSigns(ReadOnlySpan<ulong> src, int k, Span<sbyte> dst)
    {
        CheckLength(src.Length, RowWords(k), nameof(src));
        CheckLength(dst.Length, k, nameof(dst));
        for (int j = 0; j < k; j++) dst[j] = ((src[j >> 6] >> (j & 63)) & 1) != 0 ? (sbyte)1 : (sbyte)-1;
    }

    /// <summary>Unpacks one row of <paramref name="bits"/> planes back to codes q = u − m (tests, debugging).</summary>
    public static void UnpackOffsetPlanes(ReadOnlySpan<ulong> src, int k, int bits, Span<sbyte> dst)
    {
        int m = MaxCode(bits);
        int words = RowWords(k);
        CheckLength(src.Length, (long)bits * words, nameof(src));
        CheckLength(dst.Length, k, nameof(dst));
        for (int j = 0; j < k; j++)
        {
            int u = 0;
            for (int p = 0; p < bits; p++) u |= (int)((src[p * words + (j >> 6)] >> (j & 63)) & 1) << p;
            dst[j] = (sbyte)(u - m);
        }
    }

    /// <summary>
    /// Row sums of a packed ±1 matrix: rowsum(B_j) = Σ_i B_ji = popcount(b_j) − (K − popcount(b_j)) = 2·popcount(b_j) − K.
    /// Computed once per weight matrix for the W1Ak plane GEMM.
    /// </summary>
    public static void RowSums(ReadOnlySpan<ulong> packed, int rows, int k, Span<int> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        int words = RowWords(k);
        CheckLength(packed.Length, (long)rows * words, nameof(packed));
        CheckLength(dst.Length, rows, nameof(dst));
        for (int r = 0; r < rows; r++)
        {
            int ones = 0;
            foreach (ulong w in packed.Slice(r * words, words)) ones += BitOperations.PopCount(w);
            dst[r] = 2 * ones - k;
        }
    }

    /// <summary>True when every padding bit (from k to the end of each row) is zero.</summary>
    public static bool PaddingIsZero(ReadOnlySpan<ulong> packed, int rows, int k)
    {
        int words = RowWords(k);
        if (packed.Length < (long)rows * words) return false;
        for (int r = 0; r < rows; r++)
        {
            var row = packed.Slice(r * words, words);
            for (int w = k >> 6; w < words; w++)
            {
                int from = w == (k >> 6) ? k & 63 : 0;
                ulong mask = from == 0 ? ulong.MaxValue : ~((1UL << from) - 1);
                if ((row[w] & mask) != 0) return false;
            }
        }
        return true;
    }

    internal static void ValidateBits(int bits)
    {
        if (bits < 2 || bits > 8)
            throw new ArgumentOutOfRangeException(nameof(bits), $"activation bits must be 2..8 for bit planes, got {bits}");
    }

    internal static void CheckLength(long actual, long needed, string name)
    {
        if (actual < needed)
            throw new ArgumentException($"{name} holds {actual} elements, needs at least {needed}", name);
    }

    [Conditional("DEBUG")]
    internal static void AssertPadding(ReadOnlySpan<ulong> packed, int rows, int k) =>
        Debug.Assert(PaddingIsZero(packed, rows, k), "packed rows must have zero padding bits (MODEL.md)");
}
