using BinEngine.ModelFile;

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

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent hyper-parameter.</summary>
    public void Validate()
    {
        static void Require(bool ok, string what)
        {
            if (!ok) throw new ArgumentException($"invalid model architecture: {what}");
        }
        // The bounds are ModelConfig's, so a file that opens is a model that runs.
        Require(VocabSize is > 0 and <= ModelConfig.MaxVocabSize, $"vocab_size {VocabSize} must be in 1..{ModelConfig.MaxVocabSize}");
        Require(MaxLength is >= 2 and <= ModelConfig.MaxSequenceLength, $"max_len {MaxLength} must be in 2..{ModelConfig.MaxSequenceLength} ([CLS] and [SEP] need two)");
        Require(Dim is > 0 and <= ModelConfig.MaxWidth, $"d_model {Dim} must be in 1..{ModelConfig.MaxWidth}");
        Require(Heads > 0 && Dim % Heads == 0, $"n_heads {Heads} must divide d_model {Dim}");
        Require(Layers is > 0 and <= 1024, $"n_layers {Layers} must be in 1..1024");
        Require(FfDim is > 0 and <= ModelConfig.MaxWidth, $"d_ff {FfDim} must be in 1..{ModelConfig.MaxWidth}");
        Require(Classes is >= 2 and <= ModelConfig.MaxDimension, $"n_classes {Classes} must be in 2..{ModelConfig.MaxDimension}");
        Require(WeightBits is 1 or 32, $"weight_bits {WeightBits} must be 1 or 32");
        Require(ActBits is 32 or (>= 1 and <= 8), $"act_bits {ActBits} must be 1..8 or 32");
        Require(EmbBits is 32 or (>= 1 and <= 8), $"emb_bits {EmbBits} must be 1..8 or 32");
        Require(WeightBits == 1 || ActBits == 32, $"the FP32 twin (weight_bits 32) takes float activations, not act_bits {ActBits}");
        Require(float.IsFinite(LnEps) && LnEps > 0, $"ln_eps {LnEps} must be a positive number");
    }
}
