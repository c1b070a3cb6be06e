using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// A packed row's bits four to a byte, for the table-lookup XNOR kernel on AVX-512 without VBMI (xnor-avx512bw-lut4:
/// Skylake-SP, Cascade Lake, Cooper Lake): vpshufb looks a byte up in a 16-entry table by its low 4 bits and gives 0
/// when its bit 7 is set, so each group sits in a byte's low nibble with the high nibble 0 in weights and activations
/// alike; their XOR keeps it 0.
/// </summary>
/// <remarks>
/// Group j is positions 4j … 4j + 3 (16 groups a word, 64 per 256 bits; <see cref="Count"/>(K) = 16·RowWords(K)): each
/// half of a word spread four bits to a byte by one pdep (mask 0x0F0F…0F). 64 lookups per 256 positions against 43
/// for <see cref="SixBitGroups"/>, each one a vpshufb of 4 bits per lane instead of a vpermb of 6.
/// </remarks>
internal readonly unsafe struct NibbleGroups : ILookupGroups
{
    /// <inheritdoc/>
    public static string KernelName => "xnor-avx512bw-lut4";

    /// <inheritdoc/>
    public static bool IsSupported => Avx512BW.IsSupported;

    /// <inheritdoc/>
    public static int Bits => 4;

    /// <inheritdoc/>
    public static LookupLayouts Layout => LookupLayouts.Nibble;

    /// <inheritdoc/>
    public static int Count(int k) => 16 * BitPacking.RowWords(k);

    /// <summary>The low nibble of every byte (pdep).</summary>
    internal const ulong LowNibbles = 0x0F0F0F0F0F0F0F0FUL;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Row(ulong* row, int words, byte* groups)
    {
        for (int t = 0; t < words; t++)
        {
            Unsafe.WriteUnaligned(groups + 16 * t, BitMoves.Deposit(row[t] & 0xFFFFFFFFUL, LowNibbles));
            Unsafe.WriteUnaligned(groups + 16 * t + 8, BitMoves.Deposit(row[t] >> 32, LowNibbles));
        }
    }

    /// <inheritdoc/>
    public static Vector512<byte> PopCountTable => Vector512.Create(
        (byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);

    /// <summary>vpshufb: lane l = table[index_l AND 15] within its 128-bit lane (the table repeats in each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Lookup(Vector512<byte> table, Vector512<byte> index) => Avx512BW.Shuffle(table, index);
}
