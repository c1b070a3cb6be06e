using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BinEngine.Format;

namespace BinEngine.Kernels;

/// <summary>
/// The storage plane encoding: packs and unpacks integer codes to and from the bit-plane rows the
/// model file stores (docs/MODEL.md "Packed bits", <see cref="TensorElementType.Bits"/>: the
/// embedding tables). The other encoding, offset binary u = code + m, is the activation operand of
/// the plane kernels (<see cref="BitPacking.PackOffsetPlanes"/>); both share one row layout
/// (<see cref="BitPacking.RowWords"/>) and one padding check. One row of K codes with P planes takes P consecutive
/// plane rows of <c>PackedRowWords(K)</c> words; element j is bit (j mod 64) of word ⌊j/64⌋ of
/// each plane row; bits from K to the end of a plane row are zero.
/// <list type="bullet">
/// <item>P = 1 (signs): bit 1 = +1, bit 0 = −1. Codes must be ±1.</item>
/// <item>P ≥ 2: the P-bit two's complement of the code, plane p = bit p, so
/// code = Σ_{p&lt;P−1} 2^p·b_p − 2^(P−1)·b_{P−1}. Codes must lie in [−2^(P−1), 2^(P−1) − 1].</item>
/// </list>
/// </summary>
internal static class TwosComplementPlanes
{
    /// <summary>Words of one row with <paramref name="planes"/> planes of K elements.</summary>
    public static int RowWords(int k, int planes) => checked(BitPacking.RowWords(k) * planes);

    /// <summary>Packs one row of codes into <paramref name="destination"/> (RowWords(codes.Length, planes) words, overwritten).</summary>
    public static void PackRow(ReadOnlySpan<sbyte> codes, int planes, Span<ulong> destination)
    {
        int k = codes.Length;
        int w = BitPacking.RowWords(k);
        if (planes is < 1 or > TensorInfo.MaxPlanes)
            throw new ArgumentOutOfRangeException(nameof(planes), planes, $"1..{TensorInfo.MaxPlanes} planes");
        if (destination.Length != w * planes)
            throw new ArgumentException($"destination holds {destination.Length} words; {w * planes} needed", nameof(destination));
        destination.Clear();
        int lo = planes == 1 ? -1 : -(1 << (planes - 1));
        int hi = planes == 1 ? 1 : (1 << (planes - 1)) - 1;
        for (int j = 0; j < k; j++)
        {
            int c = codes[j];
            if (c < lo || c > hi || (planes == 1 && c == 0))
                throw new ArgumentException($"code {c} at {j} does not fit {planes} plane(s)", nameof(codes));
            ulong bit = 1UL << (j & 63);
            int word = j >> 6;
            if (planes == 1)
            {
                if (c > 0)
                    destination[word] |= bit;
                continue;
            }
            uint u = (uint)c;   // two's complement bits
            for (int p = 0; p < planes; p++)
                if (((u >> p) & 1) != 0)
                    destination[p * w + word] |= bit;
        }
    }

    /// <summary>Unpacks one row of K codes from its <c>RowWords(K, planes)</c> words.</summary>
    public static void UnpackRow(ReadOnlySpan<ulong> row, int planes, Span<sbyte> codes)
    {
        int k = codes.Length;
        int w = BitPacking.RowWords(k);
        if (row.Length != w * planes)
            throw new ArgumentException($"row holds {row.Length} words; {w * planes} needed", nameof(row));
        for (int j = 0; j < k; j++)
        {
            int word = j >> 6, shift = j & 63;
            if (planes == 1)
            {
                codes[j] = (sbyte)((int)((row[word] >> shift) & 1) * 2 - 1);
                continue;
            }
            int c = 0;
            for (int p = 0; p < planes - 1; p++)
                c |= (int)((row[p * w + word] >> shift) & 1) << p;
            c -= (int)((row[(planes - 1) * w + word] >> shift) & 1) << (planes - 1);
            codes[j] = (sbyte)c;
        }
    }

    /// <summary>
    /// Dequantizes one row of K codes, <c>code · scale</c> in float32 (the product the trainer's
    /// <c>Q(x) = s · q</c> forms), into <paramref name="destination"/>.
    /// </summary>
    /// <remarks>
    /// A row's P bits per element, read as an unsigned index u, select one of 2^P levels
    /// <c>levels[u] = code(u) · scale</c> computed once per row (the same float32 product, so the
    /// result is bit-identical to multiplying per element); the loop then only gathers bits. One,
    /// two and four planes (the embedding widths) have unrolled gathers.
    /// </remarks>
    public static void DequantizeRow(ReadOnlySpan<ulong> row, int planes, float scale, Span<float> destination)
    {
        int k = destination.Length;
        int w = BitPacking.RowWords(k);
        if (planes is < 1 or > TensorInfo.MaxPlanes)
            throw new ArgumentOutOfRangeException(nameof(planes), planes, $"1..{TensorInfo.MaxPlanes} planes");
        if (row.Length != w * planes)
            throw new ArgumentException($"row holds {row.Length} words; {w * planes} needed", nameof(row));
        Span<float> levels = stackalloc float[1 << planes];
        for (int u = 0; u < levels.Length; u++)
        {
            int code = planes == 1 ? u * 2 - 1 : u >= 1 << (planes - 1) ? u - (1 << planes) : u;
            levels[u] = code * scale;
        }
        // Indexes are < 2^planes = levels.Length by construction, and j < n ≤ destination's rest,
        // so the gathers below use unchecked refs (the bounds checks were half the loop's cost).
        ref float lv = ref MemoryMarshal.GetReference(levels);
        for (int word = 0, at = 0; at < k; word++, at += 64)
        {
            int n = Math.Min(64, k - at);
            ref float dst = ref Unsafe.Add(ref MemoryMarshal.GetReference(destination), at);
            switch (planes)
            {
                case 1:
                {
                    ulong b0 = row[word];
                    for (int j = 0; j < n; j++)
                        Unsafe.Add(ref dst, j) = Unsafe.Add(ref lv, (int)(b0 >> j) & 1);
                    break;
                }
                case 2:
                {
                    ulong b0 = row[word], b1 = row[w + word];
                    for (int j = 0; j < n; j++)
                        Unsafe.Add(ref dst, j) = Unsafe.Add(ref lv, (int)((b0 >> j) & 1 | ((b1 >> j) & 1) << 1));
                    break;
                }
                case 4:
                {
                    ulong b0 = row[word], b1 = row[w + word], b2 = row[2 * w + word], b3 = row[3 * w + word];
                    for (int j = 0; j < n; j++)
                        Unsafe.Add(ref dst, j) = Unsafe.Add(ref lv, (int)((b0 >> j) & 1 | ((b1 >> j) & 1) << 1 | ((b2 >> j) & 1) << 2 | ((b3 >> j) & 1) << 3));
                    break;
                }
                default:
                    for (int j = 0; j < n; j++)
                    {
                        int u = 0;
                        for (int p = 0; p < planes; p++)
                            u |= (int)((row[p * w + word] >> j) & 1) << p;
                        Unsafe.Add(ref dst, j) = Unsafe.Add(ref lv, u);
                    }
                    break;
            }
        }
    }

    /// <summary>True when every padding bit (elements K.. of each plane row) of a row is zero.</summary>
    public static bool PaddingIsZero(ReadOnlySpan<ulong> row, int k, int planes)
    {
        int w = BitPacking.RowWords(k);
        for (int p = 0; p < planes; p++)
            if (!BitPacking.PaddingIsZero(row.Slice(p * w, w), 1, k))
                return false;
        return true;
    }
}
