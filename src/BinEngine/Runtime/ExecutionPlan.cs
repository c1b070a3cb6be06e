using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>How the input of a linear layer is encoded for its product (one choice per model).</summary>
internal enum ActivationEncoding
{
    /// <summary>Float activations: the FP32 twin's SGEMM, or the sign GEMM of a = 32 against ±1 weights.</summary>
    Float,
    /// <summary>Bit planes: a = 1, the single sign plane of the XNOR kernel; a = 2 or 4 behind a scalar int8 kernel.</summary>
    Planes,
    /// <summary>int8 codes (a = 8; a = 2 or 4 when the int8 kernel is vectorised) against ±1 bytes, on the byte multiply-add kernel.</summary>
    Codes,
}

/// <summary>One linear layer's product as the plan runs it.</summary>
/// <param name="Name">The tensor prefix (<c>blocks.0.attn.q</c>).</param>
/// <param name="Outputs">N.</param>
/// <param name="Inputs">K.</param>
internal sealed record PlannedProduct(string Name, int Outputs, int Inputs);

/// <summary>
/// Every decision the forward pass needs, made once when a model is loaded (ORT's session graph,
/// LCE's Prepare): how activations are encoded, which kernel serves each product, whether the
/// element-wise helpers run vectorised, the workspace a token and a sample cost, and the exit heads.
/// The forward pass executes the plan and decides nothing per call; <c>binengine inspect --plan</c>
/// prints it.
/// </summary>
internal sealed class ExecutionPlan
{
    private ExecutionPlan(Architecture a, KernelSet kernels, MechanismWeights mechanisms, int? tileRows)
    {
        Architecture = a;
        Kernels = kernels;
        Mechanisms = mechanisms;
        Activations = EncodingFor(a, kernels.Code.Isa);
        Kernel = a.WeightBits == 32 ? kernels.Sgemm
            : Activations switch
            {
                ActivationEncoding.Float => kernels.Sign,
                ActivationEncoding.Codes => kernels.Code,
                _ => a.ActBits == 1 ? kernels.Xnor : kernels.Plane,
            };
        // The quantize-and-pack helpers follow the kernels' ISA, so a forced scalar or Vector128 set
        // (BINENGINE_ISA, BINENGINE_KERNELS, BeexModelOptions.Kernels) runs no Vector256 code either.
        HelperIsa = kernels.Xnor.Isa;
        VectorisedHelpers = Vector256.IsHardwareAccelerated && HelperIsa is KernelIsa.Avx2 or KernelIsa.Avx512;
        int d = a.Dim, f = a.FfDim;
        var layers = new PlannedProduct[a.Layers][];
        for (int i = 0; i < a.Layers; i++)
        {
            string p = $"blocks.{i}.";
            layers[i] =
            [
                new(p + "attn.q", d, d), new(p + "attn.k", d, d), new(p + "attn.v", d, d), new(p + "attn.o", d, d),
                new(p + "slfn.g1", f, d), new(p + "slfn.f1", f, d), new(p + "slfn.g2", d, f), new(p + "slfn.f2", d, f),
            ];
        }
        Layers = layers;
        TileRows = tileRows is > 0 ? tileRows.Value : (int)Math.Clamp(TileBytes / WorkspaceBytesPerToken, 16, 4096);
    }

    /// <summary>
    /// The working set a block tile aims at: half of the 2 MB per-core L2 of the Xeon we measured on, so the
    /// weights and the products keep room. Measured there (`profile --tile-rows`): 32 and 67 rows equal, 128 and
    /// 256 rows already slower at batch 64; a CPU with a 1 MB L2 (Zen 4) may want half, not measured.
    /// </summary>
    private const long TileBytes = 1L << 20;

    /// <summary>Makes the plan of a model with these hyper-parameters and mechanisms on these kernels.</summary>
    /// <param name="architecture">The hyper-parameters.</param>
    /// <param name="kernels">The kernel set the products run on.</param>
    /// <param name="mechanisms">The model's optional mechanisms (none if null).</param>
    /// <param name="tileRows">Rows per block tile in place of the L2-sized choice (tests measure others).</param>
    public static ExecutionPlan Create(Architecture architecture, KernelSet kernels, MechanismWeights? mechanisms = null, int? tileRows = null) =>
        new(architecture, kernels, mechanisms ?? MechanismWeights.None, tileRows);

    /// <summary>The optional mechanisms of docs/MODEL.md the forward pass runs (skip gates before blocks, Mamba heads and controllers at exits).</summary>
    public MechanismWeights Mechanisms { get; }

