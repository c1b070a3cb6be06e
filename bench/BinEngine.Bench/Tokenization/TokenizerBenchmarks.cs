using BenchmarkDotNet.Attributes;
using BinEngine.Tokenization;

namespace BinEngine.Bench.Tokenization;

/// <summary>
/// WordPiece encoding speed and allocation on SST-2 dev (872 sentences). Each benchmark encodes
/// the whole set, and OperationsPerInvoke makes the reported time and allocation per text.
/// Tokens/s = tokens per text (printed at setup) / time per text.
/// Run: dotnet run -c Release --project bench/BinEngine.Bench -- --filter '*TokenizerBenchmarks*'
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[ShortRunJob]
public class TokenizerBenchmarks
{
    private const int Sst2DevTexts = 872;
    private BertWordPieceTokenizer _tokenizer = null!;
    private string[] _texts = null!;
    private int[] _ids = null!;
    private string _megabyteWord = null!;

    /// <summary>Maximum sequence length of the encodings (the model's T is 64; 128 leaves SST-2 untruncated).</summary>
    [Params(128)]
    public int MaxLength { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string root = RepoRoot();
        _tokenizer = BertWordPieceTokenizer.FromVocabFile(Path.Combine(root, "data", "vocab", "bert-base-uncased-vocab.txt"));
        _texts = File.ReadLines(Path.Combine(root, "data", "sst2", "dev.tsv"))
            .Skip(1)
            .Where(line => line.Length > 0)
            .Select(line => line[..line.IndexOf('\t')])
            .ToArray();
        if (_texts.Length != Sst2DevTexts) throw new InvalidDataException($"Expected {Sst2DevTexts} SST-2 dev sentences, read {_texts.Length}.");
        _ids = new int[MaxLength];
        _megabyteWord = new string('a', 1 << 20);

        long tokens = 0, chars = 0;
        int truncated = 0;
        foreach (string text in _texts)
        {
            tokens += _tokenizer.Encode(text, _ids, MaxLength, out bool cut);
            chars += text.Length;
            if (cut) truncated++;
        }
        Console.WriteLine($"// SST-2 dev: {_texts.Length} texts, {chars} chars, {tokens} tokens with [CLS]/[SEP] " +
                          $"({(double)tokens / _texts.Length:F2} per text), {truncated} truncated at {MaxLength}");
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BinEngine.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("No folder above the benchmark binaries holds BinEngine.sln.");
    }

    /// <summary>The engine's path: encode into a reused span.</summary>
    [Benchmark(OperationsPerInvoke = Sst2DevTexts)]
    public int EncodeIntoSpan()
    {
        int total = 0;
        foreach (string text in _texts) total += _tokenizer.Encode(text, _ids, MaxLength, out _);
        return total;
    }

    /// <summary>The convenience path: a new int[] per text.</summary>
    [Benchmark(OperationsPerInvoke = Sst2DevTexts)]
    public int EncodeToArray()
    {
        int total = 0;
        foreach (string text in _texts) total += _tokenizer.Encode(text, MaxLength).Length;
        return total;
    }

    /// <summary>A 1 MiB text with no spaces: one word over the length limit, so [CLS] [UNK] [SEP] (linear scan).</summary>
    [Benchmark(OperationsPerInvoke = 1)]
    public int MegabyteWithoutSpaces() => _tokenizer.Encode(_megabyteWord, _ids, MaxLength, out _);
}
