namespace BinEngine.Format;

/// <summary>One tensor a model file of a given config must hold.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="ElementType">Its storage type.</param>
/// <param name="Planes">Bit planes for <see cref="TensorElementType.Bits"/>, else 0.</param>
/// <param name="Shape">Its logical shape.</param>
internal sealed record ExpectedTensor(string Name, TensorElementType ElementType, int Planes, int[] Shape);

/// <summary>
/// The tensors of a BEExformer model file, derived from its config: the single list the
/// converter writes and the reader checks (docs/FORMAT.md, "Tensors of a BEExformer file").
/// Names are docs/MODEL.md's; the converter adds <c>{linear}.alpha</c> (α per output row) for
/// binarized weights and <c>embed.{tok,pos}.scale</c> (per-row scale) for quantized embeddings.
/// </summary>
internal static class ModelLayout
{
    public const string TokenEmbedding = "embed.tok.weight";
    public const string TokenScale = "embed.tok.scale";
    public const string TokenMap = "embed.tok_map";
    public const string PositionEmbedding = "embed.pos.weight";
    public const string PositionScale = "embed.pos.scale";
    public const string EmbeddingNormWeight = "embed.ln.weight";
    public const string EmbeddingNormBias = "embed.ln.bias";

    /// <summary>The BinLinear layers of one block: (name without ".weight", outputs, inputs).</summary>
    public static IEnumerable<(string Name, int Out, int In)> BinLinears(ModelConfig config, int block)
    {
        int d = config.Dim, f = config.FfDim;
        string p = $"blocks.{block}.";
        foreach (string x in new[] { "q", "k", "v", "o" })
            yield return (p + "attn." + x, d, d);
        yield return (p + "slfn.g1", f, d);
        yield return (p + "slfn.f1", f, d);
        yield return (p + "slfn.g2", d, f);
        yield return (p + "slfn.f2", d, f);
    }

    /// <summary>How embedding rows of <paramref name="embBits"/> bits are stored: f32 (32), int8 codes (8), bit planes (1, 2, 4).</summary>
    public static (TensorElementType Type, int Planes) EmbeddingStorage(int embBits) => embBits switch
    {
        32 => (TensorElementType.F32, 0),
        8 => (TensorElementType.I8, 0),
        1 or 2 or 4 => (TensorElementType.Bits, embBits),
        _ => throw new ModelFormatException($"emb_bits = {embBits}; expected 1, 2, 4, 8 or 32"),
    };

    /// <summary>True for tensors that are parameters of the trained model (counted in its FP32 size), false for derived ones (α, scales, the token map).</summary>
    public static bool IsParameter(string name) =>
        !name.EndsWith(".alpha", StringComparison.Ordinal) && !name.EndsWith(".scale", StringComparison.Ordinal) && name != TokenMap
        && name != Mechanisms.LexicalContinues;

    /// <summary>
    /// Every tensor of a model with this config, in file order. <paramref name="tokenRows"/> is V',
    /// the rows of the token table (V unless pruned, which needs the token map).
    /// </summary>
    public static IReadOnlyList<ExpectedTensor> Expected(ModelConfig config, int tokenRows, bool hasTokenMap)
    {
        int d = config.Dim, c = config.Classes;
        var list = new List<ExpectedTensor>();
        var (embType, embPlanes) = EmbeddingStorage(config.EmbBits);
        list.Add(new(TokenEmbedding, embType, embPlanes, [tokenRows, d]));
        if (config.EmbBits != 32)
            list.Add(new(TokenScale, TensorElementType.F32, 0, [tokenRows]));
        if (hasTokenMap)
            list.Add(new(TokenMap, TensorElementType.I32, 0, [config.VocabSize]));
        list.Add(new(PositionEmbedding, embType, embPlanes, [config.MaxLength, d]));
        if (config.EmbBits != 32)
            list.Add(new(PositionScale, TensorElementType.F32, 0, [config.MaxLength]));
        list.Add(new(EmbeddingNormWeight, TensorElementType.F32, 0, [d]));
        list.Add(new(EmbeddingNormBias, TensorElementType.F32, 0, [d]));
        for (int i = 0; i < config.Layers; i++)
        {
            foreach (var (name, o, n) in BinLinears(config, i))
            {
                if (config.WeightBits == 1)
                {
                    list.Add(new(name + ".weight", TensorElementType.Bits, 1, [o, n]));
                    list.Add(new(name + ".alpha", TensorElementType.F32, 0, [o]));
                }
                else
                {
                    list.Add(new(name + ".weight", TensorElementType.F32, 0, [o, n]));
                }
                list.Add(new(name + ".bias", TensorElementType.F32, 0, [o]));
                if (name.EndsWith(".attn.o", StringComparison.Ordinal))
                {
                    list.Add(new($"blocks.{i}.ln1.weight", TensorElementType.F32, 0, [d]));
                    list.Add(new($"blocks.{i}.ln1.bias", TensorElementType.F32, 0, [d]));
                }
            }
            list.Add(new($"blocks.{i}.ln2.weight", TensorElementType.F32, 0, [d]));
            list.Add(new($"blocks.{i}.ln2.bias", TensorElementType.F32, 0, [d]));
        }
        for (int i = 0; i < config.Layers; i++)
        {
            list.Add(new($"exits.{i}.weight", TensorElementType.F32, 0, [c, d]));
            list.Add(new($"exits.{i}.bias", TensorElementType.F32, 0, [c]));
        }
        list.AddRange(Mechanisms.Tensors(config));
        return list;
    }
}
