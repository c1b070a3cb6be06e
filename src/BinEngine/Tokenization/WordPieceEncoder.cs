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
/// <para>Offsets (optional, for the Microsoft.ML.Tokenizers API): every UTF-16 unit of the buffered
/// word remembers the [start, end) of the source code point it came from, so a piece's offset is the
/// span of the text it was normalized from; an added token's is its own span; [CLS] and [SEP] get
/// [0, 0) as in Hugging Face. The one lowercase rule that needs context, Final_Sigma, looks around the
/// Σ in the raw text, skipping what normalization would have dropped (see <see cref="IsFinalSigma"/>).</para>
/// </summary>
internal ref struct WordPieceEncoder
{
    private readonly BertWordPieceTokenizer _tokenizer;
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
    private readonly Span<int> _offsets;      // optional: [start, end) per id written, 2 ints each; empty when not asked for
    private readonly Span<int> _unitSources;  // with offsets: [start, end) of the source code point of each unit of _word
    private readonly Span<int> _markSources;  // with offsets: [start, end) of each buffered mark's source
    private readonly bool _track;
    private ReadOnlySpan<char> _text;         // the whole text: offsets index it, Final_Sigma looks around in it
    private int _segmentStart, _segmentEnd;   // the stretch between added tokens being tokenized (normalization's context)
    private int _sourceStart, _sourceEnd;     // the raw code point being normalized now
    private int _wordStart, _wordEnd;         // raw extent of the current word (also past MaxInputCharsPerWord)
    private int _consumed;                    // end of the last id written that came from the text

    /// <remarks>offsets: empty, or 2 ints per id (and then unitSources 2 per unit of word and
    /// markSources 2 per entry of marks).</remarks>
    public WordPieceEncoder(BertWordPieceTokenizer tokenizer, Span<int> ids, Span<char> word, Span<int> pieces, Span<int> marks,
        Span<int> offsets = default, Span<int> unitSources = default, Span<int> markSources = default)
    {
        _offsets = offsets;
        _unitSources = unitSources;
        _markSources = markSources;
        _track = !offsets.IsEmpty;
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
    /// <remarks>charsConsumed: where the last id taken from the text ends in it, the text's length
    /// unless truncated (Microsoft.ML.Tokenizers' CharsConsumed).</remarks>
    public int Run(ReadOnlySpan<char> text, out bool truncated, out int charsConsumed)
    {
        _text = text;
        _ids[0] = _tokenizer.ClsId;
        SetOffset(0, 0, 0);
        _count = 1;
        // Added tokens are cut out of the raw text first; the text between them is tokenized on its own.
        int position = 0;
        while (!_full)
        {
            int at = _tokenizer.FindAddedToken(text[position..], out int length, out int id);
            if (at < 0)
            {
                Segment(position, text.Length);
                break;
            }
            Segment(position, position + at);
            Emit(id, position + at, position + at + length);
            position += at + length;
        }
        SetOffset(_count, 0, 0);
        _ids[_count++] = _tokenizer.SepId;
        truncated = _full;
        charsConsumed = _full ? _consumed : text.Length;
        return _count;
    }

    /// <summary>Tokenizes text[start..end), a stretch that holds no added token.</summary>
    private void Segment(int start, int end)
    {
        _segmentStart = start;
        _segmentEnd = end;
        ReadOnlySpan<char> text = _text[..end];
        int i = start;
        while (i < text.Length && !_full)
        {
            _sourceStart = i;
            _sourceEnd = i + 1;
            int cp = text[i++];
            if (cp < 0x80)
            {
                // ASCII fast path: no decomposition, no combining class, lowercase only A–Z.
                CharClass ascii = UnicodeData.ClassOf(UnicodeData.Flags(cp));
                if (ascii == CharClass.Other)
                {
                    if (_markCount != 0) FlushMarks();
                    if (_lowercase && (uint)(cp - 'A') <= 'Z' - 'A') cp |= 0x20;
                    Append(cp);
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
            _sourceEnd = i;
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
        if (_markCount < _marks.Length)
        {
            _marks[_markCount] = cp;
            if (_track)
            {
                _markSources[2 * _markCount] = _sourceStart;
                _markSources[2 * _markCount + 1] = _sourceEnd;
            }
        }
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
        // Each mark carries its own source; the code point being read when the run ended is restored after.
        int sourceStart = _sourceStart, sourceEnd = _sourceEnd;
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
            for (int k = 0; k < marks.Length; k++)
            {
                int m = marks[k];
                if (UnicodeData.CombiningClass(m) != next) continue;
                if (_track)
                {
                    _sourceStart = _markSources[2 * k];
                    _sourceEnd = _markSources[2 * k + 1];
                }
                Lowered(m, UnicodeData.Flags(m));
            }
            previous = next;
        }
        _sourceStart = sourceStart;
        _sourceEnd = sourceEnd;
        _markCount = 0;
    }

    /// <summary>
    /// Lower-casing stage: each code point's full lowercase (Rust's str::to_lowercase, Python's
    /// str.lower), where the one context-dependent rule, Final_Sigma, makes Σ a ς at the end of a word.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Lowered(int cp, byte flags)
    {
        if (_lowercase && (flags & UnicodeData.HasLowercase) != 0)
        {
            if (cp == 0x3A3)
            {
                PieceChar(IsFinalSigma() ? 0x3C2 : 0x3C3);
                return;
            }
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

    /// <summary>
    /// Unicode's Final_Sigma condition (ch. 3.13, table 3-17) for the Σ being normalized: the nearest
    /// code point before it that is not Case_Ignorable is Cased, and the nearest after it is not.
    /// The reference evaluates it on the normalized segment (cleaned, accents stripped, not yet
    /// lower-cased); the encoder streams, so the lookahead reads the raw segment instead and replays
    /// on each code point what normalization does to it: a code point cleaning drops is skipped (a
    /// dropped Cc would otherwise read as "not cased"), one that decomposes is read as its parts,
    /// and a dropped Mn is Case_Ignorable anyway. Whitespace and the spaces around CJK ideographs are
    /// neither cased nor ignorable, in either form. DifferentialTests checks this against the
    /// whole-string rule. Σ is never produced by a decomposition, so it is its own source code point.
    /// </summary>
    private readonly bool IsFinalSigma() =>
        NearestIsCased(_text[_segmentStart.._sourceStart], backwards: true) &&
        !NearestIsCased(_text[_sourceEnd.._segmentEnd], backwards: false);

    /// <summary>Whether the first normalized code point in <paramref name="s"/> (from its end when
    /// <paramref name="backwards"/>) that is not Case_Ignorable is Cased; false when there is none.</summary>
    private readonly bool NearestIsCased(ReadOnlySpan<char> s, bool backwards)
    {
        Span<int> parts = stackalloc int[UnicodeData.MaxDecompositionLength];
        int i = backwards ? s.Length : 0;
        while (backwards ? i > 0 : i < s.Length)
        {
            int cp;
            if (backwards)
            {
                cp = s[--i];
                if (char.IsLowSurrogate((char)cp) && i > 0 && char.IsHighSurrogate(s[i - 1])) cp = char.ConvertToUtf32(s[--i], (char)cp);
            }
            else
            {
                cp = s[i++];
                if (char.IsHighSurrogate((char)cp) && i < s.Length && char.IsLowSurrogate(s[i])) cp = char.ConvertToUtf32((char)cp, s[i++]);
            }
            byte flags = UnicodeData.Flags(cp);
            if (_cleanText && UnicodeData.ClassOf(flags) == CharClass.Removed) continue;
            int n = 1;
            parts[0] = cp;
            if (_stripAccents && (flags & UnicodeData.HasDecomposition) != 0) n = UnicodeData.Decompose(cp, parts);
            for (int k = 0; k < n; k++)
            {
                byte f = UnicodeData.Flags(parts[backwards ? n - 1 - k : k]);
                if ((f & UnicodeData.CaseIgnorable) != 0) continue;
                return (f & UnicodeData.Cased) != 0;
            }
        }
        return false;
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

    /// <summary>Remembers where id slot <paramref name="index"/> came from, when offsets are asked for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly void SetOffset(int index, int start, int end)
    {
        if (!_track) return;
        _offsets[2 * index] = start;
        _offsets[2 * index + 1] = end;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Append(int cp)
    {
        if (_track)
        {
            // Marks reordered by NFD may come from before the word's first code point.
            if (_wordCodePoints == 0) { _wordStart = _sourceStart; _wordEnd = _sourceEnd; }
            else { _wordStart = Math.Min(_wordStart, _sourceStart); _wordEnd = Math.Max(_wordEnd, _sourceEnd); }
        }
        // Beyond the limit only the count matters: the word will be [UNK].
        if (++_wordCodePoints > _maxWordCodePoints) return;
        if (_track)
        {
            _unitSources[2 * _wordChars] = _sourceStart;
            _unitSources[2 * _wordChars + 1] = _sourceEnd;
            if (cp >= 0x10000)
            {
                _unitSources[2 * _wordChars + 2] = _sourceStart;
                _unitSources[2 * _wordChars + 3] = _sourceEnd;
            }
        }
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
            Emit(t.UnkId, _wordStart, _wordEnd);
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
                Emit(t.UnkId, _wordStart, _wordEnd);
                return;
            }
            _pieces[pieces++] = id;
            start = end;
        }
        // A piece spans the sources of its units: word[start..end) came from text[source(start).start, source(end - 1).end).
        int unit = 0;
        for (int k = 0; k < pieces; k++)
        {
            int id = _pieces[k];
            if (!_track)
            {
                Emit(id, 0, 0);
                continue;
            }
            int units = t.PieceLength(id, first: k == 0);
            Emit(id, _unitSources[2 * unit], _unitSources[2 * (unit + units - 1) + 1]);
            unit += units;
        }
    }

    /// <summary>Appends an id and where it came from, keeping the last slot for [SEP]; the first id that does not fit stops the pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Emit(int id, int start, int end)
    {
        if (_full) return;
        if (_count < _ids.Length - 1)
        {
            SetOffset(_count, start, end);
            _ids[_count++] = id;
            _consumed = end;
        }
        else _full = true;
    }
}
