namespace BinEngine.Runtime;

/// <summary>
/// The readable reference forward pass (llm.c style): plain loops over one sample, no kernels, no
/// batching, no intrinsics. It is the specification of docs/MODEL.md in code and the oracle the fast
/// path is tested against. Binary products are computed as exact integers from the unpacked bits,
/// so they equal the kernels' results exactly; float steps follow the same formulas as the fast path.
/// </summary>
internal static class ReferenceForward
{
    /// <summary>Logits of every exit evaluated (one per block run: all L without skip gates), [blocks run][C], for one sample of ids ([CLS] … [SEP], no padding).</summary>
    public static float[][] Run(ModelWeights model, ReadOnlySpan<int> ids) => Trace(model, ids).Logits;

    /// <summary>
    /// One sample at full depth with every mechanism of docs/MODEL.md: the skip gates decide which blocks run
    /// (g ≥ ρ skips, never the last), every block that runs is followed by its exit (linear, or Mamba then
    /// linear), q_exit's λ and learned_gate's g are computed at each exit.
    /// </summary>
    public static ReferenceTrace Trace(ModelWeights model, ReadOnlySpan<int> ids)
    {
        Architecture a = model.Architecture;
        MechanismWeights m = model.Mechanisms;
        int n = ids.Length, d = a.Dim;
        var x = new float[n, d];

        // Embedding: LN_emb(E_tok[id] + E_pos[t]).
        var row = new float[d];
        var pos = new float[d];
        for (int t = 0; t < n; t++)
        {
            model.Embedding.Tokens.Dequantize(model.Embedding.RowOf(ids[t]), row, Kernels.KernelIsa.Scalar);
            model.Embedding.Positions.Dequantize(t, pos, Kernels.KernelIsa.Scalar);
            for (int i = 0; i < d; i++)
                row[i] += pos[i];
            LayerNorm(row, model.Embedding.Norm, a.LnEps);
            for (int i = 0; i < d; i++)
                x[t, i] = row[i];
        }

        var logits = new List<float[]>();
        var blocksRun = new List<int>();
        var lambdas = new List<float>();
        var gates = new List<float>();
        var skipGates = new List<float>();
        float[] state = Pool(x); // m_0, then the pooled state of the last block that ran
        float[]? lexical = m.Lexical?.LogitsReference(ids);
        for (int l = 0; l < a.Layers; l++)
        {
            if (m.SkipGates is { } skip && l < a.Layers - 1)
            {
                float g = skip.GateReference(l, state);
                skipGates.Add(g);
                if (g >= skip.Rho)
                    continue; // skipped: the state passes unchanged, no exit
            }
            x = Block(model.Blocks[l], a, x);
            float[] pooled = Pool(x);
            if (m.QExit is { } q)
                lambdas.Add(q.LambdaReference(l, pooled, state));
            state = pooled;
            float[] head = m.MambaExits is { } mamba ? MambaHead.PoolResidualReference(mamba[l], x) : pooled;
            float[] z = Exit(model.Exits[l], a, head, lexical);
            if (m.LearnedGate is { } learned)
            {
                float[] p = (float[])z.Clone();
                float h = SoftmaxEntropy(p);
                gates.Add(learned.GateReference(l, p, h));
            }
            logits.Add(z);
            blocksRun.Add(l + 1);
        }
        return new ReferenceTrace([.. logits], [.. blocksRun],
            m.QExit is null ? null : [.. lambdas], m.LearnedGate is null ? null : [.. gates], m.SkipGates is null ? null : [.. skipGates]);
    }

    // mean over tokens of x [n, d]
    private static float[] Pool(float[,] x)
    {
        int n = x.GetLength(0), d = x.GetLength(1);
        var pooled = new float[d];
        for (int i = 0; i < d; i++)
        {
            float sum = 0f;
            for (int t = 0; t < n; t++)
                sum += x[t, i];
            pooled[i] = sum / n;
        }
        return pooled;
    }

