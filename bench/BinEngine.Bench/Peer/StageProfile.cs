using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// Where the time of a full-depth pass goes, stage by stage, at batch 1 and at batch 64 (issue 11).
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- profile
///       [--models models/sst2-default/model.bex,models/sst2-w1a8/model.bex] [--data data/sst2/dev.tsv] [--runs 3] [--out PATH]
///
/// Opt-in and outside the library, so the normal path pays nothing: this is a stage-by-stage copy of
/// src/BinEngine/Runtime/ForwardPass.cs at full depth (ExitPolicy.Never: no compaction), run on the model's
/// own weights, kernels and workspace, with a Stopwatch timestamp between stages. It is checked against the
/// real model on every sentence (its logits must equal Classify's bit for bit), so a change to ForwardPass
/// that this copy misses shows up as a failed check, not as a wrong profile. Its total is printed beside
/// the unprofiled Classify / ClassifyBatch of the same run, so the profiler's own overhead is visible.
/// Batch 64 runs as the engine does (InferenceEngine: chunks of <see cref="InferenceEngine.ChunkSamples"/>
/// samples on one thread). Tokenizer and result building are timed here too (the rest of a Classify(text)).
/// </summary>
public static class StageProfile
{
    private enum Stage
    {
        Tokenizer, Embedding, Lexical, QuantizePack, ProductQkv, ProductO, ProductG1F1, ProductG2F2, Epilogue,
        AttentionCopies, AttentionGemm, AttentionSoftmax, Elementwise, LayerNorm, ExitHeads, Result, Count,
    }

    /// <summary>Work the ablation leaves out (its cost is the least time with it less the least time without it).</summary>
    private enum Ablated { None, Products, Epilogue, Attention, SigmoidTanh, LayerNorm, QuantizePack, ProductResidual }

    private static readonly string[] AblatedNames =
    [
        "nothing (the whole pass)", "binary products (the kernels)", "epilogue y = α·s·(B·q) + b", "attention (all of it)",
        "σ and tanh", "LayerNorm (embedding, LN1, LN2)", "quantize + pack activations", "SLFN ⊙ and residual adds",
    ];

    private static readonly string[] StageNames =
    [
        "tokenizer (text → ids)", "embedding (dequantize + position + LN_emb)", "lexical n-gram head (buckets, table sums)", "quantize + pack activations",
        "products Q/K/V (3 GEMMs, N = d)", "products O (N = d)", "products G1/F1 (2 GEMMs, N = f)", "products G2/F2 (2 GEMMs, K = f)",
        "epilogue y = α·s·(B·q) + b (int → float)", "attention: per-head copies in and out (Q, K, Vᵀ, output)", "attention: QKᵀ and PV (SGEMM per head; samples of ≤ 192 tokens take the direct path, all of it timed here)", "attention: scale + stable softmax (per row)",
        "element-wise (σ, tanh, ⊙, residual adds)", "LayerNorm (LN1, LN2)", "exit heads (pool, logits, softmax, H)",
        "result building (arrays, softmax, object)",
    ];

    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        var inv = CultureInfo.InvariantCulture;
        string[] modelPaths = Arg("--models", "models/sst2-default/model.bex,models/sst2-w1a8/model.bex").Split(',');
        string dataPath = Arg("--data", "data/sst2/dev.tsv");
        int runs = int.Parse(Arg("--runs", "3"), inv);
        string output = Arg("--out", "");
        int tileRows = int.Parse(Arg("--tile-rows", "0"), inv); // 0: the plan's (ExecutionPlan.TileRows)
        int ablationRounds = int.Parse(Arg("--ablate", "5"), inv); // 0: no ablation table
        string[] texts = BenchStats.Texts(dataPath);
        string loadBefore = PeerHarness.Load();

