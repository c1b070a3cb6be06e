using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// Quantizes one activation row and packs it for the binary kernels in one pass, without the
/// intermediate int8 codes: the per-token work that sits between two GEMMs, which at M ≈ 25 tokens
/// costs as much as the XNOR GEMM itself when done one element and one plane at a time.
///
///   a = 1:      bit j = (x_j ≥ 0), scale β = mean|x|                          (one plane)
///   2 ≤ a ≤ 8:  u_j = clamp(round_half_even(x_j / s), −m, m) + m, s = max|x| / m  (a planes of u)
///
/// Same float operations as <see cref="Quantizer"/> per element (x / s, round to even,
/// clamp), so the planes are bit-identical to quantizing then <see cref="BitPacking.PackOffsetPlanes"/>;
/// only β = mean|x| for a = 1 is summed in another order (a few ulps).
/// Output layout: <see cref="BitPacking"/>'s, planes one after another, padding bits zero.
/// </summary>
internal static class ActivationPacker
{
    /// <summary>
    /// Packs <paramref name="x"/> (K floats) into <paramref name="planes"/> (bits · RowWords(K) words); returns the row
    /// scale. <paramref name="isa"/> caps the vector width (a = 1: up to Vector512; 2 ≤ a ≤ 8: Vector256 from Avx2 on).
    /// </summary>
    public static float Pack(ReadOnlySpan<float> x, int bits, Span<ulong> planes, KernelIsa isa = KernelIsa.Avx512)
    {
        if (bits == 1)
            return PackSigns(x, planes, isa);
        int k = x.Length, words = BitPacking.RowWords(k);
        planes = planes[..(bits * words)];
        planes.Clear();

        int m = BitPacking.MaxCode(bits);
        float s = RowScale(x, m);
        if (!(s > 0f))
        {
            // All codes 0: u = m in every real position.
            for (int j = 0; j < k; j++)
                SetPlaneBits(planes, words, bits, j, (uint)m);
            return 0f;
        }
        int j0 = 0;
        if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
            j0 = PackPlanesVector256(x, s, m, bits, planes, words);
        for (int j = j0; j < k; j++)
            SetPlaneBits(planes, words, bits, j, (uint)(Code(x[j], s, m) + m));
        return s;
    }

    /// <summary>
    /// Quantizes <paramref name="x"/> to int8 codes q ∈ [−m, m] (2 ≤ bits ≤ 8) for the int8 kernel
    /// (<see cref="CodeGemm"/>); returns the scale s = max|x| / m. Same operations as <see cref="Quantizer"/>.
    /// </summary>
    public static float QuantizeCodes(ReadOnlySpan<float> x, int bits, Span<sbyte> codes, bool vectorised = true)
    {
        int k = x.Length, m = BitPacking.MaxCode(bits);
        float s = RowScale(x, m);
        if (!(s > 0f))
        {
            codes[..k].Clear();
            return 0f;
        }
        int j = 0;
        if (vectorised && Vector256.IsHardwareAccelerated)
        {
            // 32 codes a step: four 8-lane conversions narrowed int32 → int16 → int8 (Narrow keeps element order
            // and truncates, which is exact: the codes are already clamped to [−m, m] ⊂ [−127, 127]).
            for (; j + 32 <= k; j += 32)
            {
                Vector256<short> lo = Vector256.Narrow(CodeVector(x.Slice(j, 8), s, m), CodeVector(x.Slice(j + 8, 8), s, m));
                Vector256<short> hi = Vector256.Narrow(CodeVector(x.Slice(j + 16, 8), s, m), CodeVector(x.Slice(j + 24, 8), s, m));
                Vector256.Narrow(lo, hi).CopyTo(codes.Slice(j, 32));
            }
        }
        for (; j < k; j++)
            codes[j] = (sbyte)Code(x[j], s, m);
        return s;
    }

    /// <summary>s = max|x| / m. MaxMagnitude returns the element of largest magnitude, sign included: take its absolute value.</summary>
    private static float RowScale(ReadOnlySpan<float> x, int m) => MathF.Abs(TensorPrimitives.MaxMagnitude(x)) / m;

