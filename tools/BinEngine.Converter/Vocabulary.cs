using System.Text;
using System.Text.Json;

namespace BinEngine.Converter;

/// <summary>
/// Reads the tokenizer vocabulary to embed in the model file: a BERT <c>vocab.txt</c> (one token
/// per line, line i = id i, as Hugging Face's <c>load_vocab</c> reads it: only the '\n' is
/// stripped) or a Hugging Face <c>tokenizer.json</c> (<c>model.vocab</c>: token → id, ids dense
/// from 0). Tokenization itself is BinEngine.Tokenization's; this only carries the strings.
/// </summary>
internal static class Vocabulary
{
    /// <summary>Tokens of a vocab.txt, in id order.</summary>
    public static string[] ReadVocabTxt(string path)
    {
        string text = ReadText(path);
        var lines = text.Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
            lines.RemoveAt(lines.Count - 1); // the newline that ends the last line
        if (lines.Count == 0)
            throw new ConversionException($"vocabulary '{path}' is empty");
        return lines.ToArray();
    }

    /// <summary>Tokens of a tokenizer.json, in id order, and its normalizer's lowercase flag when it states one.</summary>
    public static (string[] Tokens, bool? Lowercase) ReadTokenizerJson(string path)
    {
        string text = ReadText(path);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (!doc.RootElement.TryGetProperty("model", out var model) || !model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
                throw new ConversionException($"'{path}' has no model.vocab object (a Hugging Face WordPiece tokenizer.json)");
            int count = vocab.EnumerateObject().Count();
            var tokens = new string?[count];
            foreach (var entry in vocab.EnumerateObject())
            {
                if (!entry.Value.TryGetInt32(out int id) || id < 0 || id >= count)
                    throw new ConversionException($"'{path}': token '{entry.Name}' has id {entry.Value.GetRawText()}; ids must be 0..{count - 1}");
                if (tokens[id] is not null)
                    throw new ConversionException($"'{path}': id {id} is given to both '{tokens[id]}' and '{entry.Name}'");
                tokens[id] = entry.Name;
            }
            bool? lowercase = null;
            if (doc.RootElement.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object
                && norm.TryGetProperty("lowercase", out var lc) && lc.ValueKind is JsonValueKind.True or JsonValueKind.False)
                lowercase = lc.GetBoolean();
            return (tokens.Select(t => t!).ToArray(), lowercase);
        }
        catch (JsonException e)
        {
            throw new ConversionException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path, new UTF8Encoding(false, true));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new ConversionException($"cannot read vocabulary '{path}': {e.Message}", e);
        }
    }
}
