using System.Collections.Concurrent;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// Runs id sequences through a model's weights: validation of ids, workspace pooling, batching across
/// threads, and turning a finished sample into its <see cref="ClassificationResult"/>. Knows nothing
/// of files or text (see <see cref="BeexModel"/>). Thread-safe: every call takes its own workspace.
/// </summary>
internal sealed class InferenceEngine
{
    /// <summary>
    /// Samples per chunk a thread runs as one batch. Blocks already run in tiles of ≈ 67 rows (ExecutionPlan.TileRows), so
    /// a chunk only needs enough samples for a few tiles; what its size still decides is whether its residual stream
    /// (rows × d floats, carried from block to block) stays in L2, and how evenly threads share a batch. Measured on the
    /// W1A1 default (`peer --threads 1,2`, sizes alternated, 2026-12-02 06:17–06:23 UTC, bench/README.md "Levers"):
    /// batch-64 throughput at 1 thread 1226–1386 sentences/s with 32, 1717 (median) with 8, 2342 with 16; but an A/B of
    /// the builds before and after on one model file (bench/results/engine-ab-stop7.md) showed no difference beyond noise,
    /// so 16 is kept for the finer split between threads, not for a measured gain. Measured paired since (`bench --
    /// scaling --chunks 16,8,4`, bench/results/scaling-stop11.md): 8 and 4 are no better at one thread or two.
    /// </summary>
    internal const int ChunkSamples = 16;

    private readonly ForwardPass _forward;
    private readonly ConcurrentBag<Workspace> _pool = new();
    private readonly string[] _labels;
    private readonly MechanismWeights _mechanisms;
    private readonly IReadOnlyDictionary<ExitPolicy, float> _conformal;

    /// <param name="weights">The model.</param>
    /// <param name="kernels">The kernels its products run on.</param>
    /// <param name="labels">Class names.</param>
    /// <param name="conformal">Split-conformal q̂ per policy with its stored thresholds (docs/MODEL.md, learned_gate); none if null.</param>
    /// <param name="tileRows">Rows per block tile in place of the plan's choice (<see cref="ExecutionPlan.TileRows"/>; tests).</param>
    public InferenceEngine(ModelWeights weights, KernelSet kernels, IReadOnlyList<string> labels, IReadOnlyDictionary<ExitPolicy, float>? conformal = null,
        int? tileRows = null)
    {
        _conformal = conformal ?? new Dictionary<ExitPolicy, float>();
        Architecture = weights.Architecture;
        Kernels = kernels;
        Plan = ExecutionPlan.Create(Architecture, kernels, weights.Mechanisms, tileRows);
        _forward = new ForwardPass(weights, Plan);
        Weights = weights;
        _mechanisms = weights.Mechanisms;
        _labels = labels.ToArray();
        if (_labels.Length != Architecture.Classes)
            throw new ArgumentException($"the model has {Architecture.Classes} classes but {_labels.Length} label names");
    }

    public Architecture Architecture { get; }
    public KernelSet Kernels { get; }
    public ModelWeights Weights { get; }
    public MechanismWeights Mechanisms => _mechanisms;

    /// <summary>The decisions made for this model at load; the forward pass only executes them.</summary>
    public ExecutionPlan Plan { get; }

    /// <summary>One sample; <paramref name="threads"/> splits the GEMMs (batch 1 has nothing else to split).</summary>
    public ClassificationResult Classify(ReadOnlySpan<int> ids, ExitPolicy policy, int threads, bool truncated = false)
    {
        Validate(ids, 0);
        Workspace ws = Rent();
        try
        {
            ws.Ensure(ids.Length, 1, ids.Length);
            ids.CopyTo(ws.TokenIds);
            ws.Lengths[0] = ids.Length;
            _forward.Run(ws, 1, policy, threads);
            return Result(ws, 0, truncated, policy);
        }
        finally
        {
            _pool.Add(ws);
        }
    }