    // x' = LN2(h + SLFN(h)),  h = LN1(x + Attn(x))
    private static float[,] Block(BlockWeights b, Architecture a, float[,] x)
    {
        int n = x.GetLength(0), d = a.Dim, dh = a.HeadDim;
        float[,] q = Linear(b.Q, a, x), k = Linear(b.K, a, x), v = Linear(b.V, a, x);

        // Attention per head over the sample's own tokens (no padding exists here to mask).
        var attended = new float[n, d];
        float scale = 1f / MathF.Sqrt(dh);
        var scores = new float[n];
        for (int head = 0; head < a.Heads; head++)
        {
            int c0 = head * dh;
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    float dot = 0f;
                    for (int c = 0; c < dh; c++)
                        dot += q[i, c0 + c] * k[j, c0 + c];
                    scores[j] = dot * scale;
                }
                Softmax(scores);
                for (int c = 0; c < dh; c++)
                {
                    float sum = 0f;
                    for (int j = 0; j < n; j++)
                        sum += scores[j] * v[j, c0 + c];
                    attended[i, c0 + c] = sum;
                }
            }
        }
        float[,] o = Linear(b.O, a, attended);
        float[,] h = AddAndNorm(x, o, b.Ln1, a.LnEps);

        // SLFN(h) = G2(σ(G1 h)) ⊙ F2(tanh(F1 h)); with slfn_gate_center, G2(σ(G1 h) − ½).
        float[,] g1 = Linear(b.G1, a, h), f1 = Linear(b.F1, a, h);
        float shift = a.SlfnGateCenter ? 0.5f : 0f;
        Map(g1, z => 1f / (1f + MathF.Exp(-z)) - shift);
        Map(f1, MathF.Tanh);
        float[,] g = Linear(b.G2, a, g1), f = Linear(b.F2, a, f1);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++)
                g[t, i] *= f[t, i];
        return AddAndNorm(h, g, b.Ln2, a.LnEps);
    }

    // z = (E · pooled + c) / T, pooled = mean_t x[t] (or the Mamba head's pool of x + Mamba(x))
    // z_c = (E_c · pooled + c_c [+ z_lex,c]) / T
    private static float[] Exit(ExitHeadWeights e, Architecture a, float[] pooled, float[]? lexical)
    {
        int d = a.Dim;
        var z = new float[a.Classes];
        ReadOnlySpan<float> w = e.Weight.Span;
        for (int c = 0; c < a.Classes; c++)
        {
            float dot = 0f;
            for (int i = 0; i < d; i++)
                dot += w[c * d + i] * pooled[i];
            z[c] = dot + e.Bias.Span[c];
            if (lexical is not null)
                z[c] += lexical[c];
            if (e.Temperature != 1f)
                z[c] /= e.Temperature;
        }
        return z;
    }

    /// <summary>
    /// y = α ⊙ (B · Q(x)) + b per token, with B·Q(x) an exact integer for a ≤ 8:
    /// y_o = (α_o · scale) · Σ_i B_oi · code_i + b_o. For a = 32: y_o = α_o · Σ_i B_oi · x_i + b_o.
    /// FP32 twin: y_o = Σ_i W_oi · x_i + b_o.
    /// </summary>
    private static float[,] Linear(LinearWeights w, Architecture a, float[,] x)
    {
        int n = x.GetLength(0), kIn = w.In, nOut = w.Out;
        var y = new float[n, nOut];
        var input = new float[kIn];
        var codes = new sbyte[kIn];
        ReadOnlySpan<float> bias = w.Bias.Span;
        for (int t = 0; t < n; t++)
        {
            for (int i = 0; i < kIn; i++)
                input[i] = x[t, i];

            if (!w.IsBinary)
            {
                ReadOnlySpan<float> weights = w.Weights.Span;
                for (int o = 0; o < nOut; o++)
                {
                    float dot = 0f;
                    for (int i = 0; i < kIn; i++)
                        dot += weights[o * kIn + i] * input[i];
                    y[t, o] = dot + bias[o];
                }
                continue;
            }

            ReadOnlySpan<ulong> bits = w.Packed!.RowMajor;
            ReadOnlySpan<float> alpha = w.Alpha.Span;
            int rowWords = Kernels.BitPacking.RowWords(kIn);
            float scale = a.ActBits == 32 ? 1f : Quantizer.QuantizeRow(input, a.ActBits, codes);
            for (int o = 0; o < nOut; o++)
            {
                ReadOnlySpan<ulong> signs = bits.Slice(o * rowWords, rowWords);
                if (a.ActBits == 32)
                {
                    float dot = 0f;
                    for (int i = 0; i < kIn; i++)
                        dot += SignAt(signs, i) * input[i];
                    y[t, o] = alpha[o] * dot + bias[o];
                }
                else
                {
                    int dot = 0;
                    for (int i = 0; i < kIn; i++)
                        dot += SignAt(signs, i) * codes[i];
                    y[t, o] = alpha[o] * scale * dot + bias[o];
                }
            }
        }
        return y;
    }

    /// <summary>+1 where bit i of the packed row is 1, −1 where it is 0 (docs/MODEL.md, Packed bits).</summary>
    private static int SignAt(ReadOnlySpan<ulong> packed, int i) => ((packed[i >> 6] >> (i & 63)) & 1) != 0 ? 1 : -1;

    private static float[,] AddAndNorm(float[,] x, float[,] y, LayerNormWeights ln, float eps)
    {
        int n = x.GetLength(0), d = x.GetLength(1);
        var result = new float[n, d];
        var row = new float[d];
        for (int t = 0; t < n; t++)
        {
            for (int i = 0; i < d; i++)
                row[i] = x[t, i] + y[t, i];
            LayerNorm(row, ln, eps);
            for (int i = 0; i < d; i++)
                result[t, i] = row[i];
        }
        return result;
    }

    /// <summary>In place: (x − mean) / sqrt(var + eps) · γ + β, biased variance (as torch).</summary>
    internal static void LayerNorm(Span<float> x, LayerNormWeights ln, float eps)
    {
        float mean = 0f;
        foreach (float v in x) mean += v;
        mean /= x.Length;
        float variance = 0f;
        foreach (float v in x) variance += (v - mean) * (v - mean);
        variance /= x.Length;
        float inv = 1f / MathF.Sqrt(variance + eps);
        ReadOnlySpan<float> gamma = ln.Gamma.Span, beta = ln.Beta.Span;
        for (int i = 0; i < x.Length; i++)
            x[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
    }

    /// <summary>In place: z becomes softmax(z); returns H = −Σ p ln p, a term with p = 0 counting 0 (its limit).</summary>
    internal static float SoftmaxEntropy(Span<float> z)
    {
        Softmax(z);
        float h = 0f;
        foreach (float p in z)
            if (p > 0f)
                h -= p * MathF.Log(p);
        return h;
    }

    /// <summary>In place, max-subtracted for range.</summary>
    internal static void Softmax(Span<float> z)
    {
        float max = float.NegativeInfinity;
        foreach (float v in z) max = MathF.Max(max, v);
        float sum = 0f;
        for (int i = 0; i < z.Length; i++)
        {
            z[i] = MathF.Exp(z[i] - max);
            sum += z[i];
        }
        for (int i = 0; i < z.Length; i++)
            z[i] /= sum;
    }

    private static void Map(float[,] x, Func<float, float> f)
    {
        for (int t = 0; t < x.GetLength(0); t++)
            for (int i = 0; i < x.GetLength(1); i++)
                x[t, i] = f(x[t, i]);
    }
}

/// <summary>What the reference computed for one sample (docs/MODEL.md; the golden file's fields).</summary>
/// <param name="Logits">One row per block run, [C] each.</param>
/// <param name="BlocksRun">The 1-based blocks that ran, ascending.</param>
/// <param name="Lambdas">q_exit's λ per exit (null without the controller).</param>
/// <param name="GateScores">learned_gate's g per exit (null without it).</param>
/// <param name="SkipGates">The skip gates' g before each non-last block (null without skip gates).</param>
internal sealed record ReferenceTrace(float[][] Logits, int[] BlocksRun, float[]? Lambdas, float[]? GateScores, float[]? SkipGates);
