using System.IO.Compression;
using System.Text.Json.Nodes;
using BinEngine.Converter;

namespace BinEngine.Tests.ConverterTests;

/// <summary>
/// Damaged checkpoints must fail with <see cref="ConversionException"/> only: byte damage in a
/// safetensors header (where the parser works; damaged weights are still weights), and in the
/// pickle of a torch zip (re-zipped, so the zip's CRC does not catch it first). Fixed seeds.
/// </summary>
public class CheckpointFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Iterations = 1000;

    [Fact]
    public void DamagedSafetensorsHeadersOnlyRaiseConversionException()
    {
        byte[] valid = File.ReadAllBytes(Fixtures.Safetensors);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(valid, 0);
        var rng = new Random(2024);
        int rejected = 0;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] file = (byte[])valid.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--)
                file[rng.Next(0, headerEnd)] = (byte)(rng.Next(3) == 0 ? "{}[]\",:0123456789"[rng.Next(17)] : rng.Next(256));
            rejected += Survives(() => Checkpoint.Read(file, "fuzz.safetensors"), i);
        }
        Assert.True(rejected > Iterations / 2, $"only {rejected} of {Iterations} damaged headers were rejected");
    }

    [Fact]
    public void DamagedPicklesOnlyRaiseConversionException()
    {
        byte[] pt = File.ReadAllBytes(Fixtures.Pt);
        byte[] pickle;
        using (var zip = new ZipArchive(new MemoryStream(pt), ZipArchiveMode.Read))
        {
            var ms = new MemoryStream();
            zip.GetEntry("tiny/data.pkl")!.Open().CopyTo(ms);
            pickle = ms.ToArray();
        }
        var others = new List<(string Name, byte[] Data)>();
        using (var zip = new ZipArchive(new MemoryStream(pt), ZipArchiveMode.Read))
            foreach (var e in zip.Entries.Where(e => e.FullName != "tiny/data.pkl"))
            {
                var ms = new MemoryStream();
                e.Open().CopyTo(ms);
                others.Add((e.FullName, ms.ToArray()));
            }

        var rng = new Random(7);
        int rejected = 0;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] damaged = (byte[])pickle.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--)
                damaged[rng.Next(damaged.Length)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0)
                damaged = damaged[..rng.Next(damaged.Length)];
            var output = new MemoryStream();
            using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            {
                using (var s = zip.CreateEntry("tiny/data.pkl", CompressionLevel.NoCompression).Open())
                    s.Write(damaged);
                foreach (var (name, data) in others)
                {
                    using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                    s.Write(data);
                }
            }
            byte[] file = output.ToArray();
            rejected += Survives(() => Checkpoint.Read(file, "fuzz.pt"), i);
        }
        Assert.True(rejected > Iterations / 2, $"only {rejected} of {Iterations} damaged pickles were rejected");
    }

    /// <summary>Random JSON values of every type, the ones a header field must not be mistaken for.</summary>
    private static JsonNode? RandomValue(Random rng) => rng.Next(12) switch
    {
        0 => null,
        1 => JsonValue.Create(rng.Next(2) == 0),
        2 => JsonValue.Create("0"),
        3 => new JsonObject(),
        4 => new JsonArray(),
        5 => new JsonArray(JsonValue.Create(-1), JsonValue.Create(4)),
        6 => JsonValue.Create(1e300),
        7 => JsonValue.Create(0.5),
        8 => JsonValue.Create(long.MaxValue),
        9 => new JsonArray(new JsonArray(JsonValue.Create(0)), JsonValue.Create(8)),
        10 => JsonValue.Create(rng.Next(-3, 100_000)),
        _ => new JsonArray(JsonValue.Create("F32"), null, JsonValue.Create(true)),
    };

    [Fact]
    public void FuzzSafetensorsHeaderTypeConfusionOnlyRaisesConversionException()
    {
        // Issue 17 item 7: byte damage rarely yields a well-formed header with a value of the wrong type, which
        // is what crashed the reader (data_offsets as a string, null, bool, object or array). This fuzzer keeps
        // the JSON valid and replaces 1-3 values anywhere in the header tree (dtype, shape, dims, offsets,
        // whole entries, __metadata__) by values of other types, then re-frames the file.
        byte[] valid = File.ReadAllBytes(Fixtures.Safetensors);
        int headerLength = (int)BitConverter.ToUInt64(valid, 0);
        byte[] data = valid[(8 + headerLength)..];
        string header = System.Text.Encoding.UTF8.GetString(valid, 8, headerLength);
        var rng = new Random(1707);
        int rejected = 0;
        for (int i = 0; i < Iterations; i++)
        {
            var root = JsonNode.Parse(header)!.AsObject();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                // Walk down from the root to a random depth, then replace what is there.
                JsonNode node = root;
                while (true)
                {
                    var children = node switch
                    {
                        JsonObject o => o.Select(p => (Key: (object)p.Key, Value: p.Value)).ToList(),
                        JsonArray a => a.Select((v, j) => (Key: (object)j, Value: v)).ToList(),
                        _ => [],
                    };
                    if (children.Count == 0) break;
                    var (key, value) = children[rng.Next(children.Count)];
                    if (value is (JsonObject or JsonArray) && rng.Next(3) != 0) { node = value; continue; }
                    if (node is JsonObject obj) obj[(string)key] = RandomValue(rng);
                    else ((JsonArray)node)[(int)key] = RandomValue(rng);
                    break;
                }
            }
            byte[] json = System.Text.Encoding.UTF8.GetBytes(root.ToJsonString());
            var file = new byte[8 + json.Length + data.Length];
            BitConverter.TryWriteBytes(file, (ulong)json.Length);
            json.CopyTo(file, 8);
            data.CopyTo(file, 8 + json.Length);
            rejected += Survives(() => Checkpoint.Read(file, "confused.safetensors"), i);
        }
        output.WriteLine($"header type confusion: {Iterations} cases, {rejected} refused with ConversionException, {Iterations - rejected} read, 0 other exceptions");
        Assert.True(rejected > Iterations / 2, $"only {rejected} of {Iterations} confused headers were rejected");
    }

    [Fact]
    public void FuzzZipStructureLiesOnlyRaiseConversionExceptionInBoundedMemory()
    {
        // Issue 17 item 6: the zip's own bookkeeping lied (declared sizes, CRCs, flags, duplicated names). This
        // fuzzer overwrites 1-3 fields of the central directory or the local headers of the fixture .pt (sizes,
        // CRC, flags, method, name bytes) with random or extreme values; every read must fail with a
        // ConversionException or succeed, and never allocate more than the documented budgets allow.
        byte[] valid = File.ReadAllBytes(Fixtures.Pt);
        var central = new List<int>();
        var local = new List<int>();
        for (int p = 0; p + 4 <= valid.Length; p++)
        {
            if (valid[p] != 'P' || valid[p + 1] != 'K') continue;
            if (valid[p + 2] == 1 && valid[p + 3] == 2) central.Add(p);
            if (valid[p + 2] == 3 && valid[p + 3] == 4) local.Add(p);
        }
        // (offset in the header, width): central: flags 8, method 10, crc 16, compressed 20, size 24, name 46;
        // local: flags 6, method 8, crc 14, compressed 18, size 22, name 30.
        (int, int)[] centralFields = [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (46, 1), (47, 1)];
        (int, int)[] localFields = [(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (30, 1)];
        uint[] extremes = [0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, (uint)valid.Length, (uint)valid.Length * 2, 8 << 20];
        long budget = 2 * valid.Length + TorchZipReader.EntryBudget(valid.Length) + TorchZipReader.TensorBudget(valid.Length) + (64L << 20);
        var rng = new Random(1706);
        int rejected = 0;
        long most = 0;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] file = (byte[])valid.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                bool inCentral = rng.Next(2) == 0;
                int header = inCentral ? central[rng.Next(central.Count)] : local[rng.Next(local.Count)];
                var (offset, width) = inCentral ? centralFields[rng.Next(centralFields.Length)] : localFields[rng.Next(localFields.Length)];
                uint value = rng.Next(2) == 0 ? extremes[rng.Next(extremes.Length)] : (uint)rng.Next();
                for (int b = 0; b < width; b++)
                    file[header + offset + b] = offset >= 30 && width == 1 ? (byte)"/0123456789atdpkl."[rng.Next(18)] : (byte)(value >> (8 * b));
            }
            // A central CRC that no longer matches, or the encryption flag, must be refused whatever else changed.
            bool mustRefuse = central.Any(h => (file[h + 8] & 1) != 0 || !file.AsSpan(h + 16, 4).SequenceEqual(valid.AsSpan(h + 16, 4)));
            long before = GC.GetAllocatedBytesForCurrentThread();
            Checkpoint? read = null;
            rejected += Survives(() => read = Checkpoint.Read(file, "lying.pt"), i);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (read is not null)
            {
                Assert.False(mustRefuse, $"iteration {i}: a wrong CRC-32 or the encryption flag was accepted");
                // What is read is what the archive really holds: the fixture's tensors, byte for byte.
                foreach (var (tensorName, tensor) in read.Tensors)
                    Assert.True(tensor.Data.AsSpan().SequenceEqual(Fixtures.TinyCheckpoint.Tensors[tensorName].Data), $"iteration {i}: '{tensorName}' differs");
            }
            most = Math.Max(most, allocated);
            Assert.True(allocated < budget, $"iteration {i}: {allocated:N0} bytes allocated reading a {file.Length:N0}-byte archive (budget {budget:N0})");
        }
        output.WriteLine($"zip structure lies: {Iterations} cases, {rejected} refused, {Iterations - rejected} read, 0 other exceptions; most allocated {most:N0} bytes (budget {budget:N0})");
        Assert.True(rejected > Iterations / 2, $"only {rejected} of {Iterations} lying archives were rejected (most allocated: {most:N0})");
    }

    [Fact]
    public void FuzzTensorViewAmplificationStaysWithinTheBudget()
    {
        // Issue 17 item 6: stride-0 and overlapping views multiply a small storage. Random state_dicts of 1-16 views
        // (sizes up to 2^19, strides 0, 1 or random, offsets) of one small storage: each either reads with all
        // tensors together inside TorchZipReader.TensorBudget, or is refused with a ConversionException.
        var rng = new Random(1708);
        int rejected = 0, accepted = 0, overBudget = 0;
        const int Cases = 300;
        for (int c = 0; c < Cases; c++)
        {
            int numel = rng.Next(1, 4096);
            var pickle = new System.Text.StringBuilder("\u0080\u0002}(");
            int views = rng.Next(1, 17);
            for (int v = 0; v < views; v++)
            {
                int dims = rng.Next(1, 4);
                var size = new int[dims];
                var stride = new int[dims];
                for (int d = 0; d < dims; d++)
                {
                    // Large dimensions are mostly expanded (stride 0), as torch's expand makes them; the rest must
                    // stay inside the storage, or the view is refused for its bounds before its size matters.
                    size[d] = rng.Next(5) == 0 ? rng.Next(1 << 19) : rng.Next(16);
                    stride[d] = size[d] >= 16 && rng.Next(4) != 0 ? 0 : rng.Next(3) switch { 0 => 0, 1 => 1, _ => rng.Next(numel / 64 + 1) };
                }
                pickle.Append($"X\u0004\0\0\0t{v:000}ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storagectorch\nLongStorage\n" +
                    $"X\u0001\0\0\00X\u0003\0\0\0cpuJ{Le32(numel)}tQJ{Le32(rng.Next(4) == 0 ? rng.Next(8) : 0)}(");
                foreach (int x in size) pickle.Append('J').Append(Le32(x));
                pickle.Append("t(");
                foreach (int x in stride) pickle.Append('J').Append(Le32(x));
                pickle.Append("t\u0089ccollections\nOrderedDict\n)RtR");
            }
            pickle.Append("u.");
            var output = new MemoryStream();
            using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            {
                using (var s = zip.CreateEntry("v/data.pkl", CompressionLevel.NoCompression).Open())
                    s.Write(System.Text.Encoding.Latin1.GetBytes(pickle.ToString()));
                using (var s = zip.CreateEntry("v/data/0", CompressionLevel.NoCompression).Open())
                    s.Write(new byte[numel * 8]);
            }
            byte[] file = output.ToArray();
            try
            {
                var checkpoint = Checkpoint.Read(file, "views.pt");
                long total = checkpoint.Tensors.Values.Sum(t => (long)t.Data.Length);
                Assert.True(total <= TorchZipReader.TensorBudget(file.Length), $"case {c}: {total:N0} bytes materialized from {file.Length:N0}");
                accepted++;
            }
            catch (ConversionException e)
            {
                rejected++;
                if (e.Message.Contains("all tensors together", StringComparison.Ordinal)) overBudget++;
            }
        }
        output.WriteLine($"view amplification: {Cases} cases, {accepted} read within the budget, {rejected} refused ({overBudget} for the total budget, the rest for bounds)");
        Assert.Equal(Cases, accepted + rejected);
        Assert.True(accepted > Cases / 10 && overBudget > Cases / 10, $"{accepted} accepted, {overBudget} over the budget: the generator should produce both often");
    }

    private static string Le32(int v) => new([(char)(v & 0xff), (char)((v >> 8) & 0xff), (char)((v >> 16) & 0xff), (char)((v >> 24) & 0xff)]);

    /// <summary>1 when the read failed with ConversionException, 0 when it succeeded; any other exception fails the test.</summary>
    private static int Survives(Func<Checkpoint> read, int iteration)
    {
        try
        {
            read();
            return 0;
        }
        catch (ConversionException)
        {
            return 1;
        }
        catch (Exception e)
        {
            Assert.Fail($"iteration {iteration}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            return 0;
        }
    }
}
