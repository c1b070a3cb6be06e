using System.Text.Json;
using BinEngine.Converter;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// End to end against the trainer (llm.c's debug-state idea): a checkpoint exported by tools/train is
/// converted, loaded, and run; every exit's logits must match the PyTorch reference's golden file and
/// every policy must take the same exit, on every kernel ISA this process supports.
/// </summary>
[Trait("Category", "Isa")]
public class GoldenParityTests
{
    /// <summary>
    /// Tolerance on logits. Binary products are exact integers on both sides; what differs is float
    /// rounding: α = mean|W| and β = mean|x| summed in another order, LayerNorm/softmax/attention sums
    /// vectorised here and BLAS-ordered in torch, (α·s)·Σ here versus Σ(s·q) then ·α there. Each is a few
    /// ulps (~1e-7 relative); through L post-norm blocks they stay ~1e-5 on logits of magnitude ≤ ~10.
    /// An activation code that lands on a rounding boundary can flip by one on one side, which moves one
    /// product by 2^-(a-1) of a row's scale; 5e-3 absolute covers a few such flips and still fails on any
    /// real error (a wrong bit, scale, or row shifts logits by ≥ 0.05).
    /// </summary>
    private const double LogitTolerance = 5e-3;

    public static TheoryData<string> Models => new() { "models/tiny-smoke", "models/tiny-smoke-a1", "models/tiny-smoke-a1-gc", "models/sst2-default", "models/sst2-w1a8", "models/trec" };

    [Theory]
    [MemberData(nameof(Models))]
    public void ConvertedCheckpointReproducesTheTrainersGoldenOutputs(string directory) => ConvertAndCheck(directory);

