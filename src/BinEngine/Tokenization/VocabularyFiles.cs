using System.Text;
using System.Text.Json;

namespace BinEngine.Tokenization;

/// <summary>Reads the two vocabulary formats: BERT's vocab.txt and Hugging Face's tokenizer.json.</summary>
internal static class VocabularyFiles
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Largest file accepted: real vocabularies are a few MB; anything far larger is not one.</summary>
    public const long MaxFileBytes = 256L << 20;

    private static byte[] ReadBounded(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
        long length = new FileInfo(path).Length;
        if (length > MaxFileBytes)
            throw new InvalidDataException($"{what} '{path}' is {length} bytes, more than the {MaxFileBytes >> 20} MiB a vocabulary may be.");
        return File.ReadAllBytes(path);
    }

    public static BertWordPieceTokenizer LoadVocabFile(string path, BertWordPieceOptions options)
    {
        byte[] bytes = ReadBounded(path, "Vocabulary file");
        string text;
        try
        {
            text = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"Vocabulary file '{path}' is not valid UTF-8: {e.Message}", e);
        }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        // Python's text mode reads \r\n, \r and \n all as line ends; load_vocab strips the "\n" of each
        // line, so a final newline does not add an empty token but any other empty line is a token.
        var tokens = new List<string>();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\n' && text[i] != '\r') continue;
            tokens.Add(text[start..i]);
            if (text[i] == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < text.Length) tokens.Add(text[start..]);
        if (tokens.Count == 0) throw new InvalidDataException($"Vocabulary file '{path}' is empty.");
        try
        {
            return new BertWordPieceTokenizer(tokens, options);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Vocabulary file '{path}': {e.Message}", e);
        }
    }

    public static BertWordPieceTokenizer LoadTokenizerJson(string path)
    {
        byte[] bytes = ReadBounded(path, "Tokenizer file");
        try
        {
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 64 });
            return FromJson(document.RootElement);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Tokenizer file '{path}' is not valid JSON: {e.Message}", e);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Tokenizer file '{path}': {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"Tokenizer file '{path}': {e.Message}", e);
        }
    }

    private static BertWordPieceTokenizer FromJson(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException("the root is not a JSON object.");

        // model: the WordPiece vocabulary and its settings.
        JsonElement model = Required(root, "model", JsonValueKind.Object, "");
        string modelType = RequiredString(model, "type", "model");
        if (modelType != "WordPiece") throw new InvalidDataException($"model.type is \"{modelType}\"; only \"WordPiece\" is supported.");
        JsonElement vocabObject = Required(model, "vocab", JsonValueKind.Object, "model");
        var byId = new Dictionary<int, string>();
        foreach (JsonProperty entry in vocabObject.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id))
                throw new InvalidDataException($"model.vocab[\"{entry.Name}\"] is not an integer id.");
            if (!byId.TryAdd(id, entry.Name))
                throw new InvalidDataException($"model.vocab gives id {id} to both \"{byId[id]}\" and \"{entry.Name}\".");
        }
        if (byId.Count == 0) throw new InvalidDataException("model.vocab is empty.");
        var vocabulary = new string[byId.Count];
        foreach (var (id, token) in byId)
        {
            if (id < 0 || id >= vocabulary.Length)
                throw new InvalidDataException($"model.vocab id {id} (\"{token}\") is outside 0..{vocabulary.Length - 1}: ids must be dense.");
            vocabulary[id] = token;
        }

        string unk = RequiredString(model, "unk_token", "model");
        string prefix = OptionalString(model, "continuing_subword_prefix", "model") ?? "##";
        int maxChars = 100;
        if (model.TryGetProperty("max_input_chars_per_word", out JsonElement maxElement) && maxElement.ValueKind != JsonValueKind.Null)
        {
            if (maxElement.ValueKind != JsonValueKind.Number || !maxElement.TryGetInt32(out maxChars))
                throw new InvalidDataException("model.max_input_chars_per_word is not an integer.");
        }

        var options = new BertWordPieceOptions
        {
            UnkToken = unk,
            ContinuingSubwordPrefix = prefix,
            MaxInputCharsPerWord = maxChars,
        };

        // normalizer: BertNormalizer, or none at all.
        if (root.TryGetProperty("normalizer", out JsonElement normalizer) && normalizer.ValueKind != JsonValueKind.Null)
        {
            if (normalizer.ValueKind != JsonValueKind.Object) throw new InvalidDataException("normalizer is not an object.");
            string type = RequiredString(normalizer, "type", "normalizer");
            if (type != "BertNormalizer") throw new InvalidDataException($"normalizer.type is \"{type}\"; only \"BertNormalizer\" (or no normalizer) is supported.");
            options = options with
            {
                CleanText = OptionalBool(normalizer, "clean_text", "normalizer") ?? true,
                HandleChineseChars = OptionalBool(normalizer, "handle_chinese_chars", "normalizer") ?? true,
                StripAccents = OptionalBool(normalizer, "strip_accents", "normalizer"),
                Lowercase = OptionalBool(normalizer, "lowercase", "normalizer") ?? true,
            };
        }
        else
        {
            options = options with { CleanText = false, HandleChineseChars = false, StripAccents = false, Lowercase = false };
        }

        // pre_tokenizer: whitespace and punctuation splitting, which is all this tokenizer does.
        JsonElement preTokenizer = Required(root, "pre_tokenizer", JsonValueKind.Object, "");
        string preType = RequiredString(preTokenizer, "type", "pre_tokenizer");
        if (preType != "BertPreTokenizer") throw new InvalidDataException($"pre_tokenizer.type is \"{preType}\"; only \"BertPreTokenizer\" is supported.");

        // post_processor: [CLS] $A [SEP].
        JsonElement post = Required(root, "post_processor", JsonValueKind.Object, "");
        (string cls, string sep) = ReadPostProcessor(post);
        options = options with { ClsToken = cls, SepToken = sep };

        if (root.TryGetProperty("padding", out JsonElement padding) && padding.ValueKind == JsonValueKind.Object)
            options = options with { PadToken = OptionalString(padding, "pad_token", "padding") ?? options.PadToken };

        // added_tokens: matched verbatim in the raw text. Only the plain kind BERT uses is reproduced.
        var added = new List<string>();
        if (root.TryGetProperty("added_tokens", out JsonElement addedTokens) && addedTokens.ValueKind != JsonValueKind.Null)
        {
            if (addedTokens.ValueKind != JsonValueKind.Array) throw new InvalidDataException("added_tokens is not an array.");
            int index = 0;
            foreach (JsonElement token in addedTokens.EnumerateArray())
            {
                string where = $"added_tokens[{index++}]";
                if (token.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is not an object.");
                string content = RequiredString(token, "content", where);
                if (content.Length == 0) throw new InvalidDataException($"{where}.content is empty.");
                foreach (string flag in new[] { "single_word", "lstrip", "rstrip", "normalized" })
                {
                    if (OptionalBool(token, flag, where) == true)
                        throw new InvalidDataException($"{where} (\"{content}\") has {flag} = true, which this tokenizer does not reproduce.");
                }
                if (token.TryGetProperty("id", out JsonElement idElement))
                {
                    if (!idElement.TryGetInt32(out int id) || id < 0 || id >= vocabulary.Length || vocabulary[id] != content)
                        throw new InvalidDataException($"{where} (\"{content}\") has id {idElement}, which is not that token's id in model.vocab.");
                }
                added.Add(content);
            }
        }
        options = options with
        {
            AddedTokens = added,
            MaskToken = added.Contains("[MASK]") ? "[MASK]" : null,
        };
        return new BertWordPieceTokenizer(vocabulary, options);
    }

    private static (string Cls, string Sep) ReadPostProcessor(JsonElement post)
    {
        string type = RequiredString(post, "type", "post_processor");
        if (type == "BertProcessing")
            return (SpecialPair(post, "cls"), SpecialPair(post, "sep"));
        if (type != "TemplateProcessing")
            throw new InvalidDataException($"post_processor.type is \"{type}\"; only \"TemplateProcessing\" and \"BertProcessing\" are supported.");

        // The single-sequence template must be exactly [SpecialToken CLS, Sequence A, SpecialToken SEP].
        JsonElement single = Required(post, "single", JsonValueKind.Array, "post_processor");
        var parts = single.EnumerateArray().ToArray();
        const string Expected = "post_processor.single must be [SpecialToken, Sequence A, SpecialToken] (a [CLS] $A [SEP] template).";
        if (parts.Length != 3) throw new InvalidDataException(Expected);
        if (!parts[1].TryGetProperty("Sequence", out JsonElement sequence) || OptionalString(sequence, "id", "post_processor.single[1].Sequence") != "A")
            throw new InvalidDataException(Expected);
        string Special(JsonElement part, int index)
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("SpecialToken", out JsonElement special))
                throw new InvalidDataException(Expected);
            return RequiredString(special, "id", $"post_processor.single[{index}].SpecialToken");
        }
        return (Special(parts[0], 0), Special(parts[2], 2));
    }

    private static string SpecialPair(JsonElement post, string name)
    {
        JsonElement pair = Required(post, name, JsonValueKind.Array, "post_processor");
        if (pair.GetArrayLength() != 2 || pair[0].ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"post_processor.{name} must be [token, id].");
        return pair[0].GetString()!;
    }

    private static JsonElement Required(JsonElement parent, string name, JsonValueKind kind, string where)
    {
        string path = where.Length == 0 ? name : $"{where}.{name}";
        if (!parent.TryGetProperty(name, out JsonElement value)) throw new InvalidDataException($"{path} is missing.");
        if (value.ValueKind != kind) throw new InvalidDataException($"{path} is {value.ValueKind}, expected {kind}.");
        return value;
    }

    private static string RequiredString(JsonElement parent, string name, string where) =>
        Required(parent, name, JsonValueKind.String, where).GetString()!;

    private static string? OptionalString(JsonElement parent, string name, string where)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{where}.{name} is {value.ValueKind}, expected a string.");
        return value.GetString();
    }

    private static bool? OptionalBool(JsonElement parent, string name, string where)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{where}.{name} is {value.ValueKind}, expected true, false or null."),
        };
    }
}
