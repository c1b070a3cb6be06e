using System.Buffers.Binary;
using BinEngine.Format;
using BinEngine.Tests.ConverterTests;
using Xunit.Abstractions;

namespace BinEngine.Tests.ModelFileTests;

/// <summary>
/// Mutates and truncates a valid model file thousands of times: opening it must either succeed
/// or throw <see cref="ModelFormatException"/> — no other exception, no crash, no hang, no
/// allocation out of proportion to the file. Three kinds of damage: raw byte flips (caught by the
/// checksums), flips with the checksums re-stamped (so the parser meets hostile counts, offsets,
/// lengths, types and strings), and truncations. Seeds are fixed, so a failure reproduces.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    /// <summary>2000 per kind in the suite; set BINENGINE_FUZZ_ITERATIONS for a deeper run.</summary>
    private static readonly int Iterations =
        int.TryParse(Environment.GetEnvironmentVariable("BINENGINE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 2000;

    /// <summary>Each kind with its fixed seed (printed, so a failure reproduces in any process).</summary>
    public static TheoryData<string, int> Kinds => new()
    {
        { "raw", 12345 }, { "restamped", 23456 }, { "restamped-head", 34567 }, { "truncated", 45678 },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void OnlyModelFormatExceptionComesOut(string kind, int seed)
    {
        byte[] valid = Fixtures.TinyModel;
        int dataOffset = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid.AsSpan(32));
        output.WriteLine($"{kind}: seed {seed}, {Iterations} iterations");
        var rng = new Random(seed);
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
                using var model = ModelFile.Open(file);
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
                Assert.Fail($"{kind} (seed {seed}) iteration {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < allocationLimit, $"{kind} iteration {i}: open allocated {allocated} bytes for a {file.Length}-byte file");
        }
        Assert.Equal(Iterations, opened + rejected);
        if (kind != "restamped") // re-stamped flips in weight bytes give valid files with other weights
            Assert.True(rejected > Iterations / 2, $"{kind}: only {rejected} of {Iterations} damaged files were rejected");
    }

    /// <summary>
    /// Valid-checksum value mutations (the class the byte fuzzers above miss: a re-stamped flip rarely
    /// lands on a float that matters): one float of one float32 tensor is set to NaN, ±∞, a huge or a
    /// random value, the file is re-written with fresh checksums, and the model either refuses to load
    /// (ModelFormatException naming the tensor) or answers every text with finite probabilities. "mechanisms" mutates
    /// only the tensors of docs/MODEL.md's mechanisms (q_exit, learned_gate, skip gates, Mamba heads, and the lexical
    /// head's float scale and bias) of a model carrying all five, answering under every policy that reads them.
    /// </summary>
    [Theory]
    [InlineData("plain", 56789)]
    [InlineData("mechanisms", 67890)]
    public void ValueMutationsWithValidChecksumsLoadOnlyWhenEveryAnswerIsFinite(string model, int seed)
    {
        int iterations = Math.Max(300, Iterations / 4);
        output.WriteLine($"values ({model}): seed {seed}, {iterations} iterations");
        var rng = new Random(seed);
        bool mechanisms = model == "mechanisms";
        using TensorFile source = TensorFile.Open(mechanisms ? MechanismConversionTests.AllMechanismsModel : Fixtures.TinyModel);
        using var original = BinEngine.Runtime.BeexModel.Load(mechanisms ? MechanismConversionTests.AllMechanismsModel : Fixtures.TinyModel);
        BinEngine.Runtime.ExitPolicy[] policies = mechanisms
            ? [original.Policy("q_exit"), original.Policy("learned_gate"), BinEngine.Runtime.ExitPolicy.Never]
            : [original.DefaultPolicy];
        var plainNames = ModelLayout.Expected(original.File.Config, original.File.TokenRows, original.File.HasTokenMap)
            .Select(e => e.Name).Except(Mechanisms.Tensors(original.File.Config).Select(e => e.Name)).ToHashSet();
        TensorInfo[] floats = source.Tensors.Where(t => t.ElementType == TensorElementType.F32 && (!mechanisms || !plainNames.Contains(t.Name))).ToArray();
        string[] texts = ["a gorgeous, witty, seductive movie.", "the plot is thin and the jokes fall flat.", "what a fine mess"];
        int loaded = 0, refused = 0;
        for (int i = 0; i < iterations; i++)
        {
            TensorInfo target = floats[rng.Next(floats.Length)];
            float[] values = source.F32(target.Name).ToArray();
            int index = rng.Next(values.Length);
            values[index] = rng.Next(6) switch
            {
                0 => float.NaN,
                1 => rng.Next(2) == 0 ? float.PositiveInfinity : float.NegativeInfinity,
                2 => (rng.Next(2) == 0 ? 1 : -1) * MathF.Pow(10, rng.Next(2, 39)),
                3 => BitConverter.Int32BitsToSingle(rng.Next()),
                4 => (float)(rng.NextDouble() * 2 - 1) * 2 * ModelConfig.MaxMagnitude,
                _ => (float)(rng.NextDouble() * 2 - 1), // in range: must load
            };
            byte[] file = FileSurgery.Rewrite(source, t => t.Name != target.Name,
                addMore: w => w.AddF32(target.Name, target.Shape.ToArray(), values));
            try
            {
                using var loadedModel = BinEngine.Runtime.BeexModel.Load(file);
                foreach (var policy in policies)
                    foreach (var r in loadedModel.ClassifyBatch(texts, policy))
                        Assert.All(r.Probabilities, p => Assert.True(float.IsFinite(p), $"seed {seed} iteration {i}: {target.Name}[{index}] = {values[index]} answered {p}"));
                loaded++;
            }
            catch (ModelFormatException e)
            {
                Assert.Contains($"'{target.Name}'[{index}]", e.Message);
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} iteration {i}: {target.Name}[{index}] = {values[index]}: {e.GetType().Name}: {e.Message}");
            }
        }
        output.WriteLine($"values: {loaded} loaded and answered finitely, {refused} refused naming the tensor and index");
        Assert.True(loaded > iterations / 10 && refused > iterations / 2, $"loaded {loaded}, refused {refused}: the mutation mix no longer tests both sides");
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
