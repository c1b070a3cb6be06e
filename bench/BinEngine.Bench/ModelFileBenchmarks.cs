using BinEngine.Kernels;
using System.IO.Hashing;
using BenchmarkDotNet.Attributes;
using BinEngine.Format;

namespace BinEngine.Bench;

/// <summary>
/// Loading a model file of the default model's shape (V = 30522, T = 64, d = 256, h = 4, L = 6,
/// f = 512, W1 A1 E2, random weights): memory-map + full validation with and without the data
/// checksum, the checksum alone, and one dequantized embedding row (the per-token lookup cost).
/// Run: dotnet run -c Release --project bench/BinEngine.Bench -- --filter '*ModelFile*'
/// </summary>
[MemoryDiagnoser]
public class ModelFileBenchmarks
{
    private string _path = "";
    private byte[] _data = [];
    private ModelFile? _model;
    private readonly float[] _row = new float[256];

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"binengine-bench-{Environment.ProcessId}.bex");
        File.WriteAllBytes(_path, DefaultShapedModel());
        _model = ModelFile.Open(_path);
        _data = File.ReadAllBytes(_path)[(int)_model.Container.DataOffset..];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _model?.Dispose();
        File.Delete(_path);
    }

    [Benchmark(Description = "open + validate + checksum")]
    public int OpenVerified()
    {
        using var m = ModelFile.Open(_path);
        return m.TokenRows;
    }

    [Benchmark(Description = "open + validate, no checksum")]
    public int OpenUnverified()
    {
        using var m = ModelFile.Open(_path, verifyChecksum: false);
        return m.TokenRows;
    }

    [Benchmark(Description = "XXH64 of the data section")]
    public ulong ChecksumOnly() => XxHash64.HashToUInt64(_data);

    [Benchmark(Description = "token embedding row (e = 2, d = 256)")]
    public float EmbeddingRow()
    {
        _model!.TokenEmbedding(1037, _row);
        return _row[0];
    }

    private static byte[] DefaultShapedModel()
    {
        var config = new ModelConfig
        {
            VocabSize = 30522, MaxLength = 64, Dim = 256, Heads = 4, Layers = 6, FfDim = 512, Classes = 2,
            WeightBits = 1, ActBits = 1, EmbBits = 2, Labels = ["negative", "positive"], Policy = BinEngine.Runtime.ExitPolicy.NameOf(BinEngine.Runtime.ExitPolicyKind.None),
        };
        var rng = new Random(1);
        var w = new TensorFileWriter()
            .Add(ModelKeys.Architecture, MetadataValue.FromString(ModelFile.ArchitectureName))
            .Add(ModelKeys.VocabSize, MetadataValue.FromInt64(config.VocabSize))
            .Add(ModelKeys.MaxLen, MetadataValue.FromInt64(config.MaxLength))
            .Add(ModelKeys.DModel, MetadataValue.FromInt64(config.Dim))
            .Add(ModelKeys.NHeads, MetadataValue.FromInt64(config.Heads))
            .Add(ModelKeys.NLayers, MetadataValue.FromInt64(config.Layers))
            .Add(ModelKeys.DFf, MetadataValue.FromInt64(config.FfDim))
            .Add(ModelKeys.NClasses, MetadataValue.FromInt64(config.Classes))
            .Add(ModelKeys.WeightBits, MetadataValue.FromInt64(config.WeightBits))
            .Add(ModelKeys.ActBits, MetadataValue.FromInt64(config.ActBits))
            .Add(ModelKeys.EmbBits, MetadataValue.FromInt64(config.EmbBits))
            .Add(ModelKeys.LnEps, MetadataValue.FromFloat64(config.LnEps))
            .Add(ModelKeys.Labels, MetadataValue.FromStringArray(config.Labels))
            .Add(ModelKeys.Policy, MetadataValue.FromString(config.Policy))
            .Add(ModelKeys.TokenizerVocab, MetadataValue.FromStringArray(Enumerable.Range(0, config.VocabSize).Select(i => $"tok{i}")))
            .Add(ModelKeys.TokenizerLowercase, MetadataValue.FromBool(true));
        foreach (var t in ModelLayout.Expected(config, config.VocabSize, hasTokenMap: false))
        {
            int rows = t.Shape.Length == 1 ? 1 : t.Shape[0], k = t.Shape[^1];
            if (t.ElementType == TensorElementType.Bits)
            {
                var codes = new sbyte[k];
                int rowWords = TwosComplementPlanes.RowWords(k, t.Planes);
                var words = new ulong[rows * rowWords];
                for (int r = 0; r < rows; r++)
                {
                    for (int j = 0; j < k; j++)
                        codes[j] = t.Planes == 1 ? (sbyte)(rng.Next(2) * 2 - 1) : (sbyte)rng.Next(-1, 2);
                    TwosComplementPlanes.PackRow(codes, t.Planes, words.AsSpan(r * rowWords, rowWords));
                }
                w.AddBits(t.Name, t.Planes, t.Shape, words);
            }
            else
            {
                w.AddF32(t.Name, t.Shape, Enumerable.Range(0, rows * k).Select(_ => (float)rng.NextDouble()).ToArray());
            }
        }
        return w.ToArray();
    }
}
