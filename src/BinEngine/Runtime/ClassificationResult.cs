namespace BinEngine.Runtime;

/// <summary>The answer for one text (or one id sequence): what the exit that answered said, and what it cost.</summary>
public sealed class ClassificationResult
{
    /// <summary>The predicted class id (argmax of <see cref="Probabilities"/>).</summary>
    public required int Label { get; init; }
    /// <summary>The predicted class's name from the model file.</summary>
    public required string LabelName { get; init; }
    /// <summary>softmax of the answering exit's logits, one per class.</summary>
    public required float[] Probabilities { get; init; }
    /// <summary>The block whose exit answered, 1-based (L when the sample ran to the end).</summary>
    public required int ExitBlock { get; init; }
    /// <summary>Blocks in the model (L).</summary>
    public required int Layers { get; init; }
    /// <summary>
    /// The blocks that ran (1-based, ascending), each followed by its exit: 1 … ExitBlock, unless the model's skip
    /// gates (docs/MODEL.md, skip_gates) skipped some. Row k of <see cref="Entropies"/> and <see cref="Logits"/> is the exit of block BlocksRun[k].
    /// </summary>
    public required int[] BlocksRun { get; init; }
    /// <summary>H of every exit computed, in order: one per entry of <see cref="BlocksRun"/>.</summary>
    public required float[] Entropies { get; init; }
    /// <summary>Logits of every exit computed, flattened [BlocksRun.Length × C].</summary>
    public required float[] Logits { get; init; }
    /// <summary>q_exit's λ at every exit computed: null when the model has no q_exit controller or the call's policy does not read λ (only q_exit does; <see cref="ExitPolicy.Trace"/> records every controller).</summary>
    public float[]? Lambdas { get; init; }
    /// <summary>learned_gate's g at every exit computed: null when the model has no learned gate or the call's policy does not read g (only learned_gate does; <see cref="ExitPolicy.Trace"/> records every controller).</summary>
    public float[]? GateScores { get; init; }
    /// <summary>
    /// The split-conformal prediction set, class ids ascending: every class c with 1 − p_c ≤ q̂, where q̂ was calibrated
    /// on dev for this policy with these thresholds (docs/MODEL.md, learned_gate); it holds the true class with probability
    /// ≥ 1 − α on data like dev. Null when the model stores no calibration for the policy used.
    /// </summary>
    public int[]? PredictionSet { get; init; }
    /// <summary>Tokens the model read, [CLS] and [SEP] included.</summary>
    public required int TokenCount { get; init; }
    /// <summary>True when the text had more than max_len tokens and was cut to fit.</summary>
    public required bool Truncated { get; init; }
    /// <summary>
    /// Fraction of the full-depth forward's FLOPs (every block and linear exit head) that exiting early and
    /// skipping blocks saved for this sample, the mechanisms' own FLOPs counted against it (<see cref="CostModel"/>):
    /// below 1, and negative when Mamba heads or controllers cost more than what was skipped.
    /// </summary>
    public required double ComputeSkipped { get; init; }
    /// <summary>FLOPs of running all L blocks on this sample (<see cref="CostModel"/>); weights <see cref="ComputeSkipped"/> when averaging over many samples.</summary>
    public required double FullDepthFlops { get; init; }

    /// <summary>The logits of the exit of block <paramref name="block"/> (1-based; one of <see cref="BlocksRun"/>).</summary>
    public ReadOnlySpan<float> LogitsOf(int block)
    {
        int classes = Probabilities.Length, k = Array.IndexOf(BlocksRun, block);
        if (k < 0)
            throw new ArgumentOutOfRangeException(nameof(block), block, $"the exits of blocks {string.Join(", ", BlocksRun)} were computed");
        return Logits.AsSpan(k * classes, classes);
    }

    /// <summary>The label, its probability and the exit taken, e.g. <c>positive p=0.998 exit 2/6</c>.</summary>
    public override string ToString() =>
        $"{LabelName} p={Probabilities[Label]:0.000} exit {ExitBlock}/{Layers}{(Truncated ? " (truncated)" : "")}";
}
