using BinEngine.Kernels;
using System.Globalization;

namespace BinEngine.Format;

/// <summary>The tokenizer settings a model file carries; every special token is in the vocabulary (checked at open).</summary>
/// <param name="Vocabulary">WordPiece tokens, index = id (V of them).</param>
/// <param name="Lowercase">Lower-case and strip accents before WordPiece (bert-base-uncased).</param>
/// <param name="UnkToken">The unknown-word token.</param>
/// <param name="ClsToken">The token that opens every sequence.</param>
/// <param name="SepToken">The token that closes every sequence.</param>
/// <param name="PadToken">The padding token.</param>
internal sealed record TokenizerSettings(IReadOnlyList<string> Vocabulary, bool Lowercase,
    string UnkToken = "[UNK]", string ClsToken = "[CLS]", string SepToken = "[SEP]", string PadToken = "[PAD]")
{
    /// <summary>The tokenizer these settings describe: the one place a model file's vocabulary, case and special tokens become a tokenizer.</summary>
    public Tokenization.BertWordPieceTokenizer CreateTokenizer() => new(Vocabulary, new Tokenization.BertWordPieceOptions
    {
        Lowercase = Lowercase, UnkToken = UnkToken, ClsToken = ClsToken, SepToken = SepToken, PadToken = PadToken,
    });
}

/// <summary>Where a model file came from (any field may be null when the converter had no value).</summary>
public sealed record ModelProvenance(
    string? SourceFile, string? SourceSha256, string? SourceFormat, string? Task, string? TrainData,
    IReadOnlyDictionary<string, string> Metrics, string? Converter);

/// <summary>
/// A BEExformer model file, open and validated: the container (<see cref="TensorFile"/>) plus
/// the typed config, tokenizer and provenance, with every tensor checked against the config
/// (names, types, shapes, the token map's range, finite non-negative α and scales) before the
/// first span is handed out. Memory-mapped, read-only, safe to share between threads; dispose
/// it when done (spans become invalid then).
/// </summary>
internal sealed class ModelFile : IDisposable
{
    /// <summary>The architecture name in <see cref="ModelKeys.Architecture"/>.</summary>
    public const string ArchitectureName = "beexformer";

    private ModelFile(TensorFile file)
    {
        Container = file;
        string source = file.Source;
        try
        {
            string arch = file.GetString(ModelKeys.Architecture);
            if (arch != ArchitectureName)
                throw new ModelFormatException($"{source}: architecture '{arch}'; this engine runs '{ArchitectureName}'");
            Config = ReadConfig(file);
            Config.Validate();
        }
        catch (ModelFormatException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw new ModelFormatException($"{source}: {e.Message}", e);
        }

        var vocab = file.GetStringArray(ModelKeys.TokenizerVocab);
        if (vocab.Count != Config.VocabSize)
            throw new ModelFormatException($"{source}: tokenizer vocabulary has {vocab.Count} tokens; 'vocab_size' = {Config.VocabSize}");
        string Special(string key, string fallback)
        {
            string token = file.HasMetadata(key) ? file.GetString(key) : fallback;
            if (!vocab.Contains(token))
                throw new ModelFormatException($"{source}: special token '{token}' ({key}) is not in the vocabulary");
            return token;
        }
        Tokenizer = new TokenizerSettings(vocab, file.GetBool(ModelKeys.TokenizerLowercase),
            Special(ModelKeys.TokenizerUnkToken, "[UNK]"), Special(ModelKeys.TokenizerClsToken, "[CLS]"),
            Special(ModelKeys.TokenizerSepToken, "[SEP]"), Special(ModelKeys.TokenizerPadToken, "[PAD]"));
        Provenance = ReadProvenance(file);
        ValidateTensors();
    }


    /// <summary>The validated container: metadata and raw tensor access.</summary>
    public TensorFile Container { get; }

    /// <summary>Hyper-parameters, labels, default policy and thresholds.</summary>
    public ModelConfig Config { get; }

    /// <summary>Vocabulary and options of the tokenizer the model was trained with.</summary>
    public TokenizerSettings Tokenizer { get; }

    /// <summary>Source checkpoint, training data and metrics.</summary>
    public ModelProvenance Provenance { get; }

