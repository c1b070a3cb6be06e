using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>
/// Every exit's answer for every sample, from one full-depth pass, so that any exit rule can be replayed
/// without running the model again. A sample's block outputs do not depend on the policy (an exit only stops
/// the forward pass; skip gates decide before a block from the state alone), so the exits of a run with
/// <see cref="ExitPolicy.Trace"/> are the exits any policy would have seen. The replay recomputes each exit's
/// softmax and entropy with the forward pass's own function and asks <see cref="ExitPolicy.ShouldExit"/> (the one
/// definition of every rule) with the controllers' λ and g, so it equals a real run exactly and follows any change
/// to a rule automatically.
/// </summary>
internal sealed class ExitReplay
{
    /// <summary>
    /// One sample's evaluated exits k = 0 … E − 1 (one per block run; E = L without skip gates): the block of each,
    /// its softmax [E × C] and entropy, the controllers' outputs (NaN without them), the FLOPs of answering there
    /// and of the plain model at full depth.
    /// </summary>
    /// <summary>CostAt[k]: FLOPs of answering at exit k without q_exit's λ-MLP; LambdaCostAt[k]: with it (what a q_exit run spends).</summary>
    private sealed record Sample(int[] Blocks, float[] Probabilities, float[] Entropies, float[] Lambdas, float[] Gates, double[] CostAt,
        double[] LambdaCostAt, double FullCost);

    private readonly Sample[] _samples;

    /// <summary>Samples.</summary>
    public int Count => _samples.Length;
    /// <summary>Blocks (= exits), L.</summary>
    public int Layers { get; }
    /// <summary>Classes, C.</summary>
    public int Classes { get; }

    /// <summary>Whether policies of <paramref name="kind"/> can be replayed: a controller policy needs its controller's outputs in every sample.</summary>
    public bool CanReplay(ExitPolicyKind kind) => kind switch
    {
        ExitPolicyKind.QExit => _samples.All(s => !float.IsNaN(s.Lambdas[0])),
        ExitPolicyKind.LearnedGate => _samples.All(s => !float.IsNaN(s.Gates[0])),
        _ => true,
    };

    /// <summary>
    /// Builds a replay of a plain model from every exit's logits. <paramref name="logits"/>[s] holds sample s's logits
    /// flattened [L × C]; <paramref name="blockFlops"/>[s] is what one block with its exit head costs for sample s (the
    /// weight of the sample in compute saved); null counts every sample alike.
    /// </summary>
    public ExitReplay(int layers, int classes, IReadOnlyList<float[]> logits, IReadOnlyList<double>? blockFlops = null)
        : this(layers, classes, Plain(layers, classes, logits, blockFlops))
    {
    }

    private ExitReplay(int layers, int classes, Sample[] samples)
    {
        Layers = layers;
        Classes = classes;
        _samples = samples;
    }

