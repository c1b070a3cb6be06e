using BinEngine.Kernels;
using System.Globalization;
using BinEngine.Format;

namespace BinEngine.Converter;

/// <summary>Where the converter finds what a checkpoint alone does not hold.</summary>
internal sealed class ConvertOptions
{
    /// <summary>config.json; default: the safetensors <c>__metadata__["config"]</c>, else config.json beside the checkpoint.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>vocab.txt (one token per line); default: vocab.txt beside the checkpoint, unless <see cref="TokenizerJsonPath"/> is set.</summary>
    public string? VocabPath { get; init; }

    /// <summary>A Hugging Face tokenizer.json to take the vocabulary (and lowercase flag) from instead of a vocab.txt.</summary>
    public string? TokenizerJsonPath { get; init; }

    /// <summary>The model's display name (<c>general.name</c>); default: the checkpoint's file name without extension.</summary>
    public string? Name { get; init; }
}

/// <summary>
/// Converts a trained checkpoint (safetensors or torch.save .pt/.bin) into a BinEngine model file:
/// maps names (<see cref="TensorNameMap"/>), checks every tensor's dtype and shape against the
/// config, binarizes BinLinear weights (bits + α per row), quantizes embeddings to e bits
/// (codes + per-row scale), and writes metadata (config, thresholds, vocabulary, provenance).
/// The output depends only on the checkpoint's tensors, the config and the vocabulary (plus the
/// provenance strings), so a .pt and a safetensors of the same weights give identical data.
/// </summary>
internal static class ModelConverter
{
    /// <summary>The converter's name and format version, recorded in <c>provenance.converter</c>.</summary>
    public const string Identity = "BinEngine.Converter (model file format v1)";

    /// <summary>Converts <paramref name="checkpointPath"/> to <paramref name="outputPath"/>.</summary>
    /// <exception cref="ConversionException">Any problem with the inputs, named.</exception>
    public static ConversionReport Convert(string checkpointPath, string? configPath, string? vocabPath, string outputPath) =>
        Convert(checkpointPath, outputPath, new ConvertOptions { ConfigPath = configPath, VocabPath = vocabPath });

    /// <summary>Converts <paramref name="checkpointPath"/> to <paramref name="outputPath"/> (written to a temporary file, then moved in place).</summary>
    /// <exception cref="ConversionException">Any problem with the inputs, named.</exception>
    public static ConversionReport Convert(string checkpointPath, string outputPath, ConvertOptions? options = null)
    {
        options ??= new ConvertOptions();
        var (file, report) = ConvertToBytes(checkpointPath, options);
        string full = Path.GetFullPath(outputPath);
        string temp = full + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        try
        {
            File.WriteAllBytes(temp, file);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw new ConversionException($"cannot write '{outputPath}': {e.Message}", e);
        }
        return new ConversionReport(outputPath, report.Rows, report.FileBytes, report.HeadBytes, report.DataBytes, report.Notes);
    }

