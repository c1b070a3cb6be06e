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
    /// <summary>H_i of every block computed, in order: ExitBlock entries.</summary>
    public required float[] Entropies { get; init; }
    /// <summary>Logits of every exit computed, flattened [ExitBlock × C].</summary>
    public required float[] Logits { get; init; }
    /// <summary>Tokens the model read, [CLS] and [SEP] included.</summary>
    public required int TokenCount { get; init; }
    /// <summary>True when the text had more than max_len tokens and was cut to fit.</summary>
    public required bool Truncated { get; init; }
    /// <summary>
    /// Fraction of the full-depth forward's FLOPs (every block and exit head) that exiting early
    /// skipped for this sample, in [0, 1).
    /// </summary>
    public required double ComputeSkipped { get; init; }
    /// <summary>FLOPs of running all L blocks on this sample (<see cref="CostModel"/>); weights <see cref="ComputeSkipped"/> when averaging over many samples.</summary>
    public required double FullDepthFlops { get; init; }

    /// <summary>The logits of exit <paramref name="block"/> (1-based, ≤ ExitBlock).</summary>
    public ReadOnlySpan<float> LogitsOf(int block)
    {
        int classes = Probabilities.Length;
        if (block < 1 || block > ExitBlock)
            throw new ArgumentOutOfRangeException(nameof(block), block, $"exits 1..{ExitBlock} were computed");
        return Logits.AsSpan((block - 1) * classes, classes);
    }

    /// <summary>The label, its probability and the exit taken, e.g. <c>positive p=0.998 exit 2/6</c>.</summary>
    public override string ToString() =>
        $"{LabelName} p={Probabilities[Label]:0.000} exit {ExitBlock}/{Layers}{(Truncated ? " (truncated)" : "")}";
}
