using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// In-memory models with random weights, no model file: the tests' models, and the FP32 twin the
/// benchmarks time when no trained twin is at hand (the time of a dense forward pass does not depend
/// on the values of its weights, so a random twin of the same shapes measures the same speed; it
/// says nothing about accuracy). Latent floats are binarized as the converter does (sign, α = mean|W|
/// per row); embeddings are random e-bit codes with per-row scales.
/// </summary>
internal static class RandomWeights
{
    public static Architecture Shape(int actBits, int weightBits = 1, int embBits = 4, int layers = 3, int dim = 48,
        int heads = 3, int ff = 80, int classes = 3, int vocab = 97, int maxLength = 24) =>
        new(vocab, maxLength, dim, heads, layers, ff, classes, weightBits, actBits, embBits, 1e-5f);

    public static ModelWeights Create(Architecture a, int seed)
    {
        a.Validate();
        var random = new Random(seed);
        float Uniform(float scale) => (float)(random.NextDouble() * 2 - 1) * scale;
        TensorView<float> Floats(int n, float scale, float offset = 0f)
        {
            var values = new float[n];
            for (int i = 0; i < n; i++)
                values[i] = offset + Uniform(scale);
            return TensorView<float>.Pinned(values);
        }

        LinearWeights Linear(int outputs, int inputs)
        {
            float scale = 1f / MathF.Sqrt(inputs);
            var latent = new float[outputs * inputs];
            for (int i = 0; i < latent.Length; i++)
                latent[i] = Uniform(scale);
            TensorView<float> bias = Floats(outputs, 0.1f);
            if (a.WeightBits == 32)
                return new LinearWeights { Out = outputs, In = inputs, Weights = TensorView<float>.Pinned(latent), Bias = bias };

            int words = BitPacking.RowWords(inputs);
            var bits = new ulong[outputs * words];
            BitPacking.PackSignsMatrix(latent, outputs, inputs, bits);
            var alpha = new float[outputs];
            for (int o = 0; o < outputs; o++)
            {
                float sum = 0f;
                for (int i = 0; i < inputs; i++)
                    sum += MathF.Abs(latent[o * inputs + i]);
                alpha[o] = sum / inputs;
            }
            return new LinearWeights
            {
                Out = outputs, In = inputs, Packed = new BinaryWeights(bits, outputs, inputs, withBytes: ExecutionPlan.MayUseCodes(a), lookups: ExecutionPlan.UsesXnor(a) ? LookupLayouts.SixBit | LookupLayouts.Nibble : LookupLayouts.None), Alpha = TensorView<float>.Pinned(alpha),
                Bias = bias,
            };
        }

        LayerNormWeights Norm() => new(Floats(a.Dim, 0.2f, 1f), Floats(a.Dim, 0.1f));

        EmbeddingTable Table(int rows)
        {
            if (a.EmbBits == 32)
                return new EmbeddingTable { Rows = rows, Dim = a.Dim, Floats = Floats(rows * a.Dim, 1f) };
            int m = a.EmbBits == 1 ? 1 : BitPacking.MaxCode(a.EmbBits);
            var codes = new sbyte[rows * a.Dim];
            for (int i = 0; i < codes.Length; i++)
                codes[i] = a.EmbBits == 1 ? (random.Next(2) == 0 ? (sbyte)-1 : (sbyte)1) : (sbyte)random.Next(-m, m + 1);
            return new EmbeddingTable
            {
                Rows = rows, Dim = a.Dim, Codes = TensorView<sbyte>.Pinned(codes), Scales = Floats(rows, 0.05f, 0.5f / m),
            };
        }

        var embedding = new EmbeddingWeights(Table(a.VocabSize), Table(a.MaxLength), default, Norm());
        var blocks = new BlockWeights[a.Layers];
        var exits = new ExitHeadWeights[a.Layers];
        for (int l = 0; l < a.Layers; l++)
        {
            blocks[l] = new BlockWeights(
                Linear(a.Dim, a.Dim), Linear(a.Dim, a.Dim), Linear(a.Dim, a.Dim), Linear(a.Dim, a.Dim), Norm(),
                Linear(a.FfDim, a.Dim), Linear(a.Dim, a.FfDim), Linear(a.FfDim, a.Dim), Linear(a.Dim, a.FfDim), Norm());
            // Exit heads grow sharper with depth so entropy-based policies exit at a spread of blocks.
            exits[l] = new ExitHeadWeights(Floats(a.Classes * a.Dim, 0.3f * (l + 1)), Floats(a.Classes, 0.2f));
        }
        return new ModelWeights(a, embedding, blocks, exits);
    }

