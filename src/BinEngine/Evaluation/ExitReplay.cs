using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>
/// Every exit's answer for every sample, from one full-depth pass, so that any exit rule can be replayed
/// without running the model again. A sample's block outputs do not depend on the policy (an exit only stops
/// the forward pass), so the logits of a run with <see cref="ExitPolicy.Never"/> are the logits any policy would
/// have seen. The replay recomputes each exit's softmax and entropy with the forward pass's own function and
/// asks <see cref="ExitPolicy.ShouldExit"/> (the one definition of every rule), so it equals a real run exactly
/// and follows any change to a rule automatically.
/// </summary>
internal sealed class ExitReplay
{
    private readonly float[][] _probabilities; // per sample, [L × C]
    private readonly float[][] _entropies;     // per sample, [L]
    private readonly double[] _blockFlops;     // per sample, one block with its exit head (CostModel)

    /// <summary>Samples.</summary>
    public int Count => _probabilities.Length;
    /// <summary>Blocks (= exits), L.</summary>
    public int Layers { get; }
    /// <summary>Classes, C.</summary>
    public int Classes { get; }

    /// <summary>
    /// Builds a replay from every exit's logits. <paramref name="logits"/>[s] holds sample s's logits flattened
    /// [L × C]; <paramref name="blockFlops"/>[s] is what one block with its exit head costs for sample s (the
    /// weight of the sample in compute saved); null counts every sample alike.
    /// </summary>
    public ExitReplay(int layers, int classes, IReadOnlyList<float[]> logits, IReadOnlyList<double>? blockFlops = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if (blockFlops is not null && blockFlops.Count != logits.Count)
            throw new ArgumentException($"{logits.Count} samples but {blockFlops.Count} costs", nameof(blockFlops));
        Layers = layers;
        Classes = classes;
        _probabilities = new float[logits.Count][];
        _entropies = new float[logits.Count][];
        _blockFlops = new double[logits.Count];
        for (int s = 0; s < logits.Count; s++)
        {
            float[] z = logits[s];
            if (z.Length != layers * classes)
                throw new ArgumentException($"sample {s} has {z.Length} logits; {layers} exits × {classes} classes expected", nameof(logits));
            var p = new float[layers * classes];
            var h = new float[layers];
            for (int b = 0; b < layers; b++)
                h[b] = ForwardPass.SoftmaxEntropy(z.AsSpan(b * classes, classes), p.AsSpan(b * classes, classes));
            _probabilities[s] = p;
            _entropies[s] = h;
            _blockFlops[s] = blockFlops?[s] ?? 1.0;
        }
    }

    /// <summary>Runs every text through all blocks once (<see cref="ExitPolicy.Never"/>) and keeps every exit's answer.</summary>
    public static ExitReplay Run(BeexModel model, IReadOnlyList<string> texts) =>
        FromFullDepth(model.Architecture, model.ClassifyBatch(texts, ExitPolicy.Never));

    /// <summary>Builds a replay from results of a full-depth run (policy none), weighting samples by <see cref="CostModel"/>.</summary>
    public static ExitReplay FromFullDepth(Architecture architecture, IReadOnlyList<ClassificationResult> fullDepth)
    {
        var logits = new float[fullDepth.Count][];
        var flops = new double[fullDepth.Count];
        for (int s = 0; s < fullDepth.Count; s++)
        {
            ClassificationResult r = fullDepth[s];
            if (r.ExitBlock != r.Layers || r.Layers != architecture.Layers)
                throw new ArgumentException($"sample {s} exited at block {r.ExitBlock} of {r.Layers}; the replay needs full-depth results", nameof(fullDepth));
            logits[s] = r.Logits;
            flops[s] = CostModel.BlockWithExitFlops(architecture, r.TokenCount);
        }
        return new ExitReplay(architecture.Layers, architecture.Classes, logits, flops);
    }

