using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>The lexical n-gram head (docs/MODEL.md, lexical): its features as the trainer defines them, each bucket counted once, exact sums.</summary>
public class LexicalHeadTests
{
    // A 40-id vocabulary whose ids 7, 9 and 33 are "##" pieces: bits 7 and 9 of word 0, bit 1 of word 1.
    private static LexicalWeights Head(sbyte[] table, int bits = 12, int classes = 2, float scale = 0.25f, float[]? bias = null) => new()
    {
        Table = TensorView<sbyte>.Pinned(table), Scale = scale, Bias = TensorView<float>.Pinned(bias ?? new float[classes]),
        Continues = TensorView<int>.Pinned([(1 << 7) | (1 << 9), 1 << 1]), Bits = bits, Classes = classes,
    };

    /// <summary>
    /// The buckets tools/train/beex/lexical.py computes for the same ids and bitmap (printed by
    /// <c>X.buckets([1,5,7,9,3,5,7,9,2], X.continuation_words(vocab), 12)</c>): words [1] [5 7 9] [3] [5 7 9] [2], so 4
    /// distinct unigrams and 4 distinct bigrams; and a sequence that opens on a "##" piece, which still starts a word.
    /// </summary>
    [Theory]
    [InlineData(new[] { 1, 5, 7, 9, 3, 5, 7, 9, 2 }, new[] { 54, 140, 275, 465, 1252, 1808, 3367, 3923 })]
    [InlineData(new[] { 33, 33, 4 }, new[] { 397, 2568, 3619 })]
    public void BucketsAreTheTrainers(int[] ids, int[] expected)
    {
        LexicalWeights head = Head(new sbyte[(1 << 12) * 2]);
        var buckets = new int[LexicalWeights.MaxBuckets(ids.Length)];
        int n = head.Buckets(ids, buckets);
        Assert.Equal(expected, buckets.Take(n).Distinct().Order());
    }

    /// <summary>z = s · Σ over distinct buckets of the codes + bias: a repeated word and its repeated bigram add once.</summary>
    [Fact]
    public void EachBucketCountsOnce()
    {
        var table = new sbyte[(1 << 12) * 2];
        int[] distinct = [54, 140, 275, 465, 1252, 1808, 3367, 3923];
        for (int i = 0; i < distinct.Length; i++)
        {
            table[distinct[i] * 2] = (sbyte)(i + 1);      // Σ = 36
            table[distinct[i] * 2 + 1] = (sbyte)(-2 * i); // Σ = −56
        }
        LexicalWeights head = Head(table, bias: [1f, -1f]);
        int[] ids = [1, 5, 7, 9, 3, 5, 7, 9, 2];
        var z = new float[2];
        head.Logits(ids, z, new int[LexicalWeights.MaxBuckets(ids.Length)]);
        Assert.Equal([36 * 0.25f + 1f, -56 * 0.25f - 1f], z);
        Assert.Equal(z, head.LogitsReference(ids));
    }

    /// <summary>The fast sum (sorted buckets) and the reference (a set) give the same bits on random tables and ids, every code value included.</summary>
    [Fact]
    public void FastEqualsReferenceExactly()
    {
        var random = new Random(3);
        var table = new sbyte[(1 << 8) * 3];
        random.NextBytes((byte[])(Array)table);
        LexicalWeights head = Head(table, bits: 8, classes: 3, scale: 0.0123f, bias: [0.5f, -0.25f, 0.125f]);
        var z = new float[3];
        for (int trial = 0; trial < 200; trial++)
        {
            int[] ids = Enumerable.Range(0, 1 + random.Next(64)).Select(_ => random.Next(40)).ToArray();
            head.Logits(ids, z, new int[LexicalWeights.MaxBuckets(ids.Length)]);
            Assert.Equal(head.LogitsReference(ids), z);
        }
    }
}
