namespace BinEngine.Tokenization;

/// <summary>
/// Settings of a BERT WordPiece tokenizer: Hugging Face's BertNormalizer (clean_text,
/// handle_chinese_chars, strip_accents, lowercase), the WordPiece model (unk_token,
/// continuing_subword_prefix, max_input_chars_per_word) and the special tokens.
/// The defaults are bert-base-uncased's.
/// </summary>
public sealed record BertWordPieceOptions
{
    /// <summary>Lower-case the text (bert-base-uncased: true; cased models: false).</summary>
    public bool Lowercase { get; init; } = true;

    /// <summary>
    /// Strip accents (NFD, then drop category Mn). <see langword="null"/> follows
    /// <see cref="Lowercase"/>, as Hugging Face does.
    /// </summary>
    public bool? StripAccents { get; init; }

    /// <summary>Put CJK ideographs in words of their own.</summary>
    public bool HandleChineseChars { get; init; } = true;

    /// <summary>Drop NUL, U+FFFD and control/format characters and map all whitespace to a space.</summary>
    public bool CleanText { get; init; } = true;

    /// <summary>The token for a word that has no WordPiece split or is too long.</summary>
    public string UnkToken { get; init; } = "[UNK]";

    /// <summary>The prefix that marks a piece continuing a word.</summary>
    public string ContinuingSubwordPrefix { get; init; } = "##";

    /// <summary>A word (after normalization and punctuation splitting) longer than this many code points becomes <see cref="UnkToken"/>.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;

    /// <summary>The token that starts every encoding.</summary>
    public string ClsToken { get; init; } = "[CLS]";

    /// <summary>The token that ends every encoding.</summary>
    public string SepToken { get; init; } = "[SEP]";

    /// <summary>The padding token.</summary>
    public string PadToken { get; init; } = "[PAD]";

    /// <summary>The mask token (only used when it appears verbatim in a text); <see langword="null"/> or empty for none.</summary>
    public string? MaskToken { get; init; } = "[MASK]";

    /// <summary>
    /// Tokens matched verbatim in the raw text before any normalization, each becoming its own id
    /// (Hugging Face's added/special tokens: "x[MASK]y" gives x, [MASK], y). <see langword="null"/>
    /// means those of <see cref="PadToken"/>, <see cref="UnkToken"/>, <see cref="ClsToken"/>,
    /// <see cref="SepToken"/> and <see cref="MaskToken"/> that the vocabulary holds; an empty list
    /// turns the matching off. Every token listed explicitly must be in the vocabulary.
    /// </summary>
    public IReadOnlyList<string>? AddedTokens { get; init; }

    /// <summary>The largest <see cref="MaxInputCharsPerWord"/> accepted (a word is buffered while it is read).</summary>
    public const int MaxInputCharsPerWordLimit = 1 << 16;

    /// <summary>Whether accents are stripped once <see cref="StripAccents"/> is resolved.</summary>
    public bool EffectiveStripAccents => StripAccents ?? Lowercase;

    /// <summary>bert-base-uncased: lower-case, strip accents.</summary>
    public static BertWordPieceOptions BertUncased { get; } = new();

    /// <summary>bert-base-cased: no lower-casing, accents kept.</summary>
    public static BertWordPieceOptions BertCased { get; } = new() { Lowercase = false };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Token(string? value, string name)
        {
            if (string.IsNullOrEmpty(value)) throw new ArgumentException($"BertWordPieceOptions.{name} must be a non-empty token.", name);
        }
        Token(UnkToken, nameof(UnkToken));
        Token(ClsToken, nameof(ClsToken));
        Token(SepToken, nameof(SepToken));
        Token(PadToken, nameof(PadToken));
        if (ContinuingSubwordPrefix is null) throw new ArgumentException("BertWordPieceOptions.ContinuingSubwordPrefix must not be null (it may be empty).", nameof(ContinuingSubwordPrefix));
        if (MaxInputCharsPerWord < 1 || MaxInputCharsPerWord > MaxInputCharsPerWordLimit)
            throw new ArgumentException($"BertWordPieceOptions.MaxInputCharsPerWord must be between 1 and {MaxInputCharsPerWordLimit}, not {MaxInputCharsPerWord}.", nameof(MaxInputCharsPerWord));
        if (AddedTokens is not null)
            foreach (var t in AddedTokens)
                if (string.IsNullOrEmpty(t)) throw new ArgumentException("BertWordPieceOptions.AddedTokens must not hold null or empty tokens.", nameof(AddedTokens));
    }
}