    /// <summary>
    /// The one definition of how activations are encoded, given the ISA of the int8 kernel the set selected.
    /// 1-bit activations go to the XNOR kernel (one plane). 2-, 4- and 8-bit ones go to the int8 kernel (byte multiply-adds
    /// against 0/1 weight bytes), whose cost does not depend on the width, whenever that kernel is vectorised; the
    /// bit-plane kernel, whose cost grows with the plane count, serves 2 and 4 bits only where the int8 kernel is the
    /// scalar one (Vector128-only and ARM machines, forced scalar sets). Measured on the engine's shapes (bench/README.md,
    /// "Levers"): at 16 rows code-avx512-maddubs runs 4 bits 2.6–3.8× faster than plane-avx512-harleyseal, and a whole
    /// 3-block W1A2 pass took 1.80 ms on planes against 1.13 ms for W1A8 on the int8 kernel. Both compute the same exact
    /// integers, so the choice changes no bit of a result.
    /// </summary>
    public static ActivationEncoding EncodingFor(Architecture a, KernelIsa codeIsa) =>
        a.WeightBits == 32 || a.ActBits == 32 ? ActivationEncoding.Float
        : !MayUseCodes(a) ? ActivationEncoding.Planes   // a = 1: the XNOR kernel's sign plane
        : a.ActBits > 4 || codeIsa >= KernelIsa.Avx2 ? ActivationEncoding.Codes
        : ActivationEncoding.Planes;

    /// <summary>
    /// True when some kernel set can put this architecture on the int8 kernel (binary weights, 2-, 4- or 8-bit activations), so
    /// loading keeps the weights' bytes (<see cref="BinaryWeights.GroupedBytes"/>) before the kernels are chosen; a
    /// 2- or 4-bit model planned on bit planes then carries them unused (8× its packed weights).
    /// </summary>
    public static bool MayUseCodes(Architecture a) => a.WeightBits != 32 && a.ActBits is >= 2 and <= 8;

    /// <summary>
    /// True when the products run on the XNOR kernel (binary weights, 1-bit activations), so loading keeps the weights
    /// regrouped for a table-lookup implementation (<see cref="BinaryWeights.LookupGroupBlocks"/>: 1.34× the packed bits
    /// in six-bit groups, 2× in nibbles).
    /// </summary>
    public static bool UsesXnor(Architecture a) => a.WeightBits != 32 && a.ActBits == 1;

    /// <summary>The hyper-parameters.</summary>
    public Architecture Architecture { get; }

    /// <summary>The kernel set the plan draws from.</summary>
    public KernelSet Kernels { get; }

    /// <summary>How every product's input is encoded.</summary>
    public ActivationEncoding Activations { get; }

    /// <summary>The kernel that serves every product of this model (all layers share one activation width).</summary>
    public GemmKernel Kernel { get; }

    /// <summary>The widest ISA the element-wise helpers may use: the kernels' (a forced ISA or kernel set reaches them too).</summary>
    public KernelIsa HelperIsa { get; }

    /// <summary>Whether quantize-and-pack runs its Vector256 path (follows the kernels' ISA).</summary>
    public bool VectorisedHelpers { get; }

    /// <summary>The products of each block, in the order the block runs them.</summary>
    public IReadOnlyList<IReadOnlyList<PlannedProduct>> Layers { get; }

    /// <summary>
    /// Most token rows one pass over a block processes at a time (whole samples; a longer sample alone): the rows
    /// whose block buffers (<see cref="WorkspaceBytesPerToken"/> each) fit in about 1 MB. A chunk of 32 sentences
    /// in one go (≈ 800 rows, ≈ 12 MB) ran its element-wise passes from L3 at 3× their batch-1 cost
    /// (bench/README.md, "Levers"); the products' per-row cost does not depend on the row count above a few rows,
    /// and binary weights are small enough (W1A1: 96 KB a block) to be re-read per tile from cache.
    /// </summary>
    public int TileRows { get; }

    /// <summary>Activation planes per input row (a for plane kernels, 0 otherwise).</summary>
    public int PlaneCount => Activations == ActivationEncoding.Planes ? Architecture.ActBits : 0;

    /// <summary>Workspace bytes that grow with each token row of a batch (residual stream, block buffers, quantized inputs).</summary>
    public long WorkspaceBytesPerToken
    {
        get
        {
            int d = Architecture.Dim, f = Architecture.FfDim, wide = Math.Max(d, f);
            long floats = 9L * d + 2L * f + 1; // X Q K V Attended Projected H GateOut ForgetOut; Gate Forget; Scales
            long bytes = 4 * floats + 4L * wide + 4; // + Products, TokenIds
            if (Activations == ActivationEncoding.Codes) bytes += wide;
            bytes += 8L * PlaneCount * BitPacking.RowWords(wide);
            return bytes;
        }
    }

