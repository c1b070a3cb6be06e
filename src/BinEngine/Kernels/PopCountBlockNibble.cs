using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// One vector width's byte operations for <see cref="PopCountBlockNibble{TLanes, TVec}"/>, the only per-width code of the
/// nibble-lookup popcount blocks.
/// </summary>
internal unsafe interface INibbleLanes<TVec> where TVec : struct
{
    /// <summary>64-bit words per vector.</summary>
    static abstract int WordsPerVector { get; }

    static abstract TVec Zero { get; }

    /// <summary>The 16-entry table of nibble popcounts, repeated in every 128-bit lane (the shuffles look up per lane).</summary>
    static abstract TVec NibbleCounts { get; }

    /// <summary>15 in every byte.</summary>
    static abstract TVec LowNibbles { get; }

    static abstract TVec Load(ulong* p);

    /// <summary>The row's last 256-bit block when a row is not whole vectors (only the 512-bit width), zero-extended: zeros count nothing.</summary>
    static abstract TVec LoadTail(ulong* p);

    static abstract TVec Add(TVec a, TVec b);

    static abstract TVec Apply<TOp>(TVec a, TVec w) where TOp : struct, IBitOp;

    /// <summary>popcount per byte = T[x AND 15] + T[x >> 4], T looked up by a byte shuffle.</summary>
    static abstract TVec PopCountBytes(TVec x, TVec lut, TVec low);

    /// <summary>Adds the byte sums of s0..s3 (each byte ≤ 31·8) to counts[0..3].</summary>
    static abstract void Flush4(TVec s0, TVec s1, TVec s2, TVec s3, int* counts);
}

/// <summary>Portable Vector128 (the shuffle is pshufb on x86, tbl on ARM).</summary>
internal readonly unsafe struct NibbleLanes128 : INibbleLanes<Vector128<byte>>
{
    public static int WordsPerVector => 2;
    public static Vector128<byte> Zero => Vector128<byte>.Zero;
    public static Vector128<byte> NibbleCounts => Vector128.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    public static Vector128<byte> LowNibbles => Vector128.Create((byte)15);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Load(ulong* p) => Vector128.Load((byte*)p);
    /// <summary>Rows are whole vectors at this width: no tail step ever runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> LoadTail(ulong* p) => Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Add(Vector128<byte> a, Vector128<byte> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Apply<TOp>(Vector128<byte> a, Vector128<byte> w) where TOp : struct, IBitOp => TOp.Apply(a, w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> PopCountBytes(Vector128<byte> x, Vector128<byte> lut, Vector128<byte> low) =>
        Vector128.ShuffleNative(lut, x & low) + Vector128.ShuffleNative(lut, Vector128.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);

    /// <summary>Widen to 16 bits (≤ 2·31·8 per lane) and sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush4(Vector128<byte> s0, Vector128<byte> s1, Vector128<byte> s2, Vector128<byte> s3, int* counts)
    {
        counts[0] += Vector128.Sum(Vector128.WidenLower(s0) + Vector128.WidenUpper(s0));
        counts[1] += Vector128.Sum(Vector128.WidenLower(s1) + Vector128.WidenUpper(s1));
        counts[2] += Vector128.Sum(Vector128.WidenLower(s2) + Vector128.WidenUpper(s2));
        counts[3] += Vector128.Sum(Vector128.WidenLower(s3) + Vector128.WidenUpper(s3));
    }
}

/// <summary>
/// Arm64 AdvSimd: the same blocks with the byte popcount done by CNT, one instruction per 16 bytes instead of the
/// table's five (and, shift, and, two tbl, add); the table arguments go unused.
/// </summary>
internal readonly unsafe struct CntLanes128 : INibbleLanes<Vector128<byte>>
{
    public static int WordsPerVector => 2;
    public static Vector128<byte> Zero => Vector128<byte>.Zero;
    public static Vector128<byte> NibbleCounts => NibbleLanes128.NibbleCounts;
    public static Vector128<byte> LowNibbles => NibbleLanes128.LowNibbles;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Load(ulong* p) => Vector128.Load((byte*)p);
    /// <summary>Rows are whole vectors at this width: no tail step ever runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> LoadTail(ulong* p) => Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Add(Vector128<byte> a, Vector128<byte> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<byte> Apply<TOp>(Vector128<byte> a, Vector128<byte> w) where TOp : struct, IBitOp => TOp.Apply(a, w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> PopCountBytes(Vector128<byte> x, Vector128<byte> lut, Vector128<byte> low) => AdvSimd.PopCount(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush4(Vector128<byte> s0, Vector128<byte> s1, Vector128<byte> s2, Vector128<byte> s3, int* counts) =>
        NibbleLanes128.Flush4(s0, s1, s2, s3, counts);
}