    /// <summary>
    /// Many samples; result i answers sample i. Chunks of <paramref name="chunkSamples"/> (by default
    /// <see cref="ChunkSamples"/>; benchmarks vary it) run on up to <paramref name="threads"/> threads, each chunk a batch
    /// whose samples leave as they exit.
    /// </summary>
    public ClassificationResult[] ClassifyBatch(IReadOnlyList<ReadOnlyMemory<int>> samples, ExitPolicy policy, int threads,
        IReadOnlyList<bool>? truncated = null, CancellationToken cancellationToken = default, IProgress<int>? progress = null,
        int chunkSamples = ChunkSamples)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSamples, 1);
        int finished = 0;
        for (int i = 0; i < samples.Count; i++)
            Validate(samples[i].Span, i);
        var results = new ClassificationResult[samples.Count];
        int chunks = (samples.Count + chunkSamples - 1) / chunkSamples;
        void RunChunk(int chunk)
        {
            int first = chunk * chunkSamples, count = Math.Min(chunkSamples, samples.Count - first);
            Workspace ws = Rent();
            try
            {
                int tokens = 0, longest = 0;
                for (int s = 0; s < count; s++)
                {
                    tokens += samples[first + s].Length;
                    longest = Math.Max(longest, samples[first + s].Length);
                }
                ws.Ensure(tokens, count, longest);
                int at = 0;
                for (int s = 0; s < count; s++)
                {
                    ReadOnlySpan<int> ids = samples[first + s].Span;
                    ids.CopyTo(ws.TokenIds.AsSpan(at));
                    ws.Lengths[s] = ids.Length;
                    at += ids.Length;
                }
                _forward.Run(ws, count, policy, threads: 1);
                for (int s = 0; s < count; s++)
                    results[first + s] = Result(ws, s, truncated is not null && truncated[first + s], policy);
            }
            finally
            {
                _pool.Add(ws);
            }
            progress?.Report(Interlocked.Add(ref finished, count));
        }

        if (threads <= 1 || chunks <= 1)
            for (int c = 0; c < chunks; c++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                RunChunk(c);
            }
        else
            BatchWorkers.Run(chunks, threads, RunChunk, cancellationToken);
        return results;
    }

    private Workspace Rent() => _pool.TryTake(out Workspace? ws) ? ws : new Workspace(Architecture, Plan.Activations, _mechanisms);

    private void Validate(ReadOnlySpan<int> ids, int sample)
    {
        string where = sample == 0 ? "" : $" (sample {sample})";
        if (ids.Length == 0)
            throw new ArgumentException($"no token ids to classify{where}: a sequence holds at least one id");
        if (ids.Length > Architecture.MaxLength)
            throw new ArgumentException(
                $"{ids.Length} token ids{where} exceed the model's max_len {Architecture.MaxLength}; truncate them first");
        for (int t = 0; t < ids.Length; t++)
            if ((uint)ids[t] >= (uint)Architecture.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids),
                    $"token id {ids[t]} at position {t}{where} is outside the vocabulary [0, {Architecture.VocabSize})");
    }

    private ClassificationResult Result(Workspace ws, int slot, bool truncated, ExitPolicy policy)
    {
        Architecture a = Architecture;
        int exitBlock = ws.ExitBlocks[slot], classes = a.Classes, evaluated = ws.Evaluated[slot], row = slot * a.Layers;
        float[] logits = ws.Logits.AsSpan(row * classes, evaluated * classes).ToArray();
        float[] entropies = ws.Entropies.AsSpan(row, evaluated).ToArray();
        float[] probabilities = ws.Answers.AsSpan(slot * classes, classes).ToArray(); // the answering exit's, as its policy saw them
        // The load-time bounds (ModelConfig.MaxMagnitude) rule overflow out of the blocks; this keeps any other route
        // to a non-finite answer (an engine bug, a mechanism's weights) from being reported as a label.
        foreach (float p in probabilities)
            if (!float.IsFinite(p))
                throw new InvalidOperationException(
                    $"the model produced a non-finite output at exit {exitBlock} (logits {string.Join(", ", logits.AsSpan((evaluated - 1) * classes, classes).ToArray())}); no answer is given");
        int label = ExitPolicy.ArgMax(probabilities);
        int tokens = ws.SampleLengths[slot];
        double full = CostModel.FullDepthFlops(a, tokens);
        return new ClassificationResult
        {
            Label = label,
            LabelName = _labels[label],
            Probabilities = probabilities,
            ExitBlock = exitBlock,
            Layers = a.Layers,
            BlocksRun = ws.BlocksRun.AsSpan(row, evaluated).ToArray(),
            Entropies = entropies,
            Logits = logits,
            Lambdas = _mechanisms.QExit is null || !policy.ReadsLambda ? null : ws.Lambdas.AsSpan(row, evaluated).ToArray(),
            GateScores = _mechanisms.LearnedGate is null || !policy.ReadsGate ? null : ws.GateScores.AsSpan(row, evaluated).ToArray(),
            PredictionSet = _conformal.TryGetValue(policy, out float qhat) ? Conformal.PredictionSet(probabilities, qhat) : null,
            TokenCount = tokens,
            Truncated = truncated,
            // FLOP counts are integers far below 2^53, so full − executed is exact and a plain model's fraction is
            // exactly the rounded (L − exit)/L.
            ComputeSkipped = (full - CostModel.ExecutedFlops(a, _mechanisms, tokens, evaluated, exitBlock, policy.ReadsLambda)) / full,
            FullDepthFlops = full,
        };
    }
}
