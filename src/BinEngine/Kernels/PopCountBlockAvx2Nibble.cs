using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Vec = System.Runtime.Intrinsics.Vector256;
using VecB = System.Runtime.Intrinsics.Vector256<byte>;

namespace BinEngine.Kernels;

/// <summary>
/// 4×4 popcount block on Vector256 (AVX2), nibble lookup: popcount(x) per byte = T[x AND 15] + T[x >> 4] with
/// T the 16-entry table of nibble popcounts, looked up by a byte shuffle. Byte counts are at most 8 per step, so a
/// byte accumulator takes 31 steps (31·8 ≤ 255) before it is flushed into the int counts.
/// Each step loads 4 A and 4 W vectors for 16 popcounts: A is not reloaded per W row.
/// </summary>
internal readonly unsafe struct PopCountBlockAvx2Nibble : IPopCountBlock
{
    /// <summary>Steps per byte-accumulator flush: 31·8 ≤ 255.</summary>
    private const int Chunk = 31;
    private const int WordsPerVector = 4;

    public static int Rows => 4;
    public static int Cols => 4;

    private static VecB NibbleCounts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vec.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecB PopCountBytes(VecB x, VecB lut, VecB low) => Avx2.Shuffle(lut, x & low) + Avx2.Shuffle(lut, Vec.ShiftRightLogical(x.AsUInt16(), 4).AsByte() & low);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecB Load(ulong* p) => Vec.Load((byte*)p);

    /// <summary>Rows are whole vectors at this width: no tail step ever runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecB LoadTail(ulong* p) => Load(p);

    /// <summary>
    /// Adds the byte sums of s0..s3 to counts[0..3]. Sum-of-absolute-differences against zero adds each 8 bytes into a
    /// 64-bit lane (at most 8·31·8 = 1984), a whole vector's 4 lanes to at most 7936 &lt; 2^16, so the four sums travel
    /// as 16-bit fields of one 64-bit lane and one horizontal sum finishes all four without carries between fields.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush4(VecB s0, VecB s1, VecB s2, VecB s3, int* counts)
    {
        VecB zero = VecB.Zero;
        var packed = Avx2.SumAbsoluteDifferences(s0, zero).AsUInt64() | Vec.ShiftLeft(Avx2.SumAbsoluteDifferences(s1, zero).AsUInt64(), 16)
            | Vec.ShiftLeft(Avx2.SumAbsoluteDifferences(s2, zero).AsUInt64(), 32) | Vec.ShiftLeft(Avx2.SumAbsoluteDifferences(s3, zero).AsUInt64(), 48);
        ulong sums = Vec.Sum(packed);
        counts[0] += (int)(sums & 0xFFFF);
        counts[1] += (int)((sums >> 16) & 0xFFFF);
        counts[2] += (int)((sums >> 32) & 0xFFFF);
        counts[3] += (int)(sums >> 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Count<TOp>(ulong* a, nint aStride, int aRows, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp
    {
        ulong* a0 = a, a1 = a + Math.Min(1, aRows - 1) * aStride, a2 = a + Math.Min(2, aRows - 1) * aStride, a3 = a + Math.Min(3, aRows - 1) * aStride;
        ulong* w0 = w, w1 = w + Math.Min(1, wRows - 1) * wStride, w2 = w + Math.Min(2, wRows - 1) * wStride, w3 = w + Math.Min(3, wRows - 1) * wStride;
        for (int r = 0; r < 16; r++) counts[r] = 0;
        VecB lut = NibbleCounts, low = Vec.Create((byte)15);
        int vectors = words / WordsPerVector;
        bool tail = words % WordsPerVector != 0;   // only the 512-bit path: one 256-bit block left
        int v = 0;
        do
        {
            int end = Math.Min(vectors, v + Chunk - 1);   // one step of room for the tail
            VecB s00 = VecB.Zero, s01 = VecB.Zero, s02 = VecB.Zero, s03 = VecB.Zero;
            VecB s10 = VecB.Zero, s11 = VecB.Zero, s12 = VecB.Zero, s13 = VecB.Zero;
            VecB s20 = VecB.Zero, s21 = VecB.Zero, s22 = VecB.Zero, s23 = VecB.Zero;
            VecB s30 = VecB.Zero, s31 = VecB.Zero, s32 = VecB.Zero, s33 = VecB.Zero;
            for (; v < end; v++)
            {
                int o = v * WordsPerVector;   // o + WordsPerVector ≤ words: the load stays in the row
                VecB b0 = Load(w0 + o), b1 = Load(w1 + o), b2 = Load(w2 + o), b3 = Load(w3 + o);
                VecB x = Load(a0 + o);
                s00 += PopCountBytes(TOp.Apply(x, b0), lut, low); s01 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s02 += PopCountBytes(TOp.Apply(x, b2), lut, low); s03 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = Load(a1 + o);
                s10 += PopCountBytes(TOp.Apply(x, b0), lut, low); s11 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s12 += PopCountBytes(TOp.Apply(x, b2), lut, low); s13 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = Load(a2 + o);
                s20 += PopCountBytes(TOp.Apply(x, b0), lut, low); s21 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s22 += PopCountBytes(TOp.Apply(x, b2), lut, low); s23 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = Load(a3 + o);
                s30 += PopCountBytes(TOp.Apply(x, b0), lut, low); s31 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s32 += PopCountBytes(TOp.Apply(x, b2), lut, low); s33 += PopCountBytes(TOp.Apply(x, b3), lut, low);
            }
            if (v == vectors && tail)
            {
                int o = v * WordsPerVector;   // the row's last 256-bit block: o + 4 = words
                VecB b0 = LoadTail(w0 + o), b1 = LoadTail(w1 + o), b2 = LoadTail(w2 + o), b3 = LoadTail(w3 + o);
                VecB x = LoadTail(a0 + o);
                s00 += PopCountBytes(TOp.Apply(x, b0), lut, low); s01 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s02 += PopCountBytes(TOp.Apply(x, b2), lut, low); s03 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = LoadTail(a1 + o);
                s10 += PopCountBytes(TOp.Apply(x, b0), lut, low); s11 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s12 += PopCountBytes(TOp.Apply(x, b2), lut, low); s13 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = LoadTail(a2 + o);
                s20 += PopCountBytes(TOp.Apply(x, b0), lut, low); s21 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s22 += PopCountBytes(TOp.Apply(x, b2), lut, low); s23 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                x = LoadTail(a3 + o);
                s30 += PopCountBytes(TOp.Apply(x, b0), lut, low); s31 += PopCountBytes(TOp.Apply(x, b1), lut, low);
                s32 += PopCountBytes(TOp.Apply(x, b2), lut, low); s33 += PopCountBytes(TOp.Apply(x, b3), lut, low);
                tail = false;
            }
            Flush4(s00, s01, s02, s03, counts);
            Flush4(s10, s11, s12, s13, counts + 4);
            Flush4(s20, s21, s22, s23, counts + 8);
            Flush4(s30, s31, s32, s33, counts + 12);
        }
        while (v < vectors || tail);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CountRow<TOp>(ulong* a, ulong* w, nint wStride, int wRows, int words, int* counts)
        where TOp : struct, IBitOp
    {
        ulong* w0 = w, w1 = w + Math.Min(1, wRows - 1) * wStride, w2 = w + Math.Min(2, wRows - 1) * wStride, w3 = w + Math.Min(3, wRows - 1) * wStride;
        for (int r = 0; r < 4; r++) counts[r] = 0;
        VecB lut = NibbleCounts, low = Vec.Create((byte)15);
        int vectors = words / WordsPerVector;
        bool tail = words % WordsPerVector != 0;
        int v = 0;
        do
        {
            int end = Math.Min(vectors, v + Chunk - 1);
            VecB s0 = VecB.Zero, s1 = VecB.Zero, s2 = VecB.Zero, s3 = VecB.Zero;
            for (; v < end; v++)
            {
                int o = v * WordsPerVector;
                VecB x = Load(a + o);
                s0 += PopCountBytes(TOp.Apply(x, Load(w0 + o)), lut, low); s1 += PopCountBytes(TOp.Apply(x, Load(w1 + o)), lut, low);
                s2 += PopCountBytes(TOp.Apply(x, Load(w2 + o)), lut, low); s3 += PopCountBytes(TOp.Apply(x, Load(w3 + o)), lut, low);
            }
            if (v == vectors && tail)
            {
                int o = v * WordsPerVector;
                VecB x = LoadTail(a + o);
                s0 += PopCountBytes(TOp.Apply(x, LoadTail(w0 + o)), lut, low); s1 += PopCountBytes(TOp.Apply(x, LoadTail(w1 + o)), lut, low);
                s2 += PopCountBytes(TOp.Apply(x, LoadTail(w2 + o)), lut, low); s3 += PopCountBytes(TOp.Apply(x, LoadTail(w3 + o)), lut, low);
                tail = false;
            }
            Flush4(s0, s1, s2, s3, counts);
        }
        while (v < vectors || tail);
    }
}