/// <summary>AVX2.</summary>
internal readonly unsafe struct NibbleLanes256 : INibbleLanes<Vector256<byte>>
{
    public static int WordsPerVector => 4;
    public static Vector256<byte> Zero => Vector256<byte>.Zero;
    public static Vector256<byte> NibbleCounts => Vector256.Create(NibbleLanes128.NibbleCounts, NibbleLanes128.NibbleCounts);
    public static Vector256<byte> LowNibbles => Vector256.Create((byte)15);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> Load(ulong* p) => Vector256.Load((byte*)p);
    /// <summary>Rows are whole vectors at this width: no tail step ever runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> LoadTail(ulong* p) => Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> Add(Vector256<byte> a, Vector256<byte> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<byte> Apply<TOp>(Vector256<byte> a, Vector256<byte> w) where TOp : struct, IBitOp => TOp.Apply(a, w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> PopCountBytes(Vector256<byte> x, Vector256<byte> lut, Vector256<byte> low) =>
        Avx2.Shuffle(lut, x & low) + Avx2.Shuffle(lut, Vector256.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);

    /// <summary>
    /// Sum-of-absolute-differences against zero adds each 8 bytes into a 64-bit lane (at most 8·31·8 = 1984), a whole
    /// vector's 4 lanes to at most 7936 &lt; 2^16, so the four sums travel as 16-bit fields of one 64-bit lane and one
    /// horizontal sum finishes all four without carries between fields.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush4(Vector256<byte> s0, Vector256<byte> s1, Vector256<byte> s2, Vector256<byte> s3, int* counts)
    {
        Vector256<byte> zero = Vector256<byte>.Zero;
        Vector256<ulong> packed = Avx2.SumAbsoluteDifferences(s0, zero).AsUInt64() | Vector256.ShiftLeft(Avx2.SumAbsoluteDifferences(s1, zero).AsUInt64(), 16)
            | Vector256.ShiftLeft(Avx2.SumAbsoluteDifferences(s2, zero).AsUInt64(), 32) | Vector256.ShiftLeft(Avx2.SumAbsoluteDifferences(s3, zero).AsUInt64(), 48);
        Unpack4(Vector256.Sum(packed), counts);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Unpack4(ulong sums, int* counts)
    {
        counts[0] += (int)(sums & 0xFFFF);
        counts[1] += (int)((sums >> 16) & 0xFFFF);
        counts[2] += (int)((sums >> 32) & 0xFFFF);
        counts[3] += (int)(sums >> 48);
    }
}

/// <summary>AVX-512BW.</summary>
internal readonly unsafe struct NibbleLanes512 : INibbleLanes<Vector512<byte>>
{
    public static int WordsPerVector => 8;
    public static Vector512<byte> Zero => Vector512<byte>.Zero;
    public static Vector512<byte> NibbleCounts => Vector512.Create(NibbleLanes256.NibbleCounts, NibbleLanes256.NibbleCounts);
    public static Vector512<byte> LowNibbles => Vector512.Create((byte)15);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> Load(ulong* p) => Vector512.Load((byte*)p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> LoadTail(ulong* p) => Vector256.Load((byte*)p).ToVector512();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> Add(Vector512<byte> a, Vector512<byte> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<byte> Apply<TOp>(Vector512<byte> a, Vector512<byte> w) where TOp : struct, IBitOp => TOp.Apply(a, w);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> PopCountBytes(Vector512<byte> x, Vector512<byte> lut, Vector512<byte> low) =>
        Avx512BW.Shuffle(lut, x & low) + Avx512BW.Shuffle(lut, Vector512.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);

    /// <summary><see cref="NibbleLanes256.Flush4"/>'s packing: a vector's 8 lanes sum to at most 15872 &lt; 2^16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flush4(Vector512<byte> s0, Vector512<byte> s1, Vector512<byte> s2, Vector512<byte> s3, int* counts)
    {
        Vector512<byte> zero = Vector512<byte>.Zero;
        Vector512<ulong> packed = Avx512BW.SumAbsoluteDifferences(s0, zero).AsUInt64() | Vector512.ShiftLeft(Avx512BW.SumAbsoluteDifferences(s1, zero).AsUInt64(), 16)
            | Vector512.ShiftLeft(Avx512BW.SumAbsoluteDifferences(s2, zero).AsUInt64(), 32) | Vector512.ShiftLeft(Avx512BW.SumAbsoluteDifferences(s3, zero).AsUInt64(), 48);
        NibbleLanes256.Unpack4(Vector512.Sum(packed), counts);
    }
}

/// <summary>
/// 4×4 popcount block, nibble lookup, written once for every width <typeparamref name="TLanes"/>: popcount(x) per byte
/// = T[x AND 15] + T[x >> 4] with T the 16-entry table of nibble popcounts, looked up by a byte shuffle. Byte counts
/// are at most 8 per step, so a byte accumulator takes 31 steps (31·8 ≤ 255) before it is flushed into the int
/// counts. Each step loads 4 A and 4 W vectors for 16 popcounts: A is not reloaded per W row.
/// </summary>
internal readonly unsafe struct PopCountBlockNibble<TLanes, TVec> : IPopCountBlock
    where TLanes : INibbleLanes<TVec> where TVec : struct
{
    /// <summary>Steps per byte-accumulator flush: 31·8 ≤ 255.</summary>
    private const int Chunk = 31;

    public static int Rows => 4;
    public static int Cols => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Count1<TOp>(TVec sum, TVec x, TVec w, TVec lut, TVec low) where TOp : struct, IBitOp =>
        TLanes.Add(sum, TLanes.PopCountBytes(TLanes.Apply<TOp>(x, w), lut, low));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Count<TOp>(ulong* a, nint aStride, int aRows, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp
    {
        ulong* a0 = a, a1 = a + Math.Min(1, aRows - 1) * aStride, a2 = a + Math.Min(2, aRows - 1) * aStride, a3 = a + Math.Min(3, aRows - 1) * aStride;
        ulong* w0 = w, w1 = w + Math.Min(1, wRows - 1) * wStride, w2 = w + Math.Min(2, wRows - 1) * wStride, w3 = w + Math.Min(3, wRows - 1) * wStride;
        for (int r = 0; r < 16; r++) counts[r] = 0;
        TVec lut = TLanes.NibbleCounts, low = TLanes.LowNibbles;
        int wpv = TLanes.WordsPerVector, vectors = words / wpv;
        bool tail = words % wpv != 0;   // only the 512-bit width: one 256-bit block left
        int v = 0;
        do
        {
            int end = Math.Min(vectors, v + Chunk - 1);   // one step of room for the tail
            TVec s00 = TLanes.Zero, s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
            TVec s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
            for (; v < end; v++)
            {
                int o = v * wpv;   // o + wpv ≤ words: the load stays in the row
                TVec b0 = TLanes.Load(w0 + o), b1 = TLanes.Load(w1 + o), b2 = TLanes.Load(w2 + o), b3 = TLanes.Load(w3 + o);
                TVec x0 = TLanes.Load(a0 + o), x1 = TLanes.Load(a1 + o), x2 = TLanes.Load(a2 + o), x3 = TLanes.Load(a3 + o);
                s00 = Count1<TOp>(s00, x0, b0, lut, low); s01 = Count1<TOp>(s01, x0, b1, lut, low); s02 = Count1<TOp>(s02, x0, b2, lut, low); s03 = Count1<TOp>(s03, x0, b3, lut, low);
                s10 = Count1<TOp>(s10, x1, b0, lut, low); s11 = Count1<TOp>(s11, x1, b1, lut, low); s12 = Count1<TOp>(s12, x1, b2, lut, low); s13 = Count1<TOp>(s13, x1, b3, lut, low);
                s20 = Count1<TOp>(s20, x2, b0, lut, low); s21 = Count1<TOp>(s21, x2, b1, lut, low); s22 = Count1<TOp>(s22, x2, b2, lut, low); s23 = Count1<TOp>(s23, x2, b3, lut, low);
                s30 = Count1<TOp>(s30, x3, b0, lut, low); s31 = Count1<TOp>(s31, x3, b1, lut, low); s32 = Count1<TOp>(s32, x3, b2, lut, low); s33 = Count1<TOp>(s33, x3, b3, lut, low);
            }
            if (v == vectors && tail)
            {
                int o = v * wpv;   // the row's last 256-bit block: o + 4 = words
                TVec b0 = TLanes.LoadTail(w0 + o), b1 = TLanes.LoadTail(w1 + o), b2 = TLanes.LoadTail(w2 + o), b3 = TLanes.LoadTail(w3 + o);
                TVec x0 = TLanes.LoadTail(a0 + o), x1 = TLanes.LoadTail(a1 + o), x2 = TLanes.LoadTail(a2 + o), x3 = TLanes.LoadTail(a3 + o);
                s00 = Count1<TOp>(s00, x0, b0, lut, low); s01 = Count1<TOp>(s01, x0, b1, lut, low); s02 = Count1<TOp>(s02, x0, b2, lut, low); s03 = Count1<TOp>(s03, x0, b3, lut, low);
                s10 = Count1<TOp>(s10, x1, b0, lut, low); s11 = Count1<TOp>(s11, x1, b1, lut, low); s12 = Count1<TOp>(s12, x1, b2, lut, low); s13 = Count1<TOp>(s13, x1, b3, lut, low);
                s20 = Count1<TOp>(s20, x2, b0, lut, low); s21 = Count1<TOp>(s21, x2, b1, lut, low); s22 = Count1<TOp>(s22, x2, b2, lut, low); s23 = Count1<TOp>(s23, x2, b3, lut, low);
                s30 = Count1<TOp>(s30, x3, b0, lut, low); s31 = Count1<TOp>(s31, x3, b1, lut, low); s32 = Count1<TOp>(s32, x3, b2, lut, low); s33 = Count1<TOp>(s33, x3, b3, lut, low);
                tail = false;
            }
            TLanes.Flush4(s00, s01, s02, s03, counts);
            TLanes.Flush4(s10, s11, s12, s13, counts + 4);
            TLanes.Flush4(s20, s21, s22, s23, counts + 8);
            TLanes.Flush4(s30, s31, s32, s33, counts + 12);
        }
        while (v < vectors || tail);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CountRow<TOp>(ulong* a, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp
    {
        ulong* w0 = w, w1 = w + Math.Min(1, wRows - 1) * wStride, w2 = w + Math.Min(2, wRows - 1) * wStride, w3 = w + Math.Min(3, wRows - 1) * wStride;
        for (int r = 0; r < 4; r++) counts[r] = 0;
        TVec lut = TLanes.NibbleCounts, low = TLanes.LowNibbles;
        int wpv = TLanes.WordsPerVector, vectors = words / wpv;
        bool tail = words % wpv != 0;
        int v = 0;
        do
        {
            int end = Math.Min(vectors, v + Chunk - 1);
            TVec s0 = TLanes.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; v < end; v++)
            {
                int o = v * wpv;
                TVec x = TLanes.Load(a + o);
                s0 = Count1<TOp>(s0, x, TLanes.Load(w0 + o), lut, low); s1 = Count1<TOp>(s1, x, TLanes.Load(w1 + o), lut, low);
                s2 = Count1<TOp>(s2, x, TLanes.Load(w2 + o), lut, low); s3 = Count1<TOp>(s3, x, TLanes.Load(w3 + o), lut, low);
            }
            if (v == vectors && tail)
            {
                int o = v * wpv;
                TVec x = TLanes.LoadTail(a + o);
                s0 = Count1<TOp>(s0, x, TLanes.LoadTail(w0 + o), lut, low); s1 = Count1<TOp>(s1, x, TLanes.LoadTail(w1 + o), lut, low);
                s2 = Count1<TOp>(s2, x, TLanes.LoadTail(w2 + o), lut, low); s3 = Count1<TOp>(s3, x, TLanes.LoadTail(w3 + o), lut, low);
                tail = false;
            }
            TLanes.Flush4(s0, s1, s2, s3, counts);
        }
        while (v < vectors || tail);
    }
}
