using System.Text.Json.Nodes;
using BinEngine.Converter;
using BinEngine.Format;
using BinEngine.Runtime;

namespace BinEngine.Tests.ConverterTests;

/// <summary>
/// The mechanisms of docs/MODEL.md through the converter and the reader: config keys become metadata, tensors are
/// mapped and checked, and a defect (a missing tensor, a parameter out of range, a controller policy without its
/// controller) is refused with its name.
/// </summary>
public class MechanismConversionTests
{
    private const int D = 32, Layers = 2, Hidden = 8, Inner = 12, State = 4, Rank = 3, Conv = 4, LexicalBits = 8, Classes = 2, Vocab = 50;

    /// <summary>The tiny fixture checkpoint plus random tensors for every mechanism (conv kernel in torch's [E, 1, K] when asked).</summary>
    private static Checkpoint WithMechanismTensors(bool torchConvShape = false, string? drop = null, SourceDType lexicalTable = SourceDType.I8)
    {
        var random = new Random(5);
        var tensors = new Dictionary<string, SourceTensor>(Fixtures.TinyCheckpoint.Tensors, StringComparer.Ordinal);
        void Add(string name, params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var bytes = new byte[n * 4];
            for (long i = 0; i < n; i++)
                BitConverter.TryWriteBytes(bytes.AsSpan((int)i * 4), (float)(random.NextDouble() - 0.5));
            if (name != drop)
                tensors[name] = new SourceTensor(name, SourceDType.F32, shape, bytes);
        }
        Add("q_exit.pos", Layers, 2 * D);
        Add("q_exit.mlp.0.weight", Hidden, 2 * D);
        Add("q_exit.mlp.0.bias", Hidden);
        for (int i = 1; i <= 2; i++)
        {
            Add($"q_exit.mlp.{i}.weight", Hidden, Hidden);
            Add($"q_exit.mlp.{i}.bias", Hidden);
        }
        Add("q_exit.mlp.3.weight", 1, Hidden);
        Add("q_exit.mlp.3.bias", 1);
        Add("learned_gate.weight", Layers, 4);
        Add("learned_gate.bias", Layers);
        Add("skip.0.0.weight", Hidden, D);
        Add("skip.0.0.bias", Hidden);
        Add("skip.0.1.weight", 1, Hidden);
        Add("skip.0.1.bias", 1);
        for (int i = 0; i < Layers; i++)
        {
            string p = $"exits.{i}.mamba.";
            Add(p + "in_proj.weight", 2 * Inner, D);
            if (torchConvShape) Add(p + "conv.weight", Inner, 1, Conv);
            else Add(p + "conv.weight", Inner, Conv);
            Add(p + "conv.bias", Inner);
            Add(p + "x_proj.weight", Rank + 2 * State, Inner);
            Add(p + "dt_proj.weight", Inner, Rank);
            Add(p + "dt_proj.bias", Inner);
            Add(p + "A_log", Inner, State);
            Add(p + "D", Inner);
            Add(p + "out_proj.weight", D, Inner);
        }
        // the lexical head: int8 codes (or, to test the refusal, another dtype), a positive scale, the '##' bitmap as int32
        var codes = new byte[(1 << LexicalBits) * Classes * (lexicalTable == SourceDType.I8 ? 1 : 4)];
        random.NextBytes(codes);
        if (lexicalTable == SourceDType.I32)
            for (int i = 0; i < codes.Length; i += 4)
                BitConverter.TryWriteBytes(codes.AsSpan(i), 200); // out of int8's range
        tensors["lexical.weight"] = new SourceTensor("lexical.weight", lexicalTable, [1 << LexicalBits, Classes], codes);
        tensors["lexical.scale"] = new SourceTensor("lexical.scale", SourceDType.F32, [1], BitConverter.GetBytes(0.05f));
        Add("lexical.bias", Classes);
        var bitmap = new byte[(Vocab + 31) / 32 * 4];
        random.NextBytes(bitmap);
        tensors["lexical.continues"] = new SourceTensor("lexical.continues", SourceDType.I32, [(Vocab + 31) / 32], bitmap);
        return new Checkpoint("mechanisms.safetensors", "safetensors", tensors, new Dictionary<string, string>(), "0");
    }

    private static void AllMechanisms(JsonObject c)
    {
        c["q_exit"] = new JsonObject { ["hidden"] = Hidden };
        c["learned_gate"] = new JsonObject { ["power"] = 2.0 };
        c["skip_gates"] = new JsonObject { ["hidden"] = Hidden, ["rho"] = 0.5 };
        c["mamba_exits"] = new JsonObject { ["d_inner"] = Inner, ["d_state"] = State, ["d_conv"] = Conv, ["dt_rank"] = Rank };
        c["lexical"] = new JsonObject { ["bits"] = LexicalBits };
        c["thresholds"]!["q_exit"] = new JsonObject { ["q"] = 0.5 };
        c["thresholds"]!["learned_gate"] = new JsonObject { ["tau"] = 0.5 };
        c["conformal"] = new JsonObject { ["learned_gate"] = new JsonObject { ["alpha"] = 0.1, ["qhat"] = 0.8 } };
    }

