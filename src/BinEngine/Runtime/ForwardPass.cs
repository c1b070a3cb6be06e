using System.Numerics.Tensors;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// The fast forward pass over a batch of samples, with per-sample early exits.
///
/// Samples are laid out without padding: sample s owns token rows [Starts[s], Starts[s] + Lengths[s])
/// of the residual stream X, so every linear layer is one GEMM over all live tokens and attention
/// runs per sample over its own tokens (no mask needed, no work on padding). After each block, the
/// samples whose exit policy fires leave the batch and the rows of those that go on are compacted,
/// so the next block's GEMMs shrink with the batch. Every per-sample step (attention, norms, pooling,
/// exits) reads only that sample's rows, and the GEMMs compute each output element the same way
/// whatever rows surround it, so a sample's result does not depend on its batch: a batch gives
/// exactly the results of its samples one by one.
/// </summary>
internal sealed class ForwardPass
{
    private readonly ModelWeights _w;
    private readonly Architecture _a;
    private readonly ExecutionPlan _plan;
    private readonly KernelSet _kernels;
    private readonly float[] _positions;

    public ForwardPass(ModelWeights weights, ExecutionPlan plan)
    {
        if (weights.Architecture != plan.Architecture)
            throw new ArgumentException("the plan was made for another architecture", nameof(plan));
        _w = weights;
        _a = weights.Architecture;
        _plan = plan;
        _kernels = plan.Kernels;
        // The position rows dequantized once (max_len × d floats, 64 KB for SST-2's models), the same bits as
        // dequantizing one per token and call (its gain is within the engine A/B's noise, ≤ 1 %; bench/README.md).
        int d = _a.Dim;
        _positions = new float[(long)_a.MaxLength * d <= Array.MaxLength ? _a.MaxLength * d : throw new ArgumentException("max_len × d exceeds an array")];
        for (int p = 0; p < _a.MaxLength; p++)
            weights.Embedding.Positions.Dequantize(p, _positions.AsSpan(p * d, d), plan.HelperIsa);
    }

    /// <summary>
    /// Runs the <paramref name="count"/> samples laid out in <paramref name="ws"/>: their ids one after
    /// another in <see cref="Workspace.TokenIds"/>, sample s having <see cref="Workspace.Lengths"/>[s]
    /// of them (1..T, already validated). Leaves, per sample s, its exit block (1-based) in
    /// <see cref="Workspace.ExitBlocks"/>[s], and for every exit it evaluated (k = 0, 1, …;
    /// <see cref="Workspace.Evaluated"/>[s] of them) the block in <see cref="Workspace.BlocksRun"/>, the
    /// logits, the entropy and the controllers' λ and g (rows s·L + k).
    /// </summary>
    /// <remarks>
    /// Skip gates (docs/MODEL.md, skip_gates) decide per sample before each block but the last: the samples
    /// that run it are moved in front of those that skip it (a stable partition of the rows), the block runs on
    /// the front rows only, and only they get an exit check. Order within the batch never changes a sample's
    /// result (every step is per row or per sample), so the partition keeps batch == one by one.
    /// </remarks>
    public void Run(Workspace ws, int count, ExitPolicy policy, int threads)
    {
        if (ExitPolicy.ControllerOf(policy.Kind) is { } controller && !_w.Mechanisms.Has(controller))
            throw new ArgumentException($"exit policy '{policy.Name}' needs the model's '{controller}' controller, which this model does not carry");
        int d = _a.Dim;
        int tokens = 0;
        for (int s = 0; s < count; s++)
        {
            ws.Starts[s] = tokens;
            ws.SampleLengths[s] = ws.Lengths[s];
            ws.Slots[s] = s;
            ws.States[s] = ExitState.Start;
            ws.Evaluated[s] = 0;
            Embed(ws.TokenIds.AsSpan(tokens, ws.Lengths[s]), ws.X.AsSpan(tokens * d, ws.Lengths[s] * d));
            _w.Mechanisms.Lexical?.Logits(ws.TokenIds.AsSpan(tokens, ws.Lengths[s]), ws.LexicalLogits.AsSpan(s * _a.Classes, _a.Classes), ws.LexicalBuckets);
            Pool(ws.X, tokens, ws.Lengths[s], ws.PooledStates.AsSpan(s * d, d)); // m_0
            tokens += ws.Lengths[s];
        }

        int live = count;
        for (int l = 0; l < _a.Layers && live > 0; l++)
        {
            bool last = l == _a.Layers - 1;
            var (running, runningTokens) = _w.Mechanisms.SkipGates is { } gates && !last
                ? PartitionBySkipGate(gates, l, ws, live, tokens)
                : (live, tokens);
            if (running > 0)
                BlockInTiles(_w.Blocks[l], ws, running, threads);

            // Exits (for the samples that ran the block), then compaction: samples that go on keep their
            // order and move down over the gaps.
            int kept = 0, keptTokens = 0;
            for (int i = 0; i < live; i++)
            {
                int slot = ws.Slots[i], start = ws.Starts[i], length = ws.Lengths[i];
                if (i < running && (Exit(l, ws, slot, start, length, policy, ref ws.States[i]) || last))
                {
                    ws.ExitBlocks[slot] = l + 1;
                    continue;
                }
                if (start != keptTokens)
                    ws.X.AsSpan(start * d, length * d).CopyTo(ws.X.AsSpan(keptTokens * d));
                ws.Slots[kept] = slot;
                ws.Starts[kept] = keptTokens;
                ws.Lengths[kept] = length;
                ws.States[kept] = ws.States[i];
                kept++;
                keptTokens += length;
            }
            live = kept;
            tokens = keptTokens;
        }
    }

