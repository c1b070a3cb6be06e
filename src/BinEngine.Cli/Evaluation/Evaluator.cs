using System.Diagnostics;
using BinEngine.Runtime;

namespace BinEngine.Cli.Evaluation;

/// <summary>One point of a threshold sweep.</summary>
internal sealed record SweepPoint(ExitPolicy Policy, double Accuracy, double MacroF1, double MeanBlocks, double ComputeSaved);

/// <summary>Everything `eval` reports for one model.</summary>
internal sealed record EvalReport(
    string ModelPath,
    Architecture Architecture,
    IReadOnlyList<string> Labels,
    ExitPolicy Policy,
    ClassificationMetrics Metrics,
    double MeanBlocks,
    long[] ExitHistogram,
    double ComputeSaved,
    int Truncated,
    double LatencyP50Ms,
    double LatencyP99Ms,
    int LatencySamples,
    double Throughput,
    int Threads,
    IReadOnlyList<SweepPoint>? Sweep);

/// <summary>Runs a model over a labelled data set: predictions, exits, compute, latency and throughput.</summary>
internal static class Evaluator
{
    /// <param name="texts">Texts that each hold at least one token.</param>
    /// <param name="latencySamples">How many texts to time one by one (0: none).</param>
    public static EvalReport Run(BeexModel model, string modelPath, ExitPolicy policy, string[] texts, int[] gold,
        int threads, int latencySamples, bool sweep)
    {
        int n = texts.Length;
        if (model.Threads != 1 || model.BatchThreads != threads)
            throw new ArgumentException($"load the model with Threads = 1 and BatchThreads = {threads} (BeexModelOptions) for this run");

        // Throughput: the whole set as one batch on all threads, tokenization included, after a warm-up
        // (JIT, page faults of the mapped weights) on a few samples.
        model.ClassifyBatch(texts.Take(Math.Min(n, 32)).ToArray(), policy);
        var clock = Stopwatch.StartNew();
        ClassificationResult[] results = model.ClassifyBatch(texts, policy);
        double batchSeconds = clock.Elapsed.TotalSeconds;

        var predicted = results.Select(r => r.Label).ToArray();
        var metrics = ClassificationMetrics.Compute(gold, predicted, model.Labels.Count);
        int layers = model.Architecture.Layers;
        var histogram = new long[layers];
        double skipped = 0, full = 0;
        foreach (var r in results)
        {
            histogram[r.ExitBlock - 1]++;
            skipped += r.ComputeSkipped * r.FullDepthFlops;
            full += r.FullDepthFlops;
        }

        // Latency: one text at a time on one thread, as a request-serving process sees it.
        int timed = Math.Min(n, latencySamples);
        var latencies = new double[timed];
        for (int i = 0; i < timed; i++)
        {
            long start = Stopwatch.GetTimestamp();
            model.Classify(texts[i], policy);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(latencies);

        List<SweepPoint>? points = null;
        if (sweep)
        {
            var simulator = new ExitSimulator(model.ClassifyBatch(texts, ExitPolicy.Never), model.Labels.Count);
            var labels = new int[n];
            var exits = new int[n];
            points = [];
            foreach (var p in ExitSimulator.Grid(policy, model.Labels.Count, layers))
            {
                double saved = simulator.Replay(p, labels, exits);
                var m = ClassificationMetrics.Compute(gold, labels, model.Labels.Count);
                points.Add(new SweepPoint(p, m.Accuracy, m.MacroF1, n == 0 ? 0 : exits.Average(), saved));
            }
        }

        return new EvalReport(modelPath, model.Architecture, model.Labels, policy, metrics,
            n == 0 ? 0 : results.Average(r => r.ExitBlock), histogram, full > 0 ? skipped / full : 0,
            results.Count(r => r.Truncated),
            Percentile(latencies, 0.50), Percentile(latencies, 0.99), timed,
            batchSeconds > 0 ? n / batchSeconds : 0, threads, points);
    }

    /// <summary>The nearest-rank percentile of sorted values (NaN when empty).</summary>
    internal static double Percentile(double[] sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        int rank = (int)Math.Ceiling(q * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
