using System.IO.Compression;
using BinEngine.Converter;

namespace BinEngine.Tests.ConverterTests;

/// <summary>
/// Damaged checkpoints must fail with <see cref="ConversionException"/> only: byte damage in a
/// safetensors header (where the parser works; damaged weights are still weights), and in the
/// pickle of a torch zip (re-zipped, so the zip's CRC does not catch it first). Fixed seeds.
/// </summary>
public class CheckpointFuzzTests
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
