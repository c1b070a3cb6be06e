using System.Buffers.Binary;

namespace BinEngine.Converter;

/// <summary>Element types a checkpoint may hold (safetensors names; torch storages map onto them).</summary>
internal enum SourceDType
{
    /// <summary>float32.</summary>
    F32,
    /// <summary>float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>float64.</summary>
    F64,
    /// <summary>int64.</summary>
    I64,
    /// <summary>int32.</summary>
    I32,
    /// <summary>int16.</summary>
    I16,
    /// <summary>int8.</summary>
    I8,
    /// <summary>uint8.</summary>
    U8,
    /// <summary>bool (one byte).</summary>
    Bool,
}

/// <summary>One tensor read from a checkpoint: dtype, shape and its elements as contiguous little-endian bytes.</summary>
internal sealed class SourceTensor
{
    /// <summary>Creates a tensor; <paramref name="data"/> must hold exactly numel · element size bytes.</summary>
    public SourceTensor(string name, SourceDType dtype, long[] shape, byte[] data)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
        long count = 1;
        foreach (long d in shape)
            count = checked(count * d);
        ElementCount = count;
        if (checked(count * ElementSize(dtype)) != data.Length)
            throw new ConversionException($"tensor '{name}': {data.Length} bytes for {dtype} [{string.Join(", ", shape)}]");
    }

    /// <summary>The name as stored in the checkpoint.</summary>
    public string Name { get; }

    /// <summary>The stored element type.</summary>
    public SourceDType DType { get; }

    /// <summary>The shape.</summary>
    public long[] Shape { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>Contiguous row-major little-endian elements.</summary>
    public byte[] Data { get; }

    /// <summary>True for F32, F16, BF16 and F64.</summary>
    public bool IsFloat => DType is SourceDType.F32 or SourceDType.F16 or SourceDType.BF16 or SourceDType.F64;

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SourceDType dtype) => dtype switch
    {
        SourceDType.F64 or SourceDType.I64 => 8,
        SourceDType.F32 or SourceDType.I32 => 4,
        SourceDType.F16 or SourceDType.BF16 or SourceDType.I16 => 2,
        _ => 1,
    };

    /// <summary>
    /// The elements as float32. F16 and BF16 widen exactly; F64 is refused because rounding it would
    /// move weights away from what the trainer's float32 forward pass used.
    /// </summary>
    public float[] ToFloat32()
    {
        if (DType is not (SourceDType.F32 or SourceDType.F16 or SourceDType.BF16))
            throw new ConversionException($"tensor '{Name}' has dtype {DType}; a float tensor (F32, F16 or BF16) is required here");
        var result = new float[ElementCount];
        var d = Data.AsSpan();
        switch (DType)
        {
            case SourceDType.F32:
                for (int i = 0; i < result.Length; i++)
                    result[i] = BinaryPrimitives.ReadSingleLittleEndian(d[(i * 4)..]);
                break;
            case SourceDType.F16:
                for (int i = 0; i < result.Length; i++)
                    result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(d[(i * 2)..]);
                break;
            case SourceDType.BF16:
                // bfloat16 is the top half of a float32.
                for (int i = 0; i < result.Length; i++)
                    result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(d[(i * 2)..]) << 16);
                break;
            default:
                throw new ConversionException($"tensor '{Name}' has dtype {DType}; a float tensor (F32, F16 or BF16) is required here");
        }
        return result;
    }

    /// <summary>The elements as int64 (I64, I32, I16, I8, U8).</summary>
    public long[] ToInt64()
    {
        if (DType is not (SourceDType.I64 or SourceDType.I32 or SourceDType.I16 or SourceDType.I8 or SourceDType.U8))
            throw new ConversionException($"tensor '{Name}' has dtype {DType}; an integer tensor (I64, I32, I16, I8, U8) is required here");
        var result = new long[ElementCount];
        var d = Data.AsSpan();
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = DType switch
            {
                SourceDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(d[(i * 8)..]),
                SourceDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(d[(i * 4)..]),
                SourceDType.I16 => BinaryPrimitives.ReadInt16LittleEndian(d[(i * 2)..]),
                SourceDType.I8 => (sbyte)d[i],
                SourceDType.U8 => d[i],
                _ => throw new ConversionException($"tensor '{Name}' has dtype {DType}; an integer tensor (I64, I32, I16, I8, U8) is required here"),
            };
        }
        return result;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType} [{string.Join(", ", Shape)}]";
}
