using BinEngine.Evaluation;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// The mechanisms of docs/MODEL.md ("Mechanisms from the seeds") in the fast forward pass: against the reference on
/// every ISA, batch against one by one, the controllers' policies against their rules, and the replay against real runs.
/// </summary>
[Trait("Category", "Isa")]
public class MechanismTests
{
    private static readonly string[] Labels3 = ["a", "b", "c"];

    /// <summary>q_exit, learned_gate, skip_gates, mamba_exits, lexical, and all five together.</summary>
    public static TheoryData<bool, bool, bool, bool, bool> Combinations => new()
    {
        { true, false, false, false, false }, { false, true, false, false, false }, { false, false, true, false, false },
        { false, false, false, true, false }, { false, false, false, false, true }, { true, true, true, true, true },
    };

    private static ModelWeights Model(bool q, bool g, bool skip, bool mamba, int actBits = 8, int layers = 4, bool lexical = false) =>
        RandomWeights.WithMechanisms(RandomWeights.Create(RandomWeights.Shape(actBits, layers: layers), seed: 21), seed: 22,
            qExit: q, learnedGate: g, skipGates: skip, mambaExits: mamba, lexical: lexical);

    /// <summary>
    /// Tolerance: as ForwardPassTests' logits (2e-3, vectorised float steps in another order), which the Mamba head
    /// (GEMMs and a scan summed in another order, ≈ 1e-5 relative) stays far inside; λ and g are sigmoids of small MLPs
    /// over those values: 1e-4. Which blocks run is a discrete decision and must agree exactly (the seeds are checked
    /// to keep every gate away from ρ by more than the tolerance).
    /// </summary>
    private const float LogitTolerance = 2e-3f, ControllerTolerance = 1e-4f;

    [Theory]
    [MemberData(nameof(Combinations))]
    public void FastPassMatchesReferenceOnEveryIsa(bool q, bool g, bool skip, bool mamba, bool lexical)
    {
        ModelWeights model = Model(q, g, skip, mamba, lexical: lexical);
        Architecture a = model.Architecture;
        int[][] texts = RandomWeights.Texts(a, 16, seed: 6);
        var skipped = new HashSet<int>();
        foreach (KernelIsa isa in ForwardPassTests.SupportedIsas())
        {
            var engine = new InferenceEngine(model, KernelRegistry.Select(isa)!, Labels3);
            foreach (int[] ids in texts)
            {
                ReferenceTrace expected = ReferenceForward.Trace(model, ids);
                ClassificationResult r = engine.Classify(ids, ExitPolicy.Trace, threads: 1);
                string where = $"{isa} len={ids.Length}";
                Assert.Equal(expected.BlocksRun, r.BlocksRun);
                Assert.Equal(a.Layers, r.ExitBlock);
                Assert.Equal(r.BlocksRun.Length, r.Entropies.Length);
                for (int k = 0; k < r.BlocksRun.Length; k++)
                {
                    ReadOnlySpan<float> actual = r.LogitsOf(r.BlocksRun[k]);
                    for (int c = 0; c < a.Classes; c++)
                        Assert.True(MathF.Abs(actual[c] - expected.Logits[k][c]) <= LogitTolerance,
                            $"{where} exit of block {r.BlocksRun[k]} class {c}: fast {actual[c]} vs reference {expected.Logits[k][c]}");
                }
                Near(expected.Lambdas, r.Lambdas, where + " λ");
                Near(expected.GateScores, r.GateScores, where + " g");
                if (expected.SkipGates is { } gates)
                    foreach (float gate in gates)
                        Assert.True(MathF.Abs(gate - 0.5f) > ControllerTolerance, $"{where}: a skip gate at {gate} is too close to ρ for an exact comparison");
                skipped.UnionWith(Enumerable.Range(1, a.Layers).Except(r.BlocksRun));
            }
        }
        if (skip)
            Assert.True(skipped.Count >= 2, $"the test needs several blocks skipped, saw {string.Join(",", skipped)}");
    }

    private static void Near(float[]? expected, float[]? actual, string what)
    {
        Assert.Equal(expected is null, actual is null);
        if (expected is null) return;
        Assert.Equal(expected.Length, actual!.Length);
        for (int k = 0; k < expected.Length; k++)
            Assert.True(MathF.Abs(expected[k] - actual[k]) <= ControllerTolerance, $"{what} {k}: fast {actual[k]} vs reference {expected[k]}");
    }

    public static TheoryData<string> Policies => new() { "q_exit", "learned_gate", "normalized_entropy", "entropy_reduction" };

