using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>Hostile or degenerate input on the real bert-base-uncased vocabulary.</summary>
public class RobustnessTests
{
    private static BertWordPieceTokenizer Bert => BertUncased.Tokenizer;
    private const int Megabyte = 1 << 20;

    private static int[] Ids(params string[] tokens) => tokens.Select(t => Bert.TokenToId(t)).ToArray();

    [Fact]
    public void EmptyAndBlankTextsGiveClsSep()
    {
        int[] clsSep = [Bert.ClsId, Bert.SepId];
        Assert.Equal(clsSep, Bert.Encode(""));
        Assert.Equal(clsSep, Bert.Encode(" \t\r\n\u00A0\u3000\u2028"));
        Assert.Equal(clsSep, Bert.Encode("\0\u0001\u001F\u007F\uFFFD\u200B\uFEFF"));
        Span<int> ids = stackalloc int[2];
        Assert.Equal(2, Bert.Encode(ReadOnlySpan<char>.Empty, ids, 2, out bool truncated));
        Assert.False(truncated);
    }

    [Fact]
    public void LoneSurrogatesAreDroppedLikeOtherControlCharacters()
    {
        // Category Cs: cleaning removes them, so the letters around join into one word.
        Assert.Equal(Bert.Encode("hello"), Bert.Encode("hel\uD800lo"));
        Assert.Equal(Bert.Encode("hello"), Bert.Encode("hel\uDC00lo"));
        Assert.Equal(Bert.Encode("hello"), Bert.Encode("\uDC00hello\uD83D"));
        Assert.Equal(Bert.Encode("a b"), Bert.Encode("a\uDFFF\uD800 b"));
        // A low surrogate before a high one is two lone surrogates, not a pair.
        Assert.Equal(Bert.Encode("ab"), Bert.Encode("a\uDE00\uD83Db"));
        // A valid pair is one character (an emoji with no vocabulary entry is [UNK]).
        Assert.Equal(new[] { Bert.ClsId, Bert.UnkId, Bert.SepId }, Bert.Encode("\uD83E\uDD16"));
    }

    [Fact]
    public void NulAndControlCharactersAreRemovedAndWhitespaceSplits()
    {
        Assert.Equal(Bert.Encode("hello"), Bert.Encode("he\0l\u0007l\u001Bo"));
        Assert.Equal(Bert.Encode("hello world"), Bert.Encode("hello\tworld"));
        Assert.Equal(Bert.Encode("hello world"), Bert.Encode("hello\r\nworld"));
        Assert.Equal(Bert.Encode("hello world"), Bert.Encode("hello\u2003world"));
        Assert.Equal(Bert.Encode("helloworld"), Bert.Encode("hello\u00ADworld")); // soft hyphen is Cf
        Assert.Equal(Ids("[CLS]", "hello", "[SEP]"), Bert.Encode("\u0000\u0085hello\uFFFD"));
    }

    [Fact]
    public void MegabyteWithoutSpacesIsOneUnknownWord()
    {
        // One word far longer than max_input_chars_per_word: [UNK], found in one linear pass.
        Assert.Equal(Ids("[CLS]", "[UNK]", "[SEP]"), Bert.Encode(new string('a', Megabyte)));
        Assert.Equal(Ids("[CLS]", "[UNK]", "[SEP]"), Bert.Encode(new string('\u00E9', Megabyte)));
        Assert.Equal(Ids("[CLS]", "[UNK]", "[SEP]"), Bert.Encode(string.Concat(Enumerable.Repeat("\uD83D\uDE00", Megabyte / 2))));
        // Non-Mn combining marks (musical symbols, ccc 216) await canonical reordering: bounded too.
        Assert.Equal(Ids("[CLS]", "[UNK]", "[SEP]"), Bert.Encode("x" + string.Concat(Enumerable.Repeat("\U0001D165\U0001D16D", Megabyte / 4))));
        // A million combining acutes on one letter strip away to that letter.
        Assert.Equal(Ids("[CLS]", "a", "[SEP]"), Bert.Encode("a" + new string('\u0301', Megabyte)));
    }

