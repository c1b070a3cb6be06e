using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>One way of choosing exits, scored on labelled data.</summary>
/// <param name="Name">"static(k=3)", "oracle", or the policy with its thresholds.</param>
/// <param name="Policy">The policy replayed; null for a static depth and the oracle.</param>
/// <param name="StaticDepth">The block every sample answers at for a static depth; 0 otherwise.</param>
/// <param name="Metrics">Accuracy, macro-F1, confusion.</param>
/// <param name="MeanBlocks">Mean blocks run per sample.</param>
/// <param name="ComputeSaved">Fraction of full-depth FLOPs skipped (<see cref="ExitOutcome.ComputeSaved"/>).</param>
/// <param name="Ece">Expected calibration error of the answers (<see cref="Calibration.ExpectedCalibrationError"/>).</param>
internal sealed record OperatingPoint(string Name, ExitPolicy? Policy, int StaticDepth, ClassificationMetrics Metrics,
    double MeanBlocks, double ComputeSaved, double Ece)
{
    /// <summary>Metrics.Accuracy.</summary>
    public double Accuracy => Metrics.Accuracy;

    internal static OperatingPoint Score(string name, ExitPolicy? policy, int depth, ExitOutcome o, ReadOnlySpan<int> gold, int classes) =>
        new(name, policy, depth, o.Metrics(gold, classes), o.MeanBlocks, o.ComputeSaved, o.Ece(gold));
}

/// <summary>
/// Everything exits can do on a labelled set, from one full-depth pass: accuracy at every static depth, the
/// oracle bound, every policy's curve over its thresholds, and the Pareto front of accuracy against compute
/// saved across all of them.
/// </summary>
/// <param name="StaticDepths">Every sample answering at block k, for k = 1..L (k = L is full depth).</param>
/// <param name="Oracle">Right if any exit is right, exiting at the first right one (<see cref="ExitReplay.Oracle"/>).</param>
/// <param name="Curves">Per policy, its points over the grid of its thresholds.</param>
/// <param name="Front">The points of the static depths and curves no other point beats on both accuracy and compute saved, most compute saved first.</param>
internal sealed record ExitAnalysis(
    IReadOnlyList<OperatingPoint> StaticDepths,
    OperatingPoint Oracle,
    IReadOnlyDictionary<ExitPolicyKind, IReadOnlyList<OperatingPoint>> Curves,
    IReadOnlyList<OperatingPoint> Front)
{
    /// <summary>Scores static depths, the oracle and every policy's grid on <paramref name="gold"/>.</summary>
    public static ExitAnalysis Run(ExitReplay replay, ReadOnlySpan<int> gold)
    {
        replay.CheckGold(gold);
        int classes = replay.Classes;
        var depths = new List<OperatingPoint>(replay.Layers);
        for (int k = 1; k <= replay.Layers; k++)
            depths.Add(OperatingPoint.Score($"static(k={k})", null, k, replay.AtDepth(k), gold, classes));
        var oracle = OperatingPoint.Score("oracle", null, 0, replay.Oracle(gold), gold, classes);
        var curves = new Dictionary<ExitPolicyKind, IReadOnlyList<OperatingPoint>>();
        foreach (ExitPolicyKind kind in PolicyGrid.Kinds.Where(replay.CanReplay))
        {
            var points = new List<OperatingPoint>();
            foreach (ExitPolicy p in PolicyGrid.Curve(kind, classes, replay.Layers))
                points.Add(OperatingPoint.Score(p.ToString(), p, 0, replay.Replay(p), gold, classes));
            curves[kind] = points;
        }
        return new ExitAnalysis(depths, oracle, curves, ParetoFront(depths.Concat(curves.Values.SelectMany(c => c))));
    }

    /// <summary>
    /// The points that no other point dominates (at least as accurate and saving at least as much compute, better
    /// in one), most compute saved first; of equal points the first given is kept. Sorting by compute saved
    /// (descending, ties by accuracy descending) and keeping each point more accurate than every one before it
    /// gives exactly that set: a kept point saves less than those before it only if it is more accurate than all.
    /// </summary>
    public static IReadOnlyList<OperatingPoint> ParetoFront(IEnumerable<OperatingPoint> points)
    {
        var front = new List<OperatingPoint>();
        double best = double.NegativeInfinity;
        foreach (var p in points.OrderByDescending(p => p.ComputeSaved).ThenByDescending(p => p.Accuracy))
        {
            if (p.Accuracy > best)
            {
                front.Add(p);
                best = p.Accuracy;
            }
        }
        return front;
    }
}
