using BinEngine.Evaluation;
using BinEngine.Runtime;

namespace BinEngine.Tests.Evaluation;

public class ExitReplayTests
{
    // Three samples, L = 3 exits, C = 2 classes, logits flattened [L × C]:
    //   s0 (gold 1): right at every exit;
    //   s1 (gold 0): wrong at exit 1, right at exit 2, wrong at exit 3;
    //   s2 (gold 1): wrong everywhere.
    private static readonly int[] Gold = [1, 0, 1];

    private static ExitReplay Constructed(double[]? flops = null) => new(3, 2,
    [
        [0f, 2f, 0f, 3f, 0f, 4f],
        [0f, 1f, 2f, 0f, 0f, 1f],
        [1f, 0f, 1f, 0f, 1f, 0f],
    ], flops);

    [Fact]
    public void StaticDepthAnswersAtBlockK()
    {
        var r = Constructed();
        Assert.Equal([1, 1, 0], r.AtDepth(1).Labels);
        Assert.Equal(1.0 / 3, r.AtDepth(1).Metrics(Gold, 2).Accuracy, 12);
        Assert.Equal(2.0 / 3, r.AtDepth(2).Metrics(Gold, 2).Accuracy, 12);
        Assert.Equal(1.0 / 3, r.AtDepth(3).Metrics(Gold, 2).Accuracy, 12);
        Assert.Equal(1.0 - 1.0 / 3, r.AtDepth(1).ComputeSaved, 12);
        Assert.Equal(0.0, r.AtDepth(3).ComputeSaved);
        // The confidence is the answered class's softmax: σ(2) for s0 at exit 1.
        Assert.Equal(1 / (1 + Math.Exp(-2)), r.AtDepth(1).Confidences[0], 6);
    }

    [Fact]
    public void OracleExitsAtTheFirstRightBlockAndAtBlockOneWhenNoneIsRight()
    {
        var o = Constructed().Oracle(Gold);
        Assert.Equal([1, 2, 1], o.ExitBlocks);
        Assert.Equal(2.0 / 3, o.Metrics(Gold, 2).Accuracy, 12); // right if any exit is right: s0, s1
        Assert.Equal(4.0 / 3, o.MeanBlocks, 12);
    }

    [Fact]
    public void ComputeSavedIsWeightedBySampleCost()
    {
        // Block costs 1, 2, 1: the oracle skips 1·2 + 2·1 + 1·2 = 6 of 4·3 = 12 (unweighted it would be 5/9).
        Assert.Equal(0.5, Constructed([1, 2, 1]).Oracle(Gold).ComputeSaved, 12);
        Assert.Equal(5.0 / 9, Constructed().Oracle(Gold).ComputeSaved, 12);
    }

    [Fact]
    public void ReplayAsksThePolicy()
    {
        // Confidence τ = 0.85: s0 exits at 1 (σ(2) = 0.881), s1 at 2 (σ(1) = 0.731, then σ(2)), s2 never (σ(1)) so at L.
        var o = Constructed().Replay(new ExitPolicy(ExitPolicyKind.Confidence, tau: 0.85f));
        Assert.Equal([1, 2, 3], o.ExitBlocks);
        Assert.Equal([1, 0, 0], o.Labels);
        // Patience t = 1: exit once an exit agrees with the one before: s0 at 2, s1 never (1, 0, 1), s2 at 2.
        Assert.Equal([2, 3, 2], Constructed().Replay(new ExitPolicy(ExitPolicyKind.Patience, patience: 1)).ExitBlocks);
    }

    public static TheoryData<string> Policies => new()
    {
        "default", "confidence:0.9", "entropy:0.3", "normalized_entropy:0.5", "patience:2", "entropy_reduction:0.5:0.6", "entropy_reduction:0.9:0.95",
    };

    [Theory]
    [MemberData(nameof(Policies))]
    public void ReplayEqualsARealRunOfTheShippedModel(string spec)
    {
        using var model = BeexModel.Load(TestPaths.Repo("models/sst2-default/model.bex"));
        string[] texts = File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Skip(1).Take(48).Select(l => l.Split('\t')[0]).ToArray();
        string[] f = spec.Split(':');
        ExitPolicy policy = f[0] switch
        {
            "default" => model.DefaultPolicy,
            "patience" => new ExitPolicy(ExitPolicyKind.Patience, patience: int.Parse(f[1])),
            "entropy_reduction" => new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: float.Parse(f[1]), kappa: float.Parse(f[2])),
            _ => new ExitPolicy(ExitPolicy.ParseKind(f[0]), tau: float.Parse(f[1])),
        };
        ClassificationResult[] real = model.ClassifyBatch(texts, policy);
        ExitOutcome replayed = ExitReplay.Run(model, texts).Replay(policy);
        Assert.Equal(real.Select(r => r.ExitBlock), replayed.ExitBlocks);
        Assert.Equal(real.Select(r => r.Label), replayed.Labels);
        Assert.Equal(real.Select(r => r.Probabilities[r.Label]), replayed.Confidences);
        double saved = real.Sum(r => r.ComputeSkipped * r.FullDepthFlops) / real.Sum(r => r.FullDepthFlops);
        Assert.Equal(saved, replayed.ComputeSaved, 12);
    }

    [Fact]
    public void AnalysisOnTheShippedModelBoundsEveryPolicyByTheOracle()
    {
        using var model = BeexModel.Load(TestPaths.Repo("models/sst2-default/model.bex"));
        var rows = File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Skip(1).Take(64).Select(l => l.Split('\t')).ToArray();
        int[] gold = rows.Select(r => int.Parse(r[1])).ToArray();
        var a = ExitAnalysis.Run(ExitReplay.Run(model, rows.Select(r => r[0]).ToArray()), gold);
        int layers = model.Architecture.Layers;
        Assert.Equal(Enumerable.Range(1, layers), a.StaticDepths.Select(p => p.StaticDepth));
        // Full depth equals running with policy none.
        var full = model.ClassifyBatch(rows.Select(r => r[0]).ToArray(), ExitPolicy.Trace);
        Assert.Equal(full.Zip(gold).Count(x => x.First.Label == x.Second) / 64.0, a.StaticDepths[^1].Accuracy, 12);
        Assert.Equal(11 * 21, a.Curves[ExitPolicyKind.EntropyReduction].Count);
        Assert.Equal(layers, a.Curves[ExitPolicyKind.Patience].Count); // patience t = 1..L
        var all = a.StaticDepths.Concat(a.Curves.Values.SelectMany(c => c)).ToArray();
        Assert.All(all, p => Assert.True(p.Accuracy <= a.Oracle.Accuracy, $"{p.Name} beats the oracle"));
        // Every point is on the front or dominated by a point of it.
        Assert.All(all, p => Assert.Contains(a.Front, q => q.Accuracy >= p.Accuracy && q.ComputeSaved >= p.ComputeSaved));
    }
}
