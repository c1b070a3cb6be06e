using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
    /// <c>Q(x) = s · q</c> forms), into <paramref name="destination"/>. <paramref name="isa"/> caps the vector
    /// width (<see cref="KernelIsa.Scalar"/> is the reference loop); every width gives the same bits.
    /// </summary>
    /// <remarks>
    /// The vector widths rebuild each lane's code in float from the planes' bits as signs s_p = 2·b_p − 1
    /// (<see cref="IFloatLanes{TVec}.Signs"/>): P = 1 stores the sign itself (bit 1 = +1); for P ≥ 2,
    /// code = Σ_{p&lt;P−1} 2^p·b_p − 2^(P−1)·b_{P−1}, and substituting b_p = (s_p + 1) / 2 gives
    /// code = (Σ_{p&lt;P−1} 2^p·s_p − 2^(P−1)·s_{P−1} − 1) / 2. Every intermediate is a small integer or half of
    /// one, exact in float, so the one rounding is the final multiply by the scale: the same float32 product
    /// as the scalar <c>code · scale</c>. (The scalar loop reads the 2^P products from a table computed once per row.)
    /// A 2-bit row of d = 256 took ≈ 1 µs scalar, 6 % of the 3-block W1A1 pass (bench/results/profile.md).
    /// </remarks>
    public static void DequantizeRow(ReadOnlySpan<ulong> row, int planes, float scale, Span<float> destination, KernelIsa isa = KernelIsa.Avx512)
    {
        int k = destination.Length;
        int w = BitPacking.RowWords(k);
        if (planes is < 1 or > TensorInfo.MaxPlanes)
            throw new ArgumentOutOfRangeException(nameof(planes), planes, $"1..{TensorInfo.MaxPlanes} planes");
        if (row.Length != w * planes)
            throw new ArgumentException($"row holds {row.Length} words; {w * planes} needed", nameof(row));
        int j = 0;
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            j = DequantizeLanes<Lanes512, Vector512<float>>(row, w, planes, scale, destination);
        else if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            j = DequantizeLanes<Lanes256, Vector256<float>>(row, w, planes, scale, destination);
        else if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            j = DequantizeLanes<Lanes128, Vector128<float>>(row, w, planes, scale, destination);
        if (j == k)
            return;

        Span<float> levels = stackalloc float[1 << planes];
        for (int u = 0; u < levels.Length; u++)
        {
            int code = planes == 1 ? u * 2 - 1 : u >= 1 << (planes - 1) ? u - (1 << planes) : u;
            levels[u] = code * scale;
        }
        for (; j < k; j++)
        {
            int word = j >> 6, shift = j & 63, u = 0;
            for (int p = 0; p < planes; p++)
                u |= (int)((row[p * w + word] >> shift) & 1) << p;
            destination[j] = levels[u];
        }
    }

    /// <summary>The whole vectors of <see cref="DequantizeRow"/> (see its remarks); returns the elements done.</summary>
    private static int DequantizeLanes<TLanes, TVec>(ReadOnlySpan<ulong> row, int w, int planes, float scale, Span<float> destination)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int lanes = TLanes.Count, k = destination.Length, j = 0;   // lanes divides 64: a vector never straddles two words
        TVec s = TLanes.Create(scale), half = TLanes.Create(0.5f), one = TLanes.Create(1f), top = TLanes.Create(-(1 << (planes - 1)));
        unsafe
        {
            fixed (ulong* r = row)
            fixed (float* o = destination)
            {
                for (; j + lanes <= k; j += lanes)
                {
                    int word = j >> 6, shift = j & 63;
                    TVec code;
                    if (planes == 1)
                    {
                        code = TLanes.Signs((uint)(r[word] >> shift));
                    }
                    else
                    {
                        TVec sum = TLanes.Multiply(TLanes.Signs((uint)(r[(planes - 1) * w + word] >> shift)), top);
                        for (int p = 0; p < planes - 1; p++)
                            sum = TLanes.FusedMultiplyAdd(TLanes.Signs((uint)(r[p * w + word] >> shift)), TLanes.Create(1 << p), sum);
                        code = TLanes.Multiply(TLanes.Subtract(sum, one), half);
                    }
                    TLanes.Store(TLanes.Multiply(code, s), o + j);
                }
            }
        }
        return j;
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