    private static Sample[] Plain(int layers, int classes, IReadOnlyList<float[]> logits, IReadOnlyList<double>? blockFlops)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if (blockFlops is not null && blockFlops.Count != logits.Count)
            throw new ArgumentException($"{logits.Count} samples but {blockFlops.Count} costs", nameof(blockFlops));
        int[] blocks = Enumerable.Range(1, layers).ToArray();
        float[] none = Enumerable.Repeat(float.NaN, layers).ToArray();
        var samples = new Sample[logits.Count];
        for (int s = 0; s < logits.Count; s++)
        {
            if (logits[s].Length != layers * classes)
                throw new ArgumentException($"sample {s} has {logits[s].Length} logits; {layers} exits × {classes} classes expected", nameof(logits));
            double block = blockFlops?[s] ?? 1.0;
            double[] costAt = blocks.Select(b => b * block).ToArray();
            samples[s] = Build(classes, blocks, logits[s], none, none, costAt, costAt, layers * block);
        }
        return samples;
    }

    private static Sample Build(int classes, int[] blocks, float[] logits, float[] lambdas, float[] gates, double[] costAt, double[] lambdaCostAt, double fullCost)
    {
        int exits = blocks.Length;
        var p = new float[exits * classes];
        var h = new float[exits];
        for (int k = 0; k < exits; k++)
            h[k] = ForwardPass.SoftmaxEntropy(logits.AsSpan(k * classes, classes), p.AsSpan(k * classes, classes));
        return new Sample(blocks, p, h, lambdas, gates, costAt, lambdaCostAt, fullCost);
    }

    /// <summary>Runs every text through all blocks once with every controller recorded (<see cref="ExitPolicy.Trace"/>) and keeps every exit's answer.</summary>
    public static ExitReplay Run(BeexModel model, IReadOnlyList<string> texts) =>
        FromFullDepth(model.Architecture, model.Weights.Mechanisms, model.ClassifyBatch(texts, ExitPolicy.Trace));

    /// <summary>
    /// Builds a replay from results of a full-depth run (<see cref="ExitPolicy.Trace"/>; with <see cref="ExitPolicy.Never"/>
    /// only the policies that read no controller can be replayed): the exits each sample evaluated, the controllers'
    /// outputs, and the FLOPs of answering at each exit (<see cref="CostModel.ExecutedFlops"/>, mechanisms counted; q_exit's
    /// λ-MLP only for the q_exit policy, the one run that evaluates it).
    /// </summary>
    public static ExitReplay FromFullDepth(Architecture architecture, MechanismWeights mechanisms, IReadOnlyList<ClassificationResult> fullDepth)
    {
        var samples = new Sample[fullDepth.Count];
        for (int s = 0; s < fullDepth.Count; s++)
        {
            ClassificationResult r = fullDepth[s];
            if (r.ExitBlock != r.Layers || r.Layers != architecture.Layers)
                throw new ArgumentException($"sample {s} exited at block {r.ExitBlock} of {r.Layers}; the replay needs full-depth results", nameof(fullDepth));
            int exits = r.BlocksRun.Length;
            float[] none = Enumerable.Repeat(float.NaN, exits).ToArray();
            double[] CostAt(bool lambda) => Enumerable.Range(0, exits)
                .Select(k => CostModel.ExecutedFlops(architecture, mechanisms, r.TokenCount, k + 1, r.BlocksRun[k], lambda)).ToArray();
            samples[s] = Build(architecture.Classes, r.BlocksRun, r.Logits, r.Lambdas ?? none, r.GateScores ?? none, CostAt(false), CostAt(true), r.FullDepthFlops);
        }
        return new ExitReplay(architecture.Layers, architecture.Classes, samples);
    }

    /// <summary>
    /// The exit that answers for sample <paramref name="sample"/> when it stops at block <paramref name="block"/> (1-based):
    /// the last exit evaluated at or before it (the block's own without skip gates), or the first exit when every block
    /// up to it was skipped (no earlier answer exists).
    /// </summary>
    private int ExitAt(int sample, int block)
    {
        int[] blocks = _samples[sample].Blocks;
        int k = 0;
        while (k + 1 < blocks.Length && blocks[k + 1] <= block)
            k++;
        return k;
    }

    /// <summary>softmax of the exit answering at block <paramref name="block"/> (1-based) for sample <paramref name="sample"/>.</summary>
    public ReadOnlySpan<float> Probabilities(int sample, int block) => ProbabilitiesOf(sample, ExitAt(sample, block));

    private ReadOnlySpan<float> ProbabilitiesOf(int sample, int k) => _samples[sample].Probabilities.AsSpan(k * Classes, Classes);

    /// <summary>H of the exit answering at block <paramref name="block"/> (1-based) for sample <paramref name="sample"/>.</summary>
    public float Entropy(int sample, int block) => _samples[sample].Entropies[ExitAt(sample, block)];

    /// <summary>What <paramref name="policy"/> answers for every sample: the policy decides after each block that ran, the last block answers regardless.</summary>
    public ExitOutcome Replay(ExitPolicy policy)
    {
        if (!CanReplay(policy.Kind))
            throw new ArgumentException($"policy '{policy.Name}' needs its controller's outputs, which these results lack (the model does not carry '{ExitPolicy.ControllerOf(policy.Kind)}', or the results were not run with ExitPolicy.Trace)");
        var exits = new int[Count];
        for (int s = 0; s < Count; s++)
        {
            Sample x = _samples[s];
            ExitState state = ExitState.Start;
            int last = x.Blocks.Length - 1, k = 0;
            while (k < last && !policy.ShouldExit(ref state, ProbabilitiesOf(s, k), x.Entropies[k], x.Lambdas[k], x.Gates[k]))
                k++;
            exits[s] = x.Blocks[k];
        }
        return Outcome(exits, policy.ReadsLambda);
    }
    /// <summary>Static depth: every sample answers at block <paramref name="block"/> (1..L).</summary>
    public ExitOutcome AtDepth(int block)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(block, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(block, Layers);
        var exits = new int[Count];
        Array.Fill(exits, block);
        return Outcome(exits);
    }

    /// <summary>
    /// The oracle: a sample exits at the first exit whose answer is right; a sample no exit gets right exits at
    /// its first exit (nothing later helps it). Its accuracy bounds every exit rule's (a sample is right if any exit is),
    /// and its compute is the least any rule reaching that accuracy needs.
    /// </summary>
    public ExitOutcome Oracle(ReadOnlySpan<int> gold)
    {
        CheckGold(gold);
        var exits = new int[Count];
        for (int s = 0; s < Count; s++)
        {
            int[] blocks = _samples[s].Blocks;
            exits[s] = blocks[0];
            for (int k = 0; k < blocks.Length; k++)
            {
                if (ExitPolicy.ArgMax(ProbabilitiesOf(s, k)) == gold[s])
                {
                    exits[s] = blocks[k];
                    break;
                }
            }
        }
        return Outcome(exits);
    }

    /// <summary>
    /// The answers, confidences and compute of exiting sample s at block <paramref name="exitBlocks"/>[s] (the exit answering
    /// there, <see cref="Probabilities"/>); <paramref name="lambda"/>: the run evaluated q_exit's λ at each exit (its cost counts).
    /// </summary>
    public ExitOutcome Outcome(int[] exitBlocks, bool lambda = false)
    {
        if (exitBlocks.Length != Count)
            throw new ArgumentException($"{exitBlocks.Length} exit blocks for {Count} samples", nameof(exitBlocks));
        var labels = new int[Count];
        var confidences = new float[Count];
        var run = new int[Count];
        // Compute saved over the set: Σ_s (full_s − executed_s) / Σ_s full_s, each sample weighted by its own cost
        // (CostModel): for a plain model c_s(L − e_s) / c_s·L per sample.
        double executed = 0, total = 0;
        for (int s = 0; s < Count; s++)
        {
            int e = exitBlocks[s];
            if (e < 1 || e > Layers)
                throw new ArgumentOutOfRangeException(nameof(exitBlocks), e, $"sample {s}: exit block outside 1..{Layers}");
            int k = ExitAt(s, e);
            run[s] = k + 1;
            ReadOnlySpan<float> p = ProbabilitiesOf(s, k);
            labels[s] = ExitPolicy.ArgMax(p);
            confidences[s] = p[labels[s]];
            executed += (lambda ? _samples[s].LambdaCostAt : _samples[s].CostAt)[k];
            total += _samples[s].FullCost;
        }
        return new ExitOutcome(labels, exitBlocks, confidences, total > 0 ? (total - executed) / total : 0, run);
    }

    internal void CheckGold(ReadOnlySpan<int> gold)
    {
        if (gold.Length != Count)
            throw new ArgumentException($"{gold.Length} gold labels for {Count} samples", nameof(gold));
    }
}