    /// <summary>Converts a checkpoint file, resolving config and vocabulary per <paramref name="options"/>, to the model file's bytes.</summary>
    public static (byte[] File, ConversionReport Report) ConvertToBytes(string checkpointPath, ConvertOptions options)
    {
        var notes = new List<string>();
        var checkpoint = Checkpoint.Read(checkpointPath);
        string dir = Path.GetDirectoryName(Path.GetFullPath(checkpointPath)) ?? ".";

        SourceConfig config;
        if (options.ConfigPath is not null)
        {
            config = SourceConfig.Parse(ReadText(options.ConfigPath, "config"), options.ConfigPath);
            notes.Add($"config: {options.ConfigPath}");
        }
        else if (checkpoint.Metadata.TryGetValue("config", out string? embedded))
        {
            config = SourceConfig.Parse(embedded, checkpointPath + " __metadata__.config");
            notes.Add("config: the checkpoint's __metadata__.config");
        }
        else if (File.Exists(Path.Combine(dir, "config.json")))
        {
            string path = Path.Combine(dir, "config.json");
            config = SourceConfig.Parse(ReadText(path, "config"), path);
            notes.Add($"config: {path} (beside the checkpoint)");
        }
        else
        {
            throw new ConversionException($"no config for '{checkpointPath}': pass --config config.json (the checkpoint has no __metadata__.config and no config.json lies beside it)");
        }

        string[] vocab;
        bool? tokenizerLowercase = null;
        if (options.TokenizerJsonPath is not null)
        {
            (vocab, tokenizerLowercase) = Vocabulary.ReadTokenizerJson(options.TokenizerJsonPath);
            notes.Add($"vocabulary: {options.TokenizerJsonPath}");
        }
        else if (options.VocabPath is not null)
        {
            vocab = Vocabulary.ReadVocabTxt(options.VocabPath);
            notes.Add($"vocabulary: {options.VocabPath}");
        }
        else if (File.Exists(Path.Combine(dir, "vocab.txt")))
        {
            vocab = Vocabulary.ReadVocabTxt(Path.Combine(dir, "vocab.txt"));
            notes.Add($"vocabulary: {Path.Combine(dir, "vocab.txt")} (beside the checkpoint)");
        }
        else
        {
            throw new ConversionException($"no vocabulary for '{checkpointPath}': pass --vocab vocab.txt or --tokenizer-json tokenizer.json (no vocab.txt lies beside the checkpoint)");
        }

        bool lowercase = config.Lowercase ?? tokenizerLowercase ?? true;
        string name = options.Name ?? Path.GetFileNameWithoutExtension(checkpointPath);
        var (bytes, report) = ConvertToBytes(checkpoint, config, vocab, lowercase, name);
        return (bytes, new ConversionReport("", report.Rows, report.FileBytes, report.HeadBytes, report.DataBytes, [.. notes, .. report.Notes]));
    }

