namespace BinEngine.Format;

/// <summary>One entry of a model file's tensor table: what the tensor is and where its bytes are.</summary>
internal sealed class TensorInfo
{
    /// <summary>The longest tensor name the format accepts, in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 256;

    /// <summary>The most dimensions a tensor may have.</summary>
    public const int MaxRank = 4;

    /// <summary>The most bit planes a <see cref="TensorElementType.Bits"/> tensor may have (8-bit codes).</summary>
    public const int MaxPlanes = 8;

    internal TensorInfo(string name, TensorElementType elementType, int planes, int[] shape, long offset, long byteLength)
    {
        Name = name;
        ElementType = elementType;
        Planes = planes;
        _shape = shape;
        Offset = offset;
        ByteLength = byteLength;
        long count = 1;
        foreach (int d in shape)
            count *= d;
        ElementCount = count;
    }

    private readonly int[] _shape;

    /// <summary>The tensor's name (docs/MODEL.md names plus the converter's <c>.alpha</c>/<c>.scale</c>).</summary>
    public string Name { get; }

    /// <summary>How the elements are stored.</summary>
    public TensorElementType ElementType { get; }

    /// <summary>Bit planes per row for <see cref="TensorElementType.Bits"/>; 0 for every other type.</summary>
    public int Planes { get; }

    /// <summary>The logical shape (for packed bits: [rows..., K], K unpadded).</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of logical elements (the product of <see cref="Shape"/>).</summary>
    public long ElementCount { get; }

    /// <summary>Byte offset relative to the start of the data section (a multiple of 64).</summary>
    public long Offset { get; }

    /// <summary>Stored byte length (packed tensors include their row padding).</summary>
    public long ByteLength { get; }

    /// <summary>The last dimension: the row length K.</summary>
    public int RowLength => _shape[^1];

    /// <summary>The number of rows: the product of every dimension but the last.</summary>
    public long RowCount => ElementCount / RowLength;

    /// <summary>Words per packed plane row: <c>PackedRowWords(K) = ceil(K / 256) · 4</c> (docs/MODEL.md).</summary>
    public static int PackedRowWords(int k) => Kernels.BitPacking.RowWords(k);

    /// <summary>
    /// The byte length a tensor of this type, plane count and shape occupies, or −1 when it would
    /// overflow 64 bits. Every dimension must be positive.
    /// </summary>
    public static long ComputeByteLength(TensorElementType type, int planes, ReadOnlySpan<int> shape)
    {
        try
        {
            long count = 1;
            foreach (int d in shape)
                count = checked(count * d);
            return type switch
            {
                TensorElementType.F32 or TensorElementType.I32 => checked(count * 4),
                TensorElementType.F16 => checked(count * 2),
                TensorElementType.I8 => count,
                TensorElementType.Bits => checked(count / shape[^1] * planes * PackedRowWords(shape[^1]) * sizeof(ulong)),
                _ => -1,
            };
        }
        catch (OverflowException)
        {
            return -1;
        }
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        string type = ElementType == TensorElementType.Bits ? $"bits×{Planes}" : ElementType.ToString().ToLowerInvariant();
        return $"{Name} {type} [{string.Join(", ", _shape)}] @+{Offset} ({ByteLength} B)";
    }

    internal int[] ShapeArray => _shape;
}
