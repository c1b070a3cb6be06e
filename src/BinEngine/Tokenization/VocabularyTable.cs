using System.Numerics;
using System.Runtime.CompilerServices;

namespace BinEngine.Tokenization;

/// <summary>
/// The read-only token → id map WordPiece looks pieces up in, laid out for few cache lines per look-up.
/// </summary>
/// <remarks>
/// <para>Why not a Dictionary&lt;string, int&gt;: Classify(text) tokenizes between two forward passes, which evict the
/// vocabulary from the core's caches, so each look-up pays for every line it touches. A Dictionary hit touches three
/// (its bucket, its entry, the key string) and a miss two; greedy longest-match-first misses often (an unknown word
/// tries every shorter prefix). Measured on the 872 SST-2 dev sentences (`bench -- tokenizer`, bench/README.md
/// "Levers"): with the Dictionary, encoding right after a forward pass took 7.0–7.6 µs a sentence against 2.6–2.7 back
/// to back; with this table 4.2–4.4 and 2.0.</para>
/// <para>Layout: open addressing with linear probing at a load factor ≤ ½ over 16-byte slots (four to a 64-byte line),
/// so a probe sequence mostly stays in one line. A key of ≤ 8 units that are all Latin-1 (≤ U+00FF) is stored in its
/// slot, a byte a unit (a hit or a miss reads that line only: 22 of the 23 pieces an SST-2 dev sentence finds); any
/// other key stores its hash and where its characters start in one shared array, read only when length and hash
/// match. The hash is FNV-1a over the units with a final avalanche (murmur3's fmix32), so the slot index (low bits)
/// depends on every unit.</para>
/// </remarks>
internal sealed class VocabularyTable
{
    private const int InlineUnits = 8;
    private const int InlineFlag = 1 << 30;
    /// <summary>Keys are shorter: length + 1 stays below <see cref="InlineFlag"/>.</summary>
    private const int MaxLength = InlineFlag - 1;

    private struct Slot
    {
        /// <summary>Inline: the units, a byte each from the low end; else hash &lt;&lt; 32 | start in the shared characters.</summary>
        public ulong Key;
        /// <summary>Key length + 1, plus <see cref="InlineFlag"/> for an inline key; 0 marks an empty slot (so an empty key can be stored).</summary>
        public int Meta;
        public int Id;
    }

    private readonly Slot[] _slots;
    private readonly char[] _chars;
    private readonly int _mask;

    /// <summary>Builds the table; each key must appear once (the caller resolves duplicates).</summary>
    /// <exception cref="ArgumentException">A key appears twice.</exception>
    public VocabularyTable(IReadOnlyCollection<KeyValuePair<string, int>> entries)
    {
        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, 2 * entries.Count));
        _slots = new Slot[capacity];
        _mask = capacity - 1;
        long units = entries.Sum(e => (long)e.Key.Length); // an upper bound: inline keys need none
        _chars = new char[units <= Array.MaxLength ? (int)units : throw new ArgumentException("the keys exceed an array", nameof(entries))];
        int used = 0;
        foreach (var (key, id) in entries)
        {
            if (key.Length >= MaxLength)
                throw new ArgumentException($"a key of {key.Length} units exceeds the table's limit", nameof(entries));
            uint hash = Hash(key, out ulong inline, out int meta);
            if ((meta & InlineFlag) == 0)
            {
                key.CopyTo(_chars.AsSpan(used));
                inline = (ulong)hash << 32 | (uint)used;
                used += key.Length;
            }
            int i = (int)(hash & (uint)_mask);
            for (; _slots[i].Meta != 0; i = (i + 1) & _mask)
                if (Matches(in _slots[i], key, hash, inline, meta))
                    throw new ArgumentException($"the key \"{key}\" appears twice", nameof(entries));
            _slots[i] = new Slot { Key = inline, Meta = meta, Id = id };
        }
    }

    /// <summary>The id of <paramref name="key"/>, if the table holds it.</summary>
    public bool TryGetValue(ReadOnlySpan<char> key, out int id)
    {
        if (key.Length >= MaxLength) // no stored key is this long, and its length would reach the inline flag
        {
            id = -1;
            return false;
        }
        uint hash = Hash(key, out ulong inline, out int meta);
        Slot[] slots = _slots;
        for (int i = (int)(hash & (uint)_mask); ; i = (i + 1) & _mask)
        {
            ref readonly Slot slot = ref slots[i];
            if (slot.Meta == 0)
            {
                id = -1;
                return false;
            }
            if (Matches(in slot, key, hash, inline, meta))
            {
                id = slot.Id;
                return true;
            }
        }
    }

    /// <summary>Equal meta means the same length and the same form (inline or not), so inline keys compare as packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Matches(in Slot slot, ReadOnlySpan<char> key, uint hash, ulong inline, int meta)
    {
        if (slot.Meta != meta)
            return false;
        if ((meta & InlineFlag) != 0)
            return slot.Key == inline;
        return (uint)(slot.Key >> 32) == hash && _chars.AsSpan((int)(uint)slot.Key, key.Length).SequenceEqual(key);
    }

    /// <summary>The key's hash, its inline form (when it has one: ≤ 8 Latin-1 units) and its slot meta, in one pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<char> key, out ulong inline, out int meta)
    {
        uint h = 2166136261u;
        ulong packed = 0;
        int wide = 0;
        for (int i = 0; i < key.Length; i++)
        {
            char c = key[i];
            h = (h ^ c) * 16777619u;
            wide |= c >> 8;
            packed |= (ulong)(byte)c << (8 * (i & 7));
        }
        bool fits = key.Length <= InlineUnits && wide == 0;
        inline = fits ? packed : 0;
        meta = (key.Length + 1) | (fits ? InlineFlag : 0);
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        return h ^ (h >> 16);
    }
}
