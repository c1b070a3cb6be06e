using System.Runtime.CompilerServices;

namespace BinEngine.Tokenization;

/// <summary>
/// One encoding call: a single pass over the text that does, code point by code point, what
/// Hugging Face's tokenizers library (BertTokenizerFast) does string by string:
/// <code>
///   added tokens → BertNormalizer: clean text → pad CJK ideographs → NFD, drop Mn → lowercase
///   → BertPreTokenizer: split on whitespace and punctuation → WordPiece
/// </code>
/// Each stage only ever needs the current code point plus a bounded buffer (the current word,
/// at most MaxInputCharsPerWord code points, and a run of combining marks), so the pass is linear
/// in the text and allocates nothing. All state lives in this ref struct, on the caller's stack.
/// </summary>
internal ref struct WordPieceEncoder
{
    private readonly WordPieceTokenizer _tokenizer;
    private readonly Span<int> _ids;      // output: [CLS] pieces… [SEP]
    private readonly Span<char> _word;    // the current word (after normalization), UTF-16
    private readonly Span<int> _pieces;   // the current word's WordPiece ids
    private readonly Span<int> _marks;    // non-Mn combining marks awaiting canonical reordering
    private int _count;                   // ids written, [CLS] included
    private int _wordChars;
    private int _wordCodePoints;          // may exceed MaxInputCharsPerWord: then the word is [UNK]
    private int _markCount;               // may exceed _marks.Length: then the word is too long anyway
    private bool _full;                   // a piece did not fit: stop, the encoding is truncated
    private readonly bool _lowercase, _stripAccents, _cleanText, _chineseChars;
    private readonly int _maxWordCodePoints;

    public WordPieceEncoder(WordPieceTokenizer tokenizer, Span<int> ids, Span<char> word, Span<int> pieces, Span<int> marks)
    {
        _tokenizer = tokenizer;
        _lowercase = tokenizer.Lowercase;
        _stripAccents = tokenizer.StripAccents;
        _cleanText = tokenizer.CleanText;
        _chineseChars = tokenizer.HandleChineseChars;
        _maxWordCodePoints = tokenizer.MaxInputCharsPerWord;
        _ids = ids;
        _word = word;
        _pieces = pieces;
        _marks = marks;
    }

    /// <summary>Encodes <paramref name="text"/>; returns the number of ids written.</summary>
    public int Run(ReadOnlySpan<char> text, out bool truncated)
    {
        _ids[0] = _tokenizer.ClsId;
        _count = 1;
        // Added tokens are cut out of the raw text first; the text between them is tokenized on its own.
        while (!_full)
        {
            int at = _tokenizer.FindAddedToken(text, out int length, out int id);
            if (at < 0)
            {
                Segment(text);
                break;
            }
            Segment(text[..at]);
            Emit(id);
            text = text[(at + length)..];
        }
        _ids[_count++] = _tokenizer.SepId;
        truncated = _full;
        return _count;
    }

    /// <summary>Tokenizes a stretch of text that holds no added token.</summary>
    private void Segment(ReadOnlySpan<char> text)
    {
        int i = 0;
        while (i < text.Length && !_full)
        {
            int cp = text[i++];
            if (cp < 0x80)
            {
                // ASCII fast path: no decomposition, no combining class, lowercase only A–Z.
                CharClass ascii = UnicodeData.ClassOf(UnicodeData.Flags(cp));
                if (ascii == CharClass.Other)
                {
                    if (_markCount != 0) FlushMarks();
                    if (_lowercase && (uint)(cp - 'A') <= 'Z' - 'A') cp |= 0x20;
                    if (++_wordCodePoints <= _maxWordCodePoints) _word[_wordChars++] = (char)cp;
                    continue;
                }
                if (ascii == CharClass.Whitespace)
                {
                    EndToken();
                    continue;
                }
                if (ascii == CharClass.Punctuation)
                {
                    if (_markCount != 0) FlushMarks();
                    EndWord();
                    Append(cp);
                    EndWord();
                    continue;
                }
                if (_cleanText) continue; // an ASCII control character
            }
            if (char.IsHighSurrogate((char)cp) && i < text.Length && char.IsLowSurrogate(text[i]))
                cp = char.ConvertToUtf32((char)cp, text[i++]);
            // A lone surrogate stays as its own code point: category Cs, so cleaning drops it.
            byte flags = UnicodeData.Flags(cp);
            CharClass cls = UnicodeData.ClassOf(flags);

            if (cls == CharClass.Whitespace || (!_cleanText && IsWhitespaceControl(cp)))
            {
                EndToken();
                continue;
            }
            if (cls == CharClass.Removed && _cleanText)
                continue;
            if (_chineseChars && cp >= 0x3400 && UnicodeData.IsCjkIdeograph(cp))
            {
                EndToken();
                TokenChar(cp, flags);
                EndToken();
                continue;
            }
            TokenChar(cp, flags);
        }
        EndToken();
    }

    /// <summary>
    /// Without clean_text, the pre-tokenizer still splits on these control characters (Rust's
    /// char::is_whitespace, the White_Space property), which cleaning would otherwise have dropped.
    /// </summary>
    private static bool IsWhitespaceControl(int cp) => cp is 0x0B or 0x0C or 0x85;

    /// <summary>Accent-stripping stage: NFD (decompose, then canonical reordering), dropping Mn.</summary>
    private void TokenChar(int cp, byte flags)
    {
        if (!_stripAccents)
        {
            Lowered(cp, flags);
            return;
        }
        if ((flags & UnicodeData.HasDecomposition) == 0)
        {
            Decomposed(cp, flags);
            return;
        }
        Span<int> parts = stackalloc int[UnicodeData.MaxDecompositionLength];
        int n = UnicodeData.Decompose(cp, parts);
        for (int k = 0; k < n; k++)
            Decomposed(parts[k], UnicodeData.Flags(parts[k]));
    }

    /// <summary>
    /// Canonical reordering, then the Mn filter. NFD stably sorts each run of characters with a
    /// nonzero combining class by that class. The Mn in a run are dropped afterwards, and a stable
    /// sort restricted to the survivors is the survivors' own stable sort, so only the non-Mn marks
    /// of a run need buffering (a couple of dozen Mc characters); any ccc-0 character ends the run.
    /// </summary>
    private void Decomposed(int cp, byte flags)
    {
        bool mark = (flags & UnicodeData.NonzeroCombiningClass) != 0;
        bool nonspacing = UnicodeData.ClassOf(flags) == CharClass.NonspacingMark;
        if (!mark)
        {
            FlushMarks();
            if (!nonspacing) Lowered(cp, flags);
            return;
        }
        if (nonspacing) return;
        if (_markCount < _marks.Length) _marks[_markCount] = cp;
        _markCount++;
    }

    private void FlushMarks()
    {
        if (_markCount == 0) return;
        if (_markCount > _marks.Length)
        {
            // More marks than a word may hold code points: the word is [UNK] whatever their order.
            _wordCodePoints += _markCount;
            _markCount = 0;
            return;
        }
        // Stable sort by combining class: one pass per distinct class, ascending. Few classes occur
        // among non-Mn marks (6, 9, 216, 224, 226), so this is linear in the run.
        Span<int> marks = _marks[.._markCount];
        int previous = -1;
        while (true)
        {
            int next = int.MaxValue;
            foreach (int m in marks)
            {
                int c = UnicodeData.CombiningClass(m);
                if (c > previous && c < next) next = c;
            }
            if (next == int.MaxValue) break;
            foreach (int m in marks)
                if (UnicodeData.CombiningClass(m) == next) Lowered(m, UnicodeData.Flags(m));
            previous = next;
        }
        _markCount = 0;
    }

    /// <summary>
    /// Lower-casing stage: each code point's full lowercase on its own (Rust's char::to_lowercase, as
    /// the tokenizers library applies it; no Final_Sigma context, so Σ is always σ).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Lowered(int cp, byte flags)
    {
        if (_lowercase && (flags & UnicodeData.HasLowercase) != 0)
        {
            if (cp == 0x130)
            {
                // The full lowercase of İ is "i" + COMBINING DOT ABOVE (reached only without accent stripping).
                PieceChar(0x69);
                PieceChar(0x307);
                return;
            }
            cp = UnicodeData.SimpleLowercase(cp);
        }
        PieceChar(cp);
    }

    /// <summary>Punctuation-splitting stage: a punctuation character is a word of its own.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PieceChar(int cp)
    {
        if (UnicodeData.ClassOf(UnicodeData.Flags(cp)) == CharClass.Punctuation)
        {
            EndWord();
            Append(cp);
            EndWord();
            return;
        }
        Append(cp);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Append(int cp)
    {
        // Beyond the limit only the count matters: the word will be [UNK].
        if (++_wordCodePoints > _maxWordCodePoints) return;
        if (cp < 0x10000)
        {
            _word[_wordChars++] = (char)cp;
        }
        else
        {
            _word[_wordChars++] = (char)(((cp - 0x10000) >> 10) + 0xD800);
            _word[_wordChars++] = (char)(((cp - 0x10000) & 0x3FF) + 0xDC00);
        }
    }

    /// <summary>End of a whitespace-delimited token (or of a CJK character, or of the text).</summary>
    private void EndToken()
    {
        FlushMarks();
        EndWord();
    }

    /// <summary>WordPiece stage: greedy longest-match-first over the buffered word.</summary>
    private void EndWord()
    {
        if (_wordCodePoints == 0) return;
        int codePoints = _wordCodePoints;
        ReadOnlySpan<char> word = _word[.._wordChars];
        _wordCodePoints = 0;
        _wordChars = 0;
        var t = _tokenizer;
        if (codePoints > t.MaxInputCharsPerWord)
        {
            Emit(t.UnkId);
            return;
        }
        // Pieces are collected first: a word with no complete split is one [UNK], not a prefix of pieces.
        int pieces = 0;
        int start = 0;
        while (start < word.Length)
        {
            bool first = start == 0;
            int longest = first ? t.MaxWordStartChars : t.MaxContinuationChars;
            int end = Math.Min(word.Length, start + longest);
            int id = -1;
            while (end > start)
            {
                // Pieces end on code point boundaries (the reference slices at char boundaries): never split a pair.
                if (end < word.Length && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) { end--; continue; }
                ReadOnlySpan<char> candidate = word[start..end];
                if (first ? t.WordStartLookup.TryGetValue(candidate, out id) : t.ContinuationLookup.TryGetValue(candidate, out id))
                    break;
                id = -1;
                end--;
            }
            if (id < 0)
            {
                Emit(t.UnkId);
                return;
            }
            _pieces[pieces++] = id;
            start = end;
        }
        foreach (int id in _pieces[..pieces]) Emit(id);
    }

    /// <summary>Appends an id, keeping the last slot for [SEP]; the first id that does not fit stops the pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Emit(int id)
    {
        if (_full) return;
        if (_count < _ids.Length - 1) _ids[_count++] = id;
        else _full = true;
    }
}
