using System.Buffers.Binary;
using System.Text;
using BinEngine.Format;
using BinEngine.Tests.ConverterTests;

namespace BinEngine.Tests.ModelFileTests;

/// <summary>Each defect a model file can have, made by hand; the reader must name it.</summary>
public class ValidationTests
{
    private static byte[] Valid() => (byte[])Fixtures.TinyModel.Clone();

    private static string Fails(byte[] file, bool restamp = true)
    {
        if (restamp)
            FileSurgery.Restamp(file);
        return Assert.Throws<ModelFormatException>(() => ModelFile.Open(file).Dispose()).Message;
    }

    private static long DataOffset(byte[] f) => (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(32));

    [Fact]
    public void TheValidFileOpens()
    {
        using var m = ModelFile.Open(Valid());
        Assert.Equal(2, m.Config.Layers);
    }

    [Fact]
    public void TooShortOrEmpty()
    {
        Assert.Contains("at least the 64-byte header", Fails([], restamp: false));
        Assert.Contains("at least the 64-byte header", Fails(new byte[63], restamp: false));
    }

    [Fact]
    public void BadMagic()
    {
        var f = Valid();
        f[0] = (byte)'G';
        Assert.Contains("expected 'BEXF'", Fails(f));
    }

    [Fact]
    public void FutureVersion()
    {
        var f = Valid();
        f[4] = 2;
        Assert.Contains("format version 2", Fails(f));
    }

    [Fact]
    public void TruncatedFile()
    {
        var f = Valid();
        Assert.Contains("truncated", Fails(f[..^64], restamp: false));
        Assert.Contains("truncated", Fails(f[..^1], restamp: false));
        Assert.Contains("data section offset", Fails(f[..100], restamp: false));
    }

    [Fact]
    public void CorruptDataByteFailsTheDataChecksum()
    {
        var f = Valid();
        f[^70] ^= 0x10;
        Assert.Contains("data checksum mismatch", Fails(f, restamp: false));
    }

    [Fact]
    public void CorruptMetadataByteFailsTheHeaderChecksum()
    {
        var f = Valid();
        f[200] ^= 0x01;
        Assert.Contains("header checksum mismatch", Fails(f, restamp: false));
    }

