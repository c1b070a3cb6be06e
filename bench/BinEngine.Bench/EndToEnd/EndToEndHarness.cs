using System.Diagnostics;
using System.Globalization;
using System.Text;
using BinEngine.Runtime;

namespace BinEngine.Bench.EndToEnd;

/// <summary>
/// The end-to-end comparison harness: the binarized model (with and without early exits) against its
/// FP32 twin, on the same sentences, in one process run, so the ratios compare like with like on a
/// noisy shared machine. Each configuration runs <c>--runs</c> times; the table reports medians.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- e2e
///       [--model models/sst2-default/model.bex] [--fp32 models/sst2-fp32/model.bex]
///       [--data data/sst2/dev.tsv] [--runs 5] [--out FILE]
///
/// The table goes to standard output; it is written to a file only when --out names one (the tracked
/// bench/results/end-to-end.md is rewritten only when asked for by name). Without --fp32 (or when the
/// default twin file is missing) the twin has the same shapes and random weights: at full depth a
/// dense pass costs the same whatever its weights, so the speed ratios need no converted twin.
///
/// Batch 1: each sentence classified alone (Classify), latency per sentence → p50 and p99.
/// Batch 64: ClassifyBatch over chunks of 64 → sentences per second.
/// "1 thread": GEMMs and batches on the calling thread; "all cores": Threads/BatchThreads = cores.
/// </summary>
public static class EndToEndHarness
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        string modelPath = Arg("--model", "models/sst2-default/model.bex");
        string fp32Path = Arg("--fp32", "models/sst2-fp32/model.bex");
        string dataPath = Arg("--data", "data/sst2/dev.tsv");
        int runs = int.Parse(Arg("--runs", "5"), CultureInfo.InvariantCulture);
        string? output = Array.IndexOf(args, "--out") >= 0 ? Arg("--out", "") : null;

        string[] texts = BenchStats.Texts(dataPath);
        // --model takes a comma-separated list: every model is measured in the same run, the first one's
        // tokenizer and shapes define the random twin when no twin file is given.
        BeexModel[] binaries = modelPath.Split(',').Select(p => BeexModel.Load(p)).ToArray();
        BeexModel binary = binaries[0];
        using BeexModel? fp32 = File.Exists(fp32Path) ? BeexModel.Load(fp32Path) : null;
        int cores = Environment.ProcessorCount;

        var rows = new List<Row>();
        // Threads are fixed at load (BeexModelOptions), so each thread count gets its own load of the file.
        BeexModel? current = null;
        void Measure(string name, BeexModel model, ExitPolicy policy, string path) =>
            MeasureWith(name, policy,
                threads =>
                {
                    current?.Dispose();
                    current = BeexModel.Load(path, new BeexModelOptions { Threads = threads, BatchThreads = threads, Kernels = model.Kernels.ToString() });
                },
                text => current!.Classify(text, policy), chunk => current!.ClassifyBatch(chunk, policy));

        // The random twin runs on ids from the binarized model's tokenizer, tokenized inside the timed
        // loop as BeexModel.Classify does, so both sides pay the same.
        int twinThreads = 1;
        InferenceEngine? randomTwin = fp32 is null ? binary.CreateRandomFp32Twin() : null;
        ClassificationResult TwinClassify(string text) =>
            randomTwin!.Classify(binary.Tokenizer.Encode(text, binary.Architecture.MaxLength), ExitPolicy.Never, twinThreads);
        void TwinBatch(string[] chunk) =>
            randomTwin!.ClassifyBatch(chunk.Select(t => (ReadOnlyMemory<int>)binary.Tokenizer.Encode(t, binary.Architecture.MaxLength)).ToArray(),
                ExitPolicy.Never, twinThreads);

        void MeasureWith(string name, ExitPolicy policy, Action<int> setThreads, Func<string, ClassificationResult> classify, Action<string[]> batch)
        {
            foreach (int threads in new[] { 1, cores }.Distinct())
            {
                setThreads(threads);
                batch(texts.Take(64).ToArray()); // warm-up: JIT, workspaces
                var p50 = new List<double>();
                var p99 = new List<double>();
                var batch1 = new List<double>();
                var batch64 = new List<double>();
                var cpu = new List<double>();
                double blocks = 0;
                using var process = Process.GetCurrentProcess();
                for (int run = 0; run < runs; run++)
                {
                    var latencies = new double[texts.Length];
                    process.Refresh();
                    TimeSpan cpuStart = process.TotalProcessorTime;
                    long total = Stopwatch.GetTimestamp();
                    double blockSum = 0;
                    for (int i = 0; i < texts.Length; i++)
                    {
                        long start = Stopwatch.GetTimestamp();
                        ClassificationResult r = classify(texts[i]);
                        latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                        blockSum += r.ExitBlock;
                    }
                    batch1.Add(texts.Length / Stopwatch.GetElapsedTime(total).TotalSeconds);
                    process.Refresh();
                    cpu.Add((process.TotalProcessorTime - cpuStart).TotalMilliseconds / texts.Length);
                    blocks = blockSum / texts.Length;
                    Array.Sort(latencies);
                    p50.Add(BenchStats.Percentile(latencies, 0.50));
                    p99.Add(BenchStats.Percentile(latencies, 0.99));

                    long batchStart = Stopwatch.GetTimestamp();
                    for (int i = 0; i < texts.Length; i += 64)
                        batch(texts.AsSpan(i, Math.Min(64, texts.Length - i)).ToArray());
                    batch64.Add(texts.Length / Stopwatch.GetElapsedTime(batchStart).TotalSeconds);
                }
                rows.Add(new Row(name, threads, BenchStats.Median(p50), BenchStats.Median(p99), BenchStats.Median(batch1), BenchStats.Median(batch64), blocks, BenchStats.Median(cpu)));
                Console.Error.WriteLine($"{name,-34} threads {threads}: p50 {BenchStats.Median(p50):0.000} ms, p99 {BenchStats.Median(p99):0.000} ms, " +
                    $"batch 1 {BenchStats.Median(batch1):0} sent/s ({BenchStats.Median(cpu):0.000} ms CPU each), batch 64 {BenchStats.Median(batch64):0} sent/s, blocks {blocks:0.00}");
            }
        }

        string[] paths = modelPath.Split(',');
        for (int m = 0; m < binaries.Length; m++)
        {
            BeexModel model = binaries[m];
            Measure($"binary W1A{model.Architecture.ActBits}, exits ({model.DefaultPolicy.Name})", model, model.DefaultPolicy, paths[m]);
            Measure($"binary W1A{model.Architecture.ActBits}, full depth", model, ExitPolicy.Never, paths[m]);
        }
        if (fp32 is not null)
            Measure("FP32 twin, full depth", fp32, ExitPolicy.Never, fp32Path);
        else
            MeasureWith("FP32 twin (random weights), full depth", ExitPolicy.Never, t => twinThreads = t, TwinClassify, TwinBatch);
        current?.Dispose();

        string table = Render(rows, binary, fp32, modelPath, fp32Path, dataPath, texts.Length, runs);
        ResultTable.Emit(table, output);
        foreach (BeexModel model in binaries)
            model.Dispose();
        return 0;
    }

    /// <summary>CpuMs: process CPU time per sentence over the batch-1 loop; on a loaded machine the fairest single-thread figure.</summary>
    private sealed record Row(string Name, int Threads, double P50, double P99, double Batch1, double Batch64, double Blocks, double CpuMs);

    private static string Render(List<Row> rows, BeexModel binary, BeexModel? fp32, string modelPath, string fp32Path,
        string dataPath, int n, int runs)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        Architecture a = binary.Architecture;
        sb.AppendLine("# End-to-end: binarized BEExformer vs its FP32 twin");
        sb.AppendLine();
        sb.AppendLine(inv, $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {BenchStats.CpuName()}, {Environment.ProcessorCount} logical cores; .NET {Environment.Version}");
        sb.AppendLine(inv, $"- kernels: {binary.Kernels}");
        sb.AppendLine(inv, $"- models: {modelPath} (L={a.Layers}, d={a.Dim}, h={a.Heads}, f={a.FfDim}, e={a.EmbBits}); twin: {(fp32 is null ? "same shapes with random weights, FP32 SGEMM (speed only: a dense pass costs the same whatever its weights)" : fp32Path)}");
        sb.AppendLine(inv, $"- data: {dataPath}, {n} sentences, each configuration {runs} runs, medians; batch 64 = ClassifyBatch over chunks of 64");
        sb.AppendLine("- command: `dotnet run -c Release --project bench/BinEngine.Bench -- e2e`");
        sb.AppendLine();
        sb.AppendLine("| configuration | threads | batch-1 p50 ms | batch-1 p99 ms | batch-1 CPU ms/sent | batch-1 sent/s | batch-64 sent/s | mean blocks |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Row r in rows)
            sb.AppendLine(inv, $"| {r.Name} | {r.Threads} | {r.P50:0.000} | {r.P99:0.000} | {r.CpuMs:0.000} | {r.Batch1:0} | {r.Batch64:0} | {r.Blocks:0.00} |");

        Row? twin = rows.FirstOrDefault(r => r.Name.StartsWith("FP32", StringComparison.Ordinal) && r.Threads == 1);
        if (twin is not null)
        {
            sb.AppendLine();
            sb.AppendLine("Speed-up over the FP32 twin at full depth (same run, same sentences, single thread):");
            sb.AppendLine();
            sb.AppendLine("| configuration | batch-1 latency (p50) | batch-1 CPU time | batch-1 throughput | batch-64 throughput |");
            sb.AppendLine("|---|---:|---:|---:|---:|");
            foreach (Row r in rows.Where(r => r.Threads == 1 && r != twin))
                sb.AppendLine(inv, $"| {r.Name} | {twin.P50 / r.P50:0.0}× | {twin.CpuMs / r.CpuMs:0.0}× | {r.Batch1 / twin.Batch1:0.0}× | {r.Batch64 / twin.Batch64:0.0}× |");
        }
        return sb.ToString();
    }



}