    private static readonly Lazy<byte[]> AllMechanismsFile = new(() => Fixtures.Convert(AllMechanisms, WithMechanismTensors()).File);

    /// <summary>The tiny fixture with every mechanism (random mechanism weights), converted: the fuzzers' second model.</summary>
    internal static byte[] AllMechanismsModel => AllMechanismsFile.Value;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryMechanismConvertsLoadsAndRuns(bool torchConvShape)
    {
        var (file, _) = Fixtures.Convert(AllMechanisms, WithMechanismTensors(torchConvShape));
        using (var m = ModelFile.Open(file))
        {
            Assert.Equal(Mechanisms.Names, Mechanisms.Names.Where(m.Config.Has));
            Assert.Equal(Hidden, m.GetInt("mechanism.q_exit.hidden"));
            Assert.Equal(0.5, m.Config.MechanismValue(Mechanisms.SkipGates, "rho"));
            Assert.Equal(0.8, m.Config.Conformal["learned_gate"]["qhat"]);
            Assert.Equal([Inner, Conv], m.Container.GetTensor("exits.1.mamba.conv.weight").Shape);
            Assert.Equal(TensorElementType.I8, m.Container.GetTensor("lexical.weight").ElementType);
            Assert.Equal(TensorElementType.I32, m.Container.GetTensor("lexical.continues").ElementType);
        }
        using BeexModel model = BeexModel.Load(file);
        Assert.Equal(Mechanisms.Names, model.Mechanisms);
        ClassificationResult r = model.Classify("a fine film", model.Policy("learned_gate"));
        Assert.Null(r.Lambdas);        // learned_gate reads g only: q_exit's λ-MLP does not run
        Assert.NotNull(r.GateScores);
        ClassificationResult trace = model.Classify("a fine film", ExitPolicy.Trace);
        Assert.NotNull(trace.Lambdas);
        Assert.NotNull(trace.GateScores);
        Assert.NotNull(r.PredictionSet); // calibrated for learned_gate with its stored τ
        Assert.Null(model.Classify("a fine film", model.Policy("q_exit")).PredictionSet);
        Assert.Null(model.Classify("a fine film", new ExitPolicy(ExitPolicyKind.LearnedGate, tau: 0.7f)).PredictionSet);
    }

    /// <summary>The lexical head's table must hold int8 codes: a float table, or integers out of int8's range, are refused by name.</summary>
    [Theory]
    [InlineData(true, "an integer tensor")]
    [InlineData(false, "an int8 is required")]
    public void ALexicalTableThatIsNotInt8IsRefused(bool floats, string expected)
    {
        var dtype = floats ? SourceDType.F32 : SourceDType.I32;
        var e = Assert.Throws<ConversionException>(() => Fixtures.Convert(AllMechanisms, WithMechanismTensors(lexicalTable: dtype)));
        Assert.Contains("lexical.weight", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AMissingMechanismTensorIsNamed()
    {
        var e = Assert.Throws<ConversionException>(() => Fixtures.Convert(AllMechanisms, WithMechanismTensors(drop: "exits.1.mamba.A_log")));
        Assert.Contains("exits.1.mamba.A_log", e.Message);
    }

    public static TheoryData<string, string> BadConfigs => new()
    {
        { """{"q_exit": {"hidden": 0}}""", "q_exit.hidden" },
        { """{"skip_gates": {"hidden": 8, "rho": 1.5}}""", "skip_gates.rho" },
        { """{"skip_gates": {"hidden": 8}}""", "lacks 'rho'" },
        { """{"learned_gate": {"power": 2, "temperature": 1}}""", "unknown parameter 'temperature'" },
        { """{"mamba_exits": {"d_inner": 8.5, "d_state": 4, "d_conv": 4, "dt_rank": 2}}""", "mamba_exits.d_inner" },
        { """{"thresholds": {"q_exit": {"q": 0.5}}}""", "needs the 'q_exit' mechanism" },
        { """{"policy": "learned_gate", "thresholds": {"learned_gate": {"tau": 0.5}}}""", "needs the 'learned_gate' mechanism" },
        { """{"learned_gate": {"power": 2}, "conformal": {"learned_gate": {"alpha": 0.1, "qhat": 0.5}}}""", "no thresholds.learned_gate" },
        { """{"conformal": {"entropy": {"alpha": 1.5, "qhat": 0.5}}}""", "conformal.entropy.alpha" },
        { """{"lexical": {"bits": 30}}""", "lexical.bits" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void BadMechanismConfigsAreRefusedByName(string patch, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() => Fixtures.Convert(c =>
        {
            foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
            {
                if (key == "thresholds")
                    foreach (var (policy, parameters) in value!.AsObject())
                        c["thresholds"]![policy] = parameters!.DeepClone();
                else
                    c[key] = value!.DeepClone();
            }
        }, WithMechanismTensors()));
        Assert.True(e is ConversionException or ModelFormatException, e.ToString());
        Assert.Contains(expected, e.Message);
    }
}
