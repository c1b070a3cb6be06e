using System.Buffers.Binary;
using BinEngine.ModelFile;
using BinEngine.Tests.ConverterTests;
using ModelFileReader = BinEngine.ModelFile.ModelFile;

namespace BinEngine.Tests.ModelFileTests;

/// <summary>
/// Mutates and truncates a valid model file thousands of times: opening it must either succeed
/// or throw <see cref="ModelFormatException"/> — no other exception, no crash, no hang, no
/// allocation out of proportion to the file. Three kinds of damage: raw byte flips (caught by the
/// checksums), flips with the checksums re-stamped (so the parser meets hostile counts, offsets,
/// lengths, types and strings), and truncations. Seeds are fixed, so a failure reproduces.
/// </summary>
public class FuzzTests
{
    /// <summary>2000 per kind in the suite; set BINENGINE_FUZZ_ITERATIONS for a deeper run.</summary>
    private static readonly int Iterations =
        int.TryParse(Environment.GetEnvironmentVariable("BINENGINE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 2000;

    public static TheoryData<string> Kinds => ["raw", "restamped", "restamped-head", "truncated"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void OnlyModelFormatExceptionComesOut(string kind)
    {
        byte[] valid = Fixtures.TinyModel;
        int dataOffset = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid.AsSpan(32));
        var rng = new Random(kind.GetHashCode(StringComparison.Ordinal) & 0xFFFF ^ 12345);
        int opened = 0, rejected = 0;
        long allocationLimit = 32L * valid.Length + (1 << 20);
        Span<float> row = stackalloc float[32];

        for (int i = 0; i < Iterations; i++)
        {
            byte[] file = (byte[])valid.Clone();
            switch (kind)
            {
                case "raw":
                    Mutate(file, rng, 0, file.Length);
                    break;
                case "restamped":
                    Mutate(file, rng, 0, file.Length);
                    FileSurgery.Restamp(file);
                    break;
                case "restamped-head":
                    Mutate(file, rng, 0, dataOffset);
                    FileSurgery.Restamp(file);
                    break;
                default:
                    file = file[..rng.Next(0, file.Length)];
                    if (rng.Next(2) == 0)
                        FileSurgery.Restamp(file);
                    break;
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                using var model = ModelFileReader.Open(file);
                // What opened must also be usable without a crash.
                for (int id = 0; id < model.Config.VocabSize; id++)
                    model.TokenEmbedding(id, row);
                foreach (var t in model.Container.Tensors)
                    _ = model.Container.Bytes(t).Length;
                opened++;
            }
            catch (ModelFormatException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"{kind} iteration {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < allocationLimit, $"{kind} iteration {i}: open allocated {allocated} bytes for a {file.Length}-byte file");
        }
        Assert.Equal(Iterations, opened + rejected);
        if (kind != "restamped") // re-stamped flips in weight bytes give valid files with other weights
            Assert.True(rejected > Iterations / 2, $"{kind}: only {rejected} of {Iterations} damaged files were rejected");
    }

    /// <summary>1–4 damages in [from, to): random bytes, a flipped bit, or a random 64-bit value (lengths and counts live in u32/u64 fields).</summary>
    private static void Mutate(byte[] file, Random rng, int from, int to)
    {
        int n = rng.Next(1, 5);
        for (int k = 0; k < n; k++)
        {
            int at = rng.Next(from, to);
            switch (rng.Next(4))
            {
                case 0: file[at] = (byte)rng.Next(256); break;
                case 1: file[at] ^= (byte)(1 << rng.Next(8)); break;
                case 2:
                    if (at + 8 <= to)
                        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(at), (ulong)rng.NextInt64() << rng.Next(0, 40));
                    break;
                default:
                    if (at + 4 <= to)
                        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(at), rng.Next(4) switch { 0 => 0u, 1 => uint.MaxValue, 2 => 0x8000_0000u, _ => (uint)rng.Next(0, 1 << 16) });
                    break;
            }
        }
    }
}