        var sb = new StringBuilder();
        sb.AppendLine("# Stage profile of a full-depth pass (1 thread)");
        sb.AppendLine();
        sb.AppendLine(inv, $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {BenchStats.CpuName()}; .NET {Environment.Version}; kernels: {KernelRegistry.Selected}");
        sb.AppendLine(inv, $"- data: {dataPath}, {texts.Length} sentences; {runs} runs, the run with the smallest total kept per column, and the fastest unprofiled run (time descheduled by other load lands on whatever stage runs)");
        sb.AppendLine("- a stage-by-stage copy of ForwardPass (bench/BinEngine.Bench/Peer/StageProfile.cs), checked bit for bit against Classify; µs per sentence");
        sb.AppendLine(inv, $"- command: `dotnet run -c Release --project bench/BinEngine.Bench -- profile {string.Join(' ', args)}`");

        foreach (string path in modelPaths)
        {
            using BeexModel model = BeexModel.Load(path, new BeexModelOptions { Threads = 1, BatchThreads = 1 });
            var p = new Profiler(model, tileRows);
            int[][] ids = texts.Select(t => model.Tokenizer.Encode(t, model.Architecture.MaxLength)).ToArray();
            p.Check(ids);
            var batch1 = new List<(double[] Stages, double Real)>();
            var batch64 = new List<(double[] Stages, double Real)>();
            p.RunBatch1(ids.Take(64).ToArray(), texts);   // warm-up
            p.RunChunks(ids.Take(64).ToArray());
            for (int r = 0; r < runs; r++)
            {
                batch1.Add(p.RunBatch1(ids, texts));
                batch64.Add(p.RunChunks(ids));
                Console.Error.WriteLine($"{path} run {r + 1}/{runs}: batch 1 {batch1[^1].Stages.Sum():0.0} µs/sent profiled vs {batch1[^1].Real:0.0} real; " +
                    $"batch 64 {batch64[^1].Stages.Sum():0.0} vs {batch64[^1].Real:0.0}");
            }
            // The least disturbed run: on a shared machine, time spent descheduled lands on whichever stage was running.
            // The unprofiled time is likewise the fastest run's, picked on its own.
            (double[] Stages, double Real) Pick(List<(double[] Stages, double Real)> l) => (l.OrderBy(x => x.Stages.Sum()).First().Stages, l.Min(x => x.Real));
            var one = Pick(batch1);
            var many = Pick(batch64);
            sb.AppendLine();
            sb.AppendLine(inv, $"## {path} (W1A{model.Architecture.ActBits}, {model.Plan.Activations} on {model.Plan.Kernel.Name}), full depth, block tiles of ≤ {p.TileRows} rows");
            sb.AppendLine();
            sb.AppendLine("| stage | batch 1 µs/sent | share | batch 64 µs/sent | share |");
            sb.AppendLine("|---|---:|---:|---:|---:|");
            double t1 = one.Stages.Sum(), t64 = many.Stages.Sum();
            for (int s = 0; s < (int)Stage.Count; s++)
                sb.AppendLine(s == (int)Stage.Tokenizer
                    ? string.Create(inv, $"| {StageNames[s]} | {one.Stages[s]:0.0} | {one.Stages[s] / t1 * 100:0.0}% | (ids given) | |")
                    : string.Create(inv, $"| {StageNames[s]} | {one.Stages[s]:0.0} | {one.Stages[s] / t1 * 100:0.0}% | {many.Stages[s]:0.0} | {many.Stages[s] / t64 * 100:0.0}% |"));
            double products1 = one.Stages[(int)Stage.ProductQkv..((int)Stage.ProductG2F2 + 1)].Sum();
            double products64 = many.Stages[(int)Stage.ProductQkv..((int)Stage.ProductG2F2 + 1)].Sum();
            sb.AppendLine(inv, $"| **all binary products** | {products1:0.0} | {products1 / t1 * 100:0.0}% | {products64:0.0} | {products64 / t64 * 100:0.0}% |");
            sb.AppendLine(inv, $"| **total, profiled** | {t1:0.0} | 100% | {t64:0.0} | 100% |");
            sb.AppendLine(inv, $"| unprofiled, same run (Classify(text) / tokenize + ClassifyBatch(ids) in chunks of 64) | {one.Real:0.0} | | {many.Real:0.0} | |");
            if (ablationRounds > 0)
            {
                // The laps above charge a stage with whatever the out-of-order core had not finished from the stage
                // before, and with descheduled time; leaving a stage out and timing the rest does not (issue 11: levers
                // the laps promised, fused σ/tanh + pack and a one-call LayerNorm, moved nothing end to end).
                double[] least = p.Ablate(ids, ablationRounds);
                sb.AppendLine();
                sb.AppendLine(inv, $"Ablation, batch 1 (one sentence at a time, ids given): each stage left out in turn, the mean over sentences of each one's least time over {ablationRounds} rounds; a stage's cost is the difference.");
                sb.AppendLine();
                sb.AppendLine("| left out | least µs/sent | stage µs/sent | share |");
                sb.AppendLine("|---|---:|---:|---:|");
                for (int x = 0; x < least.Length; x++)
                    sb.AppendLine(x == 0
                        ? string.Create(inv, $"| {AblatedNames[x]} | {least[0]:0.0} | | |")
                        : string.Create(inv, $"| {AblatedNames[x]} | {least[x]:0.0} | {least[0] - least[x]:0.0} | {(least[0] - least[x]) / least[0] * 100:0}% |"));
            }
        }
        sb.AppendLine();
        sb.AppendLine(inv, $"- load (/proc/loadavg) before: {loadBefore}; after: {PeerHarness.Load()}");
        string table = sb.ToString();
        ResultTable.Emit(table, output);
        return 0;
    }