    /// <summary>V': rows of the token table (V unless rows were pruned).</summary>
    public int TokenRows { get; private set; }

    /// <summary>True when <c>embed.tok_map</c> maps vocabulary ids to token-table rows.</summary>
    public bool HasTokenMap { get; private set; }

    /// <summary>File length in bytes.</summary>
    public long FileBytes => Container.FileLength;

    /// <summary>
    /// The size of the FP32 model this file replaces: every parameter at 32 bits, the token table at
    /// all V rows even when pruned rows were dropped (derived tensors — α, scales, token map — excluded).
    /// </summary>
    public long Fp32ParameterBytes => Container.Tensors.Where(t => ModelLayout.IsParameter(t.Name))
        .Sum(t => t.Name == ModelLayout.TokenEmbedding ? (long)Config.VocabSize * Config.Dim * 4 : t.ElementCount * 4);

    /// <summary>Opens and validates a model file (read into memory, or mapped: see <see cref="TensorFile.Open(string, bool, bool)"/>).</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="ModelFormatException">Any defect, named with its place.</exception>
    public static ModelFile Open(string path, bool verifyChecksum = true, bool memoryMap = false) =>
        Wrap(TensorFile.Open(path, verifyChecksum, memoryMap));

    /// <summary>Opens and validates a model file held in memory (fuzz tests, embedded resources).</summary>
    public static ModelFile Open(ReadOnlySpan<byte> bytes, bool verifyChecksum = true) => Wrap(TensorFile.Open(bytes, verifyChecksum));

    /// <summary>Opens and validates a model file read from a stream.</summary>
    public static ModelFile Open(Stream stream, bool verifyChecksum = true) => Wrap(TensorFile.Open(stream, verifyChecksum));

