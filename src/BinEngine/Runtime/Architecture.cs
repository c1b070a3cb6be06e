using BinEngine.Format;

namespace BinEngine.Runtime;

/// <summary>
/// The hyper-parameters the forward pass needs (docs/MODEL.md, config.json keys in brackets).
/// Validated once here so the forward pass can trust every shape derived from it.
/// </summary>
public sealed record Architecture(
    int VocabSize,   // vocab_size V
    int MaxLength,   // max_len T, [CLS] and [SEP] included
    int Dim,         // d_model d
    int Heads,       // n_heads h
    int Layers,      // n_layers L
    int FfDim,       // d_ff f
    int Classes,     // n_classes C
    int WeightBits,  // 1 (binarized) or 32 (the FP32 twin)
    int ActBits,     // a ∈ {1, 2, 4, 8, 32}
    int EmbBits,     // e ∈ {1, 2, 4, 8, 32}
    float LnEps,     // ln_eps
    bool SlfnGateCenter = false) // slfn_gate_center: G2 quantizes σ(G1 h) − ½
{
    /// <summary>Width of one attention head, d / h.</summary>
    public int HeadDim => Dim / Heads;

    /// <summary>
    /// The one validator of the hyper-parameters, for the file reader (<see cref="ModelConfig.Validate"/>
    /// wraps it), the converter (which re-opens what it writes) and the runtime: throws
    /// <see cref="ArgumentException"/> naming the first value out of range by its config.json key.
    /// </summary>
    public void Validate()
    {
        static void Range(string key, int value, int min, int max)
        {
            if (value < min || value > max)
                throw new ArgumentException($"config '{key}' = {value}; expected {min}..{max}");
        }
        static void OneOf(string key, int value, params int[] allowed)
        {
            if (Array.IndexOf(allowed, value) < 0)
                throw new ArgumentException($"config '{key}' = {value}; expected one of {string.Join(", ", allowed)}");
        }
        Range("vocab_size", VocabSize, 1, ModelConfig.MaxVocabSize);
        Range("max_len", MaxLength, 2, ModelConfig.MaxSequenceLength); // [CLS] and [SEP] need two
        Range("d_model", Dim, 1, ModelConfig.MaxWidth);
        Range("n_heads", Heads, 1, Dim);
        Range("n_layers", Layers, 1, 1024);
        Range("d_ff", FfDim, 1, ModelConfig.MaxWidth);
        Range("n_classes", Classes, 2, ModelConfig.MaxDimension);
        if (Dim % Heads != 0)
            throw new ArgumentException($"config 'd_model' = {Dim} is not a multiple of 'n_heads' = {Heads}");
        OneOf("weight_bits", WeightBits, 1, 32);
        OneOf("act_bits", ActBits, 1, 2, 4, 8, 32);
        OneOf("emb_bits", EmbBits, 1, 2, 4, 8, 32);
        if (WeightBits == 32 && ActBits != 32)
            throw new ArgumentException($"config 'act_bits' = {ActBits}; the FP32 twin (weight_bits 32) takes float activations (32)");
        if (!(LnEps > 0 && float.IsFinite(LnEps)))
            throw new ArgumentException($"config 'ln_eps' = {LnEps.ToString(System.Globalization.CultureInfo.InvariantCulture)}; expected a positive finite number");
    }
}
