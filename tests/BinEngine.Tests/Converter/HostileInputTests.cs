using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using BinEngine.Converter;

namespace BinEngine.Tests.ConverterTests;

/// <summary>Broken and hostile checkpoints, configs and vocabularies: each fails with a ConversionException that says what and where.</summary>
public class HostileInputTests
{
    private static string Fails(Func<object> action) => Assert.Throws<ConversionException>(action).Message;

    // ---- safetensors -------------------------------------------------------------------------

    /// <summary>A safetensors file written by hand: (name, dtype, shape, data) in order.</summary>
    private static byte[] Safetensors(IEnumerable<(string Name, string DType, long[] Shape, byte[] Data)> tensors, string? headerOverride = null, int extraData = 0)
    {
        var header = new Dictionary<string, object>();
        var data = new MemoryStream();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            header[name] = new { dtype, shape, data_offsets = new[] { data.Length, data.Length + bytes.Length } };
            data.Write(bytes);
        }
        byte[] json = Encoding.UTF8.GetBytes(headerOverride ?? JsonSerializer.Serialize(header));
        data.Write(new byte[extraData]);
        var file = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        data.ToArray().CopyTo(file, 8 + json.Length);
        return file;
    }

    /// <summary>The fixture's tensors as safetensors entries, with one replaced or dropped.</summary>
    private static byte[] FixtureSafetensors(string? replace = null, (string DType, long[] Shape, byte[] Data)? with = null) =>
        Safetensors(Fixtures.TinyCheckpoint.Tensors.Values
            .Where(t => t.Name != replace || with is not null)
            .Select(t => t.Name == replace ? (t.Name, with!.Value.DType, with.Value.Shape, with.Value.Data) : (t.Name, t.DType.ToString().ToUpperInvariant(), t.Shape, t.Data)));

    private static string ConvertFails(byte[] checkpoint, Action<System.Text.Json.Nodes.JsonObject>? edit = null) =>
        Fails(() => Fixtures.Convert(edit, Checkpoint.Read(checkpoint, "hostile")));

    [Fact]
    public void HandWrittenSafetensorsOfTheFixtureConverts()
    {
        // The helper itself is right: unmodified, it converts to the same data as the .pt.
        var (file, _) = Fixtures.Convert(checkpoint: Checkpoint.Read(FixtureSafetensors(), "hand"));
        Assert.Equal(Fixtures.TinyModel.AsSpan(^2000..).ToArray(), file.AsSpan(^2000..).ToArray());
    }

    [Fact]
    public void WrongDtype()
    {
        var ints = new byte[32 * 8];
        Assert.Contains("tensor 'embed.ln.weight' has dtype I64; a float tensor", ConvertFails(FixtureSafetensors("embed.ln.weight", ("I64", [32], ints))));
        Assert.Contains("tensor 'embed.tok_map' has dtype F32; an integer tensor", ConvertFails(FixtureSafetensors("embed.tok_map", ("F32", [50], new byte[200]))));
        Assert.Contains("has dtype F64", ConvertFails(FixtureSafetensors("exits.0.bias", ("F64", [2], new byte[16]))));
        Assert.Contains("unsupported dtype 'F8_E4M3'", ConvertFails(FixtureSafetensors("exits.0.bias", ("F8_E4M3", [2], new byte[2]))));
    }

    [Fact]
    public void MissingTensor() =>
        Assert.Contains("tensor 'exits.1.bias' is missing", ConvertFails(FixtureSafetensors("exits.1.bias")));

    [Fact]
    public void ShapeMismatch()
    {
        Assert.Contains("tensor 'blocks.0.slfn.g1.weight' has shape [32, 64]; the config requires [64, 32]",
            ConvertFails(FixtureSafetensors("blocks.0.slfn.g1.weight", ("F32", [32, 64], new byte[32 * 64 * 4]))));
        Assert.Contains("'embed.tok.weight' has shape [40, 32]; expected [V' ≤ 50, d_model = 48]", ConvertFails(FixtureSafetensors(), c => c["d_model"] = 48));
    }

    [Fact]
    public void NonFiniteWeight()
    {
        var data = new byte[2 * 4];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), float.NaN);
        Assert.Contains("tensor 'exits.0.bias' element 1 is NaN", ConvertFails(FixtureSafetensors("exits.0.bias", ("F32", [2], data))));
    }

    [Fact]
    public void TokenMapOutOfRange()
    {
        var map = new byte[50 * 8];
        BinaryPrimitives.WriteInt64LittleEndian(map.AsSpan(8 * 9), 40);
        Assert.Contains("'embed.tok_map'[9] = 40; rows of 'embed.tok.weight' are 0..39", ConvertFails(FixtureSafetensors("embed.tok_map", ("I64", [50], map))));
    }

    [Fact]
    public void BrokenSafetensorsHeaders()
    {
        var valid = FixtureSafetensors();
        Assert.Contains("does not fit", ConvertFails(valid[..100]));
        var lying = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(lying, ulong.MaxValue);
        Assert.Contains("header length 18446744073709551615 does not fit", ConvertFails(lying));
        Assert.Contains("lie outside", ConvertFails(valid[..^4]));
        Assert.Contains("not valid UTF-8 JSON", ConvertFails(Safetensors([], "{\"a\": ")));
        Assert.Contains("data_offsets span 4 bytes; F32 [2] needs 8",
            ConvertFails(Safetensors([], "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}    ", extraData: 8)));
        Assert.Contains("names 'x' twice",
            ConvertFails(Safetensors([], "{\"x\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}, \"x\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}")));
        Assert.Contains("not a dimension", ConvertFails(Safetensors([], "{\"x\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 0]}}")));
    }

    [Theory]
    [InlineData("\"0\"")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("{}")]
    [InlineData("[]")]
    public void DataOffsetsOfTheWrongJsonTypeNameTheTensor(string bad)
    {
        // Issue 17 item 7: each of these crashed the process (InvalidOperationException out of TryGetInt64).
        string header = $"{{\"w\": {{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [{bad}, 4]}}}}";
        Assert.Contains("tensor 'w': 'data_offsets' is [" + bad + ", 4], not [begin, end]", ConvertFails(Safetensors([], header, extraData: 4)));
        string whole = $"{{\"w\": {{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {bad}}}}}";
        Assert.Contains("tensor 'w': 'data_offsets' is " + bad + ", not [begin, end]", ConvertFails(Safetensors([], whole, extraData: 4)));
    }

    [Fact]
    public void OverlappingDataOffsetsAreRefused()
    {
        string header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}";
        Assert.Contains("tensor 'b' data_offsets [4, 12) overlap tensor 'a' [0, 8)", ConvertFails(Safetensors([], header, extraData: 12)));
        // The same bytes named twice overlap as well; an empty tensor anywhere does not.
        string twice = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
        Assert.Contains("overlap", ConvertFails(Safetensors([], twice, extraData: 8)));
        string empty = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}";
        Assert.Equal(2, Checkpoint.Read(Safetensors([], empty, extraData: 8), "empty").Tensors.Count);
    }

    // ---- torch zip + pickle ------------------------------------------------------------------

    private static byte[] FixturePt => File.ReadAllBytes(Fixtures.Pt);

    /// <summary>The fixture .pt with data.pkl replaced by <paramref name="pickle"/>.</summary>
    private static byte[] WithPickle(byte[] pickle)
    {
        var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(FixturePt), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                var copy = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression);
                using var to = copy.Open();
                if (entry.FullName == "tiny/data.pkl")
                    to.Write(pickle);
                else
                    entry.Open().CopyTo(to);
            }
        }
        return output.ToArray();
    }

    private static byte[] Pickle(string ascii) => Encoding.Latin1.GetBytes(ascii);

    [Fact]
    public void RewrittenZipStillConverts()
    {
        // The zip rewriting helper keeps a valid checkpoint valid, so the failures below are the pickles'.
        byte[] original;
        using (var zip = new ZipArchive(new MemoryStream(FixturePt), ZipArchiveMode.Read))
        {
            var ms = new MemoryStream();
            zip.GetEntry("tiny/data.pkl")!.Open().CopyTo(ms);
            original = ms.ToArray();
        }
        Assert.Equal(49, Checkpoint.Read(WithPickle(original), "rewritten").Tensors.Count);
    }

    [Fact]
    public void ForbiddenGlobalsAreRefusedBeforeAnythingRuns()
    {
        string marker = Path.Combine(Path.GetTempPath(), "binengine-pwned-" + Guid.NewGuid().ToString("N"));
        // pickle.dumps of an object whose __reduce__ is (os.system, ("touch marker",)), protocol 2.
        byte[] system = Pickle($"\u0080\u0002cposix\nsystem\nq\u0000X{(char)(6 + marker.Length)}\0\0\0touch {marker}q\u0001\u0085q\u0002Rq\u0003.");
        string message = Fails(() => Checkpoint.Read(WithPickle(system), "evil.pt"));
        Assert.Contains("global 'posix.system' is not allowed", message);
        Assert.False(File.Exists(marker));

        byte[] eval = Pickle("\u0080\u0002c__builtin__\neval\nq\u0000X\u000c\0\0\0__import__()\u0085R.");
        Assert.Contains("global '__builtin__.eval' is not allowed", Fails(() => Checkpoint.Read(WithPickle(eval), "evil.pt")));
        byte[] builtins = Pickle("\u0080\u0004\u008c\u0008builtins\u008c\u0004eval\u0093\u008c\u00011\u0085R.");
        Assert.Contains("global 'builtins.eval' is not allowed", Fails(() => Checkpoint.Read(WithPickle(builtins), "evil.pt")));
        byte[] torchLoad = Pickle("\u0080\u0002ctorch\nload\n)R.");
        Assert.Contains("global 'torch.load' is not allowed", Fails(() => Checkpoint.Read(WithPickle(torchLoad), "evil.pt")));
    }

    [Fact]
    public void ForbiddenOpcodesAndMisusedGlobals()
    {
        Assert.Contains("opcode 0x69 (INST)", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002(iposix\nsystem\n.")), "evil.pt")));
        Assert.Contains("opcode 0x81 (NEWOBJ)", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002ccollections\nOrderedDict\n)\u0081.")), "evil.pt")));
        Assert.Contains("opcode 0x53 (STRING)", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002S'x'\n.")), "evil.pt")));
        Assert.Contains("torch.FloatStorage cannot be called", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002ctorch\nFloatStorage\n)R.")), "evil.pt")));
        Assert.Contains("BUILD of a global", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002ctorch\nFloatStorage\n}b.")), "evil.pt")));
        Assert.Contains("the pickled object is a list", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002].")), "evil.pt")));
        Assert.Contains("entry 'a' is a int, not a tensor", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002}X\u0001\0\0\0aK\u0001s.")), "evil.pt")));
        Assert.Contains("ends without STOP", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002}")), "evil.pt")));
        Assert.Contains("stack underflow", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002R.")), "evil.pt")));
        Assert.Contains("memo 5 was never stored", Fails(() => Checkpoint.Read(WithPickle(Pickle("\u0080\u0002h\u0005.")), "evil.pt")));
    }

    [Fact]
    public void TensorViewsAndStoragesAreBoundsChecked()
    {
        // {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 50), offset, (size,), (1,), False, OrderedDict())}
        static byte[] TensorPickle(int offset, int size, string key = "0") => Pickle(
            "\u0080\u0002}X\u0001\0\0\0wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nLongStorage\n" +
            $"X{(char)key.Length}\0\0\0{key}X\u0003\0\0\0cpuK\u0032tQK{(char)offset}K{(char)size}\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        Assert.Equal(50, Checkpoint.Read(WithPickle(TensorPickle(0, 50)), "ok.pt").Tensors["w"].ElementCount);
        // Stride-0 views of one element (torch's expand) with huge shapes: refused, never allocated.
        static byte[] Expanded(string secondDim) => Pickle(
            "\u0080\u0002}X\u0001\0\0\0wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nLongStorage\n" +
            "X\u0001\0\0\00X\u0003\0\0\0cpuK\u0032tQK\0J\u00ff\u00ff\u00ff\u007f" + secondDim + "\u0086K\0K\0\u0086\u0089ccollections\nOrderedDict\n)RtRs.");
        Assert.Contains("size [2147483647, 4] would materialize 68719476704 bytes", Fails(() => Checkpoint.Read(WithPickle(Expanded("K\u0004")), "evil.pt")));
        Assert.Contains("overflow 64 bits", Fails(() => Checkpoint.Read(WithPickle(Expanded("J\u00ff\u00ff\u00ff\u007f")), "evil.pt")));
        Assert.Contains("reaches element 50 of a 50-element storage", Fails(() => Checkpoint.Read(WithPickle(TensorPickle(1, 50)), "evil.pt")));
        Assert.Contains("'tiny/data/99' is not in the archive", Fails(() => Checkpoint.Read(WithPickle(TensorPickle(0, 1, "99")), "evil.pt")));
        Assert.Contains("storage '1' is 5120 bytes; 50 × I64 needs 400", Fails(() => Checkpoint.Read(WithPickle(TensorPickle(0, 1, "1")), "evil.pt")));
    }

    [Fact]
    public void CompressedEntryThatClaimsMoreThanTheArchiveIsRefused()
    {
        // 8 MiB of zeros deflates to a few kB: a small file whose storage claims 8 MiB.
        const int Floats = 2 << 20;
        byte[] pickle = Pickle("\u0080\u0002}X\u0001\0\0\0wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nFloatStorage\n" +
            "X\u0001\0\0\00X\u0003\0\0\0cpuJ\0\0\u0020\0tQK\0J\0\0\u0020\0\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var p = zip.CreateEntry("bomb/data.pkl", CompressionLevel.NoCompression).Open())
                p.Write(pickle);
            using var d = zip.CreateEntry("bomb/data/0", CompressionLevel.Optimal).Open();
            d.Write(new byte[Floats * 4]);
        }
        Assert.True(output.Length < 100_000);
        Assert.Contains("refusing a possible zip bomb", Fails(() => Checkpoint.Read(output.ToArray(), "bomb.pt")));
    }

    /// <summary>A zip of uncompressed entries (name, bytes), in order; duplicates allowed.</summary>
    private static byte[] Zip(params (string Name, byte[] Data, CompressionLevel Level)[] entries)
    {
        var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (entryName, data, level) in entries)
            {
                using var s = zip.CreateEntry(entryName, level).Open();
                s.Write(data);
            }
        return output.ToArray();
    }

    /// <summary>The fixture's entries, as (name, bytes).</summary>
    private static List<(string Name, byte[] Data, CompressionLevel Level)> FixtureEntries()
    {
        var entries = new List<(string, byte[], CompressionLevel)>();
        using var zip = new ZipArchive(new MemoryStream(FixturePt), ZipArchiveMode.Read);
        foreach (var e in zip.Entries)
        {
            var ms = new MemoryStream();
            e.Open().CopyTo(ms);
            entries.Add((e.FullName, ms.ToArray(), CompressionLevel.NoCompression));
        }
        return entries;
    }

    /// <summary>Offset of the central-directory header of <paramref name="entryName"/> in <paramref name="zip"/>.</summary>
    private static int CentralHeader(byte[] zip, string entryName)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(entryName);
        for (int i = 0; i + 46 <= zip.Length; i++)
        {
            if (zip[i] != 'P' || zip[i + 1] != 'K' || zip[i + 2] != 1 || zip[i + 3] != 2) continue;
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 28));
            if (zip.AsSpan(i + 46, nameLength).SequenceEqual(nameBytes)) return i;
        }
        throw new InvalidOperationException("no central header for " + entryName);
    }

    [Fact]
    public void EntryWhoseCrcDoesNotMatchIsRefused()
    {
        // Issue 17 item 6: damage inside a stored storage entry converted (rc 0).
        byte[] pt = FixturePt;
        var storage = FixtureEntries().First(e => e.Name == "tiny/data/1").Data;
        int at = pt.AsSpan().IndexOf(storage);
        Assert.True(at > 0);
        pt[at + storage.Length / 2] ^= 0x40;
        Assert.Contains("zip entry 'tiny/data/1' has CRC-32", Fails(() => Checkpoint.Read(pt, "damaged.pt")));
    }

    [Fact]
    public void EncryptedEntryIsRefused()
    {
        // Bit 0 of the general-purpose flags (central directory, offset 8) marks an entry encrypted.
        byte[] pt = FixturePt;
        pt[CentralHeader(pt, "tiny/data/0") + 8] |= 1;
        Assert.Contains("zip entry 'tiny/data/0' is encrypted", Fails(() => Checkpoint.Read(pt, "encrypted.pt")));
    }

    [Fact]
    public void DuplicatedEntryNamesAreRefused()
    {
        // torch.load reads the last copy of a name, ZipArchive.GetEntry the first: refuse rather than pick.
        var entries = FixtureEntries();
        var storage = entries.First(e => e.Name == "tiny/data/1");
        entries.Add((storage.Name, new byte[storage.Data.Length], CompressionLevel.NoCompression));
        Assert.Contains("zip entry 'tiny/data/1' is stored twice", Fails(() => Checkpoint.Read(Zip([.. entries]), "twice.pt")));
    }

    /// <summary>{'w': a FloatStorage of <paramref name="floats"/> elements, viewed whole}.</summary>
    private static byte[] FloatTensorPickle(int floats) => Pickle(
        "\u0080\u0002}X\u0001\0\0\0wctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nFloatStorage\n" +
        $"X\u0001\0\0\00X\u0003\0\0\0cpuJ{Le32(floats)}tQK\0J{Le32(floats)}\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");

    private static string Le32(int v) => new([(char)(v & 0xff), (char)((v >> 8) & 0xff), (char)((v >> 16) & 0xff), (char)((v >> 24) & 0xff)]);

    [Fact]
    public void CentralDirectoryThatLiesAboutAnUnreadEntryDoesNotRaiseTheZipBombBound()
    {
        // Issue 17 item 6: the bound was the sum of declared compressed sizes, so an entry that is never
        // read but claims 2 GB let a deflate bomb through (a 384 KB file used 818 MB).
        const int Floats = 2 << 20; // 8 MiB of zeros, deflated to a few kB
        byte[] zip = Zip(("bomb/data.pkl", FloatTensorPickle(Floats), CompressionLevel.NoCompression),
            ("bomb/data/0", new byte[Floats * 4], CompressionLevel.Optimal),
            ("bomb/liar", new byte[16], CompressionLevel.NoCompression));
        BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(CentralHeader(zip, "bomb/liar") + 20), int.MaxValue);
        Assert.True(zip.Length < 100_000);
        Assert.Contains("refusing a possible zip bomb", Fails(() => Checkpoint.Read(zip, "liar.pt")));
        // The same storage, honestly stored, converts: the bound is on what the archive really holds.
        byte[] honest = Zip(("bomb/data.pkl", FloatTensorPickle(Floats), CompressionLevel.NoCompression),
            ("bomb/data/0", new byte[Floats * 4], CompressionLevel.NoCompression));
        Assert.Equal(Floats, Checkpoint.Read(honest, "honest.pt").Tensors["w"].ElementCount);
    }

    [Fact]
    public void ManyExpandedViewsAreBoundedTogether()
    {
        // Issue 17 item 6: stride-0 views were capped one at a time (64 × the archive each), not in total.
        // 12 views of one 8-byte element, each [2^20] (8 MiB): 96 MiB from a file of a few kB.
        var pickle = new StringBuilder("\u0080\u0002}(");
        for (int i = 0; i < 12; i++)
            pickle.Append($"X\u0002\0\0\0w{(char)('a' + i)}ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nLongStorage\n" +
                $"X\u0001\0\0\00X\u0003\0\0\0cpuK\u0001tQK\0J{Le32(1 << 20)}\u0085K\0\u0085\u0089ccollections\nOrderedDict\n)RtR");
        pickle.Append("u.");
        byte[] zip = Zip(("views/data.pkl", Pickle(pickle.ToString()), CompressionLevel.NoCompression),
            ("views/data/0", new byte[8], CompressionLevel.NoCompression));
        string message = Fails(() => Checkpoint.Read(zip, "views.pt"));
        Assert.Contains("would materialize 8388608 bytes", message);
        Assert.Contains("all tensors together may take", message);
        // One such view is within the bound.
        byte[] one = Zip(("views/data.pkl", Pickle(pickle.ToString()[..(pickle.ToString().IndexOf("X\u0002\0\0\0wb", StringComparison.Ordinal))] + "u."), CompressionLevel.NoCompression),
            ("views/data/0", new byte[8], CompressionLevel.NoCompression));
        Assert.Equal(1 << 20, Checkpoint.Read(one, "one.pt").Tensors["wa"].ElementCount);
    }

    [Fact]
    public void PickleMemoBombIsRefusedWithinBoundedMemory()
    {
        // Issue 17 item 6: one-byte EMPTY_DICTs collapsed into tuples (and memoized) kept the stack small
        // while building ~70 bytes per pickle byte: 1.1 GB before the stack bound refused anything.
        var bomb = new MemoryStream();
        bomb.Write([0x80, 0x02]);
        for (int round = 0; round < 16; round++)
        {
            bomb.WriteByte((byte)'(');
            for (int i = 0; i < 500_000; i++) { bomb.WriteByte((byte)'}'); bomb.WriteByte(0x94); }
            bomb.WriteByte((byte)'t');
        }
        bomb.WriteByte((byte)'.');
        byte[] zip = WithPickle(bomb.ToArray());
        long before = GC.GetAllocatedBytesForCurrentThread();
        string message = Fails(() => Checkpoint.Read(zip, "memo.pt"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains($"more than {RestrictedUnpickler.MaxObjects} objects pushed or memoized", message);
        Assert.True(allocated < 256L << 20, $"{allocated:N0} bytes allocated refusing a {bomb.Length:N0}-byte pickle");
    }

    [Fact]
    public void TruncatedZip()
    {
        var pt = FixturePt;
        foreach (int length in new[] { 10, pt.Length / 2, pt.Length - 1 })
            Assert.Contains("not a readable zip archive", Fails(() => Checkpoint.Read(pt[..length], "truncated.pt")));
    }

    [Fact]
    public void LegacyPickleIsExplained() =>
        Assert.Contains("legacy torch.save format", Fails(() => Checkpoint.Read(Pickle("\u0080\u0002}."), "legacy.pt")));

    // ---- config and vocabulary ----------------------------------------------------------------

    [Fact]
    public void BadConfigs()
    {
        Assert.Contains("config lacks 'd_ff'", Fails(() => Fixtures.Convert(c => c.Remove("d_ff"))));
        Assert.Contains("config 'd_model' = 32.5; an integer is required", Fails(() => Fixtures.Convert(c => c["d_model"] = 32.5)));
        Assert.Contains("'act_bits' = 3; expected one of 1, 2, 4, 8, 32", Fails(() => Fixtures.Convert(c => c["act_bits"] = 3)));
        Assert.Contains("'labels' has 3 names; 'n_classes' = 2", Fails(() => Fixtures.Convert(c => c["labels"] = new System.Text.Json.Nodes.JsonArray("a", "b", "c"))));
        Assert.Contains("thresholds for unknown policy 'fast'", Fails(() => Fixtures.Convert(c => c["thresholds"]!["fast"] = new System.Text.Json.Nodes.JsonObject { ["tau"] = 1 })));
        Assert.Contains("threshold patience.t = 1.5; expected a positive integer", Fails(() => Fixtures.Convert(c => c["thresholds"]!["patience"]!["t"] = 1.5)));
        Assert.Contains("not valid JSON", Fails(() => SourceConfig.Parse("{", "cfg")));
    }

    [Fact]
    public void VocabularyMustMatchTheConfig()
    {
        var config = SourceConfig.Parse(Fixtures.ConfigJson(), "cfg");
        Assert.Contains("the vocabulary has 3 tokens; config 'vocab_size' = 50",
            Fails(() => ModelConverter.ConvertToBytes(Fixtures.TinyCheckpoint, config, ["a", "b", "c"], true, "x")));
        var noCls = File.ReadAllLines(Fixtures.VocabPath);
        noCls[2] = "[BOS]";
        Assert.Contains("special token '[CLS]' is not in the vocabulary", Fails(() => ModelConverter.ConvertToBytes(Fixtures.TinyCheckpoint, config, noCls, true, "x")));
    }

    [Fact]
    public void MissingConfigOrVocabularyIsExplained()
    {
        string dir = Path.Combine(Path.GetTempPath(), "binengine-conv-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string pt = Path.Combine(dir, "m.pt");
            File.Copy(Fixtures.Pt, pt);
            Assert.Contains("pass --config config.json", Fails(() => ModelConverter.ConvertToBytes(pt, new ConvertOptions())));
            Assert.Contains("pass --vocab vocab.txt or --tokenizer-json", Fails(() => ModelConverter.ConvertToBytes(pt, new ConvertOptions { ConfigPath = Fixtures.ConfigPath })));
            Assert.Contains("does not exist", Fails(() => ModelConverter.ConvertToBytes(Path.Combine(dir, "none.pt"), new ConvertOptions())));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TokenizerJsonVocabulary()
    {
        string path = Path.GetTempFileName();
        try
        {
            var vocab = File.ReadAllLines(Fixtures.VocabPath).Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
            File.WriteAllText(path, JsonSerializer.Serialize(new { normalizer = new { lowercase = false }, model = new { vocab } }));
            var (tokens, lowercase) = Vocabulary.ReadTokenizerJson(path);
            Assert.Equal(File.ReadAllLines(Fixtures.VocabPath), tokens);
            Assert.False(lowercase);
            vocab["[PAD]"] = 3;
            File.WriteAllText(path, JsonSerializer.Serialize(new { model = new { vocab } }));
            Assert.Contains("id 3 is given to both", Fails(() => Vocabulary.ReadTokenizerJson(path)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void WrapperPrefixesAreStripped()
    {
        var wrapped = Fixtures.TinyCheckpoint.Tensors.ToDictionary(kv => "module." + kv.Key, kv => kv.Value);
        var mapped = TensorNameMap.Map(wrapped);
        Assert.Equal(Fixtures.TinyCheckpoint.Tensors.Keys.Order(), mapped.Keys.Order());
        var mixed = new Dictionary<string, SourceTensor>(wrapped) { ["other"] = wrapped.Values.First() };
        Assert.Same(mixed, TensorNameMap.Map(mixed));
    }
}
