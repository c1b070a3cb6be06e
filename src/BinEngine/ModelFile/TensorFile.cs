using BinEngine.Kernels;
using System.IO.Hashing;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace BinEngine.Format;

/// <summary>
/// A model file opened at the container level: the header, typed metadata, the tensor table and
/// the data section, all validated (docs/FORMAT.md), tensors served as spans over the mapped
/// memory (a private copy of the file by default, or a read-only map). Knows nothing of the BEExformer architecture; <see cref="ModelFile"/> adds that.
/// Immutable once open and safe to read from many threads at once. Spans it returns are valid
/// until <see cref="Dispose"/>; using one after that is a bug of the caller.
/// </summary>
internal sealed unsafe class TensorFile : IDisposable
{
    // Every defect of the head is found while it is parsed: reads go through a cursor that
    // checks the remaining length first, counts are capped by the bytes that could hold them,
    // so a lying header costs at most what the file itself holds.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly MemoryRegion _region;
    private readonly Dictionary<string, MetadataValue> _metadata;
    private readonly Dictionary<string, TensorInfo> _tensorsByName;
    private readonly TensorInfo[] _tensors;
    private readonly string[] _metadataKeys;
    private int _disposed;

    private TensorFile(MemoryRegion region, string source, bool verifyChecksum)
    {
        _region = region;
        Source = source;
        FileLength = region.Length;
        var head = ReadHead(region, source);
        DataOffset = head.DataOffset;
        DataLength = head.DataLength;
        DataChecksum = head.DataChecksum;

        var cursor = new Cursor(new ReadOnlySpan<byte>(region.Pointer, checked((int)head.DataOffset)), BexFormat.HeaderBytes, source);
        (_metadata, _metadataKeys) = ReadMetadata(ref cursor, head.MetadataCount, source);
        _tensors = ReadTensorTable(ref cursor, head.TensorCount, head.DataLength, source);
        long tableEnd = cursor.Position;
        if (BexFormat.AlignUp(tableEnd) != head.DataOffset)
            throw new ModelFormatException($"{source}: tensor table ends at byte {tableEnd}, so the data section starts at {BexFormat.AlignUp(tableEnd)}; the header says {head.DataOffset}");
        for (long i = tableEnd; i < head.DataOffset; i++)
            if (region.Pointer[i] != 0)
                throw new ModelFormatException($"{source}: padding byte {i} before the data section is {region.Pointer[i]}, not 0");

        _tensorsByName = new Dictionary<string, TensorInfo>(_tensors.Length, StringComparer.Ordinal);
        foreach (var t in _tensors)
            _tensorsByName.Add(t.Name, t);

        if (verifyChecksum)
        {
            var hash = new XxHash64();
            // Chunks keep each span within int range for data sections over 2 GiB.
            const int Chunk = 1 << 30;
            for (long at = 0; at < head.DataLength; at += Chunk)
                hash.Append(new ReadOnlySpan<byte>(region.Pointer + head.DataOffset + at, (int)Math.Min(Chunk, head.DataLength - at)));
            ulong actual = hash.GetCurrentHashAsUInt64();
            if (actual != head.DataChecksum)
                throw new ModelFormatException($"{source}: data checksum mismatch: header says 0x{head.DataChecksum:x16}, the {head.DataLength} data bytes hash to 0x{actual:x16} (the file is corrupt)");
        }

        foreach (var t in _tensors)
            if (t.ElementType == TensorElementType.Bits)
                CheckPadding(t);
    }

    /// <summary>Where the file came from (path, or "&lt;memory&gt;"), for messages.</summary>
    public string Source { get; }

    /// <summary>Total file length in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Absolute byte offset of the data section (a multiple of 64).</summary>
    public long DataOffset { get; }

    /// <summary>Length of the data section in bytes.</summary>
    public long DataLength { get; }

    /// <summary>XXH64 (seed 0) of the data section, as stored in the header.</summary>
    public ulong DataChecksum { get; }

    /// <summary>The metadata entries in file order.</summary>
    public IEnumerable<KeyValuePair<string, MetadataValue>> Metadata => _metadataKeys.Select(k => new KeyValuePair<string, MetadataValue>(k, _metadata[k]));