    private static ModelFile Wrap(TensorFile file)
    {
        try
        {
            return new ModelFile(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The tensor table entry of <paramref name="name"/>.</summary>
    public TensorInfo GetTensor(string name) => Container.GetTensor(name);

    /// <summary>A float32 tensor's elements.</summary>
    public ReadOnlySpan<float> F32(string name) => Container.F32(name);

    /// <summary>An int8 tensor's elements.</summary>
    public ReadOnlySpan<sbyte> I8(string name) => Container.I8(name);

    /// <summary>An int32 tensor's elements.</summary>
    public ReadOnlySpan<int> I32(string name) => Container.I32(name);

    /// <summary>A packed-bits tensor's words (rows · planes · PackedRowWords(K)).</summary>
    public ReadOnlySpan<ulong> Bits(string name) => Container.Bits(name);

    /// <summary>An integer metadata value.</summary>
    public long GetInt(string key) => Container.GetInt(key);

    /// <summary>A floating-point metadata value.</summary>
    public double GetDouble(string key) => Container.GetDouble(key);

    /// <summary>A floating-point metadata value rounded to float32.</summary>
    public float GetFloat(string key) => Container.GetFloat(key);

    /// <summary>A Boolean metadata value.</summary>
    public bool GetBool(string key) => Container.GetBool(key);

    /// <summary>A string metadata value.</summary>
    public string GetString(string key) => Container.GetString(key);

    /// <summary>A string-array metadata value.</summary>
    public IReadOnlyList<string> GetStringArray(string key) => Container.GetStringArray(key);

    /// <summary>The token-table row of vocabulary id <paramref name="tokenId"/> (through <c>embed.tok_map</c> when present).</summary>
    public int TokenRow(int tokenId)
    {
        if ((uint)tokenId >= (uint)Config.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(tokenId), tokenId, $"token ids are 0..{Config.VocabSize - 1}");
        return HasTokenMap ? Container.I32(ModelLayout.TokenMap)[tokenId] : tokenId;
    }

    /// <summary>Writes the dequantized embedding of vocabulary id <paramref name="tokenId"/> (d floats): <c>code · scale</c>, or the f32 row.</summary>
    public void TokenEmbedding(int tokenId, Span<float> destination) =>
        EmbeddingRow(ModelLayout.TokenEmbedding, ModelLayout.TokenScale, TokenRows, TokenRow(tokenId), destination);

    /// <summary>Writes the dequantized position embedding of <paramref name="position"/> (0-based, &lt; T).</summary>
    public void PositionEmbedding(int position, Span<float> destination)
    {
        if ((uint)position >= (uint)Config.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"positions are 0..{Config.MaxLength - 1}");
        EmbeddingRow(ModelLayout.PositionEmbedding, ModelLayout.PositionScale, Config.MaxLength, position, destination);
    }

    // The runtime's reader (one definition of code · scale for every storage type), over this file's tensors.
    private void EmbeddingRow(string table, string scales, int rows, int row, Span<float> destination)
    {
        int d = Config.Dim;
        if (destination.Length != d)
            throw new ArgumentException($"destination holds {destination.Length} floats; d_model = {d}", nameof(destination));
        Runtime.ModelBinding.EmbeddingTableOf(this, table, scales, rows).Dequantize(row, destination);
    }

    /// <summary>Releases the mapping.</summary>
    public void Dispose() => Container.Dispose();

    private static ModelConfig ReadConfig(TensorFile f)
    {
        int Int(string key)
        {
            long v = f.GetInt(key);
            return v is >= int.MinValue and <= int.MaxValue ? (int)v
                : throw new ModelFormatException($"metadata '{key}' = {v} is out of range");
        }

        return new ModelConfig
        {
            VocabSize = Int(ModelKeys.VocabSize),
            MaxLength = Int(ModelKeys.MaxLen),
            Dim = Int(ModelKeys.DModel),
            Heads = Int(ModelKeys.NHeads),
            Layers = Int(ModelKeys.NLayers),
            FfDim = Int(ModelKeys.DFf),
            Classes = Int(ModelKeys.NClasses),
            WeightBits = Int(ModelKeys.WeightBits),
            ActBits = Int(ModelKeys.ActBits),
            EmbBits = Int(ModelKeys.EmbBits),
            LnEps = f.GetDouble(ModelKeys.LnEps),
            Labels = f.GetStringArray(ModelKeys.Labels),
            Policy = f.GetString(ModelKeys.Policy),
            Thresholds = ReadTable(f, ModelKeys.ThresholdsPrefix),
            Mechanisms = ReadTable(f, ModelKeys.MechanismPrefix),
            Conformal = ReadTable(f, ModelKeys.ConformalPrefix),
            SlfnGateCenter = f.TryGetMetadata(ModelKeys.SlfnGateCenter) is { } gate && (gate.Value as bool?
                ?? throw new ModelFormatException($"metadata '{ModelKeys.SlfnGateCenter}' is {gate.Type}; expected Bool")),
            ExitTemperatures = f.TryGetMetadata(ModelKeys.ExitTemperatures) is { } temps
                ? temps.Value as double[] ?? throw new ModelFormatException($"metadata '{ModelKeys.ExitTemperatures}' is {temps.Type}; expected Float64Array")
                : null,
        };
    }

    /// <summary>
    /// The numbers under <c>{prefix}{group}.{parameter}</c> (thresholds per policy, parameters per mechanism,
    /// conformal calibrations per policy) as group → parameter → value; Float64 or Int64 each.
    /// </summary>
    private static Dictionary<string, IReadOnlyDictionary<string, double>> ReadTable(TensorFile f, string prefix)
    {
        var table = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        foreach (var (key, value) in f.Metadata)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            string rest = key[prefix.Length..];
            int dot = rest.LastIndexOf('.');
            if (dot <= 0 || dot == rest.Length - 1)
                throw new ModelFormatException($"metadata key '{key}' is not {prefix}<name>.<parameter>");
            double number = value.Value switch
            {
                double d => d,
                long l => l,
                _ => throw new ModelFormatException($"metadata '{key}' is {value.Type}; expected Float64 or Int64"),
            };
            string group = rest[..dot];
            if (!table.TryGetValue(group, out var parameters))
                table[group] = parameters = new Dictionary<string, double>(StringComparer.Ordinal);
            parameters[rest[(dot + 1)..]] = number;
        }
        return table.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, double>)kv.Value, StringComparer.Ordinal);
    }

