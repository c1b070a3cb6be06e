using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>Each policy's decision on hand-made per-block outputs (docs/MODEL.md, Exits).</summary>
public class ExitPolicyTests
{
    private static float Entropy(float[] p) => -p.Where(x => x > 0).Sum(x => x * MathF.Log(x));

    /// <summary>Feeds blocks in order and returns the 1-based block at which the policy first exits, or 0.</summary>
    private static int FirstExit(ExitPolicy policy, params float[][] blocks)
    {
        var state = new ExitState();
        for (int i = 0; i < blocks.Length; i++)
            if (policy.ShouldExit(ref state, blocks[i], Entropy(blocks[i])))
                return i + 1;
        return 0;
    }

    private static readonly float[] Unsure = [0.55f, 0.45f];
    private static readonly float[] Leaning = [0.8f, 0.2f];
    private static readonly float[] Sure = [0.97f, 0.03f];
    private static readonly float[] SureOther = [0.03f, 0.97f];

    [Fact]
    public void EntropyReductionWaitsUntilEntropyStopsFallingAndIsLow()
    {
        // H: ln2 → 0.688 (δ ≈ 0.007, but H/ln2 ≈ 0.99 ≥ κ) → 0.500 (δ ≈ 0.27 ≥ τ) → 0.135 (δ ≈ 0.73) → 0.135 (δ = 0, H/ln2 ≈ 0.19 < κ).
        var policy = new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: 0.1f, kappa: 0.5f);
        Assert.Equal(4, FirstExit(policy, Unsure, Leaning, Sure, Sure));
        // Without κ (κ = 1.01) the stalled, unsure first block would exit.
        Assert.Equal(1, FirstExit(new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: 0.1f, kappa: 1.01f), Unsure, Sure));
    }

    [Fact]
    public void EntropyReductionLetsASureFirstBlockLeave()
    {
        // Block 1 has no earlier block: δ_1 = 0, so H_1/ln2 ≈ 0.19 < κ exits at once (with the shared
        // spec's H_0 = ln C, δ_1 ≈ 0.81 ≥ τ kept it for block 2); an unsure block 1 stays.
        var policy = new ExitPolicy(ExitPolicyKind.EntropyReduction, tau: 0.1f, kappa: 0.5f);
        Assert.Equal(1, FirstExit(policy, Sure, Sure));
        Assert.Equal(3, FirstExit(policy, Unsure, Sure, Sure));
        Assert.True(ExitPolicy.EntropyReductionExits(firstBlock: true, previousEntropy: 0f, entropy: 0.1f, MathF.Log(2), tau: 0.1f, kappa: 0.5f));
        Assert.False(ExitPolicy.EntropyReductionExits(firstBlock: false, previousEntropy: 0.5f, entropy: 0.1f, MathF.Log(2), tau: 0.1f, kappa: 0.5f));
    }

    [Fact]
    public void EntropyAndNormalizedEntropyCompareHAgainstTau()
    {
        Assert.Equal(3, FirstExit(new ExitPolicy(ExitPolicyKind.Entropy, tau: 0.2f), Unsure, Leaning, Sure));
        Assert.Equal(2, FirstExit(new ExitPolicy(ExitPolicyKind.NormalizedEntropy, tau: 0.8f), Unsure, Leaning, Sure));
    }

    [Fact]
    public void ConfidenceComparesTheTopProbability()
    {
        Assert.Equal(2, FirstExit(new ExitPolicy(ExitPolicyKind.Confidence, tau: 0.8f), Unsure, Leaning));
        Assert.Equal(0, FirstExit(new ExitPolicy(ExitPolicyKind.Confidence, tau: 0.99f), Unsure, Leaning, Sure));
    }

    [Fact]
    public void PatienceCountsAgreeingBlocksInARow()
    {
        var patience2 = new ExitPolicy(ExitPolicyKind.Patience, patience: 2);
        // argmax: 0, 0 (run 1), 1 (run 0), 1 (run 1), 1 (run 2) → exits at block 5.
        Assert.Equal(5, FirstExit(patience2, Sure, Leaning, SureOther, SureOther, SureOther));
        Assert.Equal(2, FirstExit(new ExitPolicy(ExitPolicyKind.Patience, patience: 1), Unsure, Sure));
    }

    [Fact]
    public void NoneNeverExits() => Assert.Equal(0, FirstExit(ExitPolicy.Never, Sure, Sure, Sure));

    [Fact]
    public void NamesRoundTripAndUnknownNamesAreListed()
    {
        foreach (ExitPolicyKind kind in Enum.GetValues<ExitPolicyKind>())
            Assert.Equal(kind, ExitPolicy.ParseKind(ExitPolicy.NameOf(kind)));
        Assert.Contains("entropy_reduction", Assert.Throws<ArgumentException>(() => ExitPolicy.ParseKind("fastest")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExitPolicy(ExitPolicyKind.Patience, patience: 0));
    }
}