    /// <summary>
    /// Evaluates the skip gate before block <paramref name="layer"/> for every live sample and moves the samples
    /// that run the block (g &lt; ρ) in front of those that skip it, keeping each group's order. Returns how many
    /// samples, and tokens, run the block. The residual rows are staged through <see cref="Workspace.H"/>, which
    /// the block overwrites anyway.
    /// </summary>
    private (int Running, int Tokens) PartitionBySkipGate(SkipGateWeights gates, int layer, Workspace ws, int live, int tokens)
    {
        int d = _a.Dim, running = 0, runningTokens = 0;
        for (int i = 0; i < live; i++)
        {
            int slot = ws.Slots[i];
            bool runs = gates.Gate(layer, ws.PooledStates.AsSpan(slot * d, d), ws.ControllerScratch) < gates.Rho;
            ws.Runs[i] = runs;
            if (runs)
            {
                running++;
                runningTokens += ws.Lengths[i];
            }
        }
        if (running == live || running == 0)
            return (running, runningTokens);

        ws.X.AsSpan(0, tokens * d).CopyTo(ws.H);
        Array.Copy(ws.Slots, ws.StagedSlots, live);
        Array.Copy(ws.Starts, ws.StagedStarts, live);
        Array.Copy(ws.Lengths, ws.StagedLengths, live);
        Array.Copy(ws.States, ws.StagedStates, live);
        int at = 0, rows = 0;
        foreach (bool group in (ReadOnlySpan<bool>)[true, false])
            for (int i = 0; i < live; i++)
            {
                if (ws.Runs[i] != group)
                    continue;
                int length = ws.StagedLengths[i];
                ws.H.AsSpan(ws.StagedStarts[i] * d, length * d).CopyTo(ws.X.AsSpan(rows * d));
                ws.Slots[at] = ws.StagedSlots[i];
                ws.Starts[at] = rows;
                ws.Lengths[at] = length;
                ws.States[at] = ws.StagedStates[i];
                at++;
                rows += length;
            }
        return (running, runningTokens);
    }

    /// <summary>mean over the <paramref name="length"/> rows of <paramref name="x"/> from row <paramref name="start"/>: the pooling every exit, gate and controller reads.</summary>
    private void Pool(float[] x, int start, int length, Span<float> pooled)
    {
        int d = _a.Dim;
        pooled.Clear();
        for (int t = 0; t < length; t++)
            TensorPrimitives.Add(pooled, x.AsSpan((start + t) * d, d), pooled);
        TensorPrimitives.Divide(pooled, length, pooled);
    }

    // One sample's rows x_t = LN_emb(E_tok[row(id_t)] + E_pos[t]): the position rows are consecutive, so one add and one
    // LayerNorm call cover the sample. Every token row is prefetched before the first is dequantized, so their cache
    // misses overlap (EmbeddingTable.Prefetch).
    private void Embed(ReadOnlySpan<int> ids, Span<float> x)
    {
        EmbeddingWeights e = _w.Embedding;
        int d = _a.Dim;
        for (int t = 0; t < ids.Length; t++)
            e.Tokens.Prefetch(e.RowOf(ids[t]));
        for (int t = 0; t < ids.Length; t++)
            e.Tokens.Dequantize(e.RowOf(ids[t]), x.Slice(t * d, d), _plan.HelperIsa);
        TensorPrimitives.Add(x, _positions.AsSpan(0, x.Length), x);
        Norm(x, e.Norm);
    }

