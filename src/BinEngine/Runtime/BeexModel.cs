using System.Buffers;
using BinEngine.Kernels;
using BinEngine.ModelFile;
using BinEngine.Tokenization;

namespace BinEngine.Runtime;

/// <summary>
/// A BEExformer model loaded from its model file: text in, label out, stopping at the exit the policy
/// chooses. Load once and share: the file is memory-mapped and the weights are used where they lie;
/// every method is safe to call from many threads at once. Dispose it to unmap the file.
/// </summary>
/// <example>
/// <code>
/// using var model = BeexModel.Load("models/sst2/model.bex");
/// ClassificationResult r = model.Classify("a gorgeous, witty, seductive movie.");
/// Console.WriteLine($"{r.LabelName} {r.Probabilities[r.Label]:0.00} exit {r.ExitBlock}/{r.Layers}");
/// </code>
/// </example>
public sealed class BeexModel : IDisposable
{
    private readonly ModelFile.ModelFile _file;
    private readonly InferenceEngine _engine;

    private BeexModel(ModelFile.ModelFile file, KernelSet kernels)
    {
        _file = file;
        ModelWeights weights = ModelBinding.Bind(file);
        Architecture = weights.Architecture;
        _engine = new InferenceEngine(weights, kernels, file.Config.Labels);
        Tokenizer = new WordPieceTokenizer(file.Tokenizer.Vocabulary, new WordPieceOptions { Lowercase = file.Tokenizer.Lowercase });
        DefaultPolicy = ModelBinding.PolicyFromConfig(file.Config, file.Config.Policy);
    }

    /// <summary>
    /// Opens, validates and maps a model file. <paramref name="kernels"/> overrides the kernels chosen
    /// at start-up (<see cref="KernelRegistry.Selected"/>, itself overridable by BINENGINE_ISA).
    /// </summary>
    /// <exception cref="ModelFormatException">The file is not a valid model file; the message says what and where.</exception>
    public static BeexModel Load(string path, KernelSet? kernels = null)
    {
        ModelFile.ModelFile file = ModelFile.ModelFile.Open(path);
        try
        {
            return new BeexModel(file, kernels ?? KernelRegistry.Selected);
        }
        catch (ArgumentException e)
        {
            file.Dispose();
            throw new ModelFormatException($"{path}: {e.Message}", e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The hyper-parameters.</summary>
    public Architecture Architecture { get; }

    /// <summary>Class names, index = class id.</summary>
    public IReadOnlyList<string> Labels => _file.Config.Labels;

    /// <summary>The policy and thresholds stored in the model file.</summary>
    public ExitPolicy DefaultPolicy { get; }

    /// <summary>The tokenizer built from the vocabulary and options in the model file.</summary>
    public WordPieceTokenizer Tokenizer { get; }

    /// <summary>The open model file: metadata, provenance, tensor table.</summary>
    public ModelFile.ModelFile File => _file;

    /// <summary>The kernels this model runs on.</summary>
    public KernelSet Kernels => _engine.Kernels;

    /// <summary>
    /// Threads a single <see cref="Classify(string, ExitPolicy?)"/> may split its GEMMs over (default 1:
    /// at batch 1 the layers of a small model are too short to pay for waking threads).
    /// </summary>
    public int Threads { get; set; } = 1;

    /// <summary>Threads <see cref="ClassifyBatch(IReadOnlyList{string}, ExitPolicy?)"/> spreads chunks of samples over (default: all cores).</summary>
    public int BatchThreads { get; set; } = Environment.ProcessorCount;

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
    public ClassificationResult Classify(string text, ExitPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        int[] buffer = ArrayPool<int>.Shared.Rent(Architecture.MaxLength);
        try
        {
            int count = Encode(text, buffer.AsSpan(0, Architecture.MaxLength), out bool truncated);
            return _engine.Classify(buffer.AsSpan(0, count), policy ?? DefaultPolicy, Threads, truncated);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(buffer);
        }
    }

    /// <summary>Classifies one sequence of token ids ([CLS] … [SEP] as the tokenizer makes them, 1..max_len ids).</summary>
    /// <exception cref="ArgumentException">No ids, more than max_len, or an id outside the vocabulary.</exception>
    public ClassificationResult Classify(ReadOnlySpan<int> ids, ExitPolicy? policy = null) =>
        _engine.Classify(ids, policy ?? DefaultPolicy, Threads);

    /// <summary>
    /// Classifies many texts; result i answers text i. Samples leave the batch as they exit, and the
    /// results equal those of <see cref="Classify(string, ExitPolicy?)"/> one by one, exactly.
    /// </summary>
    /// <exception cref="ArgumentException">A text holds no token; the message names its index.</exception>
    public ClassificationResult[] ClassifyBatch(IReadOnlyList<string> texts, ExitPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        int t = Architecture.MaxLength;
        int[] buffer = ArrayPool<int>.Shared.Rent(Math.Max(1, texts.Count * t));
        try
        {
            var samples = new ReadOnlyMemory<int>[texts.Count];
            var truncated = new bool[texts.Count];
            for (int i = 0; i < texts.Count; i++)
            {
                string text = texts[i] ?? throw new ArgumentNullException(nameof(texts), $"text {i} is null");
                int count;
                try
                {
                    count = Encode(text, buffer.AsSpan(i * t, t), out truncated[i]);
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"text {i}: {e.Message}", nameof(texts), e);
                }
                samples[i] = buffer.AsMemory(i * t, count);
            }
            return _engine.ClassifyBatch(samples, policy ?? DefaultPolicy, BatchThreads, truncated);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(buffer);
        }
    }

    /// <summary>Classifies many id sequences; result i answers sequence i.</summary>
    public ClassificationResult[] ClassifyBatch(IReadOnlyList<ReadOnlyMemory<int>> ids, ExitPolicy? policy = null) =>
        _engine.ClassifyBatch(ids, policy ?? DefaultPolicy, BatchThreads);

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

    /// <summary>Unmaps the model file; the model must not be used afterwards.</summary>
    public void Dispose() => _file.Dispose();
}
