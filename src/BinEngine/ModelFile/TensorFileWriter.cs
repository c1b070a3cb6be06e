using System.IO.Hashing;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace BinEngine.Format;

/// <summary>
/// Builds a model file: add metadata and tensors, then <see cref="WriteTo(Stream)"/>. Tensors are
/// laid out in the order they were added, each at the next 64-byte boundary of the data section.
/// The output is a pure function of what was added (no timestamps), so equal inputs give equal
/// bytes. Validates names, shapes and lengths as it goes; the reader re-validates everything.
/// </summary>
internal sealed class TensorFileWriter
{
    // Throws on unpaired surrogates instead of writing '?' silently.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly List<KeyValuePair<string, MetadataValue>> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<(string Name, TensorElementType Type, int Planes, int[] Shape, byte[] Data)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Adds a metadata entry; keys are unique, 1–256 UTF-8 bytes.</summary>
    public TensorFileWriter Add(string key, MetadataValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        int bytes = Utf8Length(key, "metadata key");
        if (bytes is 0 or > BexFormat.MaxKeyBytes)
            throw new ArgumentException($"metadata key '{key}' is {bytes} UTF-8 bytes; 1..{BexFormat.MaxKeyBytes} allowed", nameof(key));
        if (!_keys.Add(key))
            throw new ArgumentException($"metadata key '{key}' added twice", nameof(key));
        _metadata.Add(new(key, value));
        return this;
    }