/// <summary>What an exit rule answers for every sample of an <see cref="ExitReplay"/>.</summary>
/// <param name="Labels">The answered class per sample.</param>
/// <param name="ExitBlocks">The block (1-based) whose exit answered, per sample.</param>
/// <param name="Confidences">The answered class's probability per sample.</param>
/// <param name="ComputeSaved">Fraction of full-depth FLOPs (blocks and exit heads) skipped, weighted by each sample's cost.</param>
/// <param name="BlocksRun">Blocks each sample ran up to its exit (its exit block unless skip gates skipped some).</param>
internal sealed record ExitOutcome(int[] Labels, int[] ExitBlocks, float[] Confidences, double ComputeSaved, int[] BlocksRun)
{
    /// <summary>Mean blocks run per sample (skipped blocks not counted).</summary>
    public double MeanBlocks => BlocksRun.Length == 0 ? 0 : BlocksRun.Average();

    /// <summary>Mean exit block per sample (1-based; equals <see cref="MeanBlocks"/> without skip gates).</summary>
    public double MeanExitBlock => ExitBlocks.Length == 0 ? 0 : ExitBlocks.Average();

    /// <summary>Accuracy, macro-F1 and confusion of the answers against <paramref name="gold"/>.</summary>
    public ClassificationMetrics Metrics(ReadOnlySpan<int> gold, int classes) => ClassificationMetrics.Compute(gold, Labels, classes);

    /// <summary>Expected calibration error of the answers against <paramref name="gold"/> (<see cref="Calibration.ExpectedCalibrationError"/>).</summary>
    public double Ece(ReadOnlySpan<int> gold) => Calibration.ExpectedCalibrationError(Confidences, Labels, gold);
}
