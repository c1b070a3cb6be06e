using System.Numerics.Tensors;

namespace BinEngine.Runtime;

/// <summary>
/// A small float layer y = W x + b, W [Out, In] row-major (nn.Linear), for the controllers and gates:
/// a few hundred multiply-adds per sample per block, so one dot product per output row is all it needs.
/// </summary>
internal sealed record DenseLayer(TensorView<float> Weight, TensorView<float> Bias, int Out, int In)
{
    /// <summary>y = W x + b (the fast path: vectorised dot products).</summary>
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        ReadOnlySpan<float> w = Weight.Span, b = Bias.Span;
        for (int o = 0; o < Out; o++)
            y[o] = TensorPrimitives.Dot(w.Slice(o * In, In), x[..In]) + b[o];
    }

    /// <summary>y = W x + b in plain loops, left to right (the reference).</summary>
    public float[] ApplyReference(ReadOnlySpan<float> x)
    {
        ReadOnlySpan<float> w = Weight.Span, b = Bias.Span;
        var y = new float[Out];
        for (int o = 0; o < Out; o++)
        {
            float dot = 0f;
            for (int i = 0; i < In; i++)
                dot += w[o * In + i] * x[i];
            y[o] = dot + b[o];
        }
        return y;
    }

    /// <summary>FLOPs of one application (a multiply-add counts 2).</summary>
    public double Flops => 2.0 * Out * In;
}

/// <summary>
/// PALBERT's λ-MLP (docs/MODEL.md, q_exit): λ_i = σ(W_3 tanh(W_2 tanh(W_1 tanh(W_0 u + b_0) + b_1) + b_2) + b_3)
/// with u = [m_i ; m_{i−1}] + e_i.
/// </summary>
internal sealed class QExitWeights
{
    public required TensorView<float> Positions { get; init; } // [L, 2d]
    public required DenseLayer[] Mlp { get; init; }            // 2d→H, H→H, H→H, H→1
    public required int Hidden { get; init; }

    /// <summary>λ of exit <paramref name="layer"/> (0-based) from the pooled states of this block and the previous exit; <paramref name="scratch"/> holds ≥ 2d + 2H floats.</summary>
    public float Lambda(int layer, ReadOnlySpan<float> pooled, ReadOnlySpan<float> previous, Span<float> scratch)
    {
        int d = pooled.Length, h = Hidden;
        Span<float> u = scratch[..(2 * d)], a = scratch.Slice(2 * d, h), b = scratch.Slice(2 * d + h, h);
        pooled.CopyTo(u);
        previous.CopyTo(u[d..]);
        TensorPrimitives.Add(u, Positions.Span.Slice(layer * 2 * d, 2 * d), u);
        Mlp[0].Apply(u, a);
        TensorPrimitives.Tanh(a, a);
        Mlp[1].Apply(a, b);
        TensorPrimitives.Tanh(b, b);
        Mlp[2].Apply(b, a);
        TensorPrimitives.Tanh(a, a);
        Mlp[3].Apply(a, b[..1]);
        return Sigmoid(b[0]);
    }

    /// <summary>The same in plain loops (the reference).</summary>
    public float LambdaReference(int layer, float[] pooled, float[] previous)
    {
        int d = pooled.Length;
        var u = new float[2 * d];
        ReadOnlySpan<float> e = Positions.Span.Slice(layer * 2 * d, 2 * d);
        for (int i = 0; i < d; i++)
        {
            u[i] = pooled[i] + e[i];
            u[d + i] = previous[i] + e[d + i];
        }
        float[] a = u;
        for (int l = 0; l < 3; l++)
        {
            a = Mlp[l].ApplyReference(a);
            for (int i = 0; i < a.Length; i++)
                a[i] = MathF.Tanh(a[i]);
        }
        return Sigmoid(Mlp[3].ApplyReference(a)[0]);
    }

    /// <summary>FLOPs of one λ.</summary>
    public double Flops => Mlp.Sum(l => l.Flops);

    /// <summary>σ(z) = 1 / (1 + e^−z), one scalar formula for the fast path and the reference (it is not where time goes).</summary>
    internal static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));
}

/// <summary>
/// JEI-DNN's gate (docs/MODEL.md, learned_gate): g_i = σ(w_i · φ_i + b_i), φ = [max p, H(p), p_(1) − p_(2), H(softmax(k ln p))].
/// </summary>
internal sealed class LearnedGateWeights
{
    public required TensorView<float> Weight { get; init; } // [L, 4]
    public required TensorView<float> Bias { get; init; }   // [L]
    public required float Power { get; init; }              // k

