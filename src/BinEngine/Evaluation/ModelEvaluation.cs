using System.Diagnostics;
using BinEngine.Runtime;

namespace BinEngine.Evaluation;

/// <summary>What <see cref="ModelEvaluation.Run"/> measured for one model and policy on labelled texts.</summary>
/// <param name="Policy">The policy of the real run.</param>
/// <param name="Metrics">Accuracy, macro-F1 and confusion of the real run's answers.</param>
/// <param name="MeanBlocks">Mean blocks run per text (skipped blocks not counted).</param>
/// <param name="ExitHistogram">Texts answered at each block, [L].</param>
/// <param name="ComputeSaved">Fraction of full-depth FLOPs skipped, FLOP-weighted by length.</param>
/// <param name="Ece">Expected calibration error of the answers (15 bins).</param>
/// <param name="Truncated">Texts cut to max_len.</param>
/// <param name="LatencyP50Ms">Median latency of one text at a time on one thread (NaN when none timed).</param>
/// <param name="LatencyP99Ms">99th percentile latency.</param>
/// <param name="LatencySamples">Texts timed one at a time.</param>
/// <param name="Throughput">Texts per second of the whole set as one batch.</param>
/// <param name="Threads">Threads of the batch run.</param>
/// <param name="Exits">The exit analysis replayed from one full-depth pass, when asked for.</param>
/// <param name="SetCoverage">Fraction of texts whose conformal prediction set holds the gold label (NaN without a calibration for the policy).</param>
/// <param name="SetMeanSize">Mean size of the prediction sets (NaN without).</param>
internal sealed record ModelEvaluationReport(
    ExitPolicy Policy, ClassificationMetrics Metrics, double MeanBlocks, long[] ExitHistogram, double ComputeSaved, double Ece,
    int Truncated, double LatencyP50Ms, double LatencyP99Ms, int LatencySamples, double Throughput, int Threads,
    ExitAnalysis? Exits, double SetCoverage = double.NaN, double SetMeanSize = double.NaN);

/// <summary>Runs a model over labelled texts: answers, exits, compute, calibration, latency and throughput.</summary>
internal static class ModelEvaluation
{
    /// <param name="model">The model; the batch (throughput) run uses its <see cref="BeexModel.BatchThreads"/>, latency its <see cref="BeexModel.Threads"/>.</param>
    /// <param name="policy">The exit policy of the real run.</param>
    /// <param name="texts">Texts that each hold at least one token.</param>
    /// <param name="gold">Their class ids.</param>
    /// <param name="latencySamples">How many texts to time one by one (0: none).</param>
    /// <param name="analyzeExits">Also replay static depths, the oracle and every policy's curve (<see cref="ExitAnalysis"/>).</param>
    public static ModelEvaluationReport Run(BeexModel model, ExitPolicy policy, IReadOnlyList<string> texts, int[] gold,
        int latencySamples, bool analyzeExits)
    {
        int n = texts.Count;
        if (gold.Length != n)
            throw new ArgumentException($"{n} texts but {gold.Length} gold labels", nameof(gold));

        // Throughput: the whole set as one batch on all threads, tokenization included, after a warm-up
        // (JIT, page faults of the mapped weights) on a few samples.
        model.ClassifyBatch(texts.Take(Math.Min(n, 32)).ToArray(), policy);
        var clock = Stopwatch.StartNew();
        ClassificationResult[] results = model.ClassifyBatch(texts, policy);
        double batchSeconds = clock.Elapsed.TotalSeconds;

        int[] predicted = results.Select(r => r.Label).ToArray();
        float[] confidences = results.Select(r => r.Probabilities[r.Label]).ToArray();
        var metrics = ClassificationMetrics.Compute(gold, predicted, model.Labels.Count);
        var histogram = new long[model.Architecture.Layers];
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

        ExitAnalysis? exits = analyzeExits ? ExitAnalysis.Run(ExitReplay.Run(model, texts), gold) : null;
        bool sets = n > 0 && results[0].PredictionSet is not null;
        return new ModelEvaluationReport(policy, metrics, n == 0 ? 0 : results.Average(r => r.BlocksRun.Length), histogram,
            full > 0 ? skipped / full : 0, Calibration.ExpectedCalibrationError(confidences, predicted, gold),
            results.Count(r => r.Truncated), Percentile(latencies, 0.50), Percentile(latencies, 0.99), timed,
            batchSeconds > 0 ? n / batchSeconds : 0, model.BatchThreads, exits,
            sets ? results.Select((r, i) => r.PredictionSet!.Contains(gold[i]) ? 1.0 : 0.0).Average() : double.NaN,
            sets ? results.Average(r => r.PredictionSet!.Length) : double.NaN);
    }

    /// <summary>The nearest-rank percentile of sorted values (NaN when empty).</summary>
    public static double Percentile(double[] sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        int rank = (int)Math.Ceiling(q * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
