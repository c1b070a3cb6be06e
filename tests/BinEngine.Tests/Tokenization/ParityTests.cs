using System.Text;
using System.Text.Json;
using BinEngine.Tokenization;
using Xunit.Abstractions;

namespace BinEngine.Tests.Tokenization;

/// <summary>The bert-base-uncased tokenizers and the Hugging Face reference cases, loaded once.</summary>
internal static class BertUncased
{
    public const string VocabPath = "data/vocab/bert-base-uncased-vocab.txt";
    public const string TokenizerJsonPath = "data/vocab/bert-base-uncased-tokenizer.json";

    private static readonly Lazy<BertWordPieceTokenizer> FromVocab = new(() => BertWordPieceTokenizer.FromVocabFile(TestPaths.Repo(VocabPath)));
    private static readonly Lazy<BertWordPieceTokenizer> FromJson = new(() => BertWordPieceTokenizer.FromTokenizerJson(TestPaths.Repo(TokenizerJsonPath)));
    private static readonly Lazy<IReadOnlyList<(string Text, int[] Ids)>> Cases = new(LoadCases);

    public static BertWordPieceTokenizer Tokenizer => FromVocab.Value;
    public static BertWordPieceTokenizer JsonTokenizer => FromJson.Value;
    public static IReadOnlyList<(string Text, int[] Ids)> ReferenceCases => Cases.Value;

    private static IReadOnlyList<(string Text, int[] Ids)> LoadCases()
    {
        var cases = new List<(string, int[])>();
        foreach (string line in File.ReadLines(TestPaths.Fixture("wordpiece/bert-base-uncased.jsonl"), Encoding.UTF8))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            string text = doc.RootElement.GetProperty("text").GetString()!;
            int[] ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            cases.Add((text, ids));
        }
        return cases;
    }
}

public class ParityTests(ITestOutputHelper output)
{
    private static string Show(string text) =>
        string.Concat(text.Select(c => c < 0x20 || c > 0x7E ? $"\\u{(int)c:X4}" : c.ToString()));

    private static string Tokens(BertWordPieceTokenizer t, IEnumerable<int> ids) =>
        string.Join(" ", ids.Select(id => id >= 0 && id < t.VocabSize ? t.IdToToken(id) : $"<{id}>"));

    /// <summary>Every Hugging Face reference case gives exactly the reference ids.</summary>
    [Fact]
    public void EveryReferenceCaseMatchesHuggingFace()
    {
        var cases = BertUncased.ReferenceCases;
        var t = BertUncased.Tokenizer;
        Assert.Equal(1914, cases.Count);
        var mismatches = new List<string>();
        foreach (var (text, expected) in cases)
        {
            int[] actual = t.Encode(text);
            if (!actual.AsSpan().SequenceEqual(expected))
                mismatches.Add($"text:     \"{Show(text)}\"\nexpected: {Tokens(t, expected)}\nactual:   {Tokens(t, actual)}");
        }
        foreach (string m in mismatches.Take(15)) output.WriteLine(m + "\n");
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} of {cases.Count} cases differ; first:\n{string.Join("\n\n", mismatches.Take(5))}");
    }

    /// <summary>The span API gives the same ids as the array API, and into a buffer of exactly the needed size it does not truncate.</summary>
    [Fact]
    public void SpanEncodingEqualsArrayEncoding()
    {
        var t = BertUncased.Tokenizer;
        foreach (var (text, expected) in BertUncased.ReferenceCases)
        {
            var ids = new int[expected.Length];
            int n = t.Encode(text.AsSpan(), ids, expected.Length, out bool truncated);
            Assert.False(truncated);
            Assert.Equal(expected.Length, n);
            Assert.Equal(expected, ids);
        }
    }

    /// <summary>tokenizer.json and vocab.txt describe the same tokenizer: same vocabulary, options, ids.</summary>
    [Fact]
    public void TokenizerJsonGivesTheSameIdsAsVocabTxt()
    {
        var fromVocab = BertUncased.Tokenizer;
        var fromJson = BertUncased.JsonTokenizer;
        Assert.Equal(fromVocab.Vocabulary, fromJson.Vocabulary);
        Assert.Equal((fromVocab.ClsId, fromVocab.SepId, fromVocab.PadId, fromVocab.UnkId, fromVocab.MaskId),
                     (fromJson.ClsId, fromJson.SepId, fromJson.PadId, fromJson.UnkId, fromJson.MaskId));
        Assert.Equal((101, 102, 0, 100, 103), (fromJson.ClsId, fromJson.SepId, fromJson.PadId, fromJson.UnkId, fromJson.MaskId));
        var o = fromJson.Options;
        Assert.True(o.Lowercase && o.EffectiveStripAccents && o.CleanText && o.HandleChineseChars);
        Assert.Equal(("##", 100), (o.ContinuingSubwordPrefix, o.MaxInputCharsPerWord));
        foreach (var (text, _) in BertUncased.ReferenceCases)
            Assert.Equal(fromVocab.Encode(text), fromJson.Encode(text));
    }

    /// <summary>Encoding from many threads at once gives the single-threaded ids.</summary>
    [Fact]
    public void ConcurrentEncodingMatchesReference()
    {
        var t = BertUncased.Tokenizer;
        var cases = BertUncased.ReferenceCases;
        int failures = 0;
        Parallel.For(0, cases.Count * 4, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var (text, expected) = cases[i % cases.Count];
            Span<int> ids = stackalloc int[512];
            int n = t.Encode(text, ids, out _);
            if (!ids[..n].SequenceEqual(expected)) Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
    }
}