    /// <summary>ForwardPass at full depth with a timestamp between stages (keep in step with ForwardPass.cs).</summary>
    private sealed class Profiler
    {
        private readonly BeexModel _model;
        private readonly ModelWeights _w;
        private readonly Architecture _a;
        private readonly KernelSet _kernels;
        private readonly ExecutionPlan _plan;
        private readonly Workspace _ws;
        private readonly double[] _ticks = new double[(int)Stage.Count];
        private long _mark;

        public Profiler(BeexModel model, int tileRows)
        {
            _model = model;
            _plan = model.Plan;
            _kernels = _plan.Kernels;
            _w = ModelBinding.Bind(model.File, _kernels.Xnor.LookupLayout);
            _a = _w.Architecture;
            _ws = new Workspace(_a, _plan.Activations, _w.Mechanisms);
            TileRows = tileRows > 0 ? tileRows : _plan.TileRows;
            _positions = new float[_a.MaxLength * _a.Dim];
            for (int p = 0; p < _a.MaxLength; p++)
                _w.Embedding.Positions.Dequantize(p, _positions.AsSpan(p * _a.Dim, _a.Dim), _plan.HelperIsa);
        }

        private readonly float[] _positions;

        /// <summary>Rows per block tile: the engine's (ExecutionPlan.TileRows) unless the command line sets another to measure it.</summary>
        public int TileRows { get; }

        private Ablated _skip;

        /// <summary>Per ablation, the mean over sentences of each sentence's least full-depth pass time (µs) over the rounds.</summary>
        public double[] Ablate(int[][] ids, int rounds)
        {
            int kinds = Enum.GetValues<Ablated>().Length;
            var least = new double[kinds, ids.Length];
            for (int x = 0; x < kinds; x++)
                for (int i = 0; i < ids.Length; i++)
                    least[x, i] = double.MaxValue;
            int[][][] one = ids.Select(x => new[] { x }).ToArray();
            for (int round = -1; round < rounds; round++) // round −1 warms up
                for (int x = 0; x < kinds; x++)
                {
                    _skip = (Ablated)x;
                    for (int i = 0; i < ids.Length; i++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        Forward(one[i]);
                        double us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                        if (round >= 0)
                            least[x, i] = Math.Min(least[x, i], us);
                    }
                }
            _skip = Ablated.None;
            return Enumerable.Range(0, kinds).Select(x => Enumerable.Range(0, ids.Length).Average(i => least[x, i])).ToArray();
        }

        private void Start() => _mark = Stopwatch.GetTimestamp();

        private void Lap(Stage s)
        {
            long now = Stopwatch.GetTimestamp();
            _ticks[(int)s] += now - _mark;
            _mark = now;
        }