    /// <summary>The core conversion: checkpoint + parsed config + vocabulary → model file bytes, validated by reopening them.</summary>
    public static (byte[] File, ConversionReport Report) ConvertToBytes(Checkpoint checkpoint, SourceConfig config, IReadOnlyList<string> vocabulary, bool lowercase, string name)
    {
        var cfg = config.Model;
        var notes = new List<string>();
        if (vocabulary.Count != cfg.VocabSize)
            throw new ConversionException($"the vocabulary has {vocabulary.Count} tokens; config 'vocab_size' = {cfg.VocabSize} (wrong vocab file for this model?)");
        foreach (string special in new[] { config.UnkToken, config.ClsToken, config.SepToken, config.PadToken })
            if (!vocabulary.Contains(special))
                throw new ConversionException($"special token '{special}' is not in the vocabulary (set unk_token/cls_token/sep_token/pad_token in the config if the vocabulary names them differently)");

        var tensors = TensorNameMap.Map(checkpoint.Tensors);
        string src = checkpoint.Path;
        var used = new HashSet<string>(StringComparer.Ordinal);

        SourceTensor Require(string tensor)
        {
            if (!tensors.TryGetValue(tensor, out var t))
                throw new ConversionException($"{src}: tensor '{tensor}' is missing (docs/MODEL.md names; the checkpoint has {tensors.Count} tensors: {string.Join(", ", tensors.Keys.Take(6))}{(tensors.Count > 6 ? ", …" : "")})");
            used.Add(tensor);
            return t;
        }
        float[] Floats(string tensor, int[] shape)
        {
            var t = Require(tensor);
            // torch's depthwise Conv1d kernel is [E, 1, K]; the file stores it squeezed, [E, K] (docs/MODEL.md, mamba_exits).
            if (tensor.EndsWith(".mamba.conv.weight", StringComparison.Ordinal) && t.Shape.Length == 3 && t.Shape[1] == 1)
                CheckShape(t, [shape[0], 1, shape[1]], src);
            else
                CheckShape(t, shape, src);
            if (!t.IsFloat)
                throw new ConversionException($"{src}: tensor '{tensor}' has dtype {t.DType}; a float tensor (F32, F16 or BF16) is required");
            var values = t.ToFloat32();
            for (int i = 0; i < values.Length; i++)
                if (!float.IsFinite(values[i]))
                    throw new ConversionException($"{src}: tensor '{tensor}' element {i} is {values[i].ToString(CultureInfo.InvariantCulture)}; weights must be finite");
            return values;
        }

        var tok = Require(ModelLayout.TokenEmbedding);
        if (tok.Shape.Length != 2 || tok.Shape[1] != cfg.Dim || tok.Shape[0] < 1 || tok.Shape[0] > cfg.VocabSize)
            throw new ConversionException($"{src}: tensor '{ModelLayout.TokenEmbedding}' has shape [{string.Join(", ", tok.Shape)}]; expected [V' ≤ {cfg.VocabSize}, d_model = {cfg.Dim}]");
        int tokenRows = (int)tok.Shape[0];
        bool hasMap = tensors.ContainsKey(ModelLayout.TokenMap);
        if (!hasMap && tokenRows != cfg.VocabSize)
            throw new ConversionException($"{src}: tensor '{ModelLayout.TokenEmbedding}' has {tokenRows} rows but vocab_size = {cfg.VocabSize} and there is no '{ModelLayout.TokenMap}' to map ids to rows");

        var expected = ModelLayout.Expected(cfg, tokenRows, hasMap);
        var produced = new Dictionary<string, (Array Data, string Source, long Fp32Bytes)>(StringComparer.Ordinal);
        var binLinears = new HashSet<string>(Enumerable.Range(0, cfg.Layers).SelectMany(i => ModelLayout.BinLinears(cfg, i)).Select(l => l.Name + ".weight"), StringComparer.Ordinal);
        string Describe(string tensor) => $"{tensors[tensor].DType} [{string.Join(", ", tensors[tensor].Shape)}]";

        foreach (var e in expected)
        {
            if (produced.ContainsKey(e.Name))
                continue;
            if (e.Name is ModelLayout.TokenEmbedding or ModelLayout.PositionEmbedding)
            {
                string scaleName = e.Name == ModelLayout.TokenEmbedding ? ModelLayout.TokenScale : ModelLayout.PositionScale;
                var values = Floats(e.Name, e.Shape);
                int rows = e.Shape[0], d = e.Shape[1];
                // The FP32 baseline is the unpruned model: the token table at all V rows (a pruned
                // table's missing rows are still parameters of the FP32 model it replaces).
                long fp32 = (e.Name == ModelLayout.TokenEmbedding ? (long)cfg.VocabSize : rows) * d * 4L;
                if (cfg.EmbBits == 32)
                {
                    produced[e.Name] = (values, Describe(e.Name), fp32);
                    continue;
                }
                var (codes, scales) = Quantizers.QuantizeRows(values, rows, d, cfg.EmbBits);
                produced[scaleName] = (scales, "derived: per-row scale", 0);
                if (cfg.EmbBits == 8)
                {
                    produced[e.Name] = (codes, Describe(e.Name), fp32);
                    continue;
                }
                int rowWords = TwosComplementPlanes.RowWords(d, cfg.EmbBits);
                var packed = new ulong[checked(rows * rowWords)];
                for (int r = 0; r < rows; r++)
                    TwosComplementPlanes.PackRow(codes.AsSpan(r * d, d), cfg.EmbBits, packed.AsSpan(r * rowWords, rowWords));
                produced[e.Name] = (packed, Describe(e.Name), fp32);
            }
            else if (e.Name == ModelLayout.TokenMap)
            {
                var t = Require(e.Name);
                CheckShape(t, e.Shape, src);
                var ids = t.ToInt64();
                var map = new int[ids.Length];
                for (int i = 0; i < ids.Length; i++)
                    map[i] = ids[i] >= 0 && ids[i] < tokenRows ? (int)ids[i]
                        : throw new ConversionException($"{src}: '{ModelLayout.TokenMap}'[{i}] = {ids[i]}; rows of '{ModelLayout.TokenEmbedding}' are 0..{tokenRows - 1}");
                produced[e.Name] = (map, Describe(e.Name), 0);
            }
            else if (e.ElementType is TensorElementType.I8 or TensorElementType.I32)
            {
                // integer tables of a mechanism (the lexical head's int8 codes and '##' bitmap), stored as they are
                var t = Require(e.Name);
                CheckShape(t, e.Shape, src);
                var values = t.ToInt64();
                bool bytes = e.ElementType == TensorElementType.I8;
                long min = bytes ? sbyte.MinValue : int.MinValue, max = bytes ? sbyte.MaxValue : int.MaxValue;
                for (int i = 0; i < values.Length; i++)
                    if (values[i] < min || values[i] > max)
                        throw new ConversionException($"{src}: tensor '{e.Name}' element {i} is {values[i]}; an {(bytes ? "int8" : "int32")} is required");
                Array data = bytes ? values.Select(v => (sbyte)v).ToArray() : values.Select(v => (int)v).ToArray();
                produced[e.Name] = (data, Describe(e.Name), ModelLayout.IsParameter(e.Name) ? values.Length * 4L : 0);
            }
            else if (binLinears.Contains(e.Name) && cfg.WeightBits == 1)
            {
                var values = Floats(e.Name, e.Shape);
                var (bits, alpha) = Quantizers.Binarize(values, e.Shape[0], e.Shape[1]);
                produced[e.Name] = (bits, Describe(e.Name), values.Length * 4L);
                produced[e.Name[..^".weight".Length] + ".alpha"] = (alpha, "derived: α = mean|W| per row", 0);
            }
            else
            {
                var values = Floats(e.Name, e.Shape);
                produced[e.Name] = (values, Describe(e.Name), values.Length * 4L);
            }
        }

        foreach (var ignored in tensors.Keys.Where(k => !used.Contains(k)))
            notes.Add($"ignored checkpoint tensor '{ignored}' ({Describe(ignored)}): not part of the docs/MODEL.md model");

        var writer = new TensorFileWriter();
        AddMetadata(writer, checkpoint, config, vocabulary, lowercase, name, produced.Values.Sum(p => p.Fp32Bytes));
        var rowsOut = new List<TensorSizeRow>();
        foreach (var e in expected)
        {
            var (data, source, fp32) = produced[e.Name];
            switch (data)
            {
                case float[] f: writer.AddF32(e.Name, e.Shape, f); break;
                case sbyte[] s: writer.AddI8(e.Name, e.Shape, s); break;
                case int[] i: writer.AddI32(e.Name, e.Shape, i); break;
                case ulong[] u: writer.AddBits(e.Name, e.Planes, e.Shape, u); break;
            }
            string storedAs = (e.ElementType == TensorElementType.Bits ? $"bits×{e.Planes}" : e.ElementType.ToString().ToLowerInvariant()) + $" [{string.Join(", ", e.Shape)}]";
            rowsOut.Add(new TensorSizeRow(e.Name, source, storedAs, fp32, TensorInfo.ComputeByteLength(e.ElementType, e.Planes, e.Shape)));
        }
        byte[] file = writer.ToArray();

        // The converter's output must pass the reader's full validation; a failure here is a converter bug.
        long dataOffset, dataLength;
        using (var check = ModelFile.Open(file))
        {
            dataOffset = check.Container.DataOffset;
            dataLength = check.Container.DataLength;
        }
        return (file, new ConversionReport("", rowsOut, file.Length, dataOffset, dataLength, notes));
    }

