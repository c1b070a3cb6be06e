namespace BinEngine.Format;

/// <summary>
/// The metadata keys of a BEExformer model file, namespaced like GGUF's (docs/FORMAT.md lists
/// them with their types). Hyper-parameter keys are the config.json keys of docs/MODEL.md under
/// <c>beexformer.</c>.
/// </summary>
internal static class ModelKeys
{
    /// <summary>String: the architecture, "beexformer".</summary>
    public const string Architecture = "general.architecture";
    /// <summary>String: a display name for the model.</summary>
    public const string Name = "general.name";

    /// <summary>Prefix of the hyper-parameters (Int64 unless stated).</summary>
    public const string HyperPrefix = "beexformer.";
    public const string VocabSize = HyperPrefix + "vocab_size";
    public const string MaxLen = HyperPrefix + "max_len";
    public const string DModel = HyperPrefix + "d_model";
    public const string NHeads = HyperPrefix + "n_heads";
    public const string NLayers = HyperPrefix + "n_layers";
    public const string DFf = HyperPrefix + "d_ff";
    public const string NClasses = HyperPrefix + "n_classes";
    public const string WeightBits = HyperPrefix + "weight_bits";
    public const string ActBits = HyperPrefix + "act_bits";
    public const string EmbBits = HyperPrefix + "emb_bits";
    /// <summary>Float64.</summary>
    public const string LnEps = HyperPrefix + "ln_eps";
    /// <summary>StringArray: class names, index = class id.</summary>
    public const string Labels = HyperPrefix + "labels";
    /// <summary>Bool, optional (absent = false): G2 quantizes σ(G1 h) − ½ instead of σ(G1 h) (docs/MODEL.md, SLFN).</summary>
    public const string SlfnGateCenter = HyperPrefix + "slfn_gate_center";

    /// <summary>String: the default exit policy.</summary>
    public const string Policy = "exit.policy";
    /// <summary>Float64Array, optional (absent = all 1): one temperature T_i per exit, z_i = (E_i·pooled + c_i) / T_i (docs/MODEL.md, Exits).</summary>
    public const string ExitTemperatures = "exit.temperatures";
    /// <summary>Prefix of the thresholds: <c>exit.thresholds.{policy}.{parameter}</c>, Float64 or Int64.</summary>
    public const string ThresholdsPrefix = "exit.thresholds.";

    /// <summary>Prefix of the conformal calibrations: <c>exit.conformal.{policy}.{alpha|qhat}</c>, Float64 (docs/MODEL.md, learned_gate).</summary>
    public const string ConformalPrefix = "exit.conformal.";
    /// <summary>Prefix of the mechanisms' parameters: <c>mechanism.{name}.{parameter}</c> (<see cref="Mechanisms"/>).</summary>
    public const string MechanismPrefix = Mechanisms.MetadataPrefix;

    /// <summary>
    /// Prefix of the guarantee `binengine calibrate` certified for the default policy's thresholds
    /// (Learn then Test; docs/FORMAT.md). Absent in files it did not write.
    /// </summary>
    public const string GuaranteePrefix = "exit.guarantee.";
    /// <summary>String: the calibrated policy with its thresholds, e.g. "entropy_reduction(tau=0.5, kappa=0.62)".</summary>
    public const string GuaranteePolicy = GuaranteePrefix + "policy";
    /// <summary>String: how it was certified, "learn_then_test/fixed_sequence/binomial".</summary>
    public const string GuaranteeMethod = GuaranteePrefix + "method";
    /// <summary>Float64: ε, the accuracy drop against full depth bounded (a fraction: 0.005 = half a point).</summary>
    public const string GuaranteeMaxDrop = GuaranteePrefix + "max_drop";
    /// <summary>Float64: δ; the bound holds with probability at least 1 − δ.</summary>
    public const string GuaranteeDelta = GuaranteePrefix + "delta";
    /// <summary>Int64: calibration samples, n.</summary>
    public const string GuaranteeSamples = GuaranteePrefix + "n";
    /// <summary>Int64: calibration samples the exit got wrong where full depth was right, k.</summary>
    public const string GuaranteeLosses = GuaranteePrefix + "losses";
    /// <summary>Float64: the p-value P(Bin(n, ε) ≤ k) of the chosen thresholds.</summary>
    public const string GuaranteePValue = GuaranteePrefix + "p_value";
    /// <summary>String: the calibration data's file name.</summary>
    public const string GuaranteeData = GuaranteePrefix + "data";
    /// <summary>String: lower-case hex SHA-256 of the calibration data file.</summary>
    public const string GuaranteeDataSha256 = GuaranteePrefix + "data_sha256";

    /// <summary>String: the tokenizer model, "wordpiece".</summary>
    public const string TokenizerModel = "tokenizer.model";
    /// <summary>StringArray: the vocabulary, index = token id.</summary>
    public const string TokenizerVocab = "tokenizer.vocab";
    /// <summary>Bool: lower-case and strip accents (bert-base-uncased).</summary>
    public const string TokenizerLowercase = "tokenizer.lowercase";
    /// <summary>String: the unknown-word token (default "[UNK]").</summary>
    public const string TokenizerUnkToken = "tokenizer.unk_token";
    /// <summary>String: the token that opens every sequence (default "[CLS]").</summary>
    public const string TokenizerClsToken = "tokenizer.cls_token";
    /// <summary>String: the token that closes every sequence (default "[SEP]").</summary>
    public const string TokenizerSepToken = "tokenizer.sep_token";
    /// <summary>String: the padding token (default "[PAD]").</summary>
    public const string TokenizerPadToken = "tokenizer.pad_token";

    /// <summary>Prefix of the provenance entries.</summary>
    public const string ProvenancePrefix = "provenance.";
    /// <summary>String: file name of the source checkpoint.</summary>
    public const string SourceFile = ProvenancePrefix + "source_file";
    /// <summary>String: lower-case hex SHA-256 of the source checkpoint.</summary>
    public const string SourceSha256 = ProvenancePrefix + "source_sha256";
    /// <summary>String: "safetensors" or "torch" (torch.save zip).</summary>
    public const string SourceFormat = ProvenancePrefix + "source_format";
    /// <summary>String: the config.json the converter read, verbatim.</summary>
    public const string ConfigJson = ProvenancePrefix + "config_json";
    /// <summary>String: the task (config "task").</summary>
    public const string Task = ProvenancePrefix + "task";
    /// <summary>String: the training data (config "train_data").</summary>
    public const string TrainData = ProvenancePrefix + "train_data";
    /// <summary>Prefix of the reported metrics (config "metrics", flattened with '.').</summary>
    public const string MetricsPrefix = ProvenancePrefix + "metrics.";
    /// <summary>String: converter name and version.</summary>
    public const string Converter = ProvenancePrefix + "converter";
    /// <summary>Int64: the parameters of the source checkpoint counted at 32 bits each, in bytes.</summary>
    public const string Fp32Bytes = ProvenancePrefix + "fp32_bytes";
}