        /// <summary>Every sentence's full-depth logits must equal Classify's exactly.</summary>
        public void Check(int[][] ids)
        {
            foreach (int[] sample in ids)
            {
                Forward([sample]);
                ClassificationResult real = _model.Classify(sample, ExitPolicy.Never);
                ReadOnlySpan<float> mine = _ws.Logits.AsSpan(0, _a.Layers * _a.Classes);
                if (!mine.SequenceEqual(real.Logits))
                    throw new InvalidOperationException($"the profiler's copy of ForwardPass disagrees with Classify ({string.Join(",", mine.ToArray())} vs {string.Join(",", real.Logits)}): bring StageProfile.cs in step with ForwardPass.cs");
            }
        }

        /// <summary>µs per sentence per stage, one sentence per pass (tokenizer and result included), and the real Classify(text)'s.</summary>
        public (double[] Stages, double Real) RunBatch1(int[][] ids, string[] texts)
        {
            Array.Clear(_ticks);
            Span<int> buffer = stackalloc int[_a.MaxLength];
            for (int i = 0; i < ids.Length; i++)
            {
                Start();
                _model.Tokenizer.Encode(texts[i], buffer, _a.MaxLength, out _);
                Lap(Stage.Tokenizer);
                Forward([ids[i]]);
                Start();
                BuildResult(0);
                Lap(Stage.Result);
            }
            double[] stages = PerSentence(ids.Length);
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < ids.Length; i++)
                _model.Classify(texts[i], ExitPolicy.Never);
            return (stages, Stopwatch.GetElapsedTime(start).TotalMicroseconds / ids.Length);
        }

        /// <summary>Batch 64 as the engine runs it on one thread (ids given: no tokenizer): chunks of ChunkSamples samples per pass.</summary>
        public (double[] Stages, double Real) RunChunks(int[][] ids)
        {
            Array.Clear(_ticks);
            int chunk = InferenceEngine.ChunkSamples;
            for (int first = 0; first < ids.Length; first += chunk)
            {
                int[][] part = ids.Skip(first).Take(chunk).ToArray();
                Forward(part);
                Start();
                for (int s = 0; s < part.Length; s++)
                    BuildResult(s);
                Lap(Stage.Result);
            }
            double[] stages = PerSentence(ids.Length);
            var memories = ids.Select(a => (ReadOnlyMemory<int>)a).ToArray();
            long start = Stopwatch.GetTimestamp();
            for (int first = 0; first < ids.Length; first += 64)
                _model.ClassifyBatch(memories.AsSpan(first, Math.Min(64, ids.Length - first)).ToArray(), ExitPolicy.Never);
            return (stages, Stopwatch.GetElapsedTime(start).TotalMicroseconds / ids.Length);
        }

        private double[] PerSentence(int n) => _ticks.Select(t => t * 1e6 / Stopwatch.Frequency / n).ToArray();

        // InferenceEngine.Result's work: copies of the logits and entropies, the answer's softmax, the object.
        private ClassificationResult BuildResult(int slot)
        {
            int exitBlock = _ws.ExitBlocks[slot], classes = _a.Classes;
            float[] logits = _ws.Logits.AsSpan(slot * _a.Layers * classes, exitBlock * classes).ToArray();
            float[] entropies = _ws.Entropies.AsSpan(slot * _a.Layers, exitBlock).ToArray();
            float[] probabilities = _ws.Answers.AsSpan(slot * classes, classes).ToArray();
            foreach (float p in probabilities)
                if (!float.IsFinite(p))
                    throw new InvalidOperationException("non-finite output");
            int label = ExitPolicy.ArgMax(probabilities);
            int tokens = _ws.SampleLengths[slot];
            return new ClassificationResult
            {
                Label = label, LabelName = _model.Labels[label], Probabilities = probabilities, ExitBlock = exitBlock,
                Layers = _a.Layers, BlocksRun = Enumerable.Range(1, exitBlock).ToArray(), Entropies = entropies, Logits = logits, TokenCount = tokens, Truncated = false,
                ComputeSkipped = (double)(_a.Layers - exitBlock) / _a.Layers, FullDepthFlops = CostModel.FullDepthFlops(_a, tokens),
            };
        }

