using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>BERT basic-tokenizer semantics on small hand-made vocabularies, cased and uncased.</summary>
public class BasicTokenizerTests
{
    private static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private static BertWordPieceTokenizer Make(BertWordPieceOptions options, params string[] tokens) =>
        new([.. Specials, .. tokens], options);

    private static string Tokens(BertWordPieceTokenizer t, string text, int maxLength = int.MaxValue) =>
        string.Join(" ", t.Tokenize(text, maxLength));

    private static readonly string[] CasedWords =
        ["Hello", "hello", "World", "##s", "Caf\u00E9", "cafe", "Cafe", "na", "##\u00EFve", "##ive", "!", ",", "\u00E9", "e", "你", "好", "\u0130stanbul", "istanbul", "i\u0307stanbul", "σ", "Σ"];

    [Fact]
    public void CasedKeepsCaseAndAccents()
    {
        var t = Make(BertWordPieceOptions.BertCased, CasedWords);
        Assert.False(t.Options.EffectiveStripAccents);
        Assert.Equal("[CLS] Hello World ##s ! [SEP]", Tokens(t, "Hello Worlds!"));
        Assert.Equal("[CLS] hello [UNK] [SEP]", Tokens(t, "hello HELLO"));
        Assert.Equal("[CLS] Caf\u00E9 , na ##\u00EFve [SEP]", Tokens(t, "Caf\u00E9, na\u00EFve"));
        Assert.Equal("[CLS] \u0130stanbul Σ [SEP]", Tokens(t, "\u0130stanbul Σ"));
    }

    [Fact]
    public void UncasedLowercasesThenStripsAccents()
    {
        var t = Make(BertWordPieceOptions.BertUncased, CasedWords);
        Assert.True(t.Options.EffectiveStripAccents);
        Assert.Equal("[CLS] hello [UNK] ! [SEP]", Tokens(t, "HELLO Worlds!"));
        Assert.Equal("[CLS] cafe , na ##ive [SEP]", Tokens(t, "CAF\u00C9, NA\u00CFVE"));
        // Decomposed input strips the same way: e + U+0301.
        Assert.Equal("[CLS] cafe [SEP]", Tokens(t, "Cafe\u0301"));
        // İ decomposes to I + U+0307 (dropped), then lower-cases to i; a Σ with no cased letter before it is σ.
        Assert.Equal("[CLS] istanbul σ [SEP]", Tokens(t, "\u0130STANBUL Σ"));
    }

    // Unicode's Final_Sigma (Rust's str::to_lowercase, Python's str.lower): Σ is ς when a cased letter precedes it
    // and none follows, skipping Case_Ignorable characters (apostrophe, period, colon, marks, soft hyphen) both ways.
    // The expected strings are Python 3.11's str.lower() of the text as BERT's normalizer has cleaned it.
    [Theory]
    [InlineData("ΟΔΟΣ", "οδος")]              // word end
    [InlineData("ΟΔΟΣ ΣΑΣ", "οδος σας")]       // start of a word: σ; end: ς
    [InlineData("ΑΣΑ", "ασα")]                 // inside a word
    [InlineData("Σ", "σ")]                     // alone: nothing cased before
    [InlineData("1Σ", "1σ")]                   // a digit is not cased
    [InlineData("ΑΣ.", "ας.")]                 // a period is Case_Ignorable and nothing cased follows
    [InlineData("ΑΣ'Α", "ασ'α")]               // an apostrophe is Case_Ignorable: the letter after it counts
    [InlineData("Α'Σ", "α'ς")]                 // ... and the one before it
    [InlineData("ΑΣ\u00ADΑ", "ασ\u00ADα")]     // soft hyphen (Cf): ignorable, and cleaning drops it anyway
    [InlineData("ΑΣ\u0001Α", "ασα")]           // a control character is not ignorable, but cleaning drops it first
    [InlineData("ΆΣ", "άς")]                  // Ά = Α + U+0301: the mark is ignorable, Α is cased
    [InlineData("ΑΣ\u0301", "ας\u0301")]      // a trailing mark does not make it non-final
    public void FinalSigmaFollowsUnicode(string text, string pythonLower)
    {
        string[] vocab = [.. Specials, "οδος", "σας", "ασα", "σ", "ς", "1σ", "ας", "ασ", "α", "'", ".", "ος", "1"];
        var t = Make(BertWordPieceOptions.BertUncased, vocab);
        Assert.Equal(Tokens(t, pythonLower), Tokens(t, text));
        Assert.DoesNotContain("[UNK]", Tokens(t, text));
        // Lower-casing without accent stripping applies the same rule.
        var keepAccents = Make(BertWordPieceOptions.BertUncased with { StripAccents = false }, vocab);
        Assert.Equal(Tokens(keepAccents, pythonLower), Tokens(keepAccents, text));
    }