    /// <summary>The tensor table in file order.</summary>
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>Opens and validates a file: read into private memory, or memory-mapped read-only when asked.</summary>
    /// <param name="path">The model file (a regular file; pipes and devices are refused before they are opened).</param>
    /// <param name="verifyChecksum">Hash the data section and compare (on by default; one pass over the file).</param>
    /// <param name="memoryMap">
    /// Map the file instead of reading it. Shares pages between processes, but the file must then only be
    /// replaced by rename, never rewritten or truncated in place while open (see docs/FORMAT.md, "Loading").
    /// </param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFormatException">Not a regular file, or any defect of the file, named with its place.</exception>
    public static TensorFile Open(string path, bool verifyChecksum = true, bool memoryMap = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        var region = memoryMap ? MemoryRegion.Map(path) : MemoryRegion.Snapshot(path);
        try
        {
            return new TensorFile(region, path, verifyChecksum);
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a file held in memory (copied to an aligned native buffer).</summary>
    public static TensorFile Open(ReadOnlySpan<byte> bytes, bool verifyChecksum = true)
    {
        if (bytes.Length < BexFormat.HeaderBytes)
            throw new ModelFormatException($"<memory>: {bytes.Length} bytes; a model file has at least the {BexFormat.HeaderBytes}-byte header");
        var region = MemoryRegion.Copy(bytes);
        try
        {
            return new TensorFile(region, "<memory>", verifyChecksum);
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a file read from a stream (to its end).</summary>
    public static TensorFile Open(Stream stream, bool verifyChecksum = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Open(copy.GetBuffer().AsSpan(0, (int)copy.Length), verifyChecksum);
    }

    /// <summary>True when a tensor of this name is in the file.</summary>
    public bool Contains(string name) => _tensorsByName.ContainsKey(name);

    /// <summary>The tensor table entry of <paramref name="name"/>.</summary>
    /// <exception cref="ModelFormatException">No such tensor.</exception>
    public TensorInfo GetTensor(string name)
    {
        ThrowIfDisposed();
        return _tensorsByName.TryGetValue(name, out var t) ? t
            : throw new ModelFormatException($"{Source}: tensor '{name}' is not in the file");
    }

    /// <summary>The raw bytes of a tensor.</summary>
    public ReadOnlySpan<byte> Bytes(string name) => Bytes(GetTensor(name));

    /// <summary>The raw bytes of a tensor.</summary>
    public ReadOnlySpan<byte> Bytes(TensorInfo tensor)
    {
        ThrowIfDisposed();
        // Offsets and lengths were checked against the data section at open.
        if (tensor.ByteLength > int.MaxValue)
            throw new ModelFormatException($"{Source}: tensor '{tensor.Name}' is {tensor.ByteLength} bytes, over a byte span's limit; read it through its typed accessor");
        return new ReadOnlySpan<byte>(_region.Pointer + DataOffset + tensor.Offset, (int)tensor.ByteLength);
    }

    /// <summary>A float32 tensor's elements.</summary>
    public ReadOnlySpan<float> F32(string name) => Typed<float>(name, TensorElementType.F32);

    /// <summary>A float16 tensor's elements.</summary>
    public ReadOnlySpan<Half> F16(string name) => Typed<Half>(name, TensorElementType.F16);

    /// <summary>An int8 tensor's elements.</summary>
    public ReadOnlySpan<sbyte> I8(string name) => Typed<sbyte>(name, TensorElementType.I8);

    /// <summary>An int32 tensor's elements.</summary>
    public ReadOnlySpan<int> I32(string name) => Typed<int>(name, TensorElementType.I32);

    /// <summary>A packed-bits tensor's words: rows · planes · PackedRowWords(K), row-major.</summary>
    public ReadOnlySpan<ulong> Bits(string name) => Typed<ulong>(name, TensorElementType.Bits);

    /// <summary>A tensor's bytes as <typeparamref name="T"/> without a name lookup or type check (callers hold a validated <see cref="TensorInfo"/> of this file).</summary>
    internal ReadOnlySpan<T> Span<T>(TensorInfo t) where T : unmanaged
    {
        ThrowIfDisposed();
        return new ReadOnlySpan<T>(_region.Pointer + DataOffset + t.Offset, (int)(t.ByteLength / sizeof(T)));
    }

    private ReadOnlySpan<T> Typed<T>(string name, TensorElementType expected) where T : unmanaged
    {
        var t = GetTensor(name);
        if (t.ElementType != expected)
            throw new ModelFormatException($"{Source}: tensor '{name}' is {t.ElementType}, read as {expected}");
        // The table check at open bounds every tensor's element count by int.MaxValue.
        return new ReadOnlySpan<T>(_region.Pointer + DataOffset + t.Offset, (int)(t.ByteLength / sizeof(T)));
    }

    /// <summary>True when the metadata has <paramref name="key"/>.</summary>
    public bool HasMetadata(string key) => _metadata.ContainsKey(key);

    /// <summary>The metadata value of <paramref name="key"/>, or null.</summary>
    public MetadataValue? TryGetMetadata(string key) => _metadata.TryGetValue(key, out var v) ? v : null;

    /// <summary>An integer metadata value.</summary>
    public long GetInt(string key) => Get<long>(key, MetadataValueType.Int64);

    /// <summary>A floating-point metadata value (an integer value converts).</summary>
    public double GetDouble(string key)
    {
        var v = Require(key);
        return v.Value switch
        {
            double d => d,
            long l => l,
            _ => throw WrongType(key, v, MetadataValueType.Float64),
        };
    }

    /// <summary>A floating-point metadata value rounded to float32.</summary>
    public float GetFloat(string key) => (float)GetDouble(key);

    /// <summary>A Boolean metadata value.</summary>
    public bool GetBool(string key) => Get<bool>(key, MetadataValueType.Bool);

    /// <summary>A string metadata value.</summary>
    public string GetString(string key) => Get<string>(key, MetadataValueType.String);

    /// <summary>A string-array metadata value.</summary>
    public IReadOnlyList<string> GetStringArray(string key) => Array.AsReadOnly(Get<string[]>(key, MetadataValueType.StringArray));

    /// <summary>An integer-array metadata value.</summary>
    public IReadOnlyList<long> GetInt64Array(string key) => Array.AsReadOnly(Get<long[]>(key, MetadataValueType.Int64Array));

    /// <summary>A floating-point-array metadata value.</summary>
    public IReadOnlyList<double> GetFloat64Array(string key) => Array.AsReadOnly(Get<double[]>(key, MetadataValueType.Float64Array));

    private T Get<T>(string key, MetadataValueType type)
    {
        var v = Require(key);
        return v.Value is T t ? t : throw WrongType(key, v, type);
    }

    private MetadataValue Require(string key) =>
        _metadata.TryGetValue(key, out var v) ? v : throw new ModelFormatException($"{Source}: metadata key '{key}' is missing");

    private ModelFormatException WrongType(string key, MetadataValue v, MetadataValueType expected) =>
        new($"{Source}: metadata key '{key}' is {v.Type}, expected {expected}");

    /// <summary>Releases the mapping. Spans handed out before become invalid.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _region.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private void CheckPadding(TensorInfo t)
    {
        int k = t.RowLength;
        int rowWords = TwosComplementPlanes.RowWords(k, t.Planes);
        if (k % 64 == 0 && TensorInfo.PackedRowWords(k) * 64 == k)
            return; // K a multiple of 256: no padding bits
        var words = new ReadOnlySpan<ulong>(_region.Pointer + DataOffset + t.Offset, (int)(t.ByteLength / sizeof(ulong)));
        for (long r = 0; r < t.RowCount; r++)
            if (!TwosComplementPlanes.PaddingIsZero(words.Slice(checked((int)(r * rowWords)), rowWords), k, t.Planes))
                throw new ModelFormatException($"{Source}: tensor '{t.Name}' row {r}: padding bits past K = {k} are not zero (docs/MODEL.md: padding must cancel)");
    }

    private readonly record struct Head(ulong MetadataCount, ulong TensorCount, long DataOffset, long DataLength, ulong DataChecksum);

    private static Head ReadHead(MemoryRegion region, string source)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the model file is little-endian; big-endian hosts are not supported");
        long fileLength = region.Length;
        if (fileLength < BexFormat.HeaderBytes)
            throw new ModelFormatException($"{source}: {fileLength} bytes; a model file has at least the {BexFormat.HeaderBytes}-byte header");
        var h = new ReadOnlySpan<byte>(region.Pointer, BexFormat.HeaderBytes);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(h[BexFormat.OffsetMagic..]);
        if (magic != BexFormat.Magic)
            throw new ModelFormatException($"{source}: magic is 0x{magic:x8} ('{Printable(h[..4])}'), expected 'BEXF' (0x{BexFormat.Magic:x8}); not a BinEngine model file");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[BexFormat.OffsetVersion..]);
        if (version != BexFormat.Version)
            throw new ModelFormatException($"{source}: format version {version}; this build reads version {BexFormat.Version}");
        uint alignment = BinaryPrimitives.ReadUInt32LittleEndian(h[BexFormat.OffsetAlignment..]);
        if (alignment != BexFormat.Alignment)
            throw new ModelFormatException($"{source}: alignment {alignment} at byte {BexFormat.OffsetAlignment}, expected {BexFormat.Alignment}");
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(h[BexFormat.OffsetFlags..]);
        if (flags != 0)
            throw new ModelFormatException($"{source}: flags 0x{flags:x8} at byte {BexFormat.OffsetFlags}; version {BexFormat.Version} defines none");
        ulong metadataCount = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetMetadataCount..]);
        ulong tensorCount = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetTensorCount..]);
        ulong dataOffset = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetDataOffset..]);
        ulong dataLength = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetDataLength..]);
        ulong dataChecksum = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetDataChecksum..]);
        ulong headerChecksum = BinaryPrimitives.ReadUInt64LittleEndian(h[BexFormat.OffsetHeaderChecksum..]);

        if (dataOffset < BexFormat.HeaderBytes || dataOffset % BexFormat.Alignment != 0 || dataOffset > (ulong)fileLength || dataOffset > int.MaxValue)
            throw new ModelFormatException($"{source}: data section offset {dataOffset} (byte {BexFormat.OffsetDataOffset}) must be a multiple of {BexFormat.Alignment} in [{BexFormat.HeaderBytes}, {Math.Min(fileLength, int.MaxValue)}]");
        if (dataLength % BexFormat.Alignment != 0 || dataLength != (ulong)fileLength - dataOffset)
            throw new ModelFormatException($"{source}: data section length {dataLength} (byte {BexFormat.OffsetDataLength}); the file is {fileLength} bytes with data at {dataOffset}, so expected {(ulong)fileLength - dataOffset} (a multiple of {BexFormat.Alignment}; the file may be truncated)");

        ulong actualHeaderChecksum = TensorFileWriter.HeaderChecksum(new ReadOnlySpan<byte>(region.Pointer, (int)dataOffset), (int)dataOffset);
        if (actualHeaderChecksum != headerChecksum)
            throw new ModelFormatException($"{source}: header checksum mismatch: stored 0x{headerChecksum:x16}, bytes [0, {dataOffset}) hash to 0x{actualHeaderChecksum:x16} (the header, metadata or tensor table is corrupt)");
        return new Head(metadataCount, tensorCount, (long)dataOffset, (long)dataLength, dataChecksum);
    }

    private static string Printable(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder();
        foreach (byte x in b)
            sb.Append(x is >= 0x20 and < 0x7f ? (char)x : '.');
        return sb.ToString();
    }

    private static (Dictionary<string, MetadataValue>, string[]) ReadMetadata(ref Cursor c, ulong count, string source)
    {
        // Each entry takes at least 4 (key length) + 1 (key) + 4 (type) + 1 (a bool) bytes.
        if (count > (ulong)c.Remaining / 10)
            throw new ModelFormatException($"{source}: metadata count {count} (byte {BexFormat.OffsetMetadataCount}) cannot fit in the {c.Remaining} bytes before the data section");
        var map = new Dictionary<string, MetadataValue>((int)count, StringComparer.Ordinal);
        var keys = new string[(int)count];
        for (int i = 0; i < (int)count; i++)
        {
            long at = c.Position;
            string key = c.ReadString(BexFormat.MaxKeyBytes, $"metadata entry {i} key");
            uint type = c.ReadU32($"metadata '{key}' type");
            MetadataValue value = (MetadataValueType)type switch
            {
                MetadataValueType.Int64 => MetadataValue.FromInt64((long)c.ReadU64($"metadata '{key}'")),
                MetadataValueType.Float64 => MetadataValue.FromFloat64(BitConverter.UInt64BitsToDouble(c.ReadU64($"metadata '{key}'"))),
                MetadataValueType.Bool => MetadataValue.FromBool(c.ReadBool($"metadata '{key}'")),
                MetadataValueType.String => MetadataValue.FromString(c.ReadString(int.MaxValue, $"metadata '{key}'")),
                MetadataValueType.StringArray => MetadataValue.OwningStringArray(c.ReadStringArray($"metadata '{key}'")),
                MetadataValueType.Int64Array => MetadataValue.OwningInt64Array(Array.ConvertAll(c.ReadU64Array($"metadata '{key}'"), x => (long)x)),
                MetadataValueType.Float64Array => MetadataValue.OwningFloat64Array(Array.ConvertAll(c.ReadU64Array($"metadata '{key}'"), BitConverter.UInt64BitsToDouble)),
                _ => throw new ModelFormatException($"{source}: metadata '{key}' (entry {i} at byte {at}) has unknown value type {type}"),
            };
            if (!map.TryAdd(key, value))
                throw new ModelFormatException($"{source}: metadata key '{key}' appears twice (second at byte {at})");
            keys[i] = key;
        }
        return (map, keys);
    }

    private static TensorInfo[] ReadTensorTable(ref Cursor c, ulong count, long dataLength, string source)
    {
        // Each entry takes at least 4 + 1 (name) + 3·4 (type, planes, rank) + 8 (one dim) + 2·8 bytes.
        if (count > (ulong)c.Remaining / 41)
            throw new ModelFormatException($"{source}: tensor count {count} (byte {BexFormat.OffsetTensorCount}) cannot fit in the {c.Remaining} bytes before the data section");
        var tensors = new TensorInfo[(int)count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        long previousEnd = 0;
        Span<int> shape = stackalloc int[TensorInfo.MaxRank];
        for (int i = 0; i < tensors.Length; i++)
        {
            long at = c.Position;
            string name = c.ReadString(TensorInfo.MaxNameBytes, $"tensor {i} name");
            if (!names.Add(name))
                throw new ModelFormatException($"{source}: tensor '{name}' appears twice in the table (second at byte {at})");
            uint typeCode = c.ReadU32($"tensor '{name}' type");
            if (typeCode > (uint)TensorElementType.Bits)
                throw new ModelFormatException($"{source}: tensor '{name}' (table byte {at}) has unknown element type {typeCode}");
            var type = (TensorElementType)typeCode;
            uint planes = c.ReadU32($"tensor '{name}' planes");
            if (type == TensorElementType.Bits ? planes is < 1 or > TensorInfo.MaxPlanes : planes != 0)
                throw new ModelFormatException($"{source}: tensor '{name}' ({type}) has {planes} planes; expected {(type == TensorElementType.Bits ? $"1..{TensorInfo.MaxPlanes}" : "0")}");
            uint rank = c.ReadU32($"tensor '{name}' rank");
            if (rank is 0 or > TensorInfo.MaxRank)
                throw new ModelFormatException($"{source}: tensor '{name}' has rank {rank}; 1..{TensorInfo.MaxRank} allowed");
            for (int d = 0; d < rank; d++)
            {
                ulong dim = c.ReadU64($"tensor '{name}' dimension {d}");
                if (dim is 0 or > int.MaxValue)
                    throw new ModelFormatException($"{source}: tensor '{name}' dimension {d} is {dim}; 1..{int.MaxValue} allowed");
                shape[d] = (int)dim;
            }
            ulong offset = c.ReadU64($"tensor '{name}' offset");
            ulong length = c.ReadU64($"tensor '{name}' length");
            var dims = shape[..(int)rank];
            long expected = TensorInfo.ComputeByteLength(type, (int)planes, dims);
            if (expected < 0 || (ulong)expected != length)
                throw new ModelFormatException($"{source}: tensor '{name}': stored length {length}, but {type} [{string.Join(", ", dims.ToArray())}] needs {(expected < 0 ? "more than 2^63" : expected.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes");
            if (offset % BexFormat.Alignment != 0)
                throw new ModelFormatException($"{source}: tensor '{name}' offset {offset} is not a multiple of {BexFormat.Alignment}");
            if (offset < (ulong)previousEnd)
                throw new ModelFormatException($"{source}: tensor '{name}' offset {offset} overlaps the previous tensor, which ends at {previousEnd} (tensors must be stored in table order)");
            if (offset > (ulong)dataLength || length > (ulong)dataLength - offset)
                throw new ModelFormatException($"{source}: tensor '{name}' [{offset}, {offset + length}) runs past the data section's {dataLength} bytes");
            if (length / (type == TensorElementType.F16 ? 2UL : type == TensorElementType.I8 ? 1UL : 4UL) > int.MaxValue)
                throw new ModelFormatException($"{source}: tensor '{name}' has over {int.MaxValue} elements; not supported");
            previousEnd = (long)(offset + length);
            tensors[i] = new TensorInfo(name, type, (int)planes, dims.ToArray(), (long)offset, (long)length);
        }
        return tensors;
    }

    /// <summary>Bounds-checked little-endian reader over the head (header + metadata + table).</summary>
    private ref struct Cursor(ReadOnlySpan<byte> span, int position, string source)
    {
        private readonly ReadOnlySpan<byte> _span = span;
        private int _position = position;

        public readonly int Position => _position;

        public readonly int Remaining => _span.Length - _position;

        private ReadOnlySpan<byte> Take(int count, string what)
        {
            if (count < 0 || count > Remaining)
                throw new ModelFormatException($"{source}: {what} at byte {_position} needs {(uint)count} bytes; only {Remaining} remain before the data section");
            var s = _span.Slice(_position, count);
            _position += count;
            return s;
        }

        public uint ReadU32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));

        public ulong ReadU64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        public bool ReadBool(string what)
        {
            int at = _position;
            byte b = Take(1, what)[0];
            return b switch
            {
                0 => false,
                1 => true,
                _ => throw new ModelFormatException($"{source}: {what} at byte {at} is a bool of value {b}; 0 or 1 allowed"),
            };
        }

        public string ReadString(int maxBytes, string what, int index = -1)
        {
            int at = _position;
            // Messages are built only on failure: a vocabulary is tens of thousands of strings.
            string What() => index < 0 ? what : $"{what}[{index}]";
            if (Remaining < 4)
                throw new ModelFormatException($"{source}: {What()} length at byte {_position} needs 4 bytes; only {Remaining} remain before the data section");
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(_span.Slice(_position, 4));
            _position += 4;
            if (length == 0 && maxBytes != int.MaxValue)
                throw new ModelFormatException($"{source}: {What()} at byte {at} is empty");
            if (length > (uint)maxBytes)
                throw new ModelFormatException($"{source}: {What()} at byte {at} is {length} bytes; at most {maxBytes} allowed");
            if (length > (uint)Remaining)
                throw new ModelFormatException($"{source}: {What()} at byte {at} needs {length} bytes; only {Remaining} remain before the data section");
            var bytes = _span.Slice(_position, (int)length);
            _position += (int)length;
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw new ModelFormatException($"{source}: {What()} at byte {at} is not valid UTF-8", e);
            }
        }

        public string[] ReadStringArray(string what)
        {
            int at = _position;
            uint count = ReadU32(what + " count");
            if (count > (uint)Remaining / 4)
                throw new ModelFormatException($"{source}: {what} at byte {at} claims {count} strings; only {Remaining} bytes remain");
            var items = new string[count];
            for (int i = 0; i < items.Length; i++)
                items[i] = ReadString(int.MaxValue, what, i);
            return items;
        }

        public ulong[] ReadU64Array(string what)
        {
            int at = _position;
            uint count = ReadU32(what + " count");
            if (count > (uint)Remaining / 8)
                throw new ModelFormatException($"{source}: {what} at byte {at} claims {count} items; only {Remaining} bytes remain");
            var items = new ulong[count];
            for (int i = 0; i < items.Length; i++)
                items[i] = BinaryPrimitives.ReadUInt64LittleEndian(_span.Slice(_position + 8 * i, 8));
            _position += 8 * (int)count;
            return items;
        }
    }
}
