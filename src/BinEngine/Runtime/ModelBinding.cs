using BinEngine.Kernels;
using BinEngine.Format;

namespace BinEngine.Runtime;

/// <summary>
/// Points the forward pass at the tensors of an open, validated <see cref="Format.ModelFile"/>.
/// Float tensors (norms, biases, α, scales, exit heads, embeddings) are views into the file's memory,
/// not copies; each packed weight matrix is prepared once here for the kernels (<see cref="BinaryWeights"/>:
/// a row-major copy, the 16-row interleaved copy, row sums, at a = 1 the regrouped layout of the table-lookup XNOR
/// kernel that will run, and ±1 bytes for the int8 kernel) —
/// the one place the runtime derives anything from the file (docs/FORMAT.md, "Weight preparation").
/// The file has already checked every name, type and shape against its config (<see cref="ModelLayout"/>).
/// </summary>
internal static class ModelBinding
{
    /// <summary>
    /// A view of one embedding table of <paramref name="file"/> (f32 rows, int8 codes or two's-complement planes,
    /// with their row scales): the one reader of embedding rows, for the forward pass and for <see cref="Format.ModelFile.TokenEmbedding"/>.
    /// </summary>
    public static EmbeddingTable EmbeddingTableOf(Format.ModelFile file, string name, string scales, int rows)
    {
        TensorInfo info = file.GetTensor(name);
        int d = file.Config.Dim;
        TensorView<float> F32(string n) => TensorView<float>.OverFixedMemory(file.F32(n));
        return info.ElementType switch
        {
            TensorElementType.F32 => new EmbeddingTable { Rows = rows, Dim = d, Floats = F32(name) },
            TensorElementType.I8 => new EmbeddingTable
            {
                Rows = rows, Dim = d, Codes = TensorView<sbyte>.OverFixedMemory(file.I8(name)), Scales = F32(scales),
            },
            _ => new EmbeddingTable
            {
                Rows = rows, Dim = d, Planes = TensorView<ulong>.OverFixedMemory(file.Bits(name)), PlaneCount = info.Planes,
                Scales = F32(scales),
            },
        };
    }

    /// <param name="file">An open, validated model file.</param>
    /// <param name="xnorLayout">The regrouped layout the W1A1 kernel that will run reads (<see cref="XnorGemm.LookupLayout"/>), kept for a = 1 models only.</param>
    public static ModelWeights Bind(Format.ModelFile file, LookupLayouts xnorLayout)
    {
        ModelConfig c = file.Config;
        Architecture a = c.Architecture; // validated when the file was opened

        TensorView<float> F32(string name) => TensorView<float>.OverFixedMemory(file.F32(name));

        EmbeddingTable Table(string name, string scales, int rows) => EmbeddingTableOf(file, name, scales, rows);

        LinearWeights Linear(string name, int outputs, int inputs)
        {
            TensorView<float> bias = F32(name + ".bias");
            if (c.WeightBits == 32)
                return new LinearWeights { Out = outputs, In = inputs, Weights = F32(name + ".weight"), Bias = bias };
            return new LinearWeights
            {
                Out = outputs, In = inputs, Packed = new BinaryWeights(file.Bits(name + ".weight"), outputs, inputs, withBytes: ExecutionPlan.MayUseCodes(a), lookups: ExecutionPlan.UsesXnor(a) ? xnorLayout : LookupLayouts.None),
                Alpha = F32(name + ".alpha"), Bias = bias,
            };
        }

        LayerNormWeights Norm(string prefix) => new(F32(prefix + ".weight"), F32(prefix + ".bias"));

        var embedding = new EmbeddingWeights(
            Table(ModelLayout.TokenEmbedding, ModelLayout.TokenScale, file.TokenRows),
            Table(ModelLayout.PositionEmbedding, ModelLayout.PositionScale, a.MaxLength),
            file.HasTokenMap ? TensorView<int>.OverFixedMemory(file.I32(ModelLayout.TokenMap)) : default,
            Norm("embed.ln"));

        var blocks = new BlockWeights[a.Layers];
        var exits = new ExitHeadWeights[a.Layers];
        int d = a.Dim, f = a.FfDim;
        for (int i = 0; i < a.Layers; i++)
        {
            string p = $"blocks.{i}.";
            blocks[i] = new BlockWeights(
                Linear(p + "attn.q", d, d), Linear(p + "attn.k", d, d), Linear(p + "attn.v", d, d), Linear(p + "attn.o", d, d),
                Norm(p + "ln1"),
                Linear(p + "slfn.g1", f, d), Linear(p + "slfn.g2", d, f), Linear(p + "slfn.f1", f, d), Linear(p + "slfn.f2", d, f),
                Norm(p + "ln2"));
            exits[i] = new ExitHeadWeights(F32($"exits.{i}.weight"), F32($"exits.{i}.bias"),
                c.ExitTemperatures is null ? 1f : (float)c.ExitTemperatures[i]);
        }
        return new ModelWeights(a, embedding, blocks, exits, BindMechanisms(file, F32));
    }

