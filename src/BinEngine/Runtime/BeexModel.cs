using System.Buffers;
using BinEngine.Kernels;
using BinEngine.Format;
using BinEngine.Tokenization;

namespace BinEngine.Runtime;

/// <summary>
/// A BEExformer model loaded from its model file: text in, label out, stopping at the exit the policy
/// chooses. Load once and share, as ONNX Runtime's InferenceSession: settings are fixed at load
/// (<see cref="BeexModelOptions"/>), every method is safe to call from many threads at once, and
/// <see cref="Dispose"/> is safe while other threads classify: calls in flight finish, later ones
/// get <see cref="ObjectDisposedException"/>, and the memory goes when the last call has left.
/// </summary>
/// <example>
/// <code>
/// using var model = BeexModel.Load("models/sst2-default/model.bex", new BeexModelOptions { BatchThreads = 4 });
/// ClassificationResult r = model.Classify("a gorgeous, witty, seductive movie.");
/// Console.WriteLine($"{r.LabelName} {r.Probabilities[r.Label]:0.00} exit {r.ExitBlock}/{r.Layers}");
/// </code>
/// </example>
public sealed class BeexModel : IDisposable
{
    private readonly Format.ModelFile _file;
    private readonly InferenceEngine _engine;

    // Calls in flight plus one for the owner (released by Dispose); the file's memory is released when
    // this reaches 0, so a Dispose racing a Classify on another thread never frees memory under it.
    private int _leases = 1;
    private int _disposed;

    private BeexModel(Format.ModelFile file, BeexModelOptions options)
    {
        _file = file;
        Options = options;
        KernelSet kernels = options.ResolveKernels();
        ModelWeights weights = ModelBinding.Bind(file, kernels.Xnor.LookupLayout);
        Architecture = weights.Architecture;
        _engine = new InferenceEngine(weights, kernels, file.Config.Labels, ModelBinding.ConformalFromConfig(file.Config));
        Tokenizer = file.Tokenizer.CreateTokenizer();
        DefaultPolicy = ModelBinding.PolicyFromConfig(file.Config, file.Config.Policy);
    }

    /// <summary>Opens, validates and loads a model file.</summary>
    /// <param name="path">A regular file (pipes and devices are refused before they are opened).</param>
    /// <param name="options">Threads, kernels, loading; the defaults when null.</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFormatException">The file is not a valid model file; the message says what and where.</exception>
    public static BeexModel Load(string path, BeexModelOptions? options = null)
    {
        options = Checked(options);
        return Create(Format.ModelFile.Open(path, options.VerifyChecksum, options.MemoryMap), options, path);
    }

    /// <summary>Loads a model file read from <paramref name="stream"/> to its end (an embedded resource, a download).</summary>
    /// <exception cref="ModelFormatException">The bytes are not a valid model file.</exception>
    public static BeexModel Load(Stream stream, BeexModelOptions? options = null)
    {
        options = Checked(options);
        return Create(Format.ModelFile.Open(stream, options.VerifyChecksum), options, "<stream>");
    }

    /// <summary>Loads a model file held in memory (copied; the caller may reuse <paramref name="bytes"/> afterwards).</summary>
    /// <exception cref="ModelFormatException">The bytes are not a valid model file.</exception>
    public static BeexModel Load(ReadOnlySpan<byte> bytes, BeexModelOptions? options = null)
    {
        options = Checked(options);
        return Create(Format.ModelFile.Open(bytes, options.VerifyChecksum), options, "<memory>");
    }

    private static BeexModelOptions Checked(BeexModelOptions? options)
    {
        options ??= BeexModelOptions.Default;
        options.Validate(); // before the file is read: a bad option is the caller's error, not the file's
        return options;
    }

