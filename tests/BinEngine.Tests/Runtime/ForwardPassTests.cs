using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// The fast forward pass against the reference (the oracle), on every kernel ISA this process supports,
/// and batches against one-by-one.
/// </summary>
[Trait("Category", "Isa")]
public class ForwardPassTests
{
    private static readonly string[] Labels3 = ["a", "b", "c"];

    public static TheoryData<int, int> Precisions => new()
    {
        { 1, 1 }, { 2, 1 }, { 4, 1 }, { 8, 1 }, { 32, 1 }, { 32, 32 },
    };

    /// <summary>
    /// Every ISA this process supports, or only the one BINENGINE_ISA forces (test.sh's forced legs:
    /// the unforced run already covers the others; a forced ISA the CPU lacks falls back to all).
    /// </summary>
    public static IEnumerable<KernelIsa> SupportedIsas() =>
        KernelIsaNames.TryParse(Environment.GetEnvironmentVariable(KernelRegistry.IsaVariable), out KernelIsa forced)
            && KernelRegistry.Select(forced) is not null
            ? [forced]
            : Enum.GetValues<KernelIsa>().Where(isa => KernelRegistry.Select(isa) is not null);

    /// <summary>
    /// Tolerance: binary layers give exact integers and the fast path scales them with the same float
    /// expression as the reference, so they agree exactly; the float steps (LayerNorm sums, softmax,
    /// sigmoid/tanh, attention dots, exit dots) are vectorised in the fast path and summed in another
    /// order, a few ulps each. Through 3 blocks of post-norm (which rescales to unit variance) those stay
    /// near 1e-5 relative; 1e-3 absolute on logits of magnitude ~1–10 leaves room and still catches any
    /// real error (a wrong sign, code or row moves logits by ≥ 1e-2). A code that flips at a rounding
    /// boundary of the activation quantizer could exceed it; the seeds here are checked not to.
    /// </summary>
    private const float LogitTolerance = 2e-3f;

    [Theory]
    [MemberData(nameof(Precisions))]
    public void FastPassMatchesReferenceOnEveryIsa(int actBits, int weightBits)
    {
        Architecture a = RandomWeights.Shape(actBits, weightBits);
        ModelWeights model = RandomWeights.Create(a, seed: 11 + actBits);
        int[][] texts = RandomWeights.Texts(a, 12, seed: 5);
        foreach (KernelIsa isa in SupportedIsas())
        {
            var engine = new InferenceEngine(model, KernelRegistry.Select(isa)!, Labels3);
            foreach (int[] ids in texts)
            {
                float[][] expected = ReferenceForward.Run(model, ids);
                ClassificationResult result = engine.Classify(ids, ExitPolicy.Never, threads: 1);
                Assert.Equal(a.Layers, result.ExitBlock);
                for (int l = 0; l < a.Layers; l++)
                {
                    ReadOnlySpan<float> actual = result.LogitsOf(l + 1);
                    for (int c = 0; c < a.Classes; c++)
                        Assert.True(MathF.Abs(actual[c] - expected[l][c]) <= LogitTolerance,
                            $"{isa} a={actBits} w={weightBits} len={ids.Length} exit {l + 1} class {c}: fast {actual[c]} vs reference {expected[l][c]}");
                }
            }
        }
    }

    /// <summary>slfn_gate_center (G2 sees σ(G1 h) − ½) and exit temperatures: the fast pass against the reference, and the temperature divides every exit's logits.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public void GateCenterAndTemperaturesMatchReference(int actBits)
    {
        Architecture a = RandomWeights.Shape(actBits) with { SlfnGateCenter = true };
        ModelWeights plain = RandomWeights.Create(a, seed: 31);
        float[] temps = [0.5f, 1.75f, 3f];
        var exits = plain.Exits.Select((e, i) => e with { Temperature = temps[i] }).ToArray();
        ModelWeights model = plain with { Exits = exits };
        int[][] texts = RandomWeights.Texts(a, 8, seed: 4);
        var uncentred = RandomWeights.Create(a with { SlfnGateCenter = false }, seed: 31);
        bool differs = false;
        foreach (KernelIsa isa in SupportedIsas())
        {
            var engine = new InferenceEngine(model, KernelRegistry.Select(isa)!, Labels3);
            foreach (int[] ids in texts)
            {
                float[][] expected = ReferenceForward.Run(model, ids);
                float[][] untempered = ReferenceForward.Run(plain, ids);
                differs |= ReferenceForward.Run(uncentred, ids)[^1][0] != untempered[^1][0];
                ClassificationResult result = engine.Classify(ids, ExitPolicy.Never, threads: 1);
                for (int l = 0; l < a.Layers; l++)
                {
                    ReadOnlySpan<float> actual = result.LogitsOf(l + 1);
                    for (int c = 0; c < a.Classes; c++)
                    {
                        Assert.True(MathF.Abs(actual[c] - expected[l][c]) <= LogitTolerance,
                            $"{isa} a={actBits} exit {l + 1} class {c}: fast {actual[c]} vs reference {expected[l][c]}");
                        Assert.Equal(untempered[l][c] / temps[l], expected[l][c]);
                    }
                }
            }
        }
        Assert.True(differs, "centring the gate must change the outputs");
    }

