using System.Globalization;
using System.Text;
using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>
/// The generated tables (Python's Unicode 14.0) against .NET's own character data (a newer Unicode):
/// an independent check of the generator. They may only differ where Unicode itself changed since
/// 14.0 — characters assigned later, which the tables must see as unassigned (kept, class Other).
/// </summary>
public class UnicodeTablesTests
{
    /// <summary>The class BertNormalizer/BertPreTokenizer give a code point of this category.</summary>
    private static CharClass Expected(int cp, UnicodeCategory category)
    {
        if (cp is 0 or 0xFFFD) return CharClass.Removed;
        if (cp is '\t' or '\n' or '\r') return CharClass.Whitespace;
        switch (category)
        {
            case UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate:
                return CharClass.Removed;
            case UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator:
                return CharClass.Whitespace;
            case UnicodeCategory.NonSpacingMark:
                return CharClass.NonspacingMark;
        }
        bool asciiPunctuation = cp is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126);
        return asciiPunctuation || category is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation
            ? CharClass.Punctuation : CharClass.Other;
    }

    [Fact]
    public void ClassesAgreeWithDotNetExceptForCharactersAssignedAfterUnicode14()
    {
        var differences = new List<string>();
        for (int cp = 0; cp <= 0x10FFFF; cp++)
        {
            CharClass table = UnicodeData.ClassOf(UnicodeData.Flags(cp));
            CharClass dotnet = Expected(cp, CharUnicodeInfo.GetUnicodeCategory(cp));
            if (table == dotnet) continue;
            differences.Add($"U+{cp:X4}: table {table}, .NET {dotnet}");
            // Later assignments are unassigned (Other) to the tables; U+1171E changed from Mn to Mc in Unicode 15.
            Assert.True(table == CharClass.Other || cp == 0x1171E, differences[^1]);
            Assert.True(cp >= 0x800, differences[^1]);
        }
        // Unicode 15.0–16.0 assigned ~100 new marks, punctuation and format characters; a generator bug would show thousands.
        Assert.True(differences.Count < 400, $"{differences.Count} differences, e.g. {string.Join("; ", differences.Take(10))}");
    }

    [Fact]
    public void LowercaseAgreesWithDotNetSimpleCaseMapping()
    {
        int laterAssignments = 0;
        for (int cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            int dotnet = Rune.ToLowerInvariant(new Rune(cp)).Value;
            bool flagged = (UnicodeData.Flags(cp) & UnicodeData.HasLowercase) != 0;
            if (cp == 0x130)
            {
                Assert.True(flagged); // full lowercase "i\u0307", handled by the encoder; .NET leaves İ alone
                continue;
            }
            if (flagged) Assert.Equal(dotnet, UnicodeData.SimpleLowercase(cp));
            else if (dotnet != cp) laterAssignments++;
        }
        Assert.InRange(laterAssignments, 0, 100);
    }

    [Fact]
    public void DecompositionsAreCanonical()
    {
        Assert.Equal([0x65, 0x301], Decompose(0xE9));                      // é
        Assert.Equal([0x1112, 0x1161, 0x11AB], Decompose(0xD55C));         // 한 (Hangul, algorithmic)
        Assert.Equal([0x1100, 0x1161], Decompose(0xAC00));                 // 가 (no trailing consonant)
        Assert.Equal([0x41, 0x30A], Decompose(0x212B));                    // Å ANGSTROM SIGN → A + ring
        Assert.Equal([0x3B9, 0x308, 0x301], Decompose(0x390));             // ΐ, recursively
        Assert.Equal([0x8C48], Decompose(0xF900));                         // CJK compatibility ideograph
        Assert.Equal(230, UnicodeData.CombiningClass(0x301));
        Assert.Equal(216, UnicodeData.CombiningClass(0x1D165));

        int[] Decompose(int cp)
        {
            Assert.NotEqual(0, UnicodeData.Flags(cp) & UnicodeData.HasDecomposition);
            Span<int> buffer = stackalloc int[UnicodeData.MaxDecompositionLength];
            return buffer[..UnicodeData.Decompose(cp, buffer)].ToArray();
        }
    }
}
