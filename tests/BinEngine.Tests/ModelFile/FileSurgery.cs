using System.IO.Hashing;
using System.Buffers.Binary;
using System.Text;
using BinEngine.Format;

namespace BinEngine.Tests.ModelFileTests;

/// <summary>Test helpers that damage model files on purpose and re-stamp checksums so the parser, not the checksum, meets the damage.</summary>
internal static class FileSurgery
{
    /// <summary>Recomputes both checksums from the header's own data offset, when it is usable.</summary>
    public static void Restamp(byte[] file)
    {
        if (file.Length < BexFormat.HeaderBytes)
            return;
        ulong dataOffset = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(32));
        if (dataOffset < BexFormat.HeaderBytes || dataOffset > (ulong)file.Length)
            return;
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(48), XxHash64.HashToUInt64(file.AsSpan((int)dataOffset)));
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(56), TensorFileWriter.HeaderChecksum(file, (int)dataOffset));
    }

    /// <summary>Byte position just after the (length-prefixed) name of tensor <paramref name="name"/> in the table: type, planes, rank, dims, offset, length follow.</summary>
    public static int AfterTensorName(byte[] file, string name)
    {
        byte[] needle = new byte[4 + Encoding.UTF8.GetByteCount(name)];
        BinaryPrimitives.WriteUInt32LittleEndian(needle, (uint)(needle.Length - 4));
        Encoding.UTF8.GetBytes(name, needle.AsSpan(4));
        int at = file.AsSpan().IndexOf(needle);
        Assert.True(at > 0, $"tensor name {name} not found");
        return at + needle.Length;
    }

    /// <summary>Field positions of tensor <paramref name="name"/>'s table entry.</summary>
    public static (int Type, int Planes, int Rank, int Dims, int Offset, int Length) TensorFields(byte[] file, string name)
    {
        int p = AfterTensorName(file, name);
        int rank = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 8));
        int dims = p + 12;
        return (p, p + 4, p + 8, dims, dims + 8 * rank, dims + 8 * rank + 8);
    }

    /// <summary>Copies a file's metadata and tensors into a new writer, letting the test drop or replace parts.</summary>
    public static byte[] Rewrite(TensorFile source, Func<TensorInfo, bool>? keepTensor = null,
        Func<string, MetadataValue, MetadataValue?>? editMetadata = null, Action<TensorFileWriter>? addMore = null)
    {
        var w = new TensorFileWriter();
        foreach (var (key, value) in source.Metadata)
        {
            var v = editMetadata is null ? value : editMetadata(key, value);
            if (v is not null)
                w.Add(key, v);
        }
        foreach (var t in source.Tensors)
        {
            if (keepTensor is not null && !keepTensor(t))
                continue;
            var shape = t.Shape.ToArray();
            switch (t.ElementType)
            {
                case TensorElementType.F32: w.AddF32(t.Name, shape, source.F32(t.Name)); break;
                case TensorElementType.F16: w.AddF16(t.Name, shape, source.F16(t.Name)); break;
                case TensorElementType.I8: w.AddI8(t.Name, shape, source.I8(t.Name)); break;
                case TensorElementType.I32: w.AddI32(t.Name, shape, source.I32(t.Name)); break;
                case TensorElementType.Bits: w.AddBits(t.Name, t.Planes, shape, source.Bits(t.Name)); break;
            }
        }
        addMore?.Invoke(w);
        return w.ToArray();
    }
}