    /// <summary>A batch whose samples skip different blocks and leave at different exits gives exactly the one-by-one results.</summary>
    [Theory]
    [MemberData(nameof(Policies))]
    public void BatchEqualsOneByOneExactly(string policyName)
    {
        ModelWeights model = Model(true, true, true, true, actBits: 1, layers: 5, lexical: true);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        ExitPolicy policy = ExitPolicy.Create(ExitPolicy.ParseKind(policyName), name => name == "kappa" ? 0.9 : 0.5);
        int[][] texts = RandomWeights.Texts(model.Architecture, 160, seed: 13);
        ClassificationResult[] batch = engine.ClassifyBatch(texts.Select(t => (ReadOnlyMemory<int>)t).ToArray(), policy, threads: 2);
        var exits = new HashSet<int>();
        var paths = new HashSet<string>();
        for (int i = 0; i < texts.Length; i++)
        {
            ClassificationResult single = engine.Classify(texts[i], policy, threads: 1);
            Assert.Equal(single.ExitBlock, batch[i].ExitBlock);
            Assert.Equal(single.BlocksRun, batch[i].BlocksRun);
            Assert.Equal(single.Logits, batch[i].Logits);
            Assert.Equal(single.Lambdas, batch[i].Lambdas);
            Assert.Equal(single.GateScores, batch[i].GateScores);
            Assert.Equal(single.Probabilities, batch[i].Probabilities);
            exits.Add(single.ExitBlock);
            paths.Add(string.Join(",", single.BlocksRun));
        }
        Assert.True(exits.Count >= 2 && paths.Count >= 3, $"the test needs varied exits and paths; saw exits {string.Join(",", exits)}, {paths.Count} paths");
    }

    /// <summary>
    /// A controller runs only for the policy that reads it, or for <see cref="ExitPolicy.Trace"/>: its outputs are in the
    /// result exactly then, the logits and exits do not change, and the compute saved counts q_exit's λ-MLP only when it ran.
    /// </summary>
    [Fact]
    public void OnlyThePolicyThatReadsAControllerRunsIt()
    {
        ModelWeights model = Model(true, true, false, false, layers: 4);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        int[] ids = RandomWeights.Texts(model.Architecture, 1, seed: 21)[0];
        ClassificationResult never = engine.Classify(ids, ExitPolicy.Never, 1), trace = engine.Classify(ids, ExitPolicy.Trace, 1);
        Assert.Null(never.Lambdas);
        Assert.Null(never.GateScores);
        Assert.Equal(model.Architecture.Layers, trace.Lambdas!.Length);
        Assert.Equal(model.Architecture.Layers, trace.GateScores!.Length);
        Assert.Equal(trace.Logits, never.Logits);
        Assert.Equal(0.0, never.ComputeSkipped, 12);          // every block, nothing else
        Assert.True(trace.ComputeSkipped < 0, $"the trace ran λ-MLPs on top of every block: {trace.ComputeSkipped}");
        ClassificationResult q = engine.Classify(ids, new ExitPolicy(ExitPolicyKind.QExit, tau: 2f), 1);   // q > 1: never halts
        Assert.NotNull(q.Lambdas);
        Assert.Null(q.GateScores);
        Assert.Equal(trace.Lambdas, q.Lambdas);
        ClassificationResult g = engine.Classify(ids, new ExitPolicy(ExitPolicyKind.LearnedGate, tau: 2f), 1); // g < 1: never exits
        Assert.Null(g.Lambdas);
        Assert.Equal(trace.GateScores, g.GateScores);
    }

    /// <summary>q_exit exits at the first block whose cumulative halting mass exceeds q; learned_gate at the first g ≥ τ; both from the λ and g the run reports.</summary>
    [Theory]
    [InlineData(0.3f)]
    [InlineData(0.6f)]
    public void ControllerPoliciesFollowTheirRules(float threshold)
    {
        ModelWeights model = Model(true, true, false, false, layers: 6);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        foreach (int[] ids in RandomWeights.Texts(model.Architecture, 30, seed: 8))
        {
            float[] lambdas = engine.Classify(ids, ExitPolicy.Trace, 1).Lambdas!;
            float[] gates = engine.Classify(ids, ExitPolicy.Trace, 1).GateScores!;
            float remaining = 1f, halted = 0f;
            int qExit = lambdas.Length;
            for (int i = 0; i < lambdas.Length - 1; i++)
            {
                halted += lambdas[i] * remaining;
                remaining *= 1f - lambdas[i];
                if (halted > threshold) { qExit = i + 1; break; }
            }
            int gateExit = Array.FindIndex(gates, 0, gates.Length - 1, x => x >= threshold) is int k and >= 0 ? k + 1 : gates.Length;
            Assert.Equal(qExit, engine.Classify(ids, new ExitPolicy(ExitPolicyKind.QExit, tau: threshold), 1).ExitBlock);
            Assert.Equal(gateExit, engine.Classify(ids, new ExitPolicy(ExitPolicyKind.LearnedGate, tau: threshold), 1).ExitBlock);
        }
    }