    private static void AddMetadata(TensorFileWriter w, Checkpoint checkpoint, SourceConfig config, IReadOnlyList<string> vocabulary, bool lowercase, string name, long fp32Bytes)
    {
        var c = config.Model;
        w.Add(ModelKeys.Architecture, MetadataValue.FromString(ModelFile.ArchitectureName));
        w.Add(ModelKeys.Name, MetadataValue.FromString(name));
        w.Add(ModelKeys.VocabSize, MetadataValue.FromInt64(c.VocabSize));
        w.Add(ModelKeys.MaxLen, MetadataValue.FromInt64(c.MaxLength));
        w.Add(ModelKeys.DModel, MetadataValue.FromInt64(c.Dim));
        w.Add(ModelKeys.NHeads, MetadataValue.FromInt64(c.Heads));
        w.Add(ModelKeys.NLayers, MetadataValue.FromInt64(c.Layers));
        w.Add(ModelKeys.DFf, MetadataValue.FromInt64(c.FfDim));
        w.Add(ModelKeys.NClasses, MetadataValue.FromInt64(c.Classes));
        w.Add(ModelKeys.WeightBits, MetadataValue.FromInt64(c.WeightBits));
        w.Add(ModelKeys.ActBits, MetadataValue.FromInt64(c.ActBits));
        w.Add(ModelKeys.EmbBits, MetadataValue.FromInt64(c.EmbBits));
        w.Add(ModelKeys.LnEps, MetadataValue.FromFloat64(c.LnEps));
        w.Add(ModelKeys.Labels, MetadataValue.FromStringArray(c.Labels));
        if (c.SlfnGateCenter)
            w.Add(ModelKeys.SlfnGateCenter, MetadataValue.FromBool(true));
        if (c.ExitTemperatures is not null)
            w.Add(ModelKeys.ExitTemperatures, MetadataValue.FromFloat64Array(c.ExitTemperatures));
        w.Add(ModelKeys.Policy, MetadataValue.FromString(c.Policy));
        foreach (var (policy, parameters) in c.Thresholds.OrderBy(p => p.Key, StringComparer.Ordinal))
            foreach (var (parameter, value) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
                w.Add($"{ModelKeys.ThresholdsPrefix}{policy}.{parameter}",
                    parameter == "t" ? MetadataValue.FromInt64((long)value) : MetadataValue.FromFloat64(value));
        foreach (var (mechanism, parameters) in c.Mechanisms.OrderBy(p => p.Key, StringComparer.Ordinal))
            foreach (var (parameter, value) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
                w.Add($"{ModelKeys.MechanismPrefix}{mechanism}.{parameter}", Mechanisms.IsInteger(mechanism, parameter)
                    ? MetadataValue.FromInt64((long)value) : MetadataValue.FromFloat64(value));
        foreach (var (policy, parameters) in c.Conformal.OrderBy(p => p.Key, StringComparer.Ordinal))
            foreach (var (parameter, value) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
                w.Add($"{ModelKeys.ConformalPrefix}{policy}.{parameter}", MetadataValue.FromFloat64(value));
        w.Add(ModelKeys.TokenizerModel, MetadataValue.FromString("wordpiece"));
        w.Add(ModelKeys.TokenizerVocab, MetadataValue.FromStringArray(vocabulary));
        w.Add(ModelKeys.TokenizerLowercase, MetadataValue.FromBool(lowercase));
        w.Add(ModelKeys.TokenizerUnkToken, MetadataValue.FromString(config.UnkToken));
        w.Add(ModelKeys.TokenizerClsToken, MetadataValue.FromString(config.ClsToken));
        w.Add(ModelKeys.TokenizerSepToken, MetadataValue.FromString(config.SepToken));
        w.Add(ModelKeys.TokenizerPadToken, MetadataValue.FromString(config.PadToken));
        w.Add(ModelKeys.SourceFile, MetadataValue.FromString(Path.GetFileName(checkpoint.Path)));
        w.Add(ModelKeys.SourceSha256, MetadataValue.FromString(checkpoint.Sha256));
        w.Add(ModelKeys.SourceFormat, MetadataValue.FromString(checkpoint.Format));
        w.Add(ModelKeys.ConfigJson, MetadataValue.FromString(config.Json));
        if (config.Task is not null)
            w.Add(ModelKeys.Task, MetadataValue.FromString(config.Task));
        if (config.TrainData is not null)
            w.Add(ModelKeys.TrainData, MetadataValue.FromString(config.TrainData));
        foreach (var (key, value) in config.Metrics)
            w.Add(ModelKeys.MetricsPrefix + key, value);
        w.Add(ModelKeys.Converter, MetadataValue.FromString(Identity));
        w.Add(ModelKeys.Fp32Bytes, MetadataValue.FromInt64(fp32Bytes));
    }

    private static void CheckShape(SourceTensor t, int[] expected, string src)
    {
        if (t.Shape.Length != expected.Length || !t.Shape.Zip(expected).All(p => p.First == p.Second))
            throw new ConversionException($"{src}: tensor '{t.Name}' has shape [{string.Join(", ", t.Shape)}]; the config requires [{string.Join(", ", expected)}]");
    }

    private static string ReadText(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConversionException($"cannot read {what} '{path}': {e.Message}", e);
        }
    }
}