        private void Forward(int[][] samples)
        {
            Workspace ws = _ws;
            int d = _a.Dim, count = samples.Length;
            int tokens = samples.Sum(s => s.Length);
            ws.Ensure(tokens, count, samples.Max(s => s.Length));
            Start();
            int at = 0;
            for (int s = 0; s < count; s++)
            {
                ws.Starts[s] = at;
                ws.Lengths[s] = ws.SampleLengths[s] = samples[s].Length;
                ws.Slots[s] = s;
                ws.States[s] = ExitState.Start;
                Embed(samples[s], ws.X.AsSpan(at * d, samples[s].Length * d));
                at += samples[s].Length;
            }
            Lap(Stage.Embedding);
            if (_w.Mechanisms.Lexical is { } lexical)
            {
                for (int s = 0; s < count; s++)
                    lexical.Logits(samples[s], ws.LexicalLogits.AsSpan(s * _a.Classes, _a.Classes), ws.LexicalBuckets);
                Lap(Stage.Lexical);
            }
            for (int l = 0; l < _a.Layers; l++)
            {
                // the engine's tiles (ForwardPass.BlockInTiles): whole samples, at most TileRows rows a call (the plan's unless --tile-rows)
                for (int first = 0; first < count;)
                {
                    int end = first, rows = 0;
                    do
                        rows += ws.Lengths[end++];
                    while (end < count && rows + ws.Lengths[end] <= TileRows);
                    Block(_w.Blocks[l], first, end, ws.Starts[first], rows);
                    first = end;
                }
                for (int i = 0; i < count; i++)
                {
                    Exit(l, i, ws.Starts[i], ws.Lengths[i]);
                    ws.ExitBlocks[i] = l + 1;
                }
                Lap(Stage.ExitHeads);
            }
        }

        private void Embed(ReadOnlySpan<int> ids, Span<float> x)
        {
            EmbeddingWeights e = _w.Embedding;
            int d = _a.Dim;
            for (int t = 0; t < ids.Length; t++)
                e.Tokens.Prefetch(e.RowOf(ids[t]));
            for (int t = 0; t < ids.Length; t++)
                e.Tokens.Dequantize(e.RowOf(ids[t]), x.Slice(t * d, d), _plan.HelperIsa);
            TensorPrimitives.Add(x, _positions.AsSpan(0, x.Length), x); // dequantized once, as ForwardPass does
            Norm(x, e.Norm);
        }

        private void Block(BlockWeights b, int first, int end, int rowStart, int tokens)
        {
            Workspace ws = _ws;
            int d = _a.Dim, f = _a.FfDim;
            Span<float> x = ws.X.AsSpan(rowStart * d, tokens * d);
            Quantize(x, tokens, d);
            Linear(b.Q, x, tokens, ws.Q, Stage.ProductQkv);
            Linear(b.K, x, tokens, ws.K, Stage.ProductQkv);
            Linear(b.V, x, tokens, ws.V, Stage.ProductQkv);
            Lap(Stage.Epilogue);
            for (int i = first; i < end && _skip != Ablated.Attention; i++)
                Attention(ws.Starts[i] - rowStart, ws.Lengths[i]);

            Span<float> attended = ws.Attended.AsSpan(0, tokens * d);
            Quantize(attended, tokens, d);
            Linear(b.O, attended, tokens, ws.Projected, Stage.ProductO);
            Span<float> h = ws.H.AsSpan(0, tokens * d);
            if (_skip != Ablated.ProductResidual)
                TensorPrimitives.Add(x, ws.Projected.AsSpan(0, tokens * d), h);
            Lap(Stage.Elementwise);
            Norm(h, b.Ln1);
            Lap(Stage.LayerNorm);

            Quantize(h, tokens, d);
            Linear(b.G1, h, tokens, ws.Gate, Stage.ProductG1F1);
            Linear(b.F1, h, tokens, ws.Forget, Stage.ProductG1F1);
            Span<float> gate = ws.Gate.AsSpan(0, tokens * f), forget = ws.Forget.AsSpan(0, tokens * f);
            // G2 sees σ(G1 h) − ½ in the centred-gate contract (docs/MODEL.md, SLFN); VectorMath's σ and tanh, a few ulp
            // from MathF's (the reference's), cost a fifth of TensorPrimitives' (bench/README.md, "Levers").
            if (_skip != Ablated.SigmoidTanh)
            {
                VectorMath.Sigmoid(gate, _a.SlfnGateCenter ? 0.5f : 0f, gate, _plan.HelperIsa);
                VectorMath.Tanh(forget, forget, _plan.HelperIsa);
            }
            Lap(Stage.Elementwise);
            Quantize(gate, tokens, f);
            Linear(b.G2, gate, tokens, ws.GateOut, Stage.ProductG2F2);
            Quantize(forget, tokens, f);
            Linear(b.F2, forget, tokens, ws.ForgetOut, Stage.ProductG2F2);

            Span<float> slfn = ws.GateOut.AsSpan(0, tokens * d);
            if (_skip != Ablated.ProductResidual)
            {
                TensorPrimitives.Multiply(slfn, ws.ForgetOut.AsSpan(0, tokens * d), slfn);
                TensorPrimitives.Add(h, slfn, x);
            }
            Lap(Stage.Elementwise);
            Norm(x, b.Ln2);
            Lap(Stage.LayerNorm);
        }

