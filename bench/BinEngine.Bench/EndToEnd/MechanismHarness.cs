using System.Diagnostics;
using System.Globalization;
using System.Text;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Bench.EndToEnd;

/// <summary>
/// Wall time of the seed mechanisms (docs/MODEL.md) against the linear-head default, on the same sentences in one
/// process run, interleaved round by round so load drifts hit every configuration alike; medians over rounds.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- mechanisms
///       [--models models/sst2-default/model.bex,models/sst2-dynamax/model.bex,models/sst2-smart/model.bex]
///       [--data data/sst2/dev.tsv] [--rounds 5] [--batch1 200] [--out FILE]
///
/// Per model, every policy it can run (its default and stored thresholds; none; q_exit and learned_gate when it
/// carries them): µs per sentence at batch 1 (one Classify per sentence, 1 thread, median over sentences) and at
/// batch 64 (ClassifyBatch over chunks of 64, 1 thread, total time / sentences), mean blocks run, and the
/// FLOP-weighted compute saved the engine reports. Then one Mamba exit head against one block, in µs, on a sentence
/// of the data's median length: the head timed alone (MambaHead.PoolResidual on the model's weights), the block as
/// (full-depth time of the linear default) / L.
/// </summary>
public static class MechanismHarness
{
    private sealed record Config(string Model, string Policy, BeexModel Loaded, ExitPolicy Exit);

    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        string[] paths = Arg("--models", "models/sst2-default/model.bex,models/sst2-dynamax/model.bex,models/sst2-smart/model.bex")
            .Split(',').Where(File.Exists).ToArray();
        string dataPath = Arg("--data", "data/sst2/dev.tsv");
        int rounds = int.Parse(Arg("--rounds", "5"), CultureInfo.InvariantCulture);
        int batch1Count = int.Parse(Arg("--batch1", "200"), CultureInfo.InvariantCulture);
        string? output = Array.IndexOf(args, "--out") >= 0 ? Arg("--out", "") : null;
        string[] texts = BenchStats.Texts(dataPath);

        var configs = new List<Config>();
        foreach (string path in paths)
        {
            var model = BeexModel.Load(path, new BeexModelOptions { Threads = 1, BatchThreads = 1 });
            var names = new List<string> { "none", model.File.Config.Policy };
            names.AddRange(model.File.Config.Thresholds.Keys.Where(k => k is "q_exit" or "learned_gate" or "patience" or "confidence"));
            foreach (string name in names.Distinct())
                configs.Add(new Config(Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path)))!, name, model, model.Policy(name)));
        }

        var batch1 = configs.ToDictionary(c => c, _ => new List<double>());
        var batch64 = configs.ToDictionary(c => c, _ => new List<double>());
        foreach (var c in configs)
            c.Loaded.ClassifyBatch(texts.Take(64).ToArray(), c.Exit); // warm-up: JIT, workspaces
        string[] single = texts.Take(batch1Count).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            foreach (var c in configs)
            {
                var each = new double[single.Length];
                for (int i = 0; i < single.Length; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    c.Loaded.Classify(single[i], c.Exit);
                    each[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                }
                batch1[c].Add(BenchStats.Median(each));
                long start = Stopwatch.GetTimestamp();
                for (int at = 0; at < texts.Length; at += 64)
                    c.Loaded.ClassifyBatch(texts.AsSpan(at, Math.Min(64, texts.Length - at)).ToArray(), c.Exit);
                batch64[c].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds / texts.Length);
            }
        }

        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"# Seed mechanisms: wall time against the linear-head default");
        sb.AppendLine();
        sb.AppendLine(inv, $"{BenchStats.CpuName()}, {Environment.ProcessorCount} cores, load {LoadAverage()}; .NET {Environment.Version}; {texts.Length} sentences of {dataPath}; 1 thread; medians of {rounds} interleaved rounds.");
        sb.AppendLine(inv, $"Command: `dotnet run -c Release --project bench/BinEngine.Bench -- mechanisms --rounds {rounds}`");
        sb.AppendLine();
        sb.AppendLine("| model | policy | µs/sentence batch 1 (p50) | µs/sentence batch 64 | mean blocks run | compute saved |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var c in configs)
        {
            ClassificationResult[] results = c.Loaded.ClassifyBatch(texts, c.Exit);
            double blocks = results.Average(x => x.BlocksRun.Length);
            double saved = results.Sum(x => x.ComputeSkipped * x.FullDepthFlops) / results.Sum(x => x.FullDepthFlops);
            sb.AppendLine(inv, $"| {c.Model} | {c.Exit} | {BenchStats.Median(batch1[c]):0} | {BenchStats.Median(batch64[c]):0} | {blocks:0.00} | {saved:0.0%} |");
        }

        // One Mamba head against one block.
        int median = (int)BenchStats.Median(texts.Select(t => (double)configs[0].Loaded.Tokenizer.Encode(t, configs[0].Loaded.Architecture.MaxLength).Length));
        // The block's reference: a model whose blocks all run and whose exits are linear (controllers cost a few µs).
        Config? plainFull = configs.FirstOrDefault(c => c.Loaded.Weights.Mechanisms is { SkipGates: null, MambaExits: null } && c.Exit.Kind == ExitPolicyKind.None);
        BeexModel? mambaModel = configs.Select(c => c.Loaded).FirstOrDefault(m => m.Weights.Mechanisms.MambaExits is not null);
        if (plainFull is not null && mambaModel is not null)
        {
            MambaHeadWeights head = mambaModel.Weights.Mechanisms.MambaExits![0];
            var u = new float[median * head.Dim];
            var random = new Random(1);
            for (int i = 0; i < u.Length; i++) u[i] = (float)(random.NextDouble() * 2 - 1);
            var pooled = new float[head.Dim];
            var scratch = new MambaScratch();
            Sgemm sgemm = mambaModel.Kernels.Sgemm;
            KernelIsa isa = mambaModel.Plan.HelperIsa;
            var headTimes = new List<double>();
            for (int r = 0; r < rounds * 4; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < 100; i++)
                    MambaHead.PoolResidual(head, u, median, pooled, scratch, sgemm, isa);
                headTimes.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds / 100);
            }
            string sentence = texts.First(t => configs[0].Loaded.Tokenizer.Encode(t, 512).Length == median);
            var blockTimes = new List<double>();
            for (int r = 0; r < rounds * 4; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < 20; i++)
                    plainFull.Loaded.Classify(sentence, ExitPolicy.Never);
                blockTimes.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds / 20 / plainFull.Loaded.Architecture.Layers);
            }
            double headFlops = MambaHead.Flops(head, median), blockFlops = CostModel.BlockWithExitFlops(plainFull.Loaded.Architecture, median);
            sb.AppendLine();
            sb.AppendLine(inv, $"One Mamba exit head (E {head.Inner}, N {head.State}, R {head.DtRank}; FP32 SGEMMs on {sgemm.Name}, scan {isa.ToName()}) on {median} tokens (the median sentence): " +
                $"{BenchStats.Median(headTimes):0.0} µs, {headFlops / 1e6:0.00} MFLOP; one block of the linear default (full-depth Classify / L, tokenization included): " +
                $"{BenchStats.Median(blockTimes):0.0} µs, {blockFlops / 1e6:0.00} MFLOP (binary products counted as FLOPs).");
        }

        Console.Write(sb.ToString());
        if (output is not null)
            File.WriteAllText(output, sb.ToString());
        foreach (var m in configs.Select(c => c.Loaded).Distinct())
            m.Dispose();
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