    /// <summary>
    /// <see cref="Code"/> on 8 lanes: round to nearest, ties to even (as MathF.Round(…, ToEven)), then clamp,
    /// in the scalar path's order.
    /// </summary>
    /// <remarks>
    /// On x86 the clamp and the conversion use the plain instructions (vmaxps, vminps, vcvttps2dq): the portable
    /// Vector256.Min/Max/ConvertToInt32 add IEEE −0/NaN fix-ups and saturation (three times the instructions;
    /// W1A8's quantize stage went 236 → 171–192 µs/sent without them), none of which a finite quotient already rounded to an integer needs. The
    /// operand order lets a NaN through to the conversion (vmaxps/vminps return their second operand on NaN), which
    /// gives int.MinValue, whose low byte 0 is what the scalar path's (int)NaN = 0 gives as a code.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> CodeVector(ReadOnlySpan<float> x8, float s, int m)
    {
        Vector256<float> q = Vector256.Round(Vector256.Create(x8) / Vector256.Create(s));
        if (Avx.IsSupported)
            return Avx.ConvertToVector256Int32WithTruncation(Avx.Min(Vector256.Create((float)m), Avx.Max(Vector256.Create((float)-m), q)));
        return Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(q, Vector256.Create((float)-m)), Vector256.Create((float)m)));
    }

    /// <summary>q = clamp(round_half_even(x / s), −m, m): the scalar definition the vector path reproduces.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(float x, float s, int m) => (int)Math.Clamp(MathF.Round(x / s, MidpointRounding.ToEven), -m, m);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SetPlaneBits(Span<ulong> planes, int words, int bits, int j, uint u)
    {
        ulong bit = 1UL << (j & 63);
        for (int p = 0; p < bits; p++)
            if (((u >> p) & 1) != 0)
                planes[p * words + (j >> 6)] |= bit;
    }

    /// <summary>
    /// a = 1: bit j = (x_j ≥ 0) (sign(0) = +1, NaN gives 0) into <paramref name="plane"/> (RowWords(K) words, padding
    /// bits zero), and β = mean|x| from the same loads (one pass over the row, not a pack and a TensorPrimitives sum).
    /// Vectors up to <paramref name="isa"/>'s width build each 64-bit word in a register and store it once (or-ing
    /// every 8 bits into memory chained 8 store-to-load forwards per word: −28 % on W1A1's quantize + pack,
    /// bench/README.md "Levers"). The bits do not depend on the width; β is summed in per-lane partial sums, so it
    /// moves by ulps with the width.
    /// </summary>
    public static unsafe float PackSigns(ReadOnlySpan<float> x, Span<ulong> plane, KernelIsa isa)
    {
        int k = x.Length, j = 0;
        plane = plane[..BitPacking.RowWords(k)];
        plane.Clear();
        float sum = 0f;
        fixed (float* xp = x)
        fixed (ulong* pp = plane)
        {
            if (isa >= KernelIsa.Avx512 && Lanes512.IsSupported)
                sum += PackSignsLanes<Lanes512, Vector512<float>>(xp, k, ref j, pp);
            if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
                sum += PackSignsLanes<Lanes256, Vector256<float>>(xp, k, ref j, pp);
            if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
                sum += PackSignsLanes<Lanes128, Vector128<float>>(xp, k, ref j, pp);
            for (; j < k; j++)
            {
                float y = xp[j];
                sum += MathF.Abs(y);
                if (y >= 0f)
                    pp[j >> 6] |= 1UL << (j & 63);
            }
        }
        return k == 0 ? 0f : sum / k;
    }

    /// <summary>One width's part of <see cref="PackSigns"/>: whole words from j, then single vectors; returns its Σ|x|.</summary>
    private static unsafe float PackSignsLanes<TLanes, TVec>(float* x, int k, ref int j, ulong* plane)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int w = TLanes.Count;
        TVec magnitudes = TLanes.Zero;
        for (; j + 64 <= k; j += 64)
        {
            ulong word = 0;
            for (int b = 0; b < 64; b += w)
            {
                TVec y = TLanes.Load(x + j + b);
                magnitudes = TLanes.Add(magnitudes, TLanes.Abs(y));
                word |= (ulong)TLanes.NonNegativeBits(y) << b;
            }
            plane[j >> 6] = word;
        }
        for (; j + w <= k; j += w) // w divides 64: a vector never straddles two words
        {
            TVec y = TLanes.Load(x + j);
            magnitudes = TLanes.Add(magnitudes, TLanes.Abs(y));
            plane[j >> 6] |= (ulong)TLanes.NonNegativeBits(y) << (j & 63);
        }
        return TLanes.Sum(magnitudes);
    }

    /// <summary>
    /// 8 elements at a time: u = clamp(round(x / s)) + m as int32 lanes, then for each plane p the lanes'
    /// bit p is shifted to the sign position and the 8 sign bits are gathered with one movemask.
    /// Returns how many elements it packed (a multiple of 8).
    /// </summary>
    private static int PackPlanesVector256(ReadOnlySpan<float> x, float s, int m, int bits, Span<ulong> planes, int words)
    {
        int k = x.Length, j = 0;
        Vector256<int> offset = Vector256.Create(m);
        for (; j + 8 <= k; j += 8)
        {
            Vector256<int> u = CodeVector(x.Slice(j, 8), s, m) + offset;
            int word = j >> 6, shift = j & 63;
            for (int p = 0; p < bits; p++)
            {
                uint mask = Vector256.ShiftLeft(u, 31 - p).ExtractMostSignificantBits();
                planes[p * words + word] |= (ulong)mask << shift;
            }
        }
        return j;
    }
}