    /// <summary>
    /// Runs the block on the first <paramref name="samples"/> live samples in tiles of whole samples of at most
    /// <see cref="ExecutionPlan.TileRows"/> rows (one sample alone when it is longer). Every step of a block is per row or per
    /// sample, and a GEMM computes each row the same way whatever rows it is given, so tiling changes no bit of
    /// the result (batch == one by one == any tiling).
    /// </summary>
    private void BlockInTiles(BlockWeights b, Workspace ws, int samples, int threads)
    {
        for (int first = 0; first < samples;)
        {
            int end = first, rows = 0;
            do
                rows += ws.Lengths[end++];
            while (end < samples && rows + ws.Lengths[end] <= _plan.TileRows);
            Block(b, ws, first, end, ws.Starts[first], rows, threads);
            first = end;
        }
    }

    // h = LN1(x + Attn(x)); x' = LN2(h + G2(σ(G1 h)) ⊙ F2(tanh(F1 h)))
    // Live samples [first, end) own the residual rows [rowStart, rowStart + tokens) of X (contiguous: the
    // running samples are packed from row 0); every scratch buffer is used from row 0 for the tile.
    private void Block(BlockWeights b, Workspace ws, int first, int end, int rowStart, int tokens, int threads)
    {
        int d = _a.Dim, f = _a.FfDim;
        Span<float> x = ws.X.AsSpan(rowStart * d, tokens * d);

        // Q, K and V share one quantization of x.
        Quantize(ws, x, tokens, d);
        Linear(b.Q, ws, x, tokens, ws.Q, threads);
        Linear(b.K, ws, x, tokens, ws.K, threads);
        Linear(b.V, ws, x, tokens, ws.V, threads);
        for (int i = first; i < end; i++)
            Attention(ws, ws.Starts[i] - rowStart, ws.Lengths[i]);

        Span<float> attended = ws.Attended.AsSpan(0, tokens * d);
        Quantize(ws, attended, tokens, d);
        Linear(b.O, ws, attended, tokens, ws.Projected, threads);
        Span<float> h = ws.H.AsSpan(0, tokens * d);
        TensorPrimitives.Add(x, ws.Projected.AsSpan(0, tokens * d), h);
        Norm(h, b.Ln1);

        // SLFN: G1 and F1 share one quantization of h; G2 and F2 each quantize their own input.
        Quantize(ws, h, tokens, d);
        Linear(b.G1, ws, h, tokens, ws.Gate, threads);
        Linear(b.F1, ws, h, tokens, ws.Forget, threads);
        Span<float> gate = ws.Gate.AsSpan(0, tokens * f), forget = ws.Forget.AsSpan(0, tokens * f);
        // G2 sees σ(G1 h) − ½ in the centred-gate contract (docs/MODEL.md, SLFN). VectorMath's σ and tanh are a few ulp
        // from MathF's (the reference's) and measured 1.3–1.5× faster than TensorPrimitives' (bench/README.md, "Levers").
        VectorMath.Sigmoid(gate, _a.SlfnGateCenter ? 0.5f : 0f, gate, _plan.HelperIsa);
        VectorMath.Tanh(forget, forget, _plan.HelperIsa);
        Quantize(ws, gate, tokens, f);
        Linear(b.G2, ws, gate, tokens, ws.GateOut, threads);
        Quantize(ws, forget, tokens, f);
        Linear(b.F2, ws, forget, tokens, ws.ForgetOut, threads);

        Span<float> slfn = ws.GateOut.AsSpan(0, tokens * d);
        TensorPrimitives.Multiply(slfn, ws.ForgetOut.AsSpan(0, tokens * d), slfn);
        TensorPrimitives.Add(h, slfn, x);
        Norm(x, b.Ln2);
    }

    /// <summary>
    /// Softmax attention of one sample over its own <paramref name="length"/> tokens, per head:
    /// out_i = Σ_j softmax_j(Q_i·K_j / √d_h) V_j, head j owning columns [j·d_h, (j+1)·d_h) (<see cref="Runtime.Attention"/>).
    /// Up to <see cref="Runtime.Attention.DirectMaxTokens"/> tokens (all but the longest SST-2 sentences) the scores are
    /// whole vectors of keys against a transposed copy of the head's keys and each output row is Σ_j p_j V_j accumulated
    /// in registers, vectorised up to the plan's helper ISA: no other copies, no V transpose, no GEMM calls, which on
    /// 25-token sentences cost more than the arithmetic (bench/README.md, "Levers"). Longer samples keep the
    /// copies and the two per-head FP32 GEMMs (S = Q_h K_hᵀ, O_h = P V_h). The path depends on the length only, so
    /// a sample's result is the same in any batch; the two differ from each other by float rounding only.
    /// </summary>
    private void Attention(Workspace ws, int start, int length)
    {
        int d = _a.Dim, rows = length * d;
        var scratch = new Runtime.Attention.GemmScratch(ws.HeadQ, ws.HeadK, ws.HeadVt, ws.HeadOut, ws.Scores);
        Runtime.Attention.Sample(ws.Q.AsSpan(start * d, rows), ws.K.AsSpan(start * d, rows), ws.V.AsSpan(start * d, rows),
            ws.Attended.AsSpan(start * d, rows), length, d, _a.Heads, _a.HeadDim, scratch, _kernels.Sgemm, _plan.HelperIsa);
    }

