using System.Text;
using System.Text.Json.Nodes;
using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>vocab.txt and tokenizer.json loading: equivalent inputs agree, broken inputs fail with a message naming the problem.</summary>
public sealed class LoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("binengine-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private static JsonObject BertJson() =>
        JsonNode.Parse(File.ReadAllText(TestPaths.Repo(BertUncased.TokenizerJsonPath)))!.AsObject();

    [Fact]
    public void VocabFileLineEndingsDoNotMatter()
    {
        string[] tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "##s"];
        var lf = BertWordPieceTokenizer.FromVocabFile(Write("lf.txt", string.Join("\n", tokens) + "\n"));
        var crlf = BertWordPieceTokenizer.FromVocabFile(Write("crlf.txt", string.Join("\r\n", tokens)));
        Assert.Equal(tokens, lf.Vocabulary);
        Assert.Equal(tokens, crlf.Vocabulary);
        Assert.Equal(lf.Encode("hellos"), crlf.Encode("hellos"));
        Assert.Equal(-1, lf.MaskId);
    }

    [Fact]
    public void BrokenVocabFilesFailClearly()
    {
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromVocabFile(Write("empty.txt", ""))).Message);
        Assert.Contains("UTF-8", Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromVocabFile(Write("bad.txt", [0x5B, 0xFF, 0xFE, 0x0A]))).Message);
        Assert.Contains("[UNK]", Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromVocabFile(Write("nounk.txt", "[PAD]\n[CLS]\n[SEP]\n"))).Message);
        Assert.Throws<FileNotFoundException>(() => BertWordPieceTokenizer.FromVocabFile(Path.Combine(_dir, "missing.txt")));
    }

    [Fact]
    public void TokenizerJsonOptionsAreRead()
    {
        var json = BertJson();
        json["normalizer"]!["lowercase"] = false;
        json["model"]!["max_input_chars_per_word"] = 7;
        var t = BertWordPieceTokenizer.FromTokenizerJson(Write("cased.json", json.ToJsonString()));
        Assert.False(t.Options.Lowercase);
        Assert.False(t.Options.EffectiveStripAccents);
        Assert.Equal(7, t.Options.MaxInputCharsPerWord);
        Assert.Equal(new[] { t.ClsId, t.UnkId, t.SepId }, t.Encode("Hello"));       // no uppercase entries in this vocabulary
        Assert.Equal(new[] { t.ClsId, t.UnkId, t.SepId }, t.Encode("abcdefgh"));    // 8 > 7 code points
    }

    public static TheoryData<string, string> BrokenJson => new()
    {
        { "model.type", """{"model":{"type":"BPE"}}""" },
        { "model is missing", """{"normalizer":null}""" },
        { "model.vocab is missing", """{"model":{"type":"WordPiece","unk_token":"[UNK]"}}""" },
        { "not valid JSON", """{"model": """ },
        { "root is not a JSON object", "[1,2]" },
    };

    [Theory]
    [MemberData(nameof(BrokenJson))]
    public void BrokenTokenizerJsonFailsClearly(string expectedInMessage, string content)
    {
        var e = Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromTokenizerJson(Write("broken.json", content)));
        Assert.Contains(expectedInMessage, e.Message);
    }

    public static TheoryData<string, string> BrokenFields => new()
    {
        { "model.vocab/dense", "ids must be dense" },
        { "model.vocab/duplicate", "gives id" },
        { "model.vocab/string", "not an integer id" },
        { "normalizer", "only \"BertNormalizer\"" },
        { "normalizer/lowercase", "expected true, false or null" },
        { "pre_tokenizer", "only \"BertPreTokenizer\"" },
        { "post_processor", "[CLS] $A [SEP]" },
        { "added_tokens/lstrip", "lstrip = true" },
        { "added_tokens/id", "not that token's id" },
        { "model.unk_token", "lacks UnkToken" },
    };

    [Theory]
    [MemberData(nameof(BrokenFields))]
    public void InvalidTokenizerJsonFieldsAreNamed(string breakage, string expectedInMessage)
    {
        var json = BertJson();
        var model = json["model"]!.AsObject();
        switch (breakage)
        {
            case "model.vocab/dense": model["vocab"]!["hello"] = 99999; break;
            case "model.vocab/duplicate": model["vocab"]!["hello"] = 0; break;
            case "model.vocab/string": model["vocab"]!["hello"] = "7592"; break;
            case "normalizer": json["normalizer"] = JsonNode.Parse("""{"type":"Lowercase"}"""); break;
            case "normalizer/lowercase": json["normalizer"]!["lowercase"] = "yes"; break;
            case "pre_tokenizer": json["pre_tokenizer"] = JsonNode.Parse("""{"type":"Whitespace"}"""); break;
            case "post_processor": json["post_processor"]!["single"]!.AsArray().RemoveAt(2); break;
            case "added_tokens/lstrip": json["added_tokens"]![0]!["lstrip"] = true; break;
            case "added_tokens/id": json["added_tokens"]![0]!["id"] = 5; break;
            case "model.unk_token": model["unk_token"] = "<unk>"; break;
        }
        var e = Assert.Throws<InvalidDataException>(() => BertWordPieceTokenizer.FromTokenizerJson(Write("field.json", json.ToJsonString())));
        Assert.Contains(expectedInMessage, e.Message);
    }

    [Fact]
    public void VocabularyRoundTripsThroughTheConstructor()
    {
        // What a model file does: embed Vocabulary and Options, rebuild, get the same ids.
        var original = BertUncased.JsonTokenizer;
        var rebuilt = new BertWordPieceTokenizer(original.Vocabulary.ToArray(), original.Options);
        foreach (var (text, expected) in BertUncased.ReferenceCases.Take(300))
            Assert.Equal(expected, rebuilt.Encode(text));
    }
}