    /// <summary>
    /// <paramref name="model"/> with random weights for the chosen mechanisms of docs/MODEL.md. The gates' biases are
    /// drawn around 0 so that skip gates skip some blocks and run others, and λ and g spread over (0, 1): the
    /// tests need every path taken.
    /// </summary>
    public static ModelWeights WithMechanisms(ModelWeights model, int seed, bool qExit = false, bool learnedGate = false,
        bool skipGates = false, bool mambaExits = false, bool lexical = false, int hidden = 16, int inner = 20, int state = 16, int rank = 4)
    {
        Architecture a = model.Architecture;
        int d = a.Dim, layers = a.Layers;
        var random = new Random(seed);
        TensorView<float> Floats(int n, float scale, float offset = 0f)
        {
            var values = new float[n];
            for (int i = 0; i < n; i++)
                values[i] = offset + (float)(random.NextDouble() * 2 - 1) * scale;
            return TensorView<float>.Pinned(values);
        }
        DenseLayer Dense(int outputs, int inputs, float gain = 1f) =>
            new(Floats(outputs * inputs, gain / MathF.Sqrt(inputs)), Floats(outputs, 0.1f), outputs, inputs);

        QExitWeights? q = qExit
            ? new QExitWeights
            {
                Positions = Floats(layers * 2 * d, 0.5f), Hidden = hidden,
                Mlp = [Dense(hidden, 2 * d, 2f), Dense(hidden, hidden, 2f), Dense(hidden, hidden, 2f), Dense(1, hidden, 3f)],
            }
            : null;
        LearnedGateWeights? g = learnedGate
            ? new LearnedGateWeights { Weight = Floats(layers * Format.Mechanisms.LearnedGateFeatures, 3f), Bias = Floats(layers, 1f), Power = 2f }
            : null;
        SkipGateWeights? skip = skipGates
            ? new SkipGateWeights
            {
                Hidden = Enumerable.Range(0, layers - 1).Select(_ => Dense(hidden, d, 2f)).ToArray(),
                Output = Enumerable.Range(0, layers - 1).Select(_ => Dense(1, hidden, 4f)).ToArray(),
                Rho = 0.5f,
            }
            : null;
        MambaHeadWeights[]? mamba = mambaExits
            ? Enumerable.Range(0, layers).Select(_ =>
            {
                var aLog = new float[inner * state];
                for (int e = 0; e < inner; e++)
                    for (int j = 0; j < state; j++)
                        aLog[e * state + j] = MathF.Log(j + 1); // Mamba's initialisation: A = −(1 … N)
                return new MambaHeadWeights
                {
                    Dim = d, Inner = inner, State = state, ConvWidth = 4, DtRank = rank,
                    InProj = Floats(2 * inner * d, 1f / MathF.Sqrt(d)), ConvWeight = Floats(inner * 4, 0.5f), ConvBias = Floats(inner, 0.1f),
                    XProj = Floats((rank + 2 * state) * inner, 1f / MathF.Sqrt(inner)), DtProjWeight = Floats(inner * rank, 1f / MathF.Sqrt(rank)),
                    DtProjBias = Floats(inner, 1f, -3f), ALog = TensorView<float>.Pinned(aLog), D = Floats(inner, 0.5f, 1f),
                    OutProj = Floats(d * inner, 1f / MathF.Sqrt(inner)),
                }.Prepare();
            }).ToArray()
            : null;
        LexicalWeights? lex = null;
        if (lexical)
        {
            // 2^10 buckets (so that sentences share some), codes over the whole int8 range, one id in four a continuation
            const int bits = 10;
            var table = new sbyte[(1 << bits) * a.Classes];
            for (int i = 0; i < table.Length; i++)
                table[i] = (sbyte)random.Next(-128, 128);
            var continues = new int[(a.VocabSize + 31) / 32];
            for (int i = 0; i < continues.Length; i++)
                continues[i] = random.Next() & random.Next() | random.Next() << 31;
            lex = new LexicalWeights
            {
                Table = TensorView<sbyte>.Pinned(table), Scale = 0.01f, Bias = Floats(a.Classes, 0.5f),
                Continues = TensorView<int>.Pinned(continues), Bits = bits, Classes = a.Classes,
            };
        }
        return model with { Mechanisms = new MechanismWeights(q, g, skip, mamba, lex) };
    }

    /// <summary>Random id sequences [CLS]-like first id, lengths spread over 1..T.</summary>
    public static int[][] Texts(Architecture a, int count, int seed)
    {
        var random = new Random(seed);
        var texts = new int[count][];
        for (int i = 0; i < count; i++)
        {
            int length = 1 + random.Next(a.MaxLength);
            texts[i] = new int[length];
            for (int t = 0; t < length; t++)
                texts[i][t] = random.Next(a.VocabSize);
        }
        return texts;
    }
}