    /// <summary>g of exit <paramref name="layer"/> (0-based) from its softmax <paramref name="p"/> and entropy; <paramref name="scratch"/> holds ≥ C floats.</summary>
    public float Gate(int layer, ReadOnlySpan<float> p, float entropy, Span<float> scratch)
    {
        Span<float> powered = scratch[..p.Length];
        TensorPrimitives.Log(p, powered);
        TensorPrimitives.Multiply(powered, Power, powered);
        float poweredEntropy = ForwardPass.SoftmaxEntropy(powered, powered);
        return Combine(layer, p, entropy, poweredEntropy);
    }

    /// <summary>The same in plain loops (the reference).</summary>
    public float GateReference(int layer, float[] p, float entropy)
    {
        var z = new float[p.Length];
        for (int c = 0; c < p.Length; c++)
            z[c] = Power * MathF.Log(p[c]);
        return Combine(layer, p, entropy, ReferenceForward.SoftmaxEntropy(z));
    }

    // The two largest probabilities and the weighted sum of the four features, in the order of φ.
    private float Combine(int layer, ReadOnlySpan<float> p, float entropy, float poweredEntropy)
    {
        float first = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (float q in p)
        {
            if (q > first)
            {
                second = first;
                first = q;
            }
            else if (q > second)
            {
                second = q;
            }
        }
        ReadOnlySpan<float> w = Weight.Span.Slice(layer * Format.Mechanisms.LearnedGateFeatures, Format.Mechanisms.LearnedGateFeatures);
        float z = w[0] * first + w[1] * entropy + w[2] * (first - second) + w[3] * poweredEntropy + Bias.Span[layer];
        return QExitWeights.Sigmoid(z);
    }
}

/// <summary>SmartBERT's skipping gates (docs/MODEL.md, skip_gates): g = σ(W_1 tanh(W_0 m + b_0) + b_1) before each block but the last.</summary>
internal sealed class SkipGateWeights
{
    public required DenseLayer[] Hidden { get; init; } // per gate: d→H
    public required DenseLayer[] Output { get; init; } // per gate: H→1
    public required float Rho { get; init; }

    /// <summary>g before block <paramref name="layer"/> (0-based, &lt; L − 1) from the pooled entering state; <paramref name="scratch"/> holds ≥ H + 1 floats.</summary>
    public float Gate(int layer, ReadOnlySpan<float> pooled, Span<float> scratch)
    {
        DenseLayer hidden = Hidden[layer];
        Span<float> a = scratch[..hidden.Out];
        hidden.Apply(pooled, a);
        TensorPrimitives.Tanh(a, a);
        Span<float> z = scratch.Slice(hidden.Out, 1);
        Output[layer].Apply(a, z);
        return QExitWeights.Sigmoid(z[0]);
    }

    /// <summary>The same in plain loops (the reference).</summary>
    public float GateReference(int layer, float[] pooled)
    {
        float[] a = Hidden[layer].ApplyReference(pooled);
        for (int i = 0; i < a.Length; i++)
            a[i] = MathF.Tanh(a[i]);
        return QExitWeights.Sigmoid(Output[layer].ApplyReference(a)[0]);
    }

    /// <summary>FLOPs of one gate.</summary>
    public double Flops => Hidden[0].Flops + Output[0].Flops;
}

/// <summary>The optional mechanisms of a model (each null when the model does not carry it).</summary>
internal sealed record MechanismWeights(
    QExitWeights? QExit = null, LearnedGateWeights? LearnedGate = null, SkipGateWeights? SkipGates = null, MambaHeadWeights[]? MambaExits = null,
    LexicalWeights? Lexical = null)
{
    /// <summary>A plain BEExformer.</summary>
    public static MechanismWeights None { get; } = new();

    /// <summary>Whether mechanism <paramref name="name"/> (a <see cref="Format.Mechanisms"/> name) is present; allocates nothing (the forward pass asks per call).</summary>
    public bool Has(string name) => name switch
    {
        Format.Mechanisms.QExit => QExit is not null,
        Format.Mechanisms.LearnedGate => LearnedGate is not null,
        Format.Mechanisms.SkipGates => SkipGates is not null,
        Format.Mechanisms.MambaExits => MambaExits is not null,
        Format.Mechanisms.Lexical => Lexical is not null,
        _ => false,
    };

    /// <summary>The names of the mechanisms present (<see cref="Format.Mechanisms"/>), in docs/MODEL.md's order.</summary>
    public IReadOnlyList<string> Names => Format.Mechanisms.Names.Where(Has).ToArray();
}
