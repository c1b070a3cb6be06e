namespace BinEngine.Runtime;

/// <summary>
/// The lexical n-gram head (docs/MODEL.md, lexical): a linear model over the presence of hashed word unigrams and
/// bigrams of the token ids, whose logits z_lex are added to every exit's logits before its temperature. The
/// bag-of-words baseline and the transformer err on different sentences, so their sum beats both; this gives the
/// model that sparse lexical memory for a table of 2^bits × C bytes and ≈ 2n table reads per sentence.
/// </summary>
/// <remarks>
/// The features are defined on the ids alone (so the ids API gets them too), exactly as tools/train/beex/lexical.py:
/// a word is an id whose continuation bit is 0 (or the first id) followed by the ids whose bit is 1 (WordPiece's "##"
/// pieces); its key is FNV-1a over its ids, h = (h ⊕ id)·P from h = O; the features are the word keys and, for
/// consecutive words, h_prev·B + h (all mod 2^64); a feature's bucket is (k·F mod 2^64) ≫ (64 − bits), and a sentence
/// counts each bucket once. z_c = s · Σ_{b ∈ buckets} q[b, c] + bias_c: the sum of int8 codes is an exact integer
/// (|Σ| ≤ 127 · (2n − 1) ≪ 2^24), so the float32 result rounds twice, as the trainer's, whatever the summation order.
/// </remarks>
internal sealed class LexicalWeights
{
    private const ulong Offset = 0xCBF29CE484222325, Prime = 0x100000001B3, Bigram = 0xC2B2AE3D27D4EB4F, Fibonacci = 0x9E3779B97F4A7C15;

    public required TensorView<sbyte> Table { get; init; }     // [2^Bits, C] int8 codes
    public required float Scale { get; init; }                 // s
    public required TensorView<float> Bias { get; init; }      // [C]
    public required TensorView<int> Continues { get; init; }   // [ceil(V / 32)] bit (id mod 32) of word id / 32: a "##" piece
    public required int Bits { get; init; }
    public required int Classes { get; init; }

    /// <summary>Most buckets a sequence of <paramref name="ids"/> ids has: one per word and one per pair of consecutive words.</summary>
    public static int MaxBuckets(int ids) => Math.Max(0, 2 * ids - 1);

    /// <summary>Writes the buckets of the features of <paramref name="ids"/> (duplicates included) into <paramref name="buckets"/>; returns how many.</summary>
    public int Buckets(ReadOnlySpan<int> ids, Span<int> buckets)
    {
        ReadOnlySpan<int> continues = Continues.Span;
        int count = 0, shift = 64 - Bits;
        ulong word = 0, previous = 0;
        bool open = false, hasPrevious = false;
        foreach (int id in ids)
        {
            if (open && ((continues[id >> 5] >> (id & 31)) & 1) != 0)
            {
                word = (word ^ (ulong)id) * Prime;
                continue;
            }
            if (open)
                Emit(word, buckets);
            word = (Offset ^ (ulong)id) * Prime;
            open = true;
        }
        if (open)
            Emit(word, buckets);
        return count;

        void Emit(ulong w, Span<int> into)
        {
            into[count++] = (int)((w * Fibonacci) >> shift);
            if (hasPrevious)
                into[count++] = (int)(((previous * Bigram + w) * Fibonacci) >> shift);
            previous = w;
            hasPrevious = true;
        }
    }

    /// <summary>z_lex of <paramref name="ids"/> into <paramref name="z"/> (C floats); <paramref name="scratch"/> holds ≥ <see cref="MaxBuckets"/> ints.</summary>
    public void Logits(ReadOnlySpan<int> ids, Span<float> z, Span<int> scratch)
    {
        Span<int> buckets = scratch[..Buckets(ids, scratch)];
        buckets.Sort(); // equal buckets side by side: each counted once
        ReadOnlySpan<sbyte> table = Table.Span;
        ReadOnlySpan<float> bias = Bias.Span;
        for (int c = 0; c < Classes; c++)
        {
            int sum = 0;
            for (int i = 0; i < buckets.Length; i++)
                if (i == 0 || buckets[i] != buckets[i - 1])
                    sum += table[buckets[i] * Classes + c];
            z[c] = (float)sum * Scale + bias[c];
        }
    }

    /// <summary>The same with a set and plain loops (the reference).</summary>
    public float[] LogitsReference(ReadOnlySpan<int> ids)
    {
        var scratch = new int[MaxBuckets(ids.Length)];
        var distinct = new HashSet<int>(scratch.AsSpan(0, Buckets(ids, scratch)).ToArray());
        var z = new float[Classes];
        for (int c = 0; c < Classes; c++)
        {
            long sum = 0;
            foreach (int b in distinct)
                sum += Table.Span[b * Classes + c];
            z[c] = (float)sum * Scale + Bias.Span[c];
        }
        return z;
    }
}
