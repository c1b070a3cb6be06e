using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// A packed row's bits regrouped six to a byte, for the table-lookup XNOR kernel on AVX-512 VBMI (xnor-avx512-lut6,
/// <see cref="XnorGemmLookup{TGroups}"/>):
/// VBMI's vpermb looks a byte up in a 64-entry table by the byte's low 6 bits and ignores its top 2, so one lookup
/// of the 64-entry popcount table at (w ⊕ a) counts the differing bits of 6 positions for each of 64 byte lanes.
/// </summary>
/// <remarks>
/// The mapping of a row's RowWords(K)·64 bits (MODEL.md's packing: bit t of the row is bit t mod 64 of word ⌊t/64⌋,
/// padding zero) to groups, chosen so that regrouping costs almost nothing:
/// <list type="bullet">
/// <item>groups 0 … 8w − 1 (w = RowWords(K)) are the row's bytes as they are: group j is bits 8j … 8j + 5, because
/// vpermb never reads bits 6 and 7 of an index (a weight byte and an activation byte may carry anything there);</item>
/// <item>then every 4 words (256 bits) give 11 groups of the 64 bits they hold at positions 8j + 6 and 8j + 7: the
/// 16 such bits of a word are gathered by one pext (mask 0xC0C0…C0), the 64 of 4 words put side by side, and spread
/// six to a byte by pdep (mask 0x3F3F…3F): 10 full groups and one of 4 bits. Rows are padded to 256 bits
/// (RowWords(K) is a multiple of 4), so every row has whole 4-word chunks.</item>
/// </list>
/// So <see cref="Count"/>(K) = 8w + 11·w/4: 43 for K = 256 (32 + 11), 86 for K = 512. A weight row and an activation
/// row regrouped alike meet position for position, every real position in exactly one group; padding positions are
/// zero in both and their XOR adds nothing, so Σ_g popcount6(w_g ⊕ a_g) = popcount(w ⊕ a) = d of <see cref="XnorGemm"/>.
/// </remarks>
internal readonly unsafe struct SixBitGroups : ILookupGroups
{
    /// <inheritdoc/>
    public static string KernelName => "xnor-avx512-lut6";

    /// <inheritdoc/>
    public static bool IsSupported => Avx512BW.IsSupported && Avx512Vbmi.IsSupported;

    /// <inheritdoc/>
    public static int Bits => 6;

    /// <inheritdoc/>
    public static LookupLayouts Layout => LookupLayouts.SixBit;

    /// <inheritdoc/>
    public static Vector512<byte> PopCountTable => Vector512.Create(
        (byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5,
        1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6);

    /// <summary>vpermb: lane l = table[index_l AND 63].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Lookup(Vector512<byte> table, Vector512<byte> index) => Avx512Vbmi.PermuteVar64x8(table, index);

    /// <summary>Groups of one row of <paramref name="k"/> elements.</summary>
    public static int Count(int k)
    {
        int w = BitPacking.RowWords(k);
        return 8 * w + 11 * (w / 4);
    }

    /// <summary>The top-2-bit mask of every byte (pext) and the low-6-bit one (pdep).</summary>
    internal const ulong HighPairs = 0xC0C0C0C0C0C0C0C0UL, LowSixes = 0x3F3F3F3F3F3F3F3FUL;

    /// <summary>Writes the <see cref="Count"/> groups of one packed row of <paramref name="words"/> words to <paramref name="groups"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Row(ulong* row, int words, byte* groups)
    {
        ulong* low = (ulong*)groups;
        for (int t = 0; t < words; t++)
            Unsafe.WriteUnaligned(low + t, row[t]);
        byte* high = groups + 8 * words;
        for (int t = 0; t < words; t += 4, high += 11)
        {
            ulong pairs = 0;   // bits 8j + 6, 8j + 7 of the 4 words, in position order
            for (int u = 0; u < 4; u++)
                pairs |= BitMoves.Extract(row[t + u], HighPairs) << (16 * u);
            Unsafe.WriteUnaligned(high, BitMoves.Deposit(pairs, LowSixes));
            ulong rest = BitMoves.Deposit(pairs >> 48, LowSixes);   // bits 48..63: groups 8, 9 and 10 (4 bits)
            high[8] = (byte)rest;
            high[9] = (byte)(rest >> 8);
            high[10] = (byte)(rest >> 16);
        }
    }
}
