using System.Diagnostics;
using System.Globalization;
using System.Text;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// Batch throughput on all cores over one thread, the "all cores ≥ 1.8×" figure, measured on its own: the peer
/// harness times each system's batch-64 pass once per run (≈ 0.1–0.25 s), one system after another, so its ratio of two
/// such passes moves with whatever the other tenants do in between (1.04–1.89× for the same build on one day). Here the
/// configurations alternate pass by pass (forward, then backward order), every pass is the 872 dev sentences in
/// batches of 64, and the figure is the median over rounds of each round's paired ratio. A configuration is a thread
/// count and the samples per chunk a thread takes (<see cref="InferenceEngine.ChunkSamples"/>), so the split between
/// threads can be measured too. `--batch` sets the samples per ClassifyBatch call (64 by default): a whole dev set in one
/// call with one chunk runs every block on all of its survivors at once, the most any continuous batching (refilling
/// a batch as samples exit) could give a block's products, so `--batch 872 --chunks 16,872 --threads 1` measures what
/// such a scheduler could gain. ONNX Runtime's own scaling is measured the same way beside it, on the FP32 twin's first
/// L blocks (L = the model's depth), as in the peer harness.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- scaling [--model models/sst2-default/model.bex]
///       [--data data/sst2/dev.tsv] [--threads 1,2] [--chunks 16,8] [--batch 64] [--rounds 9]
///       [--twin models/sst2-fp32-twin] [--onnx bench/peer/sst2-fp32-twin.onnx] [--out PATH]
/// </summary>
public static class ThreadScaling
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        var inv = CultureInfo.InvariantCulture;
        string modelPath = Arg("--model", "models/sst2-default/model.bex"), dataPath = Arg("--data", "data/sst2/dev.tsv");
        int[] threadCounts = Arg("--threads", Environment.ProcessorCount.ToString(inv)).Split(',').Select(s => int.Parse(s, inv)).ToArray();
        int rounds = int.Parse(Arg("--rounds", "9"), inv), batchSize = int.Parse(Arg("--batch", "64"), inv);
        int[] chunkSizes = Arg("--chunks", InferenceEngine.ChunkSamples.ToString(inv)).Split(',').Select(s => int.Parse(s, inv)).ToArray();
        string output = Arg("--out", "");
        string twinDir = Arg("--twin", "models/sst2-fp32-twin"), onnxPath = Arg("--onnx", "bench/peer/sst2-fp32-twin.onnx"); // --onnx "": no ORT
        string loadBefore = PeerHarness.Load();

        using BeexModel model = BeexModel.Load(modelPath, new BeexModelOptions { Threads = 1, BatchThreads = 1 });
        string[] texts = BenchStats.Texts(dataPath);
        ReadOnlyMemory<int>[] ids = texts.Select(t => (ReadOnlyMemory<int>)model.Tokenizer.Encode(t, model.Architecture.MaxLength)).ToArray();
        ReadOnlyMemory<int>[][] batches = ids.Chunk(batchSize).ToArray();
        InferenceEngine engine = model.Engine;
        int depth = model.Architecture.Layers;

        // Labels must not depend on the split: every configuration against one thread, sample by sample.
        ExitPolicy[] policies = [ExitPolicy.Never, model.DefaultPolicy];
        var engineConfigs = new List<(int Threads, int Chunk)> { (1, InferenceEngine.ChunkSamples) };
        engineConfigs.AddRange(threadCounts.SelectMany(t => chunkSizes.Select(c => (t, c))).Where(c => !engineConfigs.Contains(c)));
        foreach (ExitPolicy policy in policies)
        {
            ClassificationResult[] reference = engine.ClassifyBatch(ids, policy, 1);
            foreach (var c in engineConfigs)
            {
                ClassificationResult[] got = engine.ClassifyBatch(ids, policy, c.Threads, chunkSamples: c.Chunk);
                for (int i = 0; i < ids.Length; i++)
                    if (got[i].Label != reference[i].Label || got[i].ExitBlock != reference[i].ExitBlock)
                        throw new InvalidOperationException($"sentence {i}: {c.Threads} threads, chunks of {c.Chunk} answer {got[i].Label} at exit {got[i].ExitBlock}, one thread {reference[i].Label} at {reference[i].ExitBlock}");
            }
        }

        // Systems, each with the one-thread system its ratio is taken against (the first of its group).
        var systems = new List<(string Name, int Threads, string Chunk, Action<ReadOnlyMemory<int>[]> Run, int Baseline)>();
        foreach (ExitPolicy policy in policies)
        {
            string name = policy == ExitPolicy.Never ? "BinEngine, full depth" : $"BinEngine, exits ({policy.Name})";
            int baseline = systems.Count;
            foreach (var c in engineConfigs)
                systems.Add((name, c.Threads, c.Chunk.ToString(inv), b => engine.ClassifyBatch(b, policy, c.Threads, chunkSamples: c.Chunk), baseline));
        }
        // ORT running the FP32 twin's first `depth` blocks (the peer harness's graph), one intra-op thread and each count.
        var peers = new List<OnnxPeer>();
        if (onnxPath.Length > 0)
        {
            string graph = OnnxPeer.Graph(onnxPath, twinDir, depth);
            int baseline = systems.Count;
            foreach (int t in threadCounts.Prepend(1).Distinct())
            {
                var peer = new OnnxPeer(graph, t);
                peers.Add(peer);
                float[] logits = [];
                systems.Add(($"ONNX Runtime FP32, {depth} blocks", t, "", b => peer.RunPadded(b, ref logits), baseline));
            }
        }

        double Pass(Action<ReadOnlyMemory<int>[]> run, int repeats)
        {
            long start = Stopwatch.GetTimestamp();
            for (int k = 0; k < repeats; k++)
                foreach (ReadOnlyMemory<int>[] batch in batches)
                    run(batch);
            return repeats * ids.Length / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        // Warm-up (tier-1 code, workspaces for every chunk size, the thread pool, ORT's arenas), then passes of at least
        // ≈ 0.3 s each: one pass of the dev set with exits on two threads is ≈ 50 ms, short enough for one descheduling
        // to move it by 30 %.
        var repeats = new int[systems.Count];
        for (int k = 0; k < systems.Count; k++)
        {
            for (int w = 0; w < 2; w++)
                Pass(systems[k].Run, 1);
            repeats[k] = Math.Max(1, (int)Math.Ceiling(0.3 * Pass(systems[k].Run, 1) / ids.Length));
        }
        var rate = new double[systems.Count, rounds];
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < systems.Count; k++)
            {
                int slot = r % 2 == 0 ? k : systems.Count - 1 - k;
                rate[slot, r] = Pass(systems[slot].Run, repeats[slot]);
            }
        foreach (OnnxPeer peer in peers)
            peer.Dispose();

        var sb = new StringBuilder();
        sb.AppendLine("# Batch throughput: all cores over one thread");
        sb.AppendLine();
        sb.AppendLine(inv, $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {BenchStats.CpuName()}, {Environment.ProcessorCount} logical processors; .NET {Environment.Version}; kernels: {model.Kernels}");
        sb.AppendLine(inv, $"- model: {modelPath}; data: {dataPath}, {ids.Length} sentences in batches of {batchSize} (ClassifyBatch; ORT: padded, ORT_SEQUENTIAL, IntraOpNumThreads = threads); {rounds} rounds, systems alternated forward and backward; a pass repeats the dev set to last ≥ 0.3 s");
        sb.AppendLine(inv, $"- load average before: {loadBefore}; after: {PeerHarness.Load()}");
        sb.AppendLine(inv, $"- command: `dotnet run -c Release --project bench/BinEngine.Bench -- scaling {string.Join(' ', args)}`");
        sb.AppendLine("- x one thread: the median over rounds of each round's sentences/s over the same round's one-thread figure of the same system (paired); range in brackets");
        sb.AppendLine();
        sb.AppendLine("| system | threads | samples per chunk | sentences/s (median) | x one thread (median, range) |");
        sb.AppendLine("|---|---:|---:|---:|---|");
        for (int k = 0; k < systems.Count; k++)
        {
            double[] own = Enumerable.Range(0, rounds).Select(r => rate[k, r]).ToArray();
            double[] ratio = Enumerable.Range(0, rounds).Select(r => rate[k, r] / rate[systems[k].Baseline, r]).ToArray();
            sb.AppendLine(inv, $"| {systems[k].Name} | {systems[k].Threads} | {systems[k].Chunk} | {BenchStats.Median(own):0} | {BenchStats.Median(ratio):0.00}x ({ratio.Min():0.00}–{ratio.Max():0.00}) |");
        }
        ResultTable.Emit(sb.ToString(), output);
        return 0;
    }
}
