using System.Buffers;
using BinEngine.Tokenization;
using Microsoft.ML.Tokenizers;

namespace BinEngine.Tests.Tokenization;

/// <summary>
/// The tokenizer through the Microsoft.ML.Tokenizers abstraction (a caller that only knows <see cref="Tokenizer"/>):
/// the Hugging Face fixture through EncodeToIds, EncodeToTokens and CountTokens; offsets that point at the text each
/// token came from; truncation with CharsConsumed; Decode. Both namespaces are imported here on purpose: our names
/// must not clash with that library's (WordPieceTokenizer, WordPieceOptions, BertTokenizer).
/// </summary>
public class MLTokenizersTests
{
    private static Tokenizer Ml => BertUncased.Tokenizer;

    [Fact]
    public void FixtureThroughTheTokenizerApi()
    {
        var cases = BertUncased.ReferenceCases;
        Assert.Equal(1914, cases.Count);
        int mismatches = 0;
        string? first = null;
        foreach (var (text, expected) in cases)
        {
            IReadOnlyList<int> ids = Ml.EncodeToIds(text);
            IReadOnlyList<EncodedToken> tokens = Ml.EncodeToTokens(text, out string? normalized);
            bool ok = ids.SequenceEqual(expected) && tokens.Select(t => t.Id).SequenceEqual(expected)
                && Ml.CountTokens(text) == expected.Length && normalized is null;
            if (!ok) { mismatches++; first ??= text; }
        }
        Assert.True(mismatches == 0, $"{mismatches} of {cases.Count} differ; first: {first}");
    }

    /// <summary>
    /// Every token from the text points at where it came from: offsets in order, not empty, and on the
    /// fixture's ASCII texts the token (less "##") is the text at its offset, lower-cased. [CLS]/[SEP] get 0..0.
    /// </summary>
    [Fact]
    public void OffsetsPointAtTheSourceText()
    {
        int checkedAscii = 0;
        foreach (var (text, _) in BertUncased.ReferenceCases)
        {
            var tokens = Ml.EncodeToTokens(text, out _);
            Assert.Equal(new Range(0, 0), tokens[0].Offset);
            Assert.Equal(new Range(0, 0), tokens[^1].Offset);
            int previousStart = 0, previousEnd = 0;
            for (int k = 1; k < tokens.Count - 1; k++)
            {
                // Pieces of one source character share its offsets (한 decomposes to three jamo, each a piece),
                // so offsets only never go backwards.
                var (start, length) = tokens[k].Offset.GetOffsetAndLength(text.Length);
                Assert.True(start >= previousStart && start + length >= previousEnd && length > 0, $"\"{text}\": token {k} {tokens[k].Value} at {tokens[k].Offset}");
                previousStart = start;
                previousEnd = start + length;
            }
            if (text.All(c => c is >= ' ' and < (char)0x7F))
            {
                checkedAscii++;
                for (int k = 1; k < tokens.Count - 1; k++)
                {
                    string value = tokens[k].Value;
                    if (value == "[UNK]") continue;
                    string piece = value.StartsWith("##", StringComparison.Ordinal) ? value[2..] : value;
                    Assert.Equal(piece, text[tokens[k].Offset], ignoreCase: true); // ignoring case: added tokens such as [CLS] keep theirs
                }
            }
        }
        Assert.True(checkedAscii > 100, $"only {checkedAscii} ASCII cases");
    }

    [Fact]
    public void OffsetsThroughNormalization()
    {
        // "Café" decomposed (e + U+0301: the mark is dropped), a surrogate pair that becomes [UNK], an added token.
        const string text = "CAFE\u0301 😀 x[MASK]y";
        var tokens = Ml.EncodeToTokens(text, out _);
        string[] values = tokens.Select(t => t.Value).ToArray();
        Assert.Equal(["[CLS]", "cafe", "[UNK]", "x", "[MASK]", "y", "[SEP]"], values);
        Assert.Equal(new Range(0, 4), tokens[1].Offset);   // the dropped mark at 4 belongs to no piece
        Assert.Equal(new Range(6, 8), tokens[2].Offset);   // both UTF-16 units of the emoji
        Assert.Equal(new Range(9, 10), tokens[3].Offset);
        Assert.Equal(new Range(10, 16), tokens[4].Offset);
        Assert.Equal(new Range(16, 17), tokens[5].Offset);
    }

    /// <summary>MaxTokenCount counts [CLS] and [SEP]; CharsConsumed is where the last kept piece ends, also inside a word.</summary>
    [Fact]
    public void TruncationReportsCharsConsumed()
    {
        const string text = "unflinchingly bleak and desperate";
        int[] full = BertUncased.Tokenizer.Encode(text);          // [CLS] un ##fl ##in ##ching ##ly bleak and desperate [SEP]
        var tokens = Ml.EncodeToTokens(text, out _);
        for (int max = 2; max < full.Length; max++)
        {
            IReadOnlyList<int> ids = Ml.EncodeToIds(text, max, out string? normalized, out int consumed);
            Assert.Null(normalized);
            Assert.Equal([.. full[..(max - 1)], full[^1]], ids);
            int expected = max == 2 ? 0 : tokens[max - 2].Offset.End.Value;
            Assert.Equal(expected, consumed);
            Assert.Equal(expected, Ml.GetIndexByTokenCount(text, max, out _, out int count));
            Assert.Equal(max, count);
        }
        Assert.Equal(full, Ml.EncodeToIds(text, full.Length, out _, out int all));
        Assert.Equal(text.Length, all);
        Assert.Empty(Ml.EncodeToIds(text, 1, out _, out int none));
        Assert.Equal(0, none);

        // From the end: [CLS] + the last two pieces ("and", "desperate") + [SEP] start at "and", index 20.
        Assert.Equal(20, Ml.GetIndexByTokenCountFromEnd(text, 4, out _, out int fromEnd));
        Assert.Equal(4, fromEnd);
        Assert.Equal(0, Ml.GetIndexByTokenCountFromEnd(text, 100, out _, out int whole));
        Assert.Equal(full.Length, whole);
    }

    [Fact]
    public void DecodeJoinsPiecesAndDropsTheFraming()
    {
        Assert.Equal("unflinchingly bleak , and desperate !", Ml.Decode(Ml.EncodeToIds("Unflinchingly bleak, and DESPERATE!")));
        Assert.Equal("x [MASK] y", Ml.Decode(Ml.EncodeToIds("x[MASK]y")));

        int[] ids = [.. Ml.EncodeToIds("bleak and desperate")];
        Span<char> small = stackalloc char[9];
        Assert.Equal(OperationStatus.DestinationTooSmall, Ml.Decode(ids, small, out int used, out int written));
        Assert.Equal("bleak and", small[..written].ToString());
        Assert.Equal(3, used); // [CLS], bleak, and
        Span<char> big = stackalloc char[64];
        Assert.Equal(OperationStatus.Done, Ml.Decode(ids, big, out used, out written));
        Assert.Equal("bleak and desperate", big[..written].ToString());
        Assert.Equal(ids.Length, used);
    }

    /// <summary>The names of the two libraries do not collide (this file imports both); ML.Tokenizers' own types stay reachable.</summary>
    [Fact]
    public void NamesDoNotClash()
    {
        Assert.NotEqual(typeof(BertWordPieceTokenizer).Name, typeof(WordPieceTokenizer).Name);
        Assert.NotEqual(typeof(BertWordPieceOptions).Name, typeof(WordPieceOptions).Name);
        Assert.IsAssignableFrom<Tokenizer>(BertUncased.Tokenizer);
    }
}
