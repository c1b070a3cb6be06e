using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Converter;

/// <summary>
/// The offline quantizers of docs/MODEL.md, applied once by the converter so the runtime only
/// maps and runs (LCE's principle). Both are the engine's one quantizer (<see cref="Quantizer"/>)
/// applied per row, then packed with the one packed-bit layout (<see cref="BitPacking"/>).
/// </summary>
internal static class Quantizers
{
    /// <summary>
    /// Binarizes a [rows, k] weight matrix: bit 1 = +1 (sign(0) = +1), α_o = mean|W_o| in float64,
    /// rows packed to <see cref="BitPacking.RowWords"/> words with zero padding.
    /// </summary>
    public static (ulong[] Bits, float[] Alpha) Binarize(ReadOnlySpan<float> weights, int rows, int k)
    {
        var (signs, alpha) = QuantizeRows(weights, rows, k, 1);
        int words = BitPacking.RowWords(k);
        var bits = new ulong[checked(rows * words)];
        for (int r = 0; r < rows; r++)
            BitPacking.PackSigns(signs.AsSpan(r * k, k), bits.AsSpan(r * words, words));
        return (bits, alpha);
    }

    /// <summary>Quantizes each row of a [rows, k] table to <paramref name="bits"/> ∈ {1, 2, 4, 8}: codes and one scale per row.</summary>
    public static (sbyte[] Codes, float[] Scales) QuantizeRows(ReadOnlySpan<float> table, int rows, int k, int bits)
    {
        if (bits is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "1, 2, 4 or 8 bits");
        if (table.Length != (long)rows * k)
            throw new ArgumentException($"{table.Length} values for [{rows}, {k}]", nameof(table));
        var codes = new sbyte[table.Length];
        var scales = new float[rows];
        for (int r = 0; r < rows; r++)
            scales[r] = Quantizer.QuantizeRow(table.Slice(r * k, k), bits, codes.AsSpan(r * k, k));
        return (codes, scales);
    }
}