    /// <summary>Converts the trainer's checkpoint in <paramref name="directory"/> and checks it against its golden file on every ISA this process runs.</summary>
    internal static void ConvertAndCheck(string directory)
    {
        string dir = TestPaths.Repo(directory);
        string bex = Path.Combine(Path.GetTempPath(), $"golden-{Guid.NewGuid():N}.bex");
        try
        {
            ModelConverter.Convert(Path.Combine(dir, "model.safetensors"), bex,
                new ConvertOptions { VocabPath = TestPaths.Repo("data/vocab/bert-base-uncased-vocab.txt") });
            using JsonDocument golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "golden.json")));
            foreach (KernelIsa isa in ForwardPassTests.SupportedIsas())
            {
                using BeexModel model = BeexModel.Load(bex, new BeexModelOptions { Isa = isa });
                CheckAgainstGolden(model, golden.RootElement, isa.ToString());
            }
        }
        finally
        {
            File.Delete(bex);
        }
    }

    /// <summary>The model file the CLI uses by default, as committed, against the trainer's golden outputs.</summary>
    [Fact]
    public void ShippedDefaultModelReproducesTheTrainersGoldenOutputs()
    {
        using JsonDocument golden = JsonDocument.Parse(File.ReadAllText(TestPaths.Repo("models/sst2-default/golden.json")));
        using BeexModel model = BeexModel.Load(TestPaths.Repo("models/sst2-default/model.bex"));
        CheckAgainstGolden(model, golden.RootElement, "shipped sst2-default");
    }

    internal static void CheckAgainstGolden(BeexModel model, JsonElement golden, string context)
    {
        int layers = model.Architecture.Layers, classes = model.Architecture.Classes;
        var policies = new Dictionary<string, ExitPolicy>();
        // The thresholds the trainer used for its golden exits (recorded beside them), not the model file's: a file
        // recalibrated with `binengine calibrate` keeps its weights but stores other thresholds.
        foreach (JsonProperty p in golden.GetProperty("policies").EnumerateObject())
            policies[p.Name] = ExitPolicy.Create(ExitPolicy.ParseKind(p.Name), key => p.Value.GetProperty(key).GetDouble());

        int samples = 0;
        foreach (JsonElement sample in golden.GetProperty("samples").EnumerateArray())
        {
            int[] ids = sample.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            string text = sample.GetProperty("text").GetString()!;
            Assert.Equal(ids, model.Tokenizer.Encode(text, model.Architecture.MaxLength));

            ClassificationResult full = model.Classify(ids, ExitPolicy.Trace);
            // With skip gates the trainer records the blocks that ran, and one logits row per block run.
            int[] blocksRun = sample.TryGetProperty("blocks_run", out JsonElement run)
                ? run.EnumerateArray().Select(e => e.GetInt32()).ToArray()
                : Enumerable.Range(1, layers).ToArray();
            Assert.True(blocksRun.SequenceEqual(full.BlocksRun),
                $"{context} '{text}': engine ran blocks {string.Join(",", full.BlocksRun)}, trainer {string.Join(",", blocksRun)}");
            JsonElement[] logits = sample.GetProperty("logits").EnumerateArray().ToArray();
            Assert.Equal(blocksRun.Length, logits.Length);
            for (int k = 0; k < blocksRun.Length; k++)
            {
                double[] expected = logits[k].EnumerateArray().Select(e => e.GetDouble()).ToArray();
                ReadOnlySpan<float> actual = full.LogitsOf(blocksRun[k]);
                for (int c = 0; c < classes; c++)
                    Assert.True(Math.Abs(actual[c] - expected[c]) <= LogitTolerance,
                        $"{context} '{text}' exit {blocksRun[k]} class {c}: engine {actual[c]} vs trainer {expected[c]}");
            }
            // The controllers' outputs: sigmoids of small float MLPs over the pooled states, which agree to ~1e-5.
            CheckSeries(sample, "lambdas", full.Lambdas, $"{context} '{text}'");
            CheckSeries(sample, "gate_scores", full.GateScores, $"{context} '{text}'");

            foreach (JsonProperty exit in sample.GetProperty("exits").EnumerateObject())
            {
                ClassificationResult r = model.Classify(ids, policies[exit.Name]);
                Assert.True(exit.Value.GetInt32() == r.ExitBlock,
                    $"{context} '{text}' policy {exit.Name}: engine exits at {r.ExitBlock}, trainer at {exit.Value.GetInt32()} " +
                    $"(entropies {string.Join(", ", r.Entropies)})");
            }
            samples++;
        }
        Assert.True(samples >= 8, $"the golden file holds only {samples} samples");
    }

    /// <summary>Tolerance on λ and g: a sigmoid's slope is ≤ ¼, so logit-level differences of ~1e-4 give ≤ 2.5e-5.</summary>
    private const double ControllerTolerance = 1e-3;

    private static void CheckSeries(JsonElement sample, string field, float[]? actual, string context)
    {
        if (!sample.TryGetProperty(field, out JsonElement series))
        {
            Assert.True(actual is null, $"{context}: the engine reports {field} the trainer's golden file lacks");
            return;
        }
        double[] expected = series.EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.True(actual is not null && actual.Length == expected.Length, $"{context}: {field} missing or of another length");
        for (int k = 0; k < expected.Length; k++)
            Assert.True(Math.Abs(actual![k] - expected[k]) <= ControllerTolerance, $"{context} {field}[{k}]: engine {actual[k]} vs trainer {expected[k]}");
    }
}

/// <summary>
/// The mechanism models (Mamba exits, skip gates) against their trainers' golden files, on every ISA this process
/// supports, in the main test run only: test.sh's forced-JIT legs (Category=Isa) cover the mechanisms on small random
/// models (MechanismTests, MambaHeadTests), where converting and running these two 50 MB checkpoints again per leg
/// would cost minutes of CI for no path the main run does not already take.
/// </summary>
public class MechanismGoldenParityTests
{
    public static TheoryData<string> Models => new() { "models/sst2-dynamax", "models/sst2-smart" };

    [Theory]
    [MemberData(nameof(Models))]
    public void ConvertedCheckpointReproducesTheTrainersGoldenOutputs(string directory) => GoldenParityTests.ConvertAndCheck(directory);
}
