using System.Text;
using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>
/// The streaming encoder against a naive whole-string pipeline written stage by stage as the
/// reference library does it (normalize the whole text, then split, then WordPiece), on random
/// texts built from the characters where the streaming shortcuts could go wrong: combining-mark
/// runs with mixed classes, decompositions, İ, surrogates, controls, CJK, added tokens, long words.
/// Both use the same character tables, so this checks the single-pass logic, not the tables.
/// </summary>
public class DifferentialTests
{
    private static readonly string[] Alphabet =
    [
        "a", "b", "e", "s", "un", "the", "A", "E", "Z", " ", " ", "  ", "\t", "\n", ".", ",", "!", "'", "-", "[", "]", "#",
        "é", "É", "e\u0301", "\u0301", "\u0308", "\u0327", "\u0345", "ñ", "Å", "\u212B", "\u1E9E", "ß", "İ", "ı", "Σ", "ς", "ǅ",
        "\U0001D165", "\U0001D16D", "\u302E", "\u302F", "\U00016FF0", "\u1B44", // non-Mn marks with ccc 216/226/224/6/9
        "\u0F71", "\u0F72", "\u0F80", "\u0F73", "\u0344", // decompositions into several marks
        "\u037E", "\u226E", "\u1FEF", "\u2260", "\u212A", "\u0385", // decompositions that yield punctuation (; < `) or letters
        "한", "글", "\u1100", "\u1161", "中", "文", "\uF900", "\U0002B820", "\U0002B920", "ひ", "カ",
        "😀", "\uD83D", "\uDE00", "\uDC00", "\0", "\u0007", "\u001F", "\u007F", "\u00AD", "\u200B", "\uFEFF", "\uFFFD", "\uE000", "\u0378",
        "\u00A0", "\u2028", "\u3000", "\u000B", "\u0085", "¿", "—", "«", "€", "$", "^", "`",
        "[MASK]", "[CLS]", "[SEP]", "[mask]", "[UNK", "supercalifragilisticexpialidocious",
    ];

