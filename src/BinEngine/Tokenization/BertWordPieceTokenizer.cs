using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace BinEngine.Tokenization;

/// <summary>
/// A BERT WordPiece tokenizer that gives the same ids as Hugging Face's tokenizer for BERT
/// (BertTokenizerFast, the tokenizers library, which AutoTokenizer loads): added tokens, text
/// cleaning, CJK splitting, accent stripping and lower-casing, whitespace and punctuation
/// splitting, greedy longest-match-first WordPiece, then [CLS] … [SEP].
/// </summary>
/// <remarks>
/// <para>It is a Microsoft.ML.Tokenizers <see cref="Tokenizer"/>: <c>EncodeToIds</c>, <c>EncodeToTokens</c>
/// (each token with its character offsets in the input), <c>CountTokens</c>,
/// <c>GetIndexByTokenCount</c> and <c>Decode</c> work as for any tokenizer of that library, and
/// <c>CharsConsumed</c> says where a truncated encoding stopped. That library's own BertTokenizer is
/// not used because it differs from Hugging Face on common text (it drops <c>$ + = ^ | ~</c>,
/// backticks and emoji where Hugging Face splits them or gives [UNK]); this class matches it.
/// The name is not "WordPieceTokenizer", so both namespaces can be imported together.</para>
/// </remarks>
/// <remarks>
/// <para>Immutable after construction and safe to use from many threads at once: each call keeps
/// its scratch on the stack (or, for very large <see cref="BertWordPieceOptions.MaxInputCharsPerWord"/>,
/// in arrays rented for the call). Encoding into a caller's span allocates nothing.</para>
/// <para>Where the tokenizers library and Python's BertTokenizer differ, this follows the library
/// (the reference fixture was made with it): unassigned code points are kept (they become [UNK])
/// rather than dropped; accents are stripped before lower-casing, per code point (Σ follows Final_Sigma);
/// cased text is not NFC-composed; CJK extension E starts at U+2B920.</para>
/// <para>Characters are classified with tables generated from Python's unicodedata (Unicode
/// <see cref="UnicodeVersion"/>), so results do not depend on the .NET runtime's Unicode data
/// or globalization mode. Lone surrogates (invalid UTF-16, which the Rust library cannot even
/// receive) are category Cs and text cleaning drops them, as Python's BertTokenizer does.</para>
/// </remarks>
public sealed class BertWordPieceTokenizer : Tokenizer
{
    private readonly string[] _vocabulary;
    private readonly string[] _addedTokens;
    private readonly int[] _addedTokenIds;

    /// <summary>Token → id for a piece at a word start (every vocabulary entry).</summary>
    internal readonly VocabularyTable WordStartLookup;
    /// <summary>Continuation piece (the prefix removed) → id.</summary>
    internal readonly VocabularyTable ContinuationLookup;
    internal readonly SearchValues<char> AddedTokenFirstChars;
    internal readonly bool Lowercase;
    internal readonly bool StripAccents;
    internal readonly bool CleanText;
    internal readonly bool HandleChineseChars;
    internal readonly int MaxInputCharsPerWord;
    /// <summary>Longest vocabulary entry usable at a word start, in UTF-16 units.</summary>
    internal readonly int MaxWordStartChars;
    /// <summary>Longest continuation entry (prefix removed), in UTF-16 units.</summary>
    internal readonly int MaxContinuationChars;

    /// <summary>The Unicode version of the character tables (that of the Python the reference ran on).</summary>
    public static string UnicodeVersion => UnicodeData.UnicodeVersion;

