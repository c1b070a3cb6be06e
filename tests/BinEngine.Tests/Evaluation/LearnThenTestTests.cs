using BinEngine.Evaluation;
using BinEngine.Format;
using BinEngine.Runtime;

namespace BinEngine.Tests.Evaluation;

public class LearnThenTestTests
{
    /// <summary>
    /// Two exits, two classes, gold 1 everywhere; exit 2 is always right (logits [0, 8]). Exit 1 answers with
    /// confidence c: class 1 (right) with logits [0, z] or class 0 (wrong) with [z, 0], z = ln(c / (1 − c)).
    /// </summary>
    private static (ExitReplay Replay, int[] Gold) TwoExits(IReadOnlyList<(double Confidence, bool Right)> first)
    {
        var logits = first.Select(x =>
        {
            float z = (float)Math.Log(x.Confidence / (1 - x.Confidence));
            return x.Right ? new[] { 0f, z, 0f, 8f } : new[] { z, 0f, 0f, 8f };
        }).ToArray();
        return (new ExitReplay(2, 2, logits), Enumerable.Repeat(1, first.Count).ToArray());
    }

    private static ExitPolicy Confidence(float tau) => new(ExitPolicyKind.Confidence, tau: tau);

    [Fact]
    public void FixedSequenceStopsAtTheFirstNonRejection()
    {
        // 90 samples right at exit 1 with confidence 0.95, 10 wrong with 0.7. n = 100, ε = 0.05, δ = 0.1:
        //   τ = 0.99: nobody exits, k = 0, p = 0.95^100 = 0.0059 ≤ δ: certified;
        //   τ = 0.6: the 10 wrong ones exit, k = 10, p = P(Bin(100, 0.05) ≤ 10) ≈ 0.99: not certified, stop;
        //   τ = 0.9: k = 0 again, but the sequence has stopped.
        var (replay, gold) = TwoExits([.. Enumerable.Repeat((0.95, true), 90), .. Enumerable.Repeat((0.7, false), 10)]);
        var r = LearnThenTest.Calibrate(replay, gold, [Confidence(0.99f), Confidence(0.6f), Confidence(0.9f)], 0.05, 0.1);
        Assert.Equal([0, 10, 0], r.Steps.Select(s => s.Losses));
        Assert.Equal(Math.Pow(0.95, 100), r.Steps[0].PValue, 12);
        Assert.Equal(LearnThenTest.BinomialCdf(10, 100, 0.05), r.Steps[1].PValue, 12);
        Assert.Equal([true, false, false], r.Steps.Select(s => s.Rejected));
        Assert.Equal(0.99f, r.Chosen!.Tau);

        // In a safest-first order the same data certify τ = 0.9: 90 of 100 samples stop at exit 1 of 2.
        var ordered = LearnThenTest.Calibrate(replay, gold, [Confidence(0.99f), Confidence(0.9f), Confidence(0.6f)], 0.05, 0.1);
        Assert.Equal(0.9f, ordered.Chosen!.Tau);
        Assert.Equal(0.45, ordered.ChosenStep!.ComputeSaved, 12);
        Assert.Equal(1.0, ordered.ChosenStep.Accuracy);
        Assert.Equal(1.0, ordered.FullDepthAccuracy);
    }

    [Fact]
    public void LossCountsOnlyAnswersFullDepthGotRight()
    {
        // Exit 1 wrong where exit 2 is wrong too is no loss: the drop is what exiting breaks.
        var logits = new[] { new[] { 3f, 0f, 3f, 0f }, new[] { 3f, 0f, 0f, 3f } }; // both exit-1 answers wrong (gold 1); exit 2 wrong, right
        var r = LearnThenTest.Calibrate(new ExitReplay(2, 2, logits), [1, 1], [Confidence(0.5f)], 0.5, 0.5);
        Assert.Equal(1, r.Steps[0].Losses);
        Assert.Null(LearnThenTest.Calibrate(new ExitReplay(2, 2, logits), [1, 1], [Confidence(0.5f)], 0.01, 0.05).Chosen);
    }

    [Fact]
    public void ChainsRunFromSafestToMostAggressive()
    {
        var er = LearnThenTest.Chain(ExitPolicyKind.EntropyReduction, 2, 6, tau: 0.4f);
        Assert.Equal(101, er.Count);
        Assert.All(er, p => Assert.Equal(0.4f, p.Tau));
        Assert.Equal(0f, er[0].Kappa);
        Assert.Equal(1f, er[^1].Kappa);
        var conf = LearnThenTest.Chain(ExitPolicyKind.Confidence, 4, 6);
        Assert.Equal(1f, conf[0].Tau);
        Assert.Equal(0.25f, conf[^1].Tau, 6);
        Assert.Equal([5, 4, 3, 2, 1], LearnThenTest.Chain(ExitPolicyKind.Patience, 2, 6).Select(p => p.Patience));
    }