    [Fact]
    public void LyingMetadataCountIsRejectedBeforeAllocating()
    {
        var f = Valid();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(16), ulong.MaxValue / 3);
        Assert.Contains("metadata count", Fails(f));
    }

    [Fact]
    public void LyingTensorCount()
    {
        var f = Valid();
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(24), 1UL << 40);
        Assert.Contains("tensor count", Fails(f));
    }

    [Fact]
    public void LyingStringLength()
    {
        var f = Valid();
        // The first metadata key's length prefix sits right after the 64-byte header.
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(64), 0xFFFF_FFF0);
        Assert.Contains("metadata entry 0 key at byte 64", Fails(f));
    }

    [Fact]
    public void InvalidUtf8Key()
    {
        var f = Valid();
        f[68] = 0xFF;
        Assert.Contains("not valid UTF-8", Fails(f));
    }

    [Fact]
    public void UnknownMetadataType()
    {
        var f = Valid();
        int key = 64 + 4 + Encoding.UTF8.GetByteCount(ModelKeys.Architecture);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(key), 99);
        Assert.Contains("unknown value type 99", Fails(f));
    }

    [Fact]
    public void UnknownElementType()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "exits.0.bias");
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(fields.Type), 17);
        Assert.Contains("'exits.0.bias' (table byte", Fails(f));
    }

    [Fact]
    public void MisalignedOffset()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "exits.1.bias");
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(fields.Offset));
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Offset), offset + 4);
        Assert.Contains($"'exits.1.bias' offset {offset + 4} is not a multiple of 64", Fails(f));
    }

    [Fact]
    public void OverlappingTensors()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "exits.1.bias");
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Offset), 0);
        Assert.Contains("'exits.1.bias' offset 0 overlaps", Fails(f));
    }

    [Fact]
    public void TensorPastTheEnd()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "exits.1.bias");
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Offset), 1UL << 62);
        Assert.Contains("runs past the data section", Fails(f));
    }

    [Fact]
    public void LengthThatDisagreesWithTheShape()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "exits.1.bias");
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Length), 4);
        Assert.Contains("'exits.1.bias': stored length 4, but F32 [2] needs 8 bytes", Fails(f));
    }

    [Fact]
    public void HugeDimensionsDoNotOverflow()
    {
        var f = Valid();
        var fields = FileSurgery.TensorFields(f, "blocks.0.attn.q.weight");
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Dims), int.MaxValue);
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Dims + 8), int.MaxValue);
        Assert.Contains("'blocks.0.attn.q.weight': stored length", Fails(f));
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(fields.Dims), 1UL << 40);
        Assert.Contains("dimension 0 is 1099511627776", Fails(f));
    }

    [Fact]
    public void NonZeroPaddingBitsInPackedRows()
    {
        var f = Valid();
        using (var t = TensorFile.Open(f))
        {
            // d = 32: each 4-word plane row uses bits 0..31 of its first word; bit 40 is padding.
            long at = t.DataOffset + t.GetTensor("blocks.1.attn.k.weight").Offset;
            f[at + 5] |= 1;
        }
        Assert.Contains("'blocks.1.attn.k.weight' row 0: padding bits past K = 32 are not zero", Fails(f));
    }

    [Fact]
    public void NonZeroPaddingBeforeTheDataSection()
    {
        var f = Valid();
        // The table's last field is the last tensor's length; zeros pad from there to the data section.
        int tableEnd = FileSurgery.TensorFields(f, "exits.1.bias").Length + 8;
        long dataOffset = DataOffset(f);
        Assert.True(tableEnd < dataOffset, "this fixture's table does not end on a 64-byte boundary");
        f[dataOffset - 1] = 7;
        Assert.Contains($"padding byte {dataOffset - 1} before the data section", Fails(f));
    }

    [Fact]
    public void ShapesAreCheckedAgainstTheConfig()
    {
        using var t = TensorFile.Open(Valid());
        string missing = Fails(FileSurgery.Rewrite(t, keepTensor: x => x.Name != "blocks.1.slfn.g2.alpha"), restamp: false);
        Assert.Contains("tensor 'blocks.1.slfn.g2.alpha' is missing (expected f32 [32])", missing);

        string extra = Fails(FileSurgery.Rewrite(t, addMore: w => w.AddF32("blocks.2.ln1.weight", [32], new float[32])), restamp: false);
        Assert.Contains("unexpected tensor 'blocks.2.ln1.weight'", extra);

        string shape = Fails(FileSurgery.Rewrite(t, keepTensor: x => x.Name != "exits.0.weight",
            addMore: w => w.AddF32("exits.0.weight", [3, 32], new float[96])), restamp: false);
        Assert.Contains("tensor 'exits.0.weight' is f32 [3, 32]; the config requires f32 [2, 32]", shape);

        string config = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.DModel ? MetadataValue.FromInt64(64) : v), restamp: false);
        Assert.Contains("the config requires", config);

        string heads = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.NHeads ? MetadataValue.FromInt64(3) : v), restamp: false);
        Assert.Contains("'d_model' = 32 is not a multiple of 'n_heads' = 3", heads);

        string vocab = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.TokenizerVocab ? MetadataValue.FromStringArray(["a"]) : v), restamp: false);
        Assert.Contains("tokenizer vocabulary has 1 tokens; 'vocab_size' = 50", vocab);

        string special = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.TokenizerSepToken ? MetadataValue.FromString("</s>") : v), restamp: false);
        Assert.Contains("special token '</s>' (tokenizer.sep_token) is not in the vocabulary", special);

        string labels = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.Labels ? MetadataValue.FromStringArray(["x"]) : v), restamp: false);
        Assert.Contains("'labels' has 1 names; 'n_classes' = 2", labels);

        string policy = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.Policy ? MetadataValue.FromString("fastest") : v), restamp: false);
        Assert.Contains("'fastest' is not a known policy", policy);

        string threshold = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == "exit.thresholds.entropy_reduction.kappa" ? null : v), restamp: false);
        Assert.Contains("thresholds of policy 'entropy_reduction' lack 'kappa'", threshold);

        string type = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.NLayers ? MetadataValue.FromString("2") : v), restamp: false);
        Assert.Contains("metadata key 'beexformer.n_layers' is String, expected Int64", type);

        string arch = Fails(FileSurgery.Rewrite(t, editMetadata: (k, v) => k == ModelKeys.Architecture ? MetadataValue.FromString("llama") : v), restamp: false);
        Assert.Contains("architecture 'llama'", arch);
    }

    [Fact]
    public void TokenMapOutOfRange()
    {
        using var t = TensorFile.Open(Valid());
        var map = t.I32("embed.tok_map").ToArray();
        map[7] = 40;
        string message = Fails(FileSurgery.Rewrite(t, keepTensor: x => x.Name != "embed.tok_map",
            addMore: w => w.AddI32("embed.tok_map", [50], map)), restamp: false);
        Assert.Contains("'embed.tok_map'[7] = 40; rows are 0..39", message);
    }

    [Fact]
    public void NegativeOrNonFiniteScale()
    {
        using var t = TensorFile.Open(Valid());
        var alpha = t.F32("blocks.0.attn.v.alpha").ToArray();
        alpha[3] = float.NaN;
        string message = Fails(FileSurgery.Rewrite(t, keepTensor: x => x.Name != "blocks.0.attn.v.alpha",
            addMore: w => w.AddF32("blocks.0.attn.v.alpha", [32], alpha)), restamp: false);
        Assert.Contains("'blocks.0.attn.v.alpha'[3] = NaN", message);
    }

    [Fact]
    public void AMissingFileIsFileNotFoundAndAFolderIsNamed()
    {
        // .NET's own type for a missing file, so callers can tell "not there" from "not a model".
        string missing = Path.Combine(Path.GetTempPath(), "no-such-model.bex");
        Assert.Equal(missing, Assert.Throws<FileNotFoundException>(() => ModelFile.Open(missing)).FileName);
        Assert.Contains("is a directory", Assert.Throws<ModelFormatException>(() => ModelFile.Open(Path.GetTempPath())).Message);
    }
}