    /// <summary>softmax of exit <paramref name="block"/> (1-based) for sample <paramref name="sample"/>.</summary>
    public ReadOnlySpan<float> Probabilities(int sample, int block) => _probabilities[sample].AsSpan((block - 1) * Classes, Classes);

    /// <summary>H of exit <paramref name="block"/> (1-based) for sample <paramref name="sample"/>.</summary>
    public float Entropy(int sample, int block) => _entropies[sample][block - 1];

    /// <summary>What <paramref name="policy"/> answers for every sample: the policy decides after each block, the last block answers regardless.</summary>
    public ExitOutcome Replay(ExitPolicy policy)
    {
        var exits = new int[Count];
        for (int s = 0; s < Count; s++)
        {
            var state = new ExitState();
            int exit = Layers;
            for (int b = 1; b < Layers; b++)
            {
                if (policy.ShouldExit(ref state, Probabilities(s, b), Entropy(s, b)))
                {
                    exit = b;
                    break;
                }
            }
            exits[s] = exit;
        }
        return Outcome(exits);
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
    /// The oracle: a sample exits at the first block whose answer is right; a sample no exit gets right exits at
    /// block 1 (nothing later helps it). Its accuracy bounds every exit rule's (a sample is right if any exit is),
    /// and its compute is the least any rule reaching that accuracy needs.
    /// </summary>
    public ExitOutcome Oracle(ReadOnlySpan<int> gold)
    {
        CheckGold(gold);
        var exits = new int[Count];
        for (int s = 0; s < Count; s++)
        {
            exits[s] = 1;
            for (int b = 1; b <= Layers; b++)
            {
                if (ExitPolicy.ArgMax(Probabilities(s, b)) == gold[s])
                {
                    exits[s] = b;
                    break;
                }
            }
        }
        return Outcome(exits);
    }

    /// <summary>The answers, confidences and compute of exiting sample s at block <paramref name="exitBlocks"/>[s].</summary>
    public ExitOutcome Outcome(int[] exitBlocks)
    {
        if (exitBlocks.Length != Count)
            throw new ArgumentException($"{exitBlocks.Length} exit blocks for {Count} samples", nameof(exitBlocks));
        var labels = new int[Count];
        var confidences = new float[Count];
        // Every block with its exit head costs the same for a given sample (CostModel), so exiting sample s at
        // block e_s skips c_s·(L − e_s) of its c_s·L FLOPs; over the set: Σ c_s(L − e_s) / Σ c_s·L.
        double skipped = 0, total = 0;
        for (int s = 0; s < Count; s++)
        {
            int e = exitBlocks[s];
            if (e < 1 || e > Layers)
                throw new ArgumentOutOfRangeException(nameof(exitBlocks), e, $"sample {s}: exit block outside 1..{Layers}");
            ReadOnlySpan<float> p = Probabilities(s, e);
            labels[s] = ExitPolicy.ArgMax(p);
            confidences[s] = p[labels[s]];
            skipped += _blockFlops[s] * (Layers - e);
            total += _blockFlops[s] * Layers;
        }
        return new ExitOutcome(labels, exitBlocks, confidences, total > 0 ? skipped / total : 0);
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
internal sealed record ExitOutcome(int[] Labels, int[] ExitBlocks, float[] Confidences, double ComputeSaved)
{
    /// <summary>Mean blocks run per sample.</summary>
    public double MeanBlocks => ExitBlocks.Length == 0 ? 0 : ExitBlocks.Average();

    /// <summary>Accuracy, macro-F1 and confusion of the answers against <paramref name="gold"/>.</summary>
    public ClassificationMetrics Metrics(ReadOnlySpan<int> gold, int classes) => ClassificationMetrics.Compute(gold, Labels, classes);

    /// <summary>Expected calibration error of the answers against <paramref name="gold"/> (<see cref="Calibration.ExpectedCalibrationError"/>).</summary>
    public double Ece(ReadOnlySpan<int> gold) => Calibration.ExpectedCalibrationError(Confidences, Labels, gold);
}