        private void Attention(int start, int length)
        {
            Workspace ws = _ws;
            int d = _a.Dim, rows = length * d;
            if (length > BinEngine.Runtime.Attention.DirectMaxTokens)
            {
                AttentionViaGemm(start, length);
                return;
            }
            // the direct path (Runtime/Attention.cs): scores, softmax and weighted sums in one loop, timed as one stage
            BinEngine.Runtime.Attention.Direct(ws.Q.AsSpan(start * d, rows), ws.K.AsSpan(start * d, rows), ws.V.AsSpan(start * d, rows),
                ws.Attended.AsSpan(start * d, rows), length, d, _a.Heads, _a.HeadDim, ws.Scores, _plan.HelperIsa);
            Lap(Stage.AttentionGemm);
        }

        private void AttentionViaGemm(int start, int length)
        {
            Workspace ws = _ws;
            int d = _a.Dim, dh = _a.HeadDim, n = length;
            float scale = 1f / MathF.Sqrt(dh);
            Span<float> q = ws.HeadQ.AsSpan(0, n * dh), k = ws.HeadK.AsSpan(0, n * dh);
            Span<float> vt = ws.HeadVt.AsSpan(0, dh * n), scores = ws.Scores.AsSpan(0, n * n), output = ws.HeadOut.AsSpan(0, n * dh);
            for (int head = 0; head < _a.Heads; head++)
            {
                int c0 = head * dh;
                for (int t = 0; t < n; t++)
                {
                    int row = (start + t) * d + c0;
                    ws.Q.AsSpan(row, dh).CopyTo(q.Slice(t * dh, dh));
                    ws.K.AsSpan(row, dh).CopyTo(k.Slice(t * dh, dh));
                    for (int c = 0; c < dh; c++)
                        vt[c * n + t] = ws.V[row + c];
                }
                Lap(Stage.AttentionCopies);
                _kernels.Sgemm.Multiply(q, n, k, n, dh, scores);
                Lap(Stage.AttentionGemm);
                for (int i = 0; i < n; i++)
                {
                    Span<float> si = scores.Slice(i * n, n);
                    TensorPrimitives.Multiply(si, scale, si);
                    ForwardPass.StableSoftmax(si, si);
                }
                Lap(Stage.AttentionSoftmax);
                _kernels.Sgemm.Multiply(scores, n, vt, dh, n, output);
                Lap(Stage.AttentionGemm);
                for (int t = 0; t < n; t++)
                    output.Slice(t * dh, dh).CopyTo(ws.Attended.AsSpan((start + t) * d + c0, dh));
                Lap(Stage.AttentionCopies);
            }
        }