    [Fact]
    public void AccentStrippingCanBeSetApartFromLowercasing()
    {
        // Lower-case but keep accents: İ becomes i + U+0307 (full lowercase), é stays.
        var lowerOnly = Make(BertWordPieceOptions.BertUncased with { StripAccents = false }, CasedWords);
        Assert.Equal("[CLS] i\u0307stanbul \u00E9 [SEP]", Tokens(lowerOnly, "\u0130STANBUL \u00C9"));
        // Strip accents but keep case.
        var stripOnly = Make(BertWordPieceOptions.BertCased with { StripAccents = true }, CasedWords);
        Assert.Equal("[CLS] Cafe na ##ive [SEP]", Tokens(stripOnly, "Caf\u00E9 na\u00EFve"));
    }

    [Fact]
    public void CjkIdeographsAreWordsOfTheirOwn()
    {
        var t = Make(BertWordPieceOptions.BertCased, CasedWords);
        Assert.Equal("[CLS] 你 好 Hello [SEP]", Tokens(t, "你好Hello"));
        var noCjk = Make(BertWordPieceOptions.BertCased with { HandleChineseChars = false }, CasedWords);
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(noCjk, "你好Hello"));
    }

    [Fact]
    public void CjkExtensionEStartsWhereTheTokenizersLibraryStartsIt()
    {
        // tokenizers (Rust) splits U+2B920.. but not U+2B820..U+2B91F, which stay inside words.
        var t = Make(BertWordPieceOptions.BertUncased, "a", "\U0002B920", "##\U0002B820", "##\U0002B920");
        Assert.Equal("[CLS] a \U0002B920 [SEP]", Tokens(t, "a\U0002B920"));
        Assert.Equal("[CLS] a ##\U0002B820 [SEP]", Tokens(t, "a\U0002B820"));
    }

    [Fact]
    public void AccentStrippingReordersCombiningMarksCanonically()
    {
        // U+1D165 (ccc 216) and U+1D16D (ccc 226) are spacing marks (Mc): NFD sorts them, and they survive the Mn filter.
        const string Stem = "\U0001D165", Dot = "\U0001D16D";
        var t = Make(BertWordPieceOptions.BertUncased, "x", "x" + Stem + Dot, "##" + Stem, "##" + Dot);
        Assert.Equal($"[CLS] x{Stem}{Dot} [SEP]", Tokens(t, "x" + Dot + Stem));
        // A dropped Mn (U+0301, ccc 230) inside the run takes part in the sort but does not end it.
        Assert.Equal($"[CLS] x{Stem}{Dot} [SEP]", Tokens(t, "x" + Dot + "\u0301" + Stem));
        // COMBINING GRAPHEME JOINER is Mn with ccc 0: it ends the run, so nothing is reordered across it.
        Assert.Equal($"[CLS] x ##{Dot} ##{Stem} [SEP]", Tokens(t, "x" + Dot + "\u034F" + Stem));
        // Without accent stripping there is no NFD, so no reordering.
        var cased = Make(BertWordPieceOptions.BertCased, "x", "x" + Stem + Dot, "##" + Stem, "##" + Dot);
        Assert.Equal($"[CLS] x ##{Dot} ##{Stem} [SEP]", Tokens(cased, "x" + Dot + Stem));
    }

    [Fact]
    public void PunctuationIsSplitOffBothAsciiAndUnicode()
    {
        var t = Make(BertWordPieceOptions.BertUncased, "a", "b", "$", "¿", "—", "^", "`");
        // $ ^ ` are ASCII punctuation by BERT's definition though Unicode calls them symbols.
        Assert.Equal("[CLS] a $ b ^ a ` b [SEP]", Tokens(t, "a$b^a`b"));
        Assert.Equal("[CLS] ¿ a — b [SEP]", Tokens(t, "¿a—b"));
        // A symbol that is not punctuation stays inside the word: "a€b" has no split and is [UNK].
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "a€b"));
    }

    [Fact]
    public void WordPieceIsGreedyLongestMatchFirst()
    {
        var t = Make(BertWordPieceOptions.BertUncased, "un", "unaff", "##aff", "##able", "##a", "##ffable");
        // Longest first at the start ("unaff"), then the longest continuation ("##able").
        Assert.Equal("[CLS] unaff ##able [SEP]", Tokens(t, "unaffable"));
        // No complete split: the whole word is one [UNK], not a prefix of pieces.
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "unaffx"));
    }

    [Fact]
    public void WordLongerThanTheLimitIsUnknownCountingCodePoints()
    {
        var t = Make(BertWordPieceOptions.BertUncased with { MaxInputCharsPerWord = 5 }, "a", "##a", "😀", "##😀");
        Assert.Equal("[CLS] a ##a ##a ##a ##a [SEP]", Tokens(t, "aaaaa"));
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "aaaaaa"));
        // Five emoji are five code points (ten UTF-16 units): still within the limit.
        Assert.Equal("[CLS] 😀 ##😀 ##😀 ##😀 ##😀 [SEP]", Tokens(t, "😀😀😀😀😀"));
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "😀😀😀😀😀😀"));
        // The limit applies after normalization: a + U+0301 strips to one code point per letter.
        Assert.Equal("[CLS] a ##a ##a ##a ##a [SEP]", Tokens(t, "a\u0301a\u0301a\u0301a\u0301\u00E1"));
    }

    [Fact]
    public void PiecesNeverSplitASurrogatePair()
    {
        // A vocabulary holding half of a surrogate pair must not match half of an emoji.
        var t = Make(BertWordPieceOptions.BertUncased, "a", "##\uD83D", "\uD83D");
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "a😀"));
        Assert.Equal("[CLS] [UNK] [SEP]", Tokens(t, "😀"));
    }

    [Fact]
    public void AddedTokensAreMatchedVerbatimBeforeNormalization()
    {
        var t = Make(BertWordPieceOptions.BertUncased, "x", "y", "[", "]", "mask");
        Assert.Equal("[CLS] x [MASK] y [SEP]", Tokens(t, "x[MASK]y"));
        // Matching is on the raw text: lower-case "[mask]" is ordinary text.
        Assert.Equal("[CLS] x [ mask ] y [SEP]", Tokens(t, "x[mask]y"));
        Assert.Equal("[CLS] [CLS] [SEP] [PAD] [SEP]", Tokens(t, "[CLS][SEP] [PAD]"));
        var off = Make(BertWordPieceOptions.BertUncased with { AddedTokens = [] }, "x", "y", "[", "]", "mask");
        Assert.Equal("[CLS] x [ mask ] y [SEP]", Tokens(off, "x[MASK]y"));
    }

    [Fact]
    public void WithoutCleaningControlCharactersStayInWords()
    {
        var t = Make(BertWordPieceOptions.BertUncased with { CleanText = false }, "a", "##\u0007", "b");
        Assert.Equal("[CLS] a ##\u0007 [SEP]", Tokens(t, "a\u0007"));
        // VT and FF are White_Space: they still split.
        Assert.Equal("[CLS] a b [SEP]", Tokens(t, "a\u000Bb"));
        var clean = Make(BertWordPieceOptions.BertUncased, "a", "##\u0007", "b", "ab");
        Assert.Equal("[CLS] a [SEP]", Tokens(clean, "a\u0007"));
        Assert.Equal("[CLS] ab [SEP]", Tokens(clean, "a\u0007b"));
    }

    [Fact]
    public void ContinuingSubwordPrefixIsConfigurable()
    {
        string[] vocab = [.. Specials, "play", "@@ing"];
        var t = new BertWordPieceTokenizer(vocab, BertWordPieceOptions.BertUncased with { ContinuingSubwordPrefix = "@@" });
        Assert.Equal("[CLS] play @@ing [SEP]", Tokens(t, "playing"));
    }

    [Fact]
    public void ConstructorRejectsVocabularyWithoutSpecialTokens()
    {
        var e = Assert.Throws<ArgumentException>(() => new BertWordPieceTokenizer(["[CLS]", "[SEP]", "[PAD]", "a"]));
        Assert.Contains("UnkToken", e.Message);
        Assert.Throws<ArgumentException>(() => new BertWordPieceTokenizer([]));
        Assert.Throws<ArgumentException>(() => Make(BertWordPieceOptions.BertUncased with { MaxInputCharsPerWord = 0 }));
        Assert.Throws<ArgumentException>(() => Make(BertWordPieceOptions.BertUncased with { AddedTokens = ["<not-in-vocab>"] }));
    }
}