    // The tensors of docs/MODEL.md's mechanisms; their names and shapes were checked with the rest (ModelLayout).
    private static MechanismWeights BindMechanisms(Format.ModelFile file, Func<string, TensorView<float>> f32)
    {
        ModelConfig c = file.Config;
        int d = c.Dim, layers = c.Layers;
        DenseLayer Dense(string prefix, int outputs, int inputs) => new(f32(prefix + ".weight"), f32(prefix + ".bias"), outputs, inputs);

        QExitWeights? qExit = null;
        if (c.Has(Mechanisms.QExit))
        {
            int h = c.MechanismInt(Mechanisms.QExit, "hidden");
            qExit = new QExitWeights
            {
                Positions = f32("q_exit.pos"), Hidden = h,
                Mlp = [Dense("q_exit.mlp.0", h, 2 * d), Dense("q_exit.mlp.1", h, h), Dense("q_exit.mlp.2", h, h), Dense("q_exit.mlp.3", 1, h)],
            };
        }
        LearnedGateWeights? gate = c.Has(Mechanisms.LearnedGate)
            ? new LearnedGateWeights
            {
                Weight = f32("learned_gate.weight"), Bias = f32("learned_gate.bias"),
                Power = (float)c.MechanismValue(Mechanisms.LearnedGate, "power"),
            }
            : null;
        SkipGateWeights? skip = null;
        if (c.Has(Mechanisms.SkipGates))
        {
            int h = c.MechanismInt(Mechanisms.SkipGates, "hidden");
            skip = new SkipGateWeights
            {
                Hidden = Enumerable.Range(0, layers - 1).Select(i => Dense($"skip.{i}.0", h, d)).ToArray(),
                Output = Enumerable.Range(0, layers - 1).Select(i => Dense($"skip.{i}.1", 1, h)).ToArray(),
                Rho = (float)c.MechanismValue(Mechanisms.SkipGates, "rho"),
            };
        }
        MambaHeadWeights[]? mamba = null;
        if (c.Has(Mechanisms.MambaExits))
        {
            int e = c.MechanismInt(Mechanisms.MambaExits, "d_inner"), n = c.MechanismInt(Mechanisms.MambaExits, "d_state");
            int k = c.MechanismInt(Mechanisms.MambaExits, "d_conv"), r = c.MechanismInt(Mechanisms.MambaExits, "dt_rank");
            mamba = Enumerable.Range(0, layers).Select(i =>
            {
                string p = $"exits.{i}.mamba.";
                return new MambaHeadWeights
                {
                    Dim = d, Inner = e, State = n, ConvWidth = k, DtRank = r,
                    InProj = f32(p + "in_proj.weight"), ConvWeight = f32(p + "conv.weight"), ConvBias = f32(p + "conv.bias"),
                    XProj = f32(p + "x_proj.weight"), DtProjWeight = f32(p + "dt_proj.weight"), DtProjBias = f32(p + "dt_proj.bias"),
                    ALog = f32(p + "A_log"), D = f32(p + "D"), OutProj = f32(p + "out_proj.weight"),
                }.Prepare(); // A = −exp(A_log) and the conv taps, transposed for the scan: once, at load
            }).ToArray();
        }
        LexicalWeights? lexical = c.Has(Mechanisms.Lexical)
            ? new LexicalWeights
            {
                Table = TensorView<sbyte>.OverFixedMemory(file.I8("lexical.weight")), Scale = file.F32("lexical.scale")[0],
                Bias = f32("lexical.bias"), Continues = TensorView<int>.OverFixedMemory(file.I32(Mechanisms.LexicalContinues)),
                Bits = c.MechanismInt(Mechanisms.Lexical, "bits"), Classes = c.Classes,
            }
            : null;
        return new MechanismWeights(qExit, gate, skip, mamba, lexical);
    }

    /// <summary>The exit policy <paramref name="name"/> with the thresholds the model file stores for it.</summary>
    /// <exception cref="ArgumentException">Unknown name, or the file stores no thresholds for that policy.</exception>
    public static ExitPolicy PolicyFromConfig(ModelConfig c, string name)
    {
        ExitPolicyKind kind = ExitPolicy.ParseKind(name);
        string policy = ExitPolicy.NameOf(kind);
        c.Thresholds.TryGetValue(policy, out IReadOnlyDictionary<string, double>? stored);
        return ExitPolicy.Create(kind, key => stored is not null && stored.TryGetValue(key, out double v)
            ? v
            : throw new ArgumentException($"the model file stores no threshold '{key}' for exit policy '{policy}'; pass it explicitly"));
    }

    /// <summary>The conformal q̂ of each calibrated policy, keyed by the policy with its stored thresholds (the ones it was calibrated for).</summary>
    public static IReadOnlyDictionary<ExitPolicy, float> ConformalFromConfig(ModelConfig c) =>
        c.Conformal.ToDictionary(kv => PolicyFromConfig(c, kv.Key), kv => (float)kv.Value["qhat"]);
}