    [Fact]
    public void MegabyteOfPunctuationTruncatesOrEncodesFully()
    {
        string text = string.Concat(Enumerable.Repeat("a.", Megabyte / 2));
        Span<int> ids = stackalloc int[64];
        int n = Bert.Encode(text, ids, 64, out bool truncated);
        Assert.True(truncated);
        Assert.Equal(64, n);
        int a = Bert.TokenToId("a"), dot = Bert.TokenToId(".");
        for (int i = 1; i < 63; i++) Assert.Equal(i % 2 == 1 ? a : dot, ids[i]);
        Assert.Equal(Bert.SepId, ids[63]);

        int[] all = Bert.Encode(text);
        Assert.Equal(Megabyte + 2, all.Length);
        // Brackets that never complete an added token are ordinary punctuation.
        Assert.Equal(Megabyte + 2, Bert.Encode(new string('[', Megabyte)).Length);
    }

    [Fact]
    public void TruncationKeepsClsTheFirstPiecesAndSep()
    {
        foreach (var (text, expected) in BertUncased.ReferenceCases.Where(c => c.Ids.Length > 12).Take(200))
        {
            for (int max = 2; max <= 12; max += 5)
            {
                var ids = new int[max];
                int n = Bert.Encode(text.AsSpan(), ids, max, out bool truncated);
                Assert.True(truncated);
                Assert.Equal(max, n);
                Assert.Equal([.. expected[..(max - 1)], Bert.SepId], ids);
                Assert.Equal(ids, Bert.Encode(text, max));
            }
        }
    }

    [Fact]
    public void ArrayEncodingGrowsWhenPiecesOutnumberChars()
    {
        // A Hangul syllable decomposes (NFD) into two or three jamo, each of which may be its own piece,
        // so a text can have more ids than chars + 2: the array API must retry with a larger buffer.
        string text = string.Concat(Enumerable.Repeat("한 ", 50)) + "한";
        var span = new int[1024];
        int n = Bert.Encode(text, span, out bool truncated);
        Assert.False(truncated);
        Assert.True(n > text.Length + 2, $"expected more ids than chars + 2, got {n} for {text.Length} chars");
        Assert.Equal(span[..n], Bert.Encode(text));
    }

    [Fact]
    public void PaddedEncodingFillsPadAndAttentionMask()
    {
        var ids = new int[8];
        var mask = new int[8];
        int n = Bert.EncodePadded("hello world", ids, mask, out bool truncated);
        Assert.False(truncated);
        Assert.Equal(4, n);
        Assert.Equal(Ids("[CLS]", "hello", "world", "[SEP]", "[PAD]", "[PAD]", "[PAD]", "[PAD]"), ids);
        Assert.Equal(new[] { 1, 1, 1, 1, 0, 0, 0, 0 }, mask);
        Assert.Throws<ArgumentException>(() => Bert.EncodePadded("x", ids, new int[7], out _));
    }

    [Fact]
    public void InvalidArgumentsThrowClearly()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Bert.Encode("x", 1));
        Assert.Throws<ArgumentNullException>(() => Bert.Encode(null!));
        var e = Assert.Throws<ArgumentException>(() => Bert.Encode("x".AsSpan(), new int[4], 8, out _));
        Assert.Contains("maxLength", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Bert.IdToToken(Bert.VocabSize));
        Assert.Equal(-1, Bert.TokenToId("no-such-token-xyz"));
    }

    [Fact]
    public void SpanEncodingAllocatesNothing()
    {
        var texts = BertUncased.ReferenceCases.Select(c => c.Text).ToArray();
        var ids = new int[512];
        foreach (string text in texts) Bert.Encode(text, ids, out _); // warm up (JIT, statics)
        int total = 0;
        long allocated = Allocations.Least(() => { total = 0; foreach (string text in texts) total += Bert.Encode(text, ids, out _); });
        Assert.True(total > texts.Length * 2);
        Assert.Equal(0, allocated);
    }
}