    private static int Utf8Length(string s, string what)
    {
        try
        {
            return StrictUtf8.GetByteCount(s);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"{what} '{s}' is not valid UTF-16 (unpaired surrogate)", e);
        }
    }

    /// <summary>Adds a float32 tensor.</summary>
    public TensorFileWriter AddF32(string name, ReadOnlySpan<int> shape, ReadOnlySpan<float> values) =>
        AddRaw(name, TensorElementType.F32, 0, shape, MemoryMarshal.AsBytes(values));

    /// <summary>Adds a float16 tensor.</summary>
    public TensorFileWriter AddF16(string name, ReadOnlySpan<int> shape, ReadOnlySpan<Half> values) =>
        AddRaw(name, TensorElementType.F16, 0, shape, MemoryMarshal.AsBytes(values));

    /// <summary>Adds an int8 tensor.</summary>
    public TensorFileWriter AddI8(string name, ReadOnlySpan<int> shape, ReadOnlySpan<sbyte> values) =>
        AddRaw(name, TensorElementType.I8, 0, shape, MemoryMarshal.AsBytes(values));

    /// <summary>Adds an int32 tensor.</summary>
    public TensorFileWriter AddI32(string name, ReadOnlySpan<int> shape, ReadOnlySpan<int> values) =>
        AddRaw(name, TensorElementType.I32, 0, shape, MemoryMarshal.AsBytes(values));

    /// <summary>
    /// Adds a packed-bits tensor of logical shape [rows..., K] with <paramref name="planes"/>
    /// planes per row; <paramref name="words"/> holds rows·planes·PackedRowWords(K) words with
    /// zero padding bits (see <see cref="Kernels.TwosComplementPlanes"/> to build them).
    /// </summary>
    public TensorFileWriter AddBits(string name, int planes, ReadOnlySpan<int> shape, ReadOnlySpan<ulong> words)
    {
        if (planes is < 1 or > TensorInfo.MaxPlanes)
            throw new ArgumentOutOfRangeException(nameof(planes), planes, $"1..{TensorInfo.MaxPlanes} planes");
        return AddRaw(name, TensorElementType.Bits, planes, shape, MemoryMarshal.AsBytes(words));
    }

    /// <summary>Adds a copy of <paramref name="tensor"/> of <paramref name="source"/>: same name, type, planes, shape and bytes.</summary>
    public TensorFileWriter AddCopy(TensorFile source, TensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tensor);
        return AddRaw(tensor.Name, tensor.ElementType, tensor.Planes, tensor.Shape.ToArray(), source.Bytes(tensor));
    }

    private TensorFileWriter AddRaw(string name, TensorElementType type, int planes, ReadOnlySpan<int> shape, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the model file is little-endian; big-endian hosts are not supported");
        int nameBytes = Utf8Length(name, "tensor name");
        if (nameBytes is 0 or > TensorInfo.MaxNameBytes)
            throw new ArgumentException($"tensor name '{name}' is {nameBytes} UTF-8 bytes; 1..{TensorInfo.MaxNameBytes} allowed", nameof(name));
        if (shape.Length is 0 or > TensorInfo.MaxRank)
            throw new ArgumentException($"tensor '{name}': rank {shape.Length}; 1..{TensorInfo.MaxRank} allowed", nameof(shape));
        foreach (int d in shape)
            if (d <= 0)
                throw new ArgumentException($"tensor '{name}': dimension {d} in [{string.Join(", ", shape.ToArray())}] is not positive", nameof(shape));
        long expected = TensorInfo.ComputeByteLength(type, planes, shape);
        if (expected != data.Length)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, shape [{string.Join(", ", shape.ToArray())}] as {type} needs {expected}", nameof(shape));
        if (!_names.Add(name))
            throw new ArgumentException($"tensor '{name}' added twice", nameof(name));
        _tensors.Add((name, type, planes, shape.ToArray(), data.ToArray()));
        return this;
    }

    /// <summary>Writes the file to <paramref name="path"/> (created or overwritten) and returns its length.</summary>
    public long WriteTo(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        return WriteTo(stream);
    }

    /// <summary>Writes the file to <paramref name="stream"/> and returns the number of bytes written.</summary>
    public long WriteTo(Stream stream)
    {
        byte[] bytes = ToArray();
        stream.Write(bytes);
        return bytes.Length;
    }

    /// <summary>The complete file as a byte array.</summary>
    public byte[] ToArray()
    {
        // Head = fixed header + metadata + tensor table, padded with zeros to the data section.
        var head = new MemoryStream();
        head.Write(new byte[BexFormat.HeaderBytes]);
        foreach (var (key, value) in _metadata)
        {
            WriteString(head, key);
            WriteU32(head, (uint)value.Type);
            WriteValue(head, value);
        }

        long dataCursor = 0;
        var offsets = new long[_tensors.Count];
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            offsets[i] = dataCursor;
            WriteString(head, t.Name);
            WriteU32(head, (uint)t.Type);
            WriteU32(head, (uint)t.Planes);
            WriteU32(head, (uint)t.Shape.Length);
            foreach (int d in t.Shape)
                WriteU64(head, (ulong)d);
            WriteU64(head, (ulong)dataCursor);
            WriteU64(head, (ulong)t.Data.Length);
            dataCursor = BexFormat.AlignUp(dataCursor + t.Data.Length);
        }
        long dataOffset = BexFormat.AlignUp(head.Length);
        long dataLength = dataCursor;

        byte[] file = new byte[checked(dataOffset + dataLength)];
        head.Position = 0;
        head.ReadExactly(file, 0, (int)head.Length);
        for (int i = 0; i < _tensors.Count; i++)
            _tensors[i].Data.CopyTo(file.AsSpan(checked((int)(dataOffset + offsets[i]))));

        Span<byte> h = file.AsSpan(0, BexFormat.HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(h[BexFormat.OffsetMagic..], BexFormat.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[BexFormat.OffsetVersion..], BexFormat.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[BexFormat.OffsetAlignment..], BexFormat.Alignment);
        BinaryPrimitives.WriteUInt32LittleEndian(h[BexFormat.OffsetFlags..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetMetadataCount..], (ulong)_metadata.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetTensorCount..], (ulong)_tensors.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetDataOffset..], (ulong)dataOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetDataLength..], (ulong)dataLength);
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetDataChecksum..], XxHash64.HashToUInt64(file.AsSpan((int)dataOffset)));
        BinaryPrimitives.WriteUInt64LittleEndian(h[BexFormat.OffsetHeaderChecksum..], HeaderChecksum(file, (int)dataOffset));
        return file;
    }

    /// <summary>XXH64 of the head with the header-checksum field itself left out: bytes [0, 56) then [64, dataOffset).</summary>
    internal static ulong HeaderChecksum(ReadOnlySpan<byte> file, int dataOffset)
    {
        var hash = new XxHash64();
        hash.Append(file[..BexFormat.OffsetHeaderChecksum]);
        hash.Append(file[BexFormat.HeaderBytes..dataOffset]);
        return hash.GetCurrentHashAsUInt64();
    }

    private static void WriteValue(Stream s, MetadataValue value)
    {
        switch (value.Value)
        {
            case long l: WriteU64(s, (ulong)l); break;
            case double d: WriteU64(s, BitConverter.DoubleToUInt64Bits(d)); break;
            case bool b: s.WriteByte(b ? (byte)1 : (byte)0); break;
            case string str: WriteString(s, str); break;
            case string[] a:
                WriteU32(s, checked((uint)a.Length));
                foreach (string x in a) WriteString(s, x);
                break;
            case long[] a:
                WriteU32(s, checked((uint)a.Length));
                foreach (long x in a) WriteU64(s, (ulong)x);
                break;
            case double[] a:
                WriteU32(s, checked((uint)a.Length));
                foreach (double x in a) WriteU64(s, BitConverter.DoubleToUInt64Bits(x));
                break;
            default: throw new InvalidOperationException("unknown metadata value");
        }
    }

    private static void WriteString(Stream s, string value)
    {
        byte[] bytes;
        try
        {
            bytes = StrictUtf8.GetBytes(value);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"metadata string '{value}' is not valid UTF-16 (unpaired surrogate)", e);
        }
        WriteU32(s, checked((uint)bytes.Length));
        s.Write(bytes);
    }

    private static void WriteU32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        s.Write(b);
    }

    private static void WriteU64(Stream s, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        s.Write(b);
    }
}
