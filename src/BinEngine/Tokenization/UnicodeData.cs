using System.Runtime.CompilerServices;

namespace BinEngine.Tokenization;

/// <summary>How BERT's basic tokenizer treats a code point (the low three bits of its flags).</summary>
internal enum CharClass : byte
{
    /// <summary>Part of a word.</summary>
    Other = 0,
    /// <summary>Dropped by text cleaning: NUL, U+FFFD, categories Cc, Cf, Co (and Cs: lone surrogates) except tab, LF and CR.</summary>
    Removed = 1,
    /// <summary>Splits words: space, tab, LF, CR, Zs, Zl, Zp (the White_Space characters cleaning keeps).</summary>
    Whitespace = 2,
    /// <summary>A word of its own: ASCII non-alphanumerics or any P* category.</summary>
    Punctuation = 3,
    /// <summary>Category Mn: dropped after NFD when accents are stripped.</summary>
    NonspacingMark = 4,
}

/// <summary>
/// Lookups over the generated tables (UnicodeTables.g.cs). Everything here is a pure function of a
/// code point: no state, no allocation, safe from any thread.
/// </summary>
internal static partial class UnicodeData
{
    private const int ClassMask = 0x7;
    internal const byte HasLowercase = 1 << 3;
    internal const byte HasDecomposition = 1 << 4;
    internal const byte NonzeroCombiningClass = 1 << 5;
    /// <summary>Unicode Cased and not Case_Ignorable (a Final_Sigma scan stops on it: a word goes on).</summary>
    internal const byte Cased = 1 << 6;
    /// <summary>Unicode Case_Ignorable (a Final_Sigma scan skips it: apostrophes, periods, marks, Cf…).</summary>
    internal const byte CaseIgnorable = 1 << 7;

    // Hangul syllables decompose algorithmically (Unicode ch. 3.12): S = L·V·T, no table needed.
    private const int HangulSBase = 0xAC00, HangulLBase = 0x1100, HangulVBase = 0x1161, HangulTBase = 0x11A7;
    private const int HangulVCount = 21, HangulTCount = 28, HangulNCount = HangulVCount * HangulTCount, HangulSCount = 11172;

    /// <summary>The flag byte of <paramref name="codePoint"/> (0 ≤ code point ≤ 0x10FFFF).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Flags(int codePoint)
    {
        int block = Stage1[codePoint >> BlockShift];
        return Stage2[(block << BlockShift) | (codePoint & BlockMask)];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static CharClass ClassOf(byte flags) => (CharClass)(flags & ClassMask);

    /// <summary>
    /// BertNormalizer's is_chinese_char: the CJK Unified Ideographs blocks and extensions A–E and
    /// the compatibility ideographs. (Hiragana, Katakana and Hangul are deliberately not included.)
    /// The tokenizers library starts its extension E range at U+2B920 where Google's and Python's
    /// BERT start at U+2B820; U+2B820–U+2B91F are therefore ordinary letters here, as there.
    /// </summary>
    public static bool IsCjkIdeograph(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
        (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);

    /// <summary>
    /// The single-code-point lowercase of a code point whose flags have <see cref="HasLowercase"/>.
    /// U+0130 (whose full lowercase is "i" + U+0307) and U+03A3 (σ or, by Final_Sigma, ς) are the caller's.
    /// </summary>
    public static int SimpleLowercase(int cp)
    {
        if (cp < 128) return cp | 0x20; // flagged ASCII is A–Z
        int i = LowerKeys.BinarySearch(cp);
        return i >= 0 ? LowerValues[i] : cp;
    }

    /// <summary>
    /// Writes the full canonical decomposition (NFD, before reordering) of a code point whose flags
    /// have <see cref="HasDecomposition"/> into <paramref name="destination"/> (4 slots suffice for
    /// Unicode 14) and returns how many code points it wrote.
    /// </summary>
    public static int Decompose(int cp, Span<int> destination)
    {
        int s = cp - HangulSBase;
        if ((uint)s < HangulSCount)
        {
            destination[0] = HangulLBase + s / HangulNCount;
            destination[1] = HangulVBase + s % HangulNCount / HangulTCount;
            int t = s % HangulTCount;
            if (t == 0) return 2;
            destination[2] = HangulTBase + t;
            return 3;
        }
        int i = DecompositionKeys.BinarySearch(cp);
        if (i < 0) { destination[0] = cp; return 1; }
        int start = DecompositionOffsets[i], end = DecompositionOffsets[i + 1];
        DecompositionValues[start..end].CopyTo(destination);
        return end - start;
    }

    /// <summary>Canonical combining class of a code point whose flags have <see cref="NonzeroCombiningClass"/>.</summary>
    public static byte CombiningClass(int cp)
    {
        int i = CombiningClassKeys.BinarySearch(cp);
        return i >= 0 ? CombiningClassValues[i] : (byte)0;
    }

    /// <summary>The longest decomposition in the table (so callers can size a scratch buffer).</summary>
    public const int MaxDecompositionLength = 4;
}