    private static BeexModel Create(Format.ModelFile file, BeexModelOptions options, string source)
    {
        try
        {
            return new BeexModel(file, options);
        }
        catch (ArgumentException e)
        {
            file.Dispose();
            throw new ModelFormatException($"{source}: {e.Message}", e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The settings this model was loaded with (fixed for its lifetime).</summary>
    public BeexModelOptions Options { get; }

    /// <summary>The hyper-parameters.</summary>
    public Architecture Architecture { get; }

    /// <summary>Class names, index = class id.</summary>
    public IReadOnlyList<string> Labels => _file.Config.Labels;

    /// <summary>The policy and thresholds stored in the model file.</summary>
    public ExitPolicy DefaultPolicy { get; }

    /// <summary>The tokenizer built from the vocabulary, options and special tokens in the model file.</summary>
    public BertWordPieceTokenizer Tokenizer { get; }

    /// <summary>The open model file: metadata, provenance, tensor table (its spans are invalid after <see cref="Dispose"/>).</summary>
    internal Format.ModelFile File => _file;

    /// <summary>Where the model came from: source checkpoint, training data, metrics recorded by the converter.</summary>
    public ModelProvenance Provenance => _file.Provenance;

    /// <summary>The optional mechanisms the model carries (docs/MODEL.md names: q_exit, learned_gate, skip_gates, mamba_exits).</summary>
    public IReadOnlyList<string> Mechanisms => _engine.Mechanisms.Names;

    /// <summary>The model's weights as the forward pass reads them.</summary>
    internal ModelWeights Weights => _engine.Weights;

    /// <summary>The engine behind this model (benchmarks drive its knobs directly).</summary>
    internal InferenceEngine Engine => _engine;

    /// <summary>The kernels this model runs on.</summary>
    internal KernelSet Kernels => _engine.Kernels;

    /// <summary>The execution plan made at load (kernel per product, encodings, workspace, exit heads).</summary>
    internal ExecutionPlan Plan => _engine.Plan;

    /// <summary>The execution plan made at load, one decision per line (what <c>binengine inspect --plan</c> prints).</summary>
    public string DescribePlan() => _engine.Plan.ToString();

    /// <summary>Threads one <see cref="Classify(string, ExitPolicy?)"/> splits its GEMMs over (<see cref="BeexModelOptions.Threads"/>).</summary>
    public int Threads => Options.Threads;

    /// <summary>Threads a batch call spreads chunks of samples over (<see cref="BeexModelOptions.BatchThreads"/>).</summary>
    public int BatchThreads => Options.BatchThreads;

    /// <summary>The named policy with the thresholds stored in the model file (override them by constructing an <see cref="ExitPolicy"/>).</summary>
    public ExitPolicy Policy(string name) => ModelBinding.PolicyFromConfig(_file.Config, name);

    /// <summary>
    /// Tokenizes <paramref name="text"/> into <paramref name="ids"/> ([CLS] … [SEP], at most max_len,
    /// which needs a span of that length); returns the count.
    /// </summary>
    /// <exception cref="ArgumentException">The text holds no token (empty, only spaces or control characters).</exception>
    public int Encode(ReadOnlySpan<char> text, Span<int> ids, out bool truncated)
    {
        int count = Tokenizer.Encode(text, ids, Architecture.MaxLength, out truncated);
        if (count <= 2)
            throw new ArgumentException("the text is empty (no token besides [CLS] and [SEP]): nothing to classify");
        return count;
    }

    /// <summary>Classifies one text.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="ArgumentException">The text holds no token.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult Classify(string text, ExitPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Classify(text.AsSpan(), policy);
    }

    /// <summary>Classifies one text held in a span (a slice of a larger buffer; nothing is allocated for it).</summary>
    /// <exception cref="ArgumentException">The text holds no token.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult Classify(ReadOnlySpan<char> text, ExitPolicy? policy = null)
    {
        int[] buffer = ArrayPool<int>.Shared.Rent(Architecture.MaxLength);
        try
        {
            int count = Encode(text, buffer.AsSpan(0, Architecture.MaxLength), out bool truncated);
            Enter();
            try
            {
                return _engine.Classify(buffer.AsSpan(0, count), policy ?? DefaultPolicy, Threads, truncated);
            }
            finally
            {
                Exit();
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(buffer);
        }
    }

    /// <summary>Classifies one sequence of token ids ([CLS] … [SEP] as the tokenizer makes them, 1..max_len ids).</summary>
    /// <exception cref="ArgumentException">No ids, more than max_len, or an id outside the vocabulary.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult Classify(ReadOnlySpan<int> ids, ExitPolicy? policy = null)
    {
        Enter();
        try
        {
            return _engine.Classify(ids, policy ?? DefaultPolicy, Threads);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Classifies many texts; result i answers text i. Samples leave the batch as they exit, and the
    /// results equal those of <see cref="Classify(string, ExitPolicy?)"/> one by one, exactly.
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="policy">The exit policy; the model's default when null.</param>
    /// <param name="cancellationToken">Checked between chunks of samples; a cancelled call throws <see cref="OperationCanceledException"/>.</param>
    /// <param name="progress">Receives the count of samples finished so far, after each chunk.</param>
    /// <exception cref="ArgumentException">A text holds no token; the message names its index.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult[] ClassifyBatch(IReadOnlyList<string> texts, ExitPolicy? policy = null,
        CancellationToken cancellationToken = default, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return ClassifyTexts(texts, 0, policy, cancellationToken, progress);
    }

    /// <summary>
    /// Classifies a sequence of texts of any length, read lazily and answered in order: the texts are taken
    /// <paramref name="chunkSize"/> at a time, each chunk classified as one <see cref="ClassifyBatch(IReadOnlyList{string},
    /// ExitPolicy?, CancellationToken, IProgress{int}?)"/> (all of <see cref="BatchThreads"/>), and its results yielded
    /// before the next chunk is read, so memory holds one chunk whatever the stream's length. Results equal
    /// <see cref="Classify(string, ExitPolicy?)"/> one by one, exactly.
    /// </summary>
    /// <remarks>
    /// The chunk only bounds memory: within a chunk, samples leave as they exit and blocks run on tiles of the rest,
    /// so larger chunks buy no speed (one call of all 872 SST-2 dev sentences ran at 0.97× the throughput of calls of
    /// 16: bench/README.md, the continuous-batching row of the targets); the default 1,024 is <c>binengine batch</c>'s.
    /// </remarks>
    /// <param name="texts">The texts, enumerated once, on the caller's thread, as results are consumed.</param>
    /// <param name="policy">The exit policy; the model's default when null.</param>
    /// <param name="chunkSize">Texts classified at a time (≥ 1).</param>
    /// <param name="cancellationToken">Checked between chunks and between chunks of samples within one.</param>
    /// <exception cref="ArgumentException">A text holds no token, or is null; the message names its index in the stream
    /// (thrown when its chunk is reached: the results before that chunk have been yielded).</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public IEnumerable<ClassificationResult> ClassifyStream(IEnumerable<string> texts, ExitPolicy? policy = null,
        int chunkSize = 1024, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        return Chunks();

        IEnumerable<ClassificationResult> Chunks()
        {
            var chunk = new List<string>(Math.Min(chunkSize, 4096));
            long first = 0;
            foreach (string text in texts)
            {
                chunk.Add(text);
                if (chunk.Count < chunkSize)
                    continue;
                foreach (ClassificationResult result in ClassifyTexts(chunk, first, policy, cancellationToken, null))
                    yield return result;
                first += chunk.Count;
                chunk.Clear();
            }
            if (chunk.Count > 0)
                foreach (ClassificationResult result in ClassifyTexts(chunk, first, policy, cancellationToken, null))
                    yield return result;
        }
    }

    /// <summary>ClassifyBatch of texts that are items <paramref name="first"/>, … of the caller's sequence (errors name that index).</summary>
    private ClassificationResult[] ClassifyTexts(IReadOnlyList<string> texts, long first, ExitPolicy? policy,
        CancellationToken cancellationToken, IProgress<int>? progress)
    {
        int t = Architecture.MaxLength;
        int[] buffer = ArrayPool<int>.Shared.Rent(Math.Max(1, checked(texts.Count * t)));
        try
        {
            var samples = new ReadOnlyMemory<int>[texts.Count];
            var truncated = new bool[texts.Count];
            for (int i = 0; i < texts.Count; i++)
                if (texts[i] is null)
                    throw new ArgumentNullException(nameof(texts), $"text {first + i} is null");
            // Tokenized on the batch's threads too: run serially before the parallel forward passes, it would bound the
            // speed-up from all cores (Amdahl; ≈ 2–4 µs a sentence against ≈ 80–190 µs of forward pass on one core).
            // Each text writes only its own slots; the first failing text by index is reported, as in a serial loop.
            var failures = new ArgumentException?[texts.Count];
            void EncodeText(int i)
            {
                try
                {
                    samples[i] = buffer.AsMemory(i * t, Encode(texts[i], buffer.AsSpan(i * t, t), out truncated[i]));
                }
                catch (ArgumentException e)
                {
                    failures[i] = e;
                }
            }
            int size = InferenceEngine.ChunkSamples, ranges = (texts.Count + size - 1) / size;
            BatchWorkers.Run(ranges, BatchThreads, r =>
            {
                for (int i = r * size, end = Math.Min(texts.Count, i + size); i < end; i++)
                    EncodeText(i);
            }, cancellationToken);
            int failed = Array.FindIndex(failures, f => f is not null);
            if (failed >= 0)
                throw new ArgumentException($"text {first + failed}: {failures[failed]!.Message}", nameof(texts), failures[failed]);
            return ClassifyIds(samples, policy, truncated, cancellationToken, progress);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(buffer);
        }
    }

    /// <summary>Classifies many id sequences; result i answers sequence i.</summary>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public ClassificationResult[] ClassifyBatch(IReadOnlyList<ReadOnlyMemory<int>> ids, ExitPolicy? policy = null,
        CancellationToken cancellationToken = default, IProgress<int>? progress = null) =>
        ClassifyIds(ids, policy, null, cancellationToken, progress);

    private ClassificationResult[] ClassifyIds(IReadOnlyList<ReadOnlyMemory<int>> ids, ExitPolicy? policy, bool[]? truncated,
        CancellationToken cancellationToken, IProgress<int>? progress)
    {
        Enter();
        try
        {
            return _engine.ClassifyBatch(ids, policy ?? DefaultPolicy, BatchThreads, truncated, cancellationToken, progress);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// An FP32 twin of this model's shapes with random weights, on the FP32 SGEMM: what the benchmarks
    /// time when no trained twin file is given. Speed only: a dense forward pass costs the same whatever
    /// its weights hold; its answers mean nothing.
    /// </summary>
    internal InferenceEngine CreateRandomFp32Twin(int seed = 1)
    {
        Architecture twin = Architecture with { WeightBits = 32, ActBits = 32, EmbBits = 32 };
        return new InferenceEngine(RandomWeights.Create(twin, seed), Kernels, Labels);
    }

    /// <summary>
    /// Releases the model's memory once the calls now in flight have finished; calls made after this
    /// throw <see cref="ObjectDisposedException"/>. Safe to call more than once and from any thread.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Exit();
    }

    private void Enter()
    {
        while (true)
        {
            int leases = Volatile.Read(ref _leases);
            ObjectDisposedException.ThrowIf(leases == 0, this);
            if (Interlocked.CompareExchange(ref _leases, leases + 1, leases) == leases)
                break;
        }
        // Dispose may have run after the read above while other calls kept the count up: this call
        // must not start then (it would run on a model its owner has let go).
        if (Volatile.Read(ref _disposed) != 0)
        {
            Exit();
            throw new ObjectDisposedException(nameof(BeexModel));
        }
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
            _file.Dispose();
    }
}