    /// <summary>
    /// The guarantee, simulated. Population: exit 1's confidence c ~ U(0.5, 1), wrong with probability 0.2
    /// independently of c; exit 2 always right. Confidence τ exits at 1 iff c ≥ τ, so the accuracy drop (= the
    /// risk, full depth being always right) is R(τ) = P(c ≥ τ) · 0.2 = 0.4 (1 − τ), which exceeds ε = 0.05 below
    /// τ* = 0.875. Over many calibration draws, the chosen τ may have R &gt; ε in at most δ of them (up to three
    /// binomial standard errors). The rule without the test (the most aggressive τ whose empirical risk is ≤ ε)
    /// fails that bound on the same draws: the simulation can tell a guarantee from none.
    /// </summary>
    [Fact]
    public void SimulatedDrawsViolateTheBoundAtMostDeltaOfTheTime()
    {
        const double epsilon = 0.05, delta = 0.1;
        const int n = 400, draws = 300;
        var rng = new Random(20261201);
        var chain = LearnThenTest.Chain(ExitPolicyKind.Confidence, 2, 2);
        static double TrueRisk(ExitPolicy p) => 0.4 * (1 - Math.Clamp(p.Tau, 0.5, 1.0));
        int violations = 0, naiveViolations = 0;
        for (int d = 0; d < draws; d++)
        {
            var sample = Enumerable.Range(0, n).Select(_ => (0.5 + 0.5 * rng.NextDouble(), rng.NextDouble() >= 0.2)).ToArray();
            var (replay, gold) = TwoExits(sample);
            var r = LearnThenTest.Calibrate(replay, gold, chain, epsilon, delta);
            if (r.Chosen is { } chosen && TrueRisk(chosen) > epsilon + 1e-6) violations++;
            var naive = r.Steps.Last(s => s.Risk <= epsilon).Policy;
            if (TrueRisk(naive) > epsilon + 1e-6) naiveViolations++;
        }
        double allowed = delta * draws + 3 * Math.Sqrt(draws * delta * (1 - delta));
        Assert.True(violations <= allowed, $"{violations} of {draws} draws violate the bound; at most {allowed:0.0} allowed");
        Assert.True(naiveViolations > allowed, $"the untested rule violated only {naiveViolations} times: the simulation cannot detect a missing guarantee");
    }

    [Fact]
    public void CalibratedCopyStoresThresholdsAndGuaranteeAndKeepsEverythingElse()
    {
        string path = TestPaths.Repo("models/sst2-default/model.bex");
        using var source = TensorFile.Open(path);
        using var original = BinEngine.Format.ModelFile.Open(path);
        var policy = new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: 0.5f, kappa: 0.37f);
        var g = new ExitGuarantee(policy.ToString(), ExitGuarantee.LearnThenTestMethod, 0.005, 0.05, 872, 0, 0.0126, "dev.tsv", new string('a', 64));
        byte[] bytes = ExitGuarantee.CalibratedCopy(source, policy, g);
        using var copy = BinEngine.Format.ModelFile.Open(bytes);
        Assert.Equal("entropy_reduction", copy.Config.Policy);
        Assert.Equal(0.37, copy.Config.Thresholds["entropy_reduction"]["kappa"]);   // stored as the float's shortest text
        Assert.Equal(original.Config.Thresholds["confidence"]["tau"], copy.Config.Thresholds["confidence"]["tau"]);
        Assert.Equal(g, ExitGuarantee.Read(copy.Container));
        Assert.Equal(source.DataChecksum, copy.Container.DataChecksum);        // same tensors, same bytes
        string file = Path.Combine(Path.GetTempPath(), $"calibrated-{Guid.NewGuid():N}.bex");
        File.WriteAllBytes(file, bytes);
        using (var model = BeexModel.Load(file))
            Assert.Equal(policy, model.DefaultPolicy);                            // the runtime picks the calibrated thresholds
        File.Delete(file);

        // Calibrating the copy again replaces the guarantee instead of adding a second one.
        var g2 = g with { Losses = 1, PValue = 0.07 };
        using var again = BinEngine.Format.ModelFile.Open(ExitGuarantee.CalibratedCopy(copy.Container, policy, g2));
        Assert.Equal(g2, ExitGuarantee.Read(again.Container));
    }
}