        private void Quantize(ReadOnlySpan<float> x, int rows, int k)
        {
            Workspace ws = _ws;
            int bits = _a.ActBits;
            if (bits == 32)
                return;
            Lap(Stage.Elementwise);   // whatever ran since the last mark belongs to the caller's element-wise work
            if (_skip == Ablated.QuantizePack)
                return;
            if (_plan.Activations == ActivationEncoding.Codes)
            {
                for (int t = 0; t < rows; t++)
                    ws.Scales[t] = ActivationPacker.QuantizeCodes(x.Slice(t * k, k), bits, ws.Codes.AsSpan(t * k, k), _plan.VectorisedHelpers);
            }
            else
            {
                int stride = bits * BitPacking.RowWords(k);
                for (int t = 0; t < rows; t++)
                    ws.Scales[t] = ActivationPacker.Pack(x.Slice(t * k, k), bits, ws.Planes.AsSpan(t * stride, stride), _plan.HelperIsa);
            }
            Lap(Stage.QuantizePack);
        }

        private void Linear(LinearWeights w, ReadOnlySpan<float> x, int rows, float[] output, Stage product)
        {
            Workspace ws = _ws;
            int n = w.Out, k = w.In;
            Span<float> y = output.AsSpan(0, rows * n);
            ReadOnlySpan<float> bias = w.Bias.Span;
            ReadOnlySpan<float> alpha = w.Alpha.Span;
            int bits = _a.ActBits;
            if (!w.IsBinary || _plan.Activations == ActivationEncoding.Float)
                throw new NotSupportedException("the stage profile covers binarized models with 1..8-bit activations");

            Span<int> products = ws.Products.AsSpan(0, rows * n);
            if (_skip == Ablated.Products)
            {
            }
            else if (_plan.Activations == ActivationEncoding.Codes)
                _kernels.Code.Multiply(ws.Codes.AsSpan(0, rows * k), rows, w.Packed!, products, 1);
            else if (bits == 1)
                _kernels.Xnor.Multiply(ws.Planes.AsSpan(0, rows * BitPacking.RowWords(k)), rows, w.Packed!, products, 1);
            else
                _kernels.Plane.Multiply(ws.Planes.AsSpan(0, rows * bits * BitPacking.RowWords(k)), rows, bits, w.Packed!, products, 1);
            Lap(product);

            if (_skip != Ablated.Epilogue)
                Epilogue.ScaleBias(products, alpha, ws.Scales.AsSpan(0, rows), bias, y, n, _plan.HelperIsa);
            Lap(Stage.Epilogue);
        }

        private void Exit(int layer, int slot, int start, int length)
        {
            Workspace ws = _ws;
            int d = _a.Dim, classes = _a.Classes;
            Span<float> pooled = ws.Pooled;
            pooled.Clear();
            for (int t = 0; t < length; t++)
                TensorPrimitives.Add(pooled, ws.X.AsSpan((start + t) * d, d), pooled);
            TensorPrimitives.Divide(pooled, length, pooled);
            ExitHeadWeights head = _w.Exits[layer];
            Span<float> logits = ws.Logits.AsSpan((slot * _a.Layers + layer) * classes, classes);
            ReadOnlySpan<float> weight = head.Weight.Span;
            for (int c = 0; c < classes; c++)
                logits[c] = TensorPrimitives.Dot(weight.Slice(c * d, d), pooled) + head.Bias.Span[c];
            if (_w.Mechanisms.Lexical is not null)
                TensorPrimitives.Add(logits, ws.LexicalLogits.AsSpan(slot * classes, classes), logits);
            if (head.Temperature != 1f)
                TensorPrimitives.Divide(logits, head.Temperature, logits);
            Span<float> p = ws.Answers.AsSpan(slot * classes, classes);
            float entropy = ForwardPass.SoftmaxEntropy(logits, p);
            ws.Entropies[slot * _a.Layers + layer] = entropy;
            ExitPolicy.Never.ShouldExit(ref ws.States[slot], p, entropy);
        }

        private void Norm(Span<float> rows, LayerNormWeights ln)
        {
            if (_skip != Ablated.LayerNorm)
                LayerNorm.Rows(rows, _a.Dim, ln.Gamma.Span, ln.Beta.Span, _a.LnEps, _plan.HelperIsa);
        }
    }
}
