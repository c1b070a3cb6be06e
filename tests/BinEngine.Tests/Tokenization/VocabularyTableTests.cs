using BinEngine.Tokenization;

namespace BinEngine.Tests.Tokenization;

/// <summary>
/// The WordPiece look-up table against a Dictionary: every key found with its id, near misses not found. Its two key
/// forms (≤ 8 Latin-1 units packed a byte each in the slot; anything else hashed into a shared character array) must
/// never match across each other, so the cases include keys that pack to the same bytes.
/// </summary>
public class VocabularyTableTests
{
    [Fact]
    public void FindsEveryBertEntryAndNoNearMiss()
    {
        IReadOnlyList<string> vocabulary = BertUncased.Tokenizer.Vocabulary;
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocabulary.Count; id++)
            ids[vocabulary[id]] = id;
        var table = new VocabularyTable(ids);
        foreach (var (key, id) in ids)
        {
            Assert.True(table.TryGetValue(key, out int found), key);
            Assert.Equal(id, found);
            foreach (string near in new[] { key + "q", "q" + key, key.Length > 1 ? key[..^1] : "", key.ToUpperInvariant() + "\u0100" })
                Assert.Equal(ids.TryGetValue(near, out int expected) ? expected : -1, table.TryGetValue(near, out int got) ? got : -1);
        }
    }

    [Fact]
    public void KeysThatPackToTheSameBytesStayApart()
    {
        // 'š' (U+0161) and 'a' (U+0061) share their low byte; "a\0" packs like "a"; 8 and 9 units straddle the inline limit.
        string[] keys = ["a", "\u0161", "a\0", "", "abcdefgh", "abcdefghi", "abcdefg\u0161", "\u4e2d\u6587", "\u00e9t\u00e9"];
        for (int leaveOut = 0; leaveOut < keys.Length; leaveOut++)
        {
            var entries = keys.Where((_, i) => i != leaveOut).Select((k, i) => new KeyValuePair<string, int>(k, 100 + i)).ToArray();
            var table = new VocabularyTable(entries);
            foreach (var (key, id) in entries)
            {
                Assert.True(table.TryGetValue(key, out int found), $"'{key}' (without '{keys[leaveOut]}')");
                Assert.Equal(id, found);
            }
            Assert.False(table.TryGetValue(keys[leaveOut], out int none), $"'{keys[leaveOut]}' was left out");
            Assert.Equal(-1, none);
        }
    }

    [Fact]
    public void RefusesADuplicateKey() =>
        Assert.Throws<ArgumentException>(() => new VocabularyTable(new[] { KeyValuePair.Create("longer than eight", 1), KeyValuePair.Create("longer than eight", 2) }));
}
