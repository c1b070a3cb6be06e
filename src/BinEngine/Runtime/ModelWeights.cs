using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// One linear layer as deployed: either binarized (sign bits, one α per output row) or, in the FP32
/// twin, plain float weights. Rows are outputs (like nn.Linear): W is [Out, In].
/// </summary>
internal sealed class LinearWeights
{
    public required int Out { get; init; }
    public required int In { get; init; }
    /// <summary>
    /// The packed signs prepared for the kernels at load (binarized layers only): the row-major rows of
    /// docs/MODEL.md, an interleaved copy whose 8-row blocks put each row's count in its own vector lane,
    /// and rowsum(B)_o = Σ_i B_oi = 2·popcount(b_o) − In, which the bit-plane identity subtracts.
    /// </summary>
    public BinaryWeights? Packed { get; init; }
    /// <summary>α per output row (binarized layers only).</summary>
    public TensorView<float> Alpha { get; init; }
    /// <summary>Float weights [Out, In] (FP32 twin only).</summary>
    public TensorView<float> Weights { get; init; }
    /// <summary>Bias [Out].</summary>
    public required TensorView<float> Bias { get; init; }

    public bool IsBinary => Packed is not null;
}

/// <summary>LayerNorm's γ and β, each [d].</summary>
internal sealed record LayerNormWeights(TensorView<float> Gamma, TensorView<float> Beta);

/// <summary>One post-norm block: attention (Q, K, V, O), LN1, SLFN (G1, G2, F1, F2), LN2.</summary>
internal sealed record BlockWeights(
    LinearWeights Q, LinearWeights K, LinearWeights V, LinearWeights O, LayerNormWeights Ln1,
    LinearWeights G1, LinearWeights G2, LinearWeights F1, LinearWeights F2, LayerNormWeights Ln2);

/// <summary>An exit head: E [C, d] and c [C], float.</summary>
internal sealed record ExitHeadWeights(TensorView<float> Weight, TensorView<float> Bias, float Temperature = 1f);

/// <summary>
/// Embedding rows stored with e bits, as the model file holds them: row r's value is code · Scales[r]
/// with the codes as int8 (<see cref="Codes"/>) or as e two's-complement bit planes
/// (<see cref="Planes"/>, docs/FORMAT.md), or plain floats (e = 32). Dequantizing costs d
/// multiplies per token, nothing next to one block.
/// </summary>
internal sealed class EmbeddingTable
{
    public required int Rows { get; init; }
    public required int Dim { get; init; }
    public TensorView<sbyte> Codes { get; init; }
    public TensorView<ulong> Planes { get; init; }
    public int PlaneCount { get; init; }
    public TensorView<float> Scales { get; init; }
    public TensorView<float> Floats { get; init; }

    /// <summary>
    /// Asks the cache for row <paramref name="row"/>'s stored bytes and scale (already range-checked by the caller) without
    /// waiting for them; a no-op where the CPU has no prefetch instruction .NET exposes (x86 SSE only).
    /// </summary>
    /// <remarks>
    /// Why: a sentence's token rows are scattered over the table (1.5 MB at 11,574 rows × 256 × 2 bits), and a forward
    /// pass evicts them between sentences, so dequantizing row after row waited for each row's lines in turn.
    /// Prefetching every row of a sample first lets those misses overlap (bench/README.md, "Levers").
    /// </remarks>
    public unsafe void Prefetch(int row)
    {
        if (!Sse.IsSupported)
            return;
        ReadOnlySpan<byte> bytes;
        if (!Floats.IsEmpty)
            bytes = MemoryMarshal.AsBytes(Floats.Span.Slice(row * Dim, Dim));
        else
        {
            fixed (float* scale = &Scales.Span[row])
                Sse.Prefetch0(scale);
            int words = Kernels.TwosComplementPlanes.RowWords(Dim, PlaneCount);
            bytes = !Planes.IsEmpty
                ? MemoryMarshal.AsBytes(Planes.Span.Slice(row * words, words))
                : MemoryMarshal.AsBytes(Codes.Span.Slice(row * Dim, Dim));
        }
        fixed (byte* start = bytes)
            for (int at = 0; at < bytes.Length; at += 64)
                Sse.Prefetch0(start + at);
    }

    /// <summary>
    /// Writes row <paramref name="row"/> (already range-checked by the caller) into <paramref name="destination"/>;
    /// <paramref name="isa"/> caps the planes' vector width (the same bits at every width).
    /// </summary>
    public void Dequantize(int row, Span<float> destination, Kernels.KernelIsa isa = Kernels.KernelIsa.Avx512)
    {
        if (!Floats.IsEmpty)
        {
            Floats.Span.Slice(row * Dim, Dim).CopyTo(destination);
            return;
        }
        float scale = Scales.Span[row];
        if (!Planes.IsEmpty)
        {
            int words = Kernels.TwosComplementPlanes.RowWords(Dim, PlaneCount);
            Kernels.TwosComplementPlanes.DequantizeRow(Planes.Span.Slice(row * words, words), PlaneCount, scale, destination[..Dim], isa);
            return;
        }
        ReadOnlySpan<sbyte> codes = Codes.Span.Slice(row * Dim, Dim);
        for (int i = 0; i < codes.Length; i++)
            destination[i] = codes[i] * scale;
    }
}

/// <summary>Token and position embeddings, the optional id → row map of a pruned vocabulary, and LN_emb.</summary>
internal sealed record EmbeddingWeights(EmbeddingTable Tokens, EmbeddingTable Positions, TensorView<int> TokenMap, LayerNormWeights Norm)
{
    /// <summary>The row of the token table for vocabulary id <paramref name="id"/> (identity when not pruned).</summary>
    public int RowOf(int id) => TokenMap.IsEmpty ? id : TokenMap.Span[id];
}

/// <summary>
/// Everything the forward pass reads, as views into the model file (or pinned arrays in tests): the
/// BEExformer and the optional mechanisms of docs/MODEL.md ("Mechanisms from the seeds").
/// </summary>
internal sealed record ModelWeights(Architecture Architecture, EmbeddingWeights Embedding, BlockWeights[] Blocks, ExitHeadWeights[] Exits,
    MechanismWeights? Mechanisms = null)
{
    /// <summary>The optional mechanisms (none when not given).</summary>
    public MechanismWeights Mechanisms { get; init; } = Mechanisms ?? MechanismWeights.None;
}