    [Fact]
    public void ControllerPolicyOnAModelWithoutTheControllerIsRefused()
    {
        var engine = new InferenceEngine(Model(false, false, true, false), KernelRegistry.Selected, Labels3);
        var e = Assert.Throws<ArgumentException>(() => engine.Classify([1, 2, 3], new ExitPolicy(ExitPolicyKind.QExit, tau: 0.5f), 1));
        Assert.Contains("q_exit", e.Message);
    }

    /// <summary>The replay of one full-depth pass gives every policy's real answers, blocks run and compute, with skip gates and controllers.</summary>
    [Fact]
    public void ReplayEqualsRealRuns()
    {
        ModelWeights model = Model(true, true, true, false, layers: 5);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        int[][] texts = RandomWeights.Texts(model.Architecture, 60, seed: 17);
        var ids = texts.Select(t => (ReadOnlyMemory<int>)t).ToArray();
        ExitReplay replay = ExitReplay.FromFullDepth(model.Architecture, model.Mechanisms, engine.ClassifyBatch(ids, ExitPolicy.Trace, 1));
        foreach (ExitPolicy policy in new[]
                 {
                     new ExitPolicy(ExitPolicyKind.QExit, tau: 0.5f), new ExitPolicy(ExitPolicyKind.LearnedGate, tau: 0.5f),
                     new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: 0.3f, kappa: 0.9f), ExitPolicy.Never,
                 })
        {
            ClassificationResult[] real = engine.ClassifyBatch(ids, policy, 1);
            ExitOutcome replayed = replay.Replay(policy);
            Assert.Equal(real.Select(r => r.ExitBlock), replayed.ExitBlocks);
            Assert.Equal(real.Select(r => r.Label), replayed.Labels);
            Assert.Equal(real.Select(r => r.BlocksRun.Length), replayed.BlocksRun);
            double saved = real.Sum(r => r.ComputeSkipped * r.FullDepthFlops) / real.Sum(r => r.FullDepthFlops);
            Assert.Equal(saved, replayed.ComputeSaved, 9);
        }
    }

    /// <summary>Skipping saves compute and controllers cost some: a plain model's fraction is (L − exit)/L, a skip model's counts only the blocks it ran.</summary>
    [Fact]
    public void ComputeSavedCountsSkippedBlocksAndMechanismCosts()
    {
        ModelWeights model = Model(false, false, true, false, layers: 5);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        foreach (int[] ids in RandomWeights.Texts(model.Architecture, 20, seed: 3))
        {
            ClassificationResult r = engine.Classify(ids, ExitPolicy.Never, 1);
            double blockShare = CostModel.BlockWithExitFlops(model.Architecture, ids.Length) / r.FullDepthFlops;
            double gates = Math.Min(r.ExitBlock, 4) * model.Mechanisms.SkipGates!.Flops / r.FullDepthFlops;
            Assert.Equal(1 - r.BlocksRun.Length * blockShare - gates, r.ComputeSkipped, 9);
        }
    }

    /// <summary>With every mechanism, a warm call allocates only its result: the Mamba scratch, the controllers' scratch and the partition buffers live in the workspace.</summary>
    [Fact]
    public void SteadyStateClassifyWithMechanismsAllocatesOnlyTheResult()
    {
        ModelWeights model = Model(true, true, true, true, lexical: true);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        int[] ids = RandomWeights.Texts(model.Architecture, 1, 4)[0];
        ExitPolicy policy = ExitPolicy.Trace; // every controller runs
        engine.Classify(ids, policy, 1); // warm: the workspace and its scratch are created once
        ClassificationResult r = engine.Classify(ids, policy, 1);
        // The least over a few calls (Allocations.Least says why: one CI leg saw 6,552 B in a single measured call).
        long allocated = Allocations.Least(() => r = engine.Classify(ids, policy, 1));
        // The result object and its six arrays (probabilities, entropies, logits, blocks run, λ, g), plus array headers.
        long resultBytes = 128 + 6 * 32 + 4L * (r.Probabilities.Length + r.Entropies.Length + r.Logits.Length + r.BlocksRun.Length + r.Lambdas!.Length + r.GateScores!.Length);
        Assert.True(allocated <= resultBytes, $"allocated {allocated} bytes, the result needs about {resultBytes}");
    }
}