    private static ModelProvenance ReadProvenance(TensorFile f)
    {
        string? S(string key) => f.TryGetMetadata(key)?.Value as string;
        var metrics = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in f.Metadata)
            if (key.StartsWith(ModelKeys.MetricsPrefix, StringComparison.Ordinal))
                metrics[key[ModelKeys.MetricsPrefix.Length..]] = value.ToDisplayString(int.MaxValue);
        return new ModelProvenance(S(ModelKeys.SourceFile), S(ModelKeys.SourceSha256), S(ModelKeys.SourceFormat),
            S(ModelKeys.Task), S(ModelKeys.TrainData), metrics, S(ModelKeys.Converter));
    }

    private void ValidateTensors()
    {
        string source = Container.Source;
        var tok = Container.GetTensor(ModelLayout.TokenEmbedding);
        if (tok.Shape.Count != 2)
            throw new ModelFormatException($"{source}: tensor '{tok.Name}' has rank {tok.Shape.Count}; expected [V', d]");
        TokenRows = tok.Shape[0];
        HasTokenMap = Container.Contains(ModelLayout.TokenMap);
        if (!HasTokenMap && TokenRows != Config.VocabSize)
            throw new ModelFormatException($"{source}: tensor '{tok.Name}' has {TokenRows} rows; without '{ModelLayout.TokenMap}' it needs vocab_size = {Config.VocabSize}");

        var expected = ModelLayout.Expected(Config, TokenRows, HasTokenMap);
        var expectedNames = new HashSet<string>(expected.Select(e => e.Name), StringComparer.Ordinal);
        foreach (var t in Container.Tensors)
            if (!expectedNames.Contains(t.Name))
                throw new ModelFormatException($"{source}: unexpected tensor '{t.Name}' for this config (weight_bits = {Config.WeightBits}, emb_bits = {Config.EmbBits}, n_layers = {Config.Layers})");
        foreach (var e in expected)
        {
            if (!Container.Contains(e.Name))
                throw new ModelFormatException($"{source}: tensor '{e.Name}' is missing (expected {Describe(e.ElementType, e.Planes, e.Shape)})");
            var t = Container.GetTensor(e.Name);
            if (t.ElementType != e.ElementType || t.Planes != e.Planes || !t.Shape.SequenceEqual(e.Shape))
                throw new ModelFormatException($"{source}: tensor '{e.Name}' is {Describe(t.ElementType, t.Planes, t.Shape)}; the config requires {Describe(e.ElementType, e.Planes, e.Shape)}");
            if (t.ElementType == TensorElementType.F32)
                CheckValues(e.Name);
        }
        if (HasTokenMap)
        {
            var map = Container.I32(ModelLayout.TokenMap);
            for (int i = 0; i < map.Length; i++)
                if ((uint)map[i] >= (uint)TokenRows)
                    throw new ModelFormatException($"{source}: '{ModelLayout.TokenMap}'[{i}] = {map[i]}; rows are 0..{TokenRows - 1}");
        }
    }

    /// <summary>
    /// Every float finite and within ±<see cref="ModelConfig.MaxMagnitude"/> (the bound under which the
    /// forward pass cannot overflow float32), α and scales also ≥ 0: a checksum only proves the bytes are
    /// the ones written, and a converter bug or a hand edit would otherwise load and answer NaN.
    /// </summary>
    private void CheckValues(string name)
    {
        bool scale = name.EndsWith(".alpha", StringComparison.Ordinal) || name.EndsWith(".scale", StringComparison.Ordinal);
        float min = scale ? 0 : -ModelConfig.MaxMagnitude;
        ReadOnlySpan<float> values = Container.F32(name);
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            // Written so that NaN fails: every comparison with NaN is false.
            if (!(v >= min && v <= ModelConfig.MaxMagnitude))
                throw new ModelFormatException(
                    $"{Container.Source}: tensor '{name}'[{i}] = {v.ToString(CultureInfo.InvariantCulture)}; " +
                    (scale ? $"α and scales are finite, in 0..{ModelConfig.MaxMagnitude}" : $"values are finite, within ±{ModelConfig.MaxMagnitude}") +
                    " (the range in which the forward pass cannot overflow)");
        }
    }

    private static string Describe(TensorElementType type, int planes, IEnumerable<int> shape) =>
        $"{(type == TensorElementType.Bits ? $"bits×{planes}" : type.ToString().ToLowerInvariant())} [{string.Join(", ", shape)}]";
}