    /// <summary>Creates a tokenizer over <paramref name="vocabulary"/> (index = id).</summary>
    /// <exception cref="ArgumentException">The vocabulary is empty, holds null, or lacks a special token; or an option is invalid.</exception>
    public BertWordPieceTokenizer(IReadOnlyList<string> vocabulary, BertWordPieceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        options ??= new BertWordPieceOptions();
        options.Validate();
        if (vocabulary.Count == 0) throw new ArgumentException("The vocabulary is empty.", nameof(vocabulary));

        Options = options;
        _vocabulary = new string[vocabulary.Count];
        var wordStartIds = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        var continuationIds = new Dictionary<string, int>(StringComparer.Ordinal);
        string prefix = options.ContinuingSubwordPrefix;
        for (int id = 0; id < vocabulary.Count; id++)
        {
            string token = vocabulary[id] ?? throw new ArgumentException($"Vocabulary entry {id} is null.", nameof(vocabulary));
            _vocabulary[id] = token;
            // As Hugging Face's load_vocab: a token listed twice maps to its last id.
            wordStartIds[token] = id;
            MaxWordStartChars = Math.Max(MaxWordStartChars, token.Length);
            if (token.StartsWith(prefix, StringComparison.Ordinal) && token.Length > prefix.Length)
            {
                string rest = token[prefix.Length..];
                continuationIds[rest] = id;
                MaxContinuationChars = Math.Max(MaxContinuationChars, rest.Length);
            }
        }
        WordStartLookup = new VocabularyTable(wordStartIds);
        ContinuationLookup = new VocabularyTable(continuationIds);

        UnkId = RequireId(options.UnkToken, nameof(options.UnkToken));
        ClsId = RequireId(options.ClsToken, nameof(options.ClsToken));
        SepId = RequireId(options.SepToken, nameof(options.SepToken));
        PadId = RequireId(options.PadToken, nameof(options.PadToken));
        MaskId = !string.IsNullOrEmpty(options.MaskToken) && WordStartLookup.TryGetValue(options.MaskToken, out int mask) ? mask : -1;

        // Added tokens: longest first, so that at one position the longest match wins (leftmost-longest).
        IEnumerable<string> added = options.AddedTokens ??
            new[] { options.PadToken, options.UnkToken, options.ClsToken, options.SepToken, options.MaskToken }
                .Where(t => !string.IsNullOrEmpty(t) && WordStartLookup.TryGetValue(t, out _)).Select(t => t!);
        _addedTokens = added.Distinct(StringComparer.Ordinal).OrderByDescending(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).ToArray();
        _addedTokenIds = new int[_addedTokens.Length];
        for (int i = 0; i < _addedTokens.Length; i++)
            _addedTokenIds[i] = WordStartLookup.TryGetValue(_addedTokens[i], out int id) ? id
                : throw new ArgumentException($"Added token \"{_addedTokens[i]}\" is not in the vocabulary.", nameof(options));
        AddedTokenFirstChars = SearchValues.Create(new string(_addedTokens.Select(t => t[0]).Distinct().ToArray()));

        Lowercase = options.Lowercase;
        StripAccents = options.EffectiveStripAccents;
        CleanText = options.CleanText;
        HandleChineseChars = options.HandleChineseChars;
        MaxInputCharsPerWord = options.MaxInputCharsPerWord;
    }

    private int RequireId(string token, string optionName) =>
        WordStartLookup.TryGetValue(token, out int id) ? id
            : throw new ArgumentException($"The vocabulary lacks {optionName} \"{token}\".", optionName);

    /// <summary>Loads a vocab.txt (one token per line, line number = id, UTF-8) as Hugging Face's load_vocab does.</summary>
    /// <exception cref="InvalidDataException">The file is empty or not valid UTF-8, or lacks a special token.</exception>
    public static BertWordPieceTokenizer FromVocabFile(string path, BertWordPieceOptions? options = null) =>
        VocabularyFiles.LoadVocabFile(path, options ?? new BertWordPieceOptions());

    /// <summary>
    /// Loads a Hugging Face tokenizer.json with a WordPiece model, a BertNormalizer (or none) and a
    /// BertPreTokenizer; options come from the file.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not valid JSON or not a BERT WordPiece tokenizer this class reproduces; the message names the field.</exception>
    public static BertWordPieceTokenizer FromTokenizerJson(string path) => VocabularyFiles.LoadTokenizerJson(path);

    /// <summary>The settings this tokenizer was built with.</summary>
    public BertWordPieceOptions Options { get; }

    /// <summary>The tokens in id order (what a model file embeds to rebuild this tokenizer).</summary>
    public IReadOnlyList<string> Vocabulary => _vocabulary;

    /// <summary>Number of ids (vocabulary size).</summary>
    public int VocabSize => _vocabulary.Length;

    /// <summary>Id of <see cref="BertWordPieceOptions.ClsToken"/>.</summary>
    public int ClsId { get; }

    /// <summary>Id of <see cref="BertWordPieceOptions.SepToken"/>.</summary>
    public int SepId { get; }

    /// <summary>Id of <see cref="BertWordPieceOptions.PadToken"/>.</summary>
    public int PadId { get; }

    /// <summary>Id of <see cref="BertWordPieceOptions.UnkToken"/>.</summary>
    public int UnkId { get; }

    /// <summary>Id of <see cref="BertWordPieceOptions.MaskToken"/>, or -1 when the vocabulary has none.</summary>
    public int MaskId { get; }