    /// <summary>Attention scratch for one sample of <paramref name="tokens"/> tokens: T² scores (or the direct path's Kᵀ and padded score rows, if larger) and four T × d_h head buffers.</summary>
    public long AttentionBytes(int tokens) => 4L * Attention.ScoresScratch(tokens, Architecture.HeadDim) + 16L * tokens * Architecture.HeadDim;

    /// <summary>A readable description, one line per decision (what <c>inspect --plan</c> prints).</summary>
    public override string ToString()
    {
        Architecture a = Architecture;
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        string encoding = Activations switch
        {
            ActivationEncoding.Float => a.WeightBits == 32 ? "float32 (FP32 weights)" : "float32 against ±1 weights",
            ActivationEncoding.Codes => $"int8 codes of {a.ActBits}-bit activations, one scale per row",
            _ => a.ActBits == 1 ? "1 sign plane per row (XNOR-popcount)" : $"{a.ActBits} bit planes per row, one scale per row",
        };
        sb.AppendLine(c, $"activations  {encoding}");
        sb.AppendLine(c, $"products     {Kernel.Name} ({Kernel.Isa.ToName()}) for all {a.Layers * 8} linear layers; weights prepared at load ({WeightPreparation})");
        string packing = a.ActBits == 1 ? $"sign packing {HelperIsa.ToName()}" : $"quantize+pack {(VectorisedHelpers ? "Vector256" : "scalar")}";
        sb.AppendLine(c, $"helpers      {packing}; attention direct ({HelperIsa.ToName()}) up to {Attention.DirectMaxTokens} tokens, per-head copies + {Kernels.Sgemm.Name} above");
        sb.AppendLine(c, $"tiles        a block runs on at most {TileRows} token rows at a time (whole samples), ≈ {TileRows * WorkspaceBytesPerToken / 1024:N0} KB of buffers");
        sb.AppendLine(c, $"workspace    {WorkspaceBytesPerToken:N0} bytes per token row; attention {AttentionBytes(a.MaxLength):N0} bytes at max_len {a.MaxLength} (grows with the longest text seen)");
        MechanismWeights m = Mechanisms;
        if (m.Names.Count > 0)
            sb.AppendLine(c, $"mechanisms   {string.Join(", ", m.Names)}");
        string head = m.MambaExits is { Length: > 0 } mamba
            ? $"Mamba head (E {mamba[0].Inner}, N {mamba[0].State}, conv {mamba[0].ConvWidth}, Δ rank {mamba[0].DtRank}; SGEMMs on {Kernels.Sgemm.Name}, scan {HelperIsa.ToName()}) then linear {a.Classes}×{a.Dim} on pool(x + Mamba(x))"
            : $"linear head {a.Classes}×{a.Dim} on the mean-pooled state";
        if (m.Lexical is { } lexical)
            head += $", plus the lexical n-gram head's logits (2^{lexical.Bits} int8 buckets × {a.Classes})";
        string controllers = string.Concat(
            m.QExit is { } q ? $"; q_exit λ-MLP 2·{a.Dim}→{q.Hidden}→{q.Hidden}→{q.Hidden}→1" : "",
            m.LearnedGate is not null ? "; learned_gate on 4 features of p" : "");
        for (int i = 0; i < a.Layers; i++)
        {
            if (m.SkipGates is { } gates && i < a.Layers - 1)
                sb.AppendLine(c, $"gate {i + 1,-7} skip block {i + 1} per sample when σ(MLP {a.Dim}→{gates.Hidden[i].Out}→1 of the pooled state) ≥ ρ {gates.Rho} (the batch partitions: skippers run nothing)");
            sb.Append(c, $"block {i + 1,-6} ");
            sb.AppendJoin("  ", Layers[i].Select(p => $"{p.Name[(p.Name.LastIndexOf('.') + 1)..]} {p.Outputs}×{p.Inputs}"));
            sb.AppendLine(c, $"  → exit {i + 1}: {head}{controllers}");
        }
        return sb.ToString().TrimEnd();
    }

    private string WeightPreparation => Activations switch
    {
        _ when Architecture.WeightBits == 32 => "float rows used as stored",
        ActivationEncoding.Codes => "row-major bits, 16-row interleaved 32-bit lanes, row sums, ±1 bytes",
        _ when MayUseCodes(Architecture) => "row-major bits, 16-row interleaved 32-bit lanes, row sums, ±1 bytes (kept, unused on bit planes)",
        _ when UsesXnor(Architecture) => "row-major bits, 16-row interleaved 32-bit lanes, the lookup kernel's 64-row groups, row sums",
        _ => "row-major bits, 16-row interleaved 32-bit lanes, row sums",
    };
}