    /// <summary>
    /// Quantizes <paramref name="rows"/> rows of width <paramref name="k"/> for the next linear layers and
    /// packs them for the kernels (<see cref="ActivationPacker"/>): a = 1 one sign plane with β = mean|x|
    /// as the row scale, 2 ≤ a ≤ 8 the codes' bit planes with s = max|x| / m. a = 32 and the FP32 twin
    /// read the floats directly.
    /// </summary>
    private void Quantize(Workspace ws, ReadOnlySpan<float> x, int rows, int k)
    {
        int bits = _a.ActBits;
        switch (_plan.Activations)
        {
            case ActivationEncoding.Codes:
                for (int t = 0; t < rows; t++)
                    ws.Scales[t] = ActivationPacker.QuantizeCodes(x.Slice(t * k, k), bits, ws.Codes.AsSpan(t * k, k), _plan.VectorisedHelpers);
                return;
            case ActivationEncoding.Planes:
                int stride = bits * BitPacking.RowWords(k);
                for (int t = 0; t < rows; t++)
                    ws.Scales[t] = ActivationPacker.Pack(x.Slice(t * k, k), bits, ws.Planes.AsSpan(t * stride, stride), _plan.HelperIsa);
                return;
        }
    }

    /// <summary>
    /// y = α ⊙ (B · Q(x)) + b over all rows, the product on the selected kernels.
    /// For a ≤ 8 the kernels return the exact integer B·code and y_o = (α_o · scale) · product + b_o,
    /// the formula of <see cref="ReferenceForward"/> (vectorised, so possibly fused: an ulp apart).
    /// </summary>
    private void Linear(LinearWeights w, Workspace ws, ReadOnlySpan<float> x, int rows, float[] output, int threads)
    {
        int n = w.Out, k = w.In;
        Span<float> y = output.AsSpan(0, rows * n);
        ReadOnlySpan<float> bias = w.Bias.Span;

        if (!w.IsBinary)
        {
            _kernels.Sgemm.Multiply(x[..(rows * k)], rows, w.Weights.Span, n, k, y, threads);
            for (int t = 0; t < rows; t++)
                TensorPrimitives.Add(y.Slice(t * n, n), bias, y.Slice(t * n, n));
            return;
        }

        ReadOnlySpan<float> alpha = w.Alpha.Span;
        int bits = _a.ActBits;
        if (_plan.Activations == ActivationEncoding.Float)
        {
            // y_o = α_o · Σ_i ±x_i + b_o
            _kernels.Sign.Multiply(x[..(rows * k)], rows, w.Packed!.RowMajor, n, k, y, threads);
            for (int t = 0; t < rows; t++)
            {
                Span<float> yt = y.Slice(t * n, n);
                TensorPrimitives.MultiplyAdd(yt, alpha, bias, yt);
            }
            return;
        }

        if (bits == 1 && _plan.Activations == ActivationEncoding.Planes && _kernels.Xnor.FusesEpilogue(w.Packed!))
        {
            // The table-lookup kernel makes the floats as it turns its sums into products: the same bits as below.
            _kernels.Xnor.MultiplyScaled(ws.Planes.AsSpan(0, rows * BitPacking.RowWords(k)), rows, w.Packed!, ws.Scales.AsSpan(0, rows),
                alpha, bias, y, threads);
            return;
        }
        Span<int> products = ws.Products.AsSpan(0, rows * n);
        if (_plan.Activations == ActivationEncoding.Codes)
            _kernels.Code.Multiply(ws.Codes.AsSpan(0, rows * k), rows, w.Packed!, products, threads);
        else if (bits == 1)
            _kernels.Xnor.Multiply(ws.Planes.AsSpan(0, rows * BitPacking.RowWords(k)), rows, w.Packed!, products, threads);
        else
            _kernels.Plane.Multiply(ws.Planes.AsSpan(0, rows * bits * BitPacking.RowWords(k)), rows, bits, w.Packed!, products, threads);

        // y_o = (α_o · scale_t) · product_o + b_o, one vectorised pass over each row t (Epilogue).
        Epilogue.ScaleBias(products, alpha, ws.Scales.AsSpan(0, rows), bias, y, n, _plan.HelperIsa);
    }