    /// <summary>The id of a token, or -1 when it is not in the vocabulary.</summary>
    public int TokenToId(ReadOnlySpan<char> token) => WordStartLookup.TryGetValue(token, out int id) ? id : -1;

    /// <summary>The token string of an id.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in [0, VocabSize).</exception>
    public string IdToToken(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, _vocabulary.Length);
        return _vocabulary[id];
    }

    /// <summary>
    /// Encodes <paramref name="text"/> as [CLS] pieces… [SEP] into <paramref name="ids"/>, at most
    /// <paramref name="maxLength"/> ids. When the text has more pieces, the encoding keeps [CLS], the
    /// first maxLength − 2 pieces and [SEP], and <paramref name="truncated"/> is true.
    /// Allocates nothing.
    /// </summary>
    /// <returns>The number of ids written (2 for an empty text).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below 2.</exception>
    /// <exception cref="ArgumentException"><paramref name="ids"/> is shorter than <paramref name="maxLength"/>.</exception>
    public int Encode(ReadOnlySpan<char> text, Span<int> ids, int maxLength, out bool truncated)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        if (ids.Length < maxLength)
            throw new ArgumentException($"The id buffer holds {ids.Length} ids, fewer than maxLength = {maxLength}.", nameof(ids));
        return EncodeCore(text, ids[..maxLength], default, out truncated, out _);
    }

    /// <summary>Encodes into <paramref name="ids"/>, using its whole length as the maximum length (see <see cref="Encode(ReadOnlySpan{char}, Span{int}, int, out bool)"/>).</summary>
    public int Encode(ReadOnlySpan<char> text, Span<int> ids, out bool truncated) => Encode(text, ids, ids.Length, out truncated);

    /// <summary>Encodes <paramref name="text"/> as [CLS] pieces… [SEP], truncated to <paramref name="maxLength"/> ids.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public int[] Encode(string text, int maxLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        // Most texts need fewer ids than chars + 2; grow and retry in the rare case they do not.
        long capacity = Math.Min(maxLength, text.Length + 2L);
        while (true)
        {
            int[] buffer = ArrayPool<int>.Shared.Rent((int)capacity);
            try
            {
                int count = EncodeCore(text, buffer.AsSpan(0, (int)capacity), default, out bool truncated, out _);
                if (!truncated || capacity >= maxLength) return buffer.AsSpan(0, count).ToArray();
            }
            finally
            {
                ArrayPool<int>.Shared.Return(buffer);
            }
            capacity = Math.Min(maxLength, capacity * 2);
        }
    }

    /// <summary>
    /// Encodes <paramref name="text"/> into exactly <c>ids.Length</c> ids, padding with
    /// <see cref="PadId"/>, and fills <paramref name="attentionMask"/> with 1 for real tokens and 0 for padding.
    /// </summary>
    /// <returns>The number of real (unpadded) ids.</returns>
    /// <exception cref="ArgumentException">The spans differ in length or are shorter than 2.</exception>
    public int EncodePadded(ReadOnlySpan<char> text, Span<int> ids, Span<int> attentionMask, out bool truncated)
    {
        if (attentionMask.Length != ids.Length)
            throw new ArgumentException($"The attention mask holds {attentionMask.Length} entries but the id buffer {ids.Length}.", nameof(attentionMask));
        int count = Encode(text, ids, ids.Length, out truncated);
        ids[count..].Fill(PadId);
        attentionMask[..count].Fill(1);
        attentionMask[count..].Clear();
        return count;
    }

    /// <summary>The tokens of <paramref name="text"/>, [CLS] and [SEP] included (for inspection and debugging).</summary>
    public string[] Tokenize(string text, int maxLength = int.MaxValue) => Array.ConvertAll(Encode(text, maxLength), id => _vocabulary[id]);

    /// <remarks>offsets: empty, or 2 ints per slot of ids, each id's [start, end) in text. charsConsumed: where the
    /// last id taken from the text ends (the text's length unless truncated); exact only when offsets are asked
    /// for, 0 on truncation otherwise.</remarks>
    [SkipLocalsInit] // the scratch buffers are written before they are read
    private int EncodeCore(ReadOnlySpan<char> text, Span<int> ids, Span<int> offsets, out bool truncated, out int charsConsumed)
    {
        int max = MaxInputCharsPerWord;
        // A word is buffered up to max code points (2 UTF-16 units each); its pieces (at most one per
        // code point) and the combining marks awaiting canonical reordering are bounded the same way.
        const int StackLimit = 256;
        char[]? rentedChars = null;
        int[]? rentedInts = null;
        int[]? rentedSources = null;
        Span<char> word = max <= StackLimit ? stackalloc char[2 * StackLimit] : (rentedChars = ArrayPool<char>.Shared.Rent(2 * max));
        Span<int> ints = max <= StackLimit ? stackalloc int[2 * (StackLimit + 1)] : (rentedInts = ArrayPool<int>.Shared.Rent(2 * (max + 1)));
        try
        {
            if (offsets.IsEmpty)
            {
                var encoder = new WordPieceEncoder(this, ids, word[..(2 * max)], ints[..(max + 1)], ints.Slice(max + 1, max + 1));
                return encoder.Run(text, out truncated, out charsConsumed);
            }
            // Offsets: a [start, end) per buffered UTF-16 unit (2·max of them) and per buffered mark (max + 1).
            rentedSources = ArrayPool<int>.Shared.Rent(4 * max + 2 * (max + 1));
            var tracked = new WordPieceEncoder(this, ids, word[..(2 * max)], ints[..(max + 1)], ints.Slice(max + 1, max + 1),
                offsets, rentedSources.AsSpan(0, 4 * max), rentedSources.AsSpan(4 * max, 2 * (max + 1)));
            return tracked.Run(text, out truncated, out charsConsumed);
        }
        finally
        {
            if (rentedChars is not null) ArrayPool<char>.Shared.Return(rentedChars);
            if (rentedInts is not null) ArrayPool<int>.Shared.Return(rentedInts);
            if (rentedSources is not null) ArrayPool<int>.Shared.Return(rentedSources);
        }
    }

    /// <summary>UTF-16 length of a piece within its word: the token, less the continuation prefix after the first piece.</summary>
    internal int PieceLength(int id, bool first) => _vocabulary[id].Length - (first ? 0 : Options.ContinuingSubwordPrefix.Length);

    // ---- Microsoft.ML.Tokenizers ----
    // The whole BERT pipeline (added tokens, normalization, pre-tokenization) is built in and always
    // applied, as the models need it: EncodeSettings.ConsiderNormalization and ConsiderPreTokenization
    // are ignored, and NormalizedText is null, so offsets index the caller's text. MaxTokenCount counts
    // [CLS] and [SEP] as Hugging Face's max_length does: an encoding is [CLS], the first
    // MaxTokenCount − 2 pieces, [SEP]; a limit below 2 gives no tokens.

    /// <summary>Ids with their offsets, truncated to <paramref name="maxTokens"/>; the arrays are exact-length.</summary>
    private (int[] Ids, int[] Offsets, int CharsConsumed) EncodeTracked(ReadOnlySpan<char> text, int maxTokens)
    {
        if (maxTokens < 2) return ([], [], 0);
        // As Encode(string): most texts need at most chars + 2 ids; grow when normalization expands a text.
        long capacity = Math.Min(maxTokens, text.Length + 2L);
        while (true)
        {
            int[] ids = ArrayPool<int>.Shared.Rent((int)capacity);
            int[] offsets = ArrayPool<int>.Shared.Rent((int)(2 * capacity));
            try
            {
                int count = EncodeCore(text, ids.AsSpan(0, (int)capacity), offsets.AsSpan(0, (int)(2 * capacity)), out bool truncated, out int consumed);
                if (!truncated || capacity >= maxTokens)
                    return (ids.AsSpan(0, count).ToArray(), offsets.AsSpan(0, 2 * count).ToArray(), consumed);
            }
            finally
            {
                ArrayPool<int>.Shared.Return(ids);
                ArrayPool<int>.Shared.Return(offsets);
            }
            capacity = Math.Min(maxTokens, capacity * 2);
        }
    }

    /// <inheritdoc/>
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        ReadOnlySpan<char> span = text is null ? textSpan : text.AsSpan();
        var (ids, offsets, consumed) = EncodeTracked(span, settings.MaxTokenCount);
        var tokens = new EncodedToken[ids.Length];
        for (int k = 0; k < ids.Length; k++)
            tokens[k] = new EncodedToken(ids[k], _vocabulary[ids[k]], new Range(offsets[2 * k], offsets[2 * k + 1]));
        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = null, CharsConsumed = consumed };
    }

    /// <inheritdoc/>
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        ReadOnlySpan<char> span = text is null ? textSpan : text.AsSpan();
        int max = settings.MaxTokenCount;
        if (max < 2) return new EncodeResults<int> { Tokens = [], NormalizedText = null, CharsConsumed = 0 };
        // The untracked path is cheaper; only a truncated encoding needs offsets, to say where it stopped.
        int[] ids = Encode(text ?? span.ToString(), max);
        if (ids.Length < max) return new EncodeResults<int> { Tokens = ids, NormalizedText = null, CharsConsumed = span.Length };
        var (tracked, _, consumed) = EncodeTracked(span, max);
        return new EncodeResults<int> { Tokens = tracked, NormalizedText = null, CharsConsumed = consumed };
    }

    /// <inheritdoc/>
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings) =>
        EncodeToIds(text, textSpan, settings).Tokens.Count;

    /// <inheritdoc/>
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd, out string? normalizedText, out int tokenCount)
    {
        ReadOnlySpan<char> span = text is null ? textSpan : text.AsSpan();
        normalizedText = null;
        var (ids, offsets, consumed) = EncodeTracked(span, settings.MaxTokenCount);
        tokenCount = ids.Length;
        if (!fromEnd) return consumed;
        // From the end: the encoding of the whole text, then the last MaxTokenCount − 2 pieces (with [CLS] and [SEP]).
        var (all, allOffsets, _) = EncodeTracked(span, int.MaxValue);
        int pieces = Math.Max(0, Math.Min(all.Length - 2, settings.MaxTokenCount - 2));
        tokenCount = settings.MaxTokenCount < 2 ? 0 : pieces + 2;
        return pieces == 0 ? span.Length : allOffsets[2 * (all.Length - 1 - pieces)];
    }

    /// <summary>
    /// The text of <paramref name="ids"/>: tokens joined by spaces, a continuation piece ("##…")
    /// joined to the piece before it, [CLS], [SEP] and [PAD] left out (Hugging Face's decode without
    /// clean_up_tokenization_spaces). Normalization is not undone: "Hello, World!" comes back as
    /// "hello , world !".
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in [0, VocabSize).</exception>
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            var (space, text) = DecodeFragment(id, sb.Length == 0);
            if (space) sb.Append(' ');
            sb.Append(text);
        }
        return sb.ToString();
    }

    /// <summary>As <see cref="Decode(IEnumerable{int})"/>, into <paramref name="destination"/>: stops
    /// before the first id whose text does not fit whole, with <see cref="OperationStatus.DestinationTooSmall"/>.</summary>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        idsConsumed = 0;
        charsWritten = 0;
        foreach (int id in ids)
        {
            var (space, text) = DecodeFragment(id, charsWritten == 0);
            int need = (space ? 1 : 0) + text.Length;
            if (need > destination.Length - charsWritten) return OperationStatus.DestinationTooSmall;
            if (space) destination[charsWritten++] = ' ';
            text.Span.CopyTo(destination[charsWritten..]);
            charsWritten += text.Length;
            idsConsumed++;
        }
        return OperationStatus.Done;
    }

    /// <summary>What one id adds to decoded text after what came before (nothing yet when <paramref name="atStart"/>).</summary>
    private (bool Space, ReadOnlyMemory<char> Text) DecodeFragment(int id, bool atStart)
    {
        string token = IdToToken(id);
        if (id == ClsId || id == SepId || id == PadId) return (false, ReadOnlyMemory<char>.Empty);
        string prefix = Options.ContinuingSubwordPrefix;
        if (!atStart && prefix.Length > 0 && token.Length > prefix.Length && token.StartsWith(prefix, StringComparison.Ordinal))
            return (false, token.AsMemory(prefix.Length));
        return (!atStart, token.AsMemory());
    }

    /// <summary>
    /// Finds the leftmost added token in <paramref name="text"/> (the longest one where several start
    /// there): its index, or -1, with its length and id.
    /// </summary>
    internal int FindAddedToken(ReadOnlySpan<char> text, out int length, out int id)
    {
        int offset = 0;
        while (_addedTokens.Length > 0)
        {
            int i = text[offset..].IndexOfAny(AddedTokenFirstChars);
            if (i < 0) break;
            int at = offset + i;
            ReadOnlySpan<char> rest = text[at..];
            for (int k = 0; k < _addedTokens.Length; k++)
            {
                if (rest.StartsWith(_addedTokens[k], StringComparison.Ordinal))
                {
                    length = _addedTokens[k].Length;
                    id = _addedTokenIds[k];
                    return at;
                }
            }
            offset = at + 1;
        }
        length = 0;
        id = -1;
        return -1;
    }
}