    private static string RandomText(Random random, int parts)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < parts; i++) sb.Append(Alphabet[random.Next(Alphabet.Length)]);
        return sb.ToString();
    }

    public static TheoryData<string> Configurations => new() { "uncased", "cased", "lower-keep-accents", "strip-keep-case", "raw", "short-words" };

    private static BertWordPieceTokenizer Tokenizer(string configuration)
    {
        var vocab = BertUncased.Tokenizer.Vocabulary;
        return configuration switch
        {
            "uncased" => BertUncased.Tokenizer,
            "cased" => new BertWordPieceTokenizer(vocab, BertWordPieceOptions.BertCased),
            "lower-keep-accents" => new BertWordPieceTokenizer(vocab, BertWordPieceOptions.BertUncased with { StripAccents = false }),
            "strip-keep-case" => new BertWordPieceTokenizer(vocab, BertWordPieceOptions.BertCased with { StripAccents = true }),
            "raw" => new BertWordPieceTokenizer(vocab, new BertWordPieceOptions { CleanText = false, HandleChineseChars = false, Lowercase = false, AddedTokens = [] }),
            "short-words" => new BertWordPieceTokenizer(vocab, BertWordPieceOptions.BertUncased with { MaxInputCharsPerWord = 6 }),
            _ => throw new ArgumentOutOfRangeException(nameof(configuration)),
        };
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void StreamingEncoderMatchesNaivePipeline(string configuration)
    {
        var t = Tokenizer(configuration);
        var random = new Random(20261122 + configuration.Length);
        var ids = new int[4096];
        for (int n = 0; n < 3000; n++)
        {
            string text = RandomText(random, random.Next(0, 40));
            int[] expected = NaiveEncode(t, text);
            int count = t.Encode(text, ids, out bool truncated);
            Assert.False(truncated);
            if (!ids.AsSpan(0, count).SequenceEqual(expected))
            {
                string shown = string.Concat(text.Select(c => c < 0x20 || c > 0x7E ? $"\\u{(int)c:X4}" : c.ToString()));
                Assert.Fail($"[{configuration}] \"{shown}\"\nnaive:     {string.Join(" ", expected.Select(t.IdToToken))}\nstreaming: {string.Join(" ", ids.Take(count).Select(t.IdToToken))}");
            }
        }
    }

    [Fact]
    public void RandomCodeUnitsNeverBreakTheInvariants()
    {
        var t = BertUncased.Tokenizer;
        var random = new Random(7);
        var ids = new int[64];
        for (int n = 0; n < 5000; n++)
        {
            var chars = new char[random.Next(0, 200)];
            for (int i = 0; i < chars.Length; i++) chars[i] = (char)random.Next(0, 0x10000);
            int max = random.Next(2, 65);
            int count = t.Encode(chars, ids, max, out bool truncated);
            Assert.InRange(count, 2, max);
            Assert.Equal(t.ClsId, ids[0]);
            Assert.Equal(t.SepId, ids[count - 1]);
            Assert.All(ids[..count], id => Assert.InRange(id, 0, t.VocabSize - 1));
            int[] full = t.Encode(new string(chars));
            Assert.Equal(truncated, full.Length > max);
            Assert.Equal(full.Take(count - 1), ids.Take(count - 1));
        }
    }

    /// <summary>The reference pipeline, one whole-string stage at a time.</summary>
    private static int[] NaiveEncode(BertWordPieceTokenizer t, string text)
    {
        var o = t.Options;
        var output = new List<int> { t.ClsId };
        // Added tokens: leftmost, then longest, in the raw text.
        var added = (o.AddedTokens ?? new[] { o.PadToken, o.UnkToken, o.ClsToken, o.SepToken, o.MaskToken! }.Where(s => t.TokenToId(s) >= 0).ToArray())
            .OrderByDescending(s => s.Length).ToArray();
        int start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            string? match = i < text.Length ? added.FirstOrDefault(a => string.CompareOrdinal(text, i, a, 0, a.Length) == 0) : null;
            if (match is null && i < text.Length) continue;
            output.AddRange(NaiveSegment(t, text[start..i]));
            if (match is null) break;
            output.Add(t.TokenToId(match));
            i += match.Length - 1;
            start = i + 1;
        }
        output.Add(t.SepId);
        return [.. output];
    }

    private static List<int> CodePoints(string s)
    {
        var cps = new List<int>();
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cps.Add(char.ConvertToUtf32(s[i], s[i + 1])); i++; }
            else cps.Add(s[i]);
        }
        return cps;
    }

    private static CharClass Class(int cp) => UnicodeData.ClassOf(UnicodeData.Flags(cp));

    private static IEnumerable<int> NaiveSegment(BertWordPieceTokenizer t, string text)
    {
        var o = t.Options;
        List<int> cps = CodePoints(text);
        if (o.CleanText)
            cps = cps.Where(cp => Class(cp) != CharClass.Removed).Select(cp => Class(cp) == CharClass.Whitespace ? ' ' : cp).ToList();
        if (o.HandleChineseChars)
            cps = cps.SelectMany(cp => UnicodeData.IsCjkIdeograph(cp) ? new[] { ' ', cp, ' ' } : new[] { cp }).ToList();
        if (o.EffectiveStripAccents)
        {
            // NFD: full decomposition, then a stable sort of every run of nonzero combining classes.
            var nfd = new List<int>();
            Span<int> parts = stackalloc int[4];
            foreach (int cp in cps)
            {
                if ((UnicodeData.Flags(cp) & UnicodeData.HasDecomposition) == 0) { nfd.Add(cp); continue; }
                int n = UnicodeData.Decompose(cp, parts);
                for (int k = 0; k < n; k++) nfd.Add(parts[k]);
            }
            static int Ccc(int cp) => (UnicodeData.Flags(cp) & UnicodeData.NonzeroCombiningClass) != 0 ? UnicodeData.CombiningClass(cp) : 0;
            for (int i = 0; i < nfd.Count;)
            {
                if (Ccc(nfd[i]) == 0) { i++; continue; }
                int j = i;
                while (j < nfd.Count && Ccc(nfd[j]) != 0) j++;
                var run = nfd.GetRange(i, j - i).OrderBy(Ccc).ToList(); // OrderBy is stable
                for (int k = i; k < j; k++) nfd[k] = run[k - i];
                i = j;
            }
            cps = nfd.Where(cp => Class(cp) != CharClass.NonspacingMark).ToList();
        }
        if (o.Lowercase)
        {
            // Final_Sigma on the whole normalized segment, as str.lower() does it: Σ after Cased Case_Ignorable*
            // and not before Case_Ignorable* Cased is ς.
            bool Ignorable(int cp) => (UnicodeData.Flags(cp) & UnicodeData.CaseIgnorable) != 0;
            bool Cased(int cp) => (UnicodeData.Flags(cp) & UnicodeData.Cased) != 0;
            var before = cps;
            cps = cps.Select((cp, i) =>
            {
                if (cp != 0x3A3) return cp;
                int b = i - 1, a = i + 1;
                while (b >= 0 && Ignorable(before[b])) b--;
                while (a < before.Count && Ignorable(before[a])) a++;
                return b >= 0 && Cased(before[b]) && !(a < before.Count && Cased(before[a])) ? 0x3C2 : 0x3A3;
            }).ToList();
            cps = cps.SelectMany(cp =>
                cp == 0x130 ? new[] { 0x69, 0x307 }
                : (UnicodeData.Flags(cp) & UnicodeData.HasLowercase) != 0 ? new[] { UnicodeData.SimpleLowercase(cp) }
                : new[] { cp }).ToList();
        }
        // Pre-tokenizer: split on whitespace (removed), isolate punctuation.
        var words = new List<List<int>>();
        var current = new List<int>();
        foreach (int cp in cps)
        {
            bool space = Class(cp) == CharClass.Whitespace || cp is 0x0B or 0x0C or 0x85;
            if (space || Class(cp) == CharClass.Punctuation)
            {
                if (current.Count > 0) words.Add(current);
                current = [];
                if (!space) words.Add([cp]);
            }
            else current.Add(cp);
        }
        if (current.Count > 0) words.Add(current);

        var ids = new List<int>();
        foreach (var word in words)
        {
            if (word.Count > o.MaxInputCharsPerWord) { ids.Add(t.UnkId); continue; }
            var pieces = new List<int>();
            int begin = 0;
            while (begin < word.Count)
            {
                int id = -1, end = word.Count;
                for (; end > begin; end--)
                {
                    var sb = new StringBuilder(begin > 0 ? o.ContinuingSubwordPrefix : "");
                    foreach (int cp in word.GetRange(begin, end - begin)) sb.Append(cp < 0x10000 ? ((char)cp).ToString() : char.ConvertFromUtf32(cp));
                    if ((id = t.TokenToId(sb.ToString())) >= 0) break;
                }
                if (id < 0) { pieces = [t.UnkId]; break; }
                pieces.Add(id);
                begin = end;
            }
            ids.AddRange(pieces);
        }
        return ids;
    }
}
