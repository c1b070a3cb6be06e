using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BinEngine.ModelFile;

/// <summary>
/// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0 by default), the model file's checksum.
/// Written here because the package source offers no System.IO.Hashing; the algorithm is the
/// reference one (xxhash.h, XXH64), checked against its published test vectors in the tests.
/// Streaming: <see cref="Append"/> any number of chunks, then <see cref="GetCurrentHash"/>; the
/// result equals the one-shot hash of the concatenation. It detects accidental corruption; it is
/// not a cryptographic hash (provenance uses SHA-256 for that).
/// </summary>
internal struct XxHash64
{
    private const ulong Prime1 = 0x9E3779B185EBCA87UL;
    private const ulong Prime2 = 0xC2B2AE3D27D4EB4FUL;
    private const ulong Prime3 = 0x165667B19E3779F9UL;
    private const ulong Prime4 = 0x85EBCA77C2B2AE63UL;
    private const ulong Prime5 = 0x27D4EB2F165667C5UL;
    private const int StripeBytes = 32;

    private ulong _acc1, _acc2, _acc3, _acc4;
    private readonly ulong _seed;
    private ulong _totalLength;
    // Bytes of an incomplete stripe carried to the next Append (at most 31 are ever pending).
    private Stripe _pending;
    private int _pendingLength;

    [InlineArray(StripeBytes)]
    private struct Stripe { private byte _b0; }

    public XxHash64(ulong seed)
    {
        _seed = seed;
        _acc1 = seed + Prime1 + Prime2;
        _acc2 = seed + Prime2;
        _acc3 = seed;
        _acc4 = seed - Prime1;
        _totalLength = 0;
        _pending = default;
        _pendingLength = 0;
    }

    /// <summary>One-shot XXH64 of <paramref name="data"/> with seed 0.</summary>
    public static ulong Hash(ReadOnlySpan<byte> data)
    {
        var h = new XxHash64(0);
        h.Append(data);
        return h.GetCurrentHash();
    }

    public void Append(ReadOnlySpan<byte> data)
    {
        _totalLength += (ulong)data.Length;
        Span<byte> pending = _pending;
        if (_pendingLength > 0)
        {
            int take = Math.Min(StripeBytes - _pendingLength, data.Length);
            data[..take].CopyTo(pending[_pendingLength..]);
            _pendingLength += take;
            data = data[take..];
            if (_pendingLength < StripeBytes)
                return;
            ConsumeStripe(pending);
            _pendingLength = 0;
        }
        if (data.Length >= StripeBytes)
        {
            int bulk = data.Length & ~(StripeBytes - 1);
            ConsumeStripes(data[..bulk]);
            data = data[bulk..];
        }
        data.CopyTo(pending);
        _pendingLength = data.Length;
    }

    /// <summary>
    /// The bulk loop: whole stripes with the four accumulators in locals (registers) and unaligned
    /// loads without per-stripe slicing; <paramref name="stripes"/>.Length is a multiple of 32.
    /// </summary>
    private void ConsumeStripes(ReadOnlySpan<byte> stripes)
    {
        ulong a1 = _acc1, a2 = _acc2, a3 = _acc3, a4 = _acc4;
        ref byte p = ref MemoryMarshal.GetReference(stripes);
        for (nint i = 0, n = stripes.Length; i < n; i += StripeBytes)
        {
            // Little-endian file and host (the reader refuses big-endian hosts), so a plain load is the LE read.
            a1 = Round(a1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            a2 = Round(a2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8)));
            a3 = Round(a3, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16)));
            a4 = Round(a4, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24)));
        }
        (_acc1, _acc2, _acc3, _acc4) = (a1, a2, a3, a4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ConsumeStripe(ReadOnlySpan<byte> s)
    {
        _acc1 = Round(_acc1, BinaryPrimitives.ReadUInt64LittleEndian(s));
        _acc2 = Round(_acc2, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]));
        _acc3 = Round(_acc3, BinaryPrimitives.ReadUInt64LittleEndian(s[16..]));
        _acc4 = Round(_acc4, BinaryPrimitives.ReadUInt64LittleEndian(s[24..]));
    }

    public readonly ulong GetCurrentHash()
    {
        ulong h;
        if (_totalLength >= StripeBytes)
        {
            h = BitOperations.RotateLeft(_acc1, 1) + BitOperations.RotateLeft(_acc2, 7)
              + BitOperations.RotateLeft(_acc3, 12) + BitOperations.RotateLeft(_acc4, 18);
            h = MergeRound(h, _acc1);
            h = MergeRound(h, _acc2);
            h = MergeRound(h, _acc3);
            h = MergeRound(h, _acc4);
        }
        else
        {
            h = _seed + Prime5;
        }
        h += _totalLength;

        ReadOnlySpan<byte> tail = ((ReadOnlySpan<byte>)_pending)[.._pendingLength];
        while (tail.Length >= 8)
        {
            h ^= Round(0, BinaryPrimitives.ReadUInt64LittleEndian(tail));
            h = BitOperations.RotateLeft(h, 27) * Prime1 + Prime4;
            tail = tail[8..];
        }
        if (tail.Length >= 4)
        {
            h ^= BinaryPrimitives.ReadUInt32LittleEndian(tail) * Prime1;
            h = BitOperations.RotateLeft(h, 23) * Prime2 + Prime3;
            tail = tail[4..];
        }
        foreach (byte b in tail)
        {
            h ^= b * Prime5;
            h = BitOperations.RotateLeft(h, 11) * Prime1;
        }

        // Avalanche.
        h ^= h >> 33;
        h *= Prime2;
        h ^= h >> 29;
        h *= Prime3;
        h ^= h >> 32;
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong acc, ulong input)
    {
        acc += input * Prime2;
        acc = BitOperations.RotateLeft(acc, 31);
        return acc * Prime1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MergeRound(ulong acc, ulong val)
    {
        acc ^= Round(0, val);
        return acc * Prime1 + Prime4;
    }
}