    /// <summary>
    /// Exit of block <paramref name="layer"/> for one sample: its controllers (q_exit's λ, learned_gate's g),
    /// its head (linear, or Mamba then linear) with logits into the workspace, H_i, and the policy's decision.
    /// </summary>
    private bool Exit(int layer, Workspace ws, int slot, int start, int length, ExitPolicy policy, ref ExitState state)
    {
        int d = _a.Dim, classes = _a.Classes;
        MechanismWeights mechanisms = _w.Mechanisms;
        int k = ws.Evaluated[slot]++, row = slot * _a.Layers + k;
        ws.BlocksRun[row] = layer + 1;

        Span<float> pooled = ws.Pooled, previous = ws.PooledStates.AsSpan(slot * d, d);
        Pool(ws.X, start, length, pooled);
        float lambda = float.NaN;
        if (mechanisms.QExit is { } qExit && policy.ReadsLambda) // only when read (ExitPolicy.RecordsControllers)
            ws.Lambdas[row] = lambda = qExit.Lambda(layer, pooled, previous, ws.ControllerScratch);
        pooled.CopyTo(previous); // m_i: what the next gate and the next λ read as the state so far
        if (mechanisms.MambaExits is { } mamba)
            MambaHead.PoolResidual(mamba[layer], ws.X.AsSpan(start * d, length * d), length, pooled, ws.Mamba, _kernels.Sgemm, _plan.HelperIsa);

        ExitHeadWeights head = _w.Exits[layer];
        Span<float> logits = ws.Logits.AsSpan(row * classes, classes);
        ReadOnlySpan<float> weight = head.Weight.Span;
        for (int c = 0; c < classes; c++)
            logits[c] = TensorPrimitives.Dot(weight.Slice(c * d, d), pooled) + head.Bias.Span[c];
        if (mechanisms.Lexical is not null)
            TensorPrimitives.Add(logits, ws.LexicalLogits.AsSpan(slot * classes, classes), logits); // (E_i m_i + c_i) + z_lex
        if (head.Temperature != 1f)
            TensorPrimitives.Divide(logits, head.Temperature, logits); // z_i / T_i (docs/MODEL.md, Exits)

        // The probabilities go straight into the sample's answer row: if this exit answers, the result reads
        // them from there (nothing recomputed); if not, the next exit overwrites them.
        Span<float> p = ws.Answers.AsSpan(slot * classes, classes);
        float entropy = SoftmaxEntropy(logits, p);
        ws.Entropies[row] = entropy;
        float gate = float.NaN;
        if (mechanisms.LearnedGate is { } learned && policy.ReadsGate)
            ws.GateScores[row] = gate = learned.Gate(layer, p, entropy, ws.ControllerScratch);
        return policy.ShouldExit(ref state, p, entropy, lambda, gate);
    }

    /// <summary>p = softmax(z) and H = −Σ p ln p, a term with p = 0 counting 0 (its limit).</summary>
    internal static float SoftmaxEntropy(ReadOnlySpan<float> logits, Span<float> p)
    {
        StableSoftmax(logits, p);
        float entropy = 0f;
        foreach (float pc in p)
            if (pc > 0f)
                entropy -= pc * MathF.Log(pc);
        return entropy;
    }

    /// <summary>
    /// softmax(z) = exp(z − max z) / Σ exp(z − max z). TensorPrimitives.SoftMax exponentiates z as it is,
    /// so any z over ≈ 88 gives exp = ∞ and the row becomes ∞/∞ = NaN (found by the value fuzzer: one
    /// α of 30 in a Q projection); shifting by the max keeps every exponent ≤ 0 and the sum ≥ 1, and
    /// is what the reference and torch compute.
    /// </summary>
    internal static void StableSoftmax(ReadOnlySpan<float> z, Span<float> p)
    {
        float max = TensorPrimitives.Max(z);
        TensorPrimitives.Subtract(z, max, p);
        TensorPrimitives.SoftMax(p, p);
    }

    /// <summary>In place, every row of d: (x − mean) / sqrt(var + eps) · γ + β with the biased variance, as torch (<see cref="Runtime.LayerNorm"/>).</summary>
    private void Norm(Span<float> rows, LayerNormWeights ln) =>
        LayerNorm.Rows(rows, _a.Dim, ln.Gamma.Span, ln.Beta.Span, _a.LnEps, _plan.HelperIsa);
}