    /// <summary>
    /// A non-finite answer (only a hostile file's weights can give one) fails a batch on several threads with the
    /// InvalidOperationException a one-thread batch throws, not wrapped in an AggregateException: the CLI's batch
    /// command catches exactly that type to rerun the chunk row by row and report only the failing rows.
    /// </summary>
    [Fact]
    public void ANonFiniteAnswerFailsAThreadedBatchWithTheSameExceptionAsOneThread()
    {
        Architecture a = RandomWeights.Shape(1, 1, layers: 2);
        ModelWeights model = RandomWeights.Create(a, seed: 3);
        float[] nan = Enumerable.Repeat(float.NaN, a.Classes).ToArray();
        model = model with { Exits = model.Exits.Select(e => e with { Bias = TensorView<float>.Pinned(nan) }).ToArray() };
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        ReadOnlyMemory<int>[] texts = RandomWeights.Texts(a, 100, seed: 9).Select(t => (ReadOnlyMemory<int>)t).ToArray();
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var e = Assert.Throws<InvalidOperationException>(() => engine.ClassifyBatch(texts, ExitPolicy.Never, threads));
            Assert.Contains("non-finite output", e.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void BatchEqualsOneByOneExactly(int actBits, int weightBits)
    {
        Architecture a = RandomWeights.Shape(actBits, weightBits, layers: 4);
        ModelWeights model = RandomWeights.Create(a, seed: 3);
        var engine = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        int[][] texts = RandomWeights.Texts(a, 300, seed: 9);
        // A threshold in the middle of the entropy range so samples leave at every block.
        var policy = new ExitPolicy(ExitPolicyKind.NormalizedEntropy, tau: 0.5f);

        ClassificationResult[] batch = engine.ClassifyBatch(texts.Select(t => (ReadOnlyMemory<int>)t).ToArray(), policy, threads: 2);
        var exitsSeen = new HashSet<int>();
        for (int i = 0; i < texts.Length; i++)
        {
            ClassificationResult single = engine.Classify(texts[i], policy, threads: 1);
            Assert.Equal(single.ExitBlock, batch[i].ExitBlock);
            Assert.Equal(single.Logits, batch[i].Logits);
            Assert.Equal(single.Entropies, batch[i].Entropies);
            Assert.Equal(single.Probabilities, batch[i].Probabilities);
            Assert.Equal(texts[i].Length, batch[i].TokenCount);
            exitsSeen.Add(single.ExitBlock);
        }
        Assert.True(exitsSeen.Count >= 3, $"the test needs samples exiting at several blocks, saw {string.Join(",", exitsSeen)}");
    }

    /// <summary>
    /// Block tiles (ExecutionPlan.TileRows) change no bit: a batch run with tiles of 1 row (every sample alone, each
    /// longer than its tile), 7 rows (tiles of one or a few samples) and the plan's own size equals one by one.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(0)]
    public void TileSizeDoesNotChangeResults(int tileRows)
    {
        Architecture a = RandomWeights.Shape(8, layers: 3);
        ModelWeights model = RandomWeights.Create(a, seed: 5);
        var reference = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        var tiled = new InferenceEngine(model, KernelRegistry.Selected, Labels3, tileRows: tileRows == 0 ? null : tileRows);
        if (tileRows > 0)
            Assert.Equal(tileRows, tiled.Plan.TileRows);
        int[][] texts = RandomWeights.Texts(a, 80, seed: 4);
        var policy = new ExitPolicy(ExitPolicyKind.NormalizedEntropy, tau: 0.5f);
        ClassificationResult[] batch = tiled.ClassifyBatch(texts.Select(t => (ReadOnlyMemory<int>)t).ToArray(), policy, threads: 1);
        for (int i = 0; i < texts.Length; i++)
        {
            ClassificationResult single = reference.Classify(texts[i], policy, threads: 1);
            Assert.Equal(single.ExitBlock, batch[i].ExitBlock);
            Assert.Equal(single.Logits, batch[i].Logits);
        }
    }

    /// <summary>
    /// One sentence with its products split over threads equals it on one thread. The shapes are large enough that the
    /// widest products really split (G1/F1 of a 64-token sentence: M·N·K/32 int8 units or M·N·words binary units ≥ 2
    /// parts' minimum): smaller ones stay on the calling thread and would test nothing.
    /// </summary>
    [Theory]
    [InlineData(8, 1024)]
    [InlineData(1, 2048)]
    public void GemmThreadsDoNotChangeResults(int actBits, int ff)
    {
        Architecture a = RandomWeights.Shape(actBits, layers: 2, dim: 256, ff: ff, heads: 4, maxLength: 64);
        long widest = actBits == 1 ? 64L * ff * (256 / 64) : 64L * ff * 256 / 32;
        Assert.True(widest >= 2 * GemmThreads.MinWorkPerPart, "shape too small to split");
        var engine = new InferenceEngine(RandomWeights.Create(a, seed: 21), KernelRegistry.Selected, Labels3);
        var random = new Random(2);
        for (int i = 0; i < 3; i++)
        {
            int[] ids = Enumerable.Range(0, 64).Select(_ => random.Next(a.VocabSize)).ToArray();
            Assert.Equal(engine.Classify(ids, ExitPolicy.Never, 1).Logits, engine.Classify(ids, ExitPolicy.Never, 4).Logits);
        }
    }

    /// <summary>
    /// 2- and 4-bit activations run on the int8 kernel when it is vectorised and on the bit planes otherwise
    /// (ExecutionPlan.EncodingFor): both give the exact integer products, the same helpers run around them, so the
    /// logits must be the same bits. (Under a forced leg whose int8 kernel is scalar both sets plan bit planes.)
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void CodesAndPlanesGiveTheSameBits(int actBits)
    {
        Architecture a = RandomWeights.Shape(actBits);
        ModelWeights model = RandomWeights.Create(a, seed: 41 + actBits);
        var codes = new InferenceEngine(model, KernelRegistry.Selected, Labels3);
        var planes = new InferenceEngine(model, KernelRegistry.WithKernels(KernelRegistry.Selected, "code-scalar"), Labels3);
        Assert.Equal(ActivationEncoding.Planes, planes.Plan.Activations);
        if (KernelRegistry.Selected.Code.Isa >= KernelIsa.Avx2)
            Assert.Equal(ActivationEncoding.Codes, codes.Plan.Activations);
        foreach (int[] ids in RandomWeights.Texts(a, 12, seed: 9))
            Assert.Equal(planes.Classify(ids, ExitPolicy.Never, 1).Logits, codes.Classify(ids, ExitPolicy.Never, 1).Logits);
    }

    /// <summary>
    /// A 1-bit model's binary layers carry the groups the table-lookup XNOR kernels read (without them they run at
    /// nibble-lookup speed, the same bits: only a benchmark would notice); wider activations never read them.
    /// </summary>
    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    [InlineData(8, false)]
    public void OneBitModelsKeepTheLookupKernelsGroups(int actBits, bool kept)
    {
        Architecture a = RandomWeights.Shape(actBits);
        foreach (BlockWeights b in RandomWeights.Create(a, seed: 3).Blocks)
            foreach (LinearWeights w in new[] { b.Q, b.K, b.V, b.O, b.G1, b.G2, b.F1, b.F2 })
            {
                int rows = (w.Out + 63) / 64 * 64;
                Assert.Equal(kept ? SixBitGroups.Count(w.In) * rows : 0, w.Packed!.LookupGroupBlocks(LookupLayouts.SixBit).Length);
                Assert.Equal(kept ? NibbleGroups.Count(w.In) * rows : 0, w.Packed!.LookupGroupBlocks(LookupLayouts.Nibble).Length);
            }
    }

    [Fact]
    public void BadIdsAreRejectedWithTheirPosition()
    {
        Architecture a = RandomWeights.Shape(8);
        var engine = new InferenceEngine(RandomWeights.Create(a, 1), KernelRegistry.Selected, Labels3);
        var outOfRange = Assert.Throws<ArgumentOutOfRangeException>(() => engine.Classify([1, 2, a.VocabSize], ExitPolicy.Never, 1));
        Assert.Contains("position 2", outOfRange.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Classify([-1], ExitPolicy.Never, 1));
        Assert.Contains("max_len", Assert.Throws<ArgumentException>(() => engine.Classify(new int[a.MaxLength + 1], ExitPolicy.Never, 1)).Message);
        Assert.Throws<ArgumentException>(() => engine.Classify([], ExitPolicy.Never, 1));
        var batchError = Assert.Throws<ArgumentOutOfRangeException>(() =>
            engine.ClassifyBatch([new[] { 1 }, new[] { 1, 99999 }], ExitPolicy.Never, 1));
        Assert.Contains("sample 1", batchError.Message);
    }

    [Fact]
    public void SteadyStateClassifyAllocatesOnlyTheResult()
    {
        Architecture a = RandomWeights.Shape(8);
        var engine = new InferenceEngine(RandomWeights.Create(a, 1), KernelRegistry.Selected, Labels3);
        int[] ids = RandomWeights.Texts(a, 1, 4)[0];
        engine.Classify(ids, ExitPolicy.Never, 1); // warm: the workspace is created once
        ClassificationResult result = engine.Classify(ids, ExitPolicy.Never, 1);
        long allocated = Allocations.Least(() => result = engine.Classify(ids, ExitPolicy.Never, 1));
        // The result object and its four arrays (probabilities, entropies, logits, blocks run), plus array headers.
        long resultBytes = 128 + 4 * 32 + 4L * (result.Probabilities.Length + result.Entropies.Length + result.Logits.Length + result.BlocksRun.Length);
        Assert.True(allocated <= resultBytes, $"allocated {allocated} bytes, the result needs about {resultBytes}");
    }
}
