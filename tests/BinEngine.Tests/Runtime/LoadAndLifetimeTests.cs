using System.Diagnostics;
using BinEngine.Format;
using BinEngine.Runtime;
using BinEngine.Tests.ModelFileTests;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// How a model is loaded and how long it lives: options fixed at load, files that change or are not
/// files, values that would overflow, long sequences, Dispose racing classification. Each test here
/// reproduces a defect an independent campaign found (issue 17) or an API promise (issue 16).
/// </summary>
public sealed class LoadAndLifetimeTests : IClassFixture<TinyModelFixture>
{
    private readonly TinyModelFixture _fixture;

    public LoadAndLifetimeTests(TinyModelFixture fixture) => _fixture = fixture;

    private static readonly string[] Texts =
    [
        "a gorgeous, witty, seductive movie.", "the plot is thin and the jokes fall flat.",
        "it's not a bad film, just a forgettable one.", "an absolute delight", "what a fine mess",
    ];

    private string TempCopy(byte[]? bytes = null)
    {
        string path = Path.Combine(Path.GetTempPath(), $"lifetime-{Guid.NewGuid():N}.bex");
        File.WriteAllBytes(path, bytes ?? File.ReadAllBytes(_fixture.Path));
        return path;
    }

    private static void AssertSameAnswer(ClassificationResult expected, ClassificationResult actual)
    {
        Assert.Equal(expected.Label, actual.Label);
        Assert.Equal(expected.ExitBlock, actual.ExitBlock);
        Assert.Equal(expected.Logits, actual.Logits); // same process, same kernels: bit for bit
    }

    [Fact]
    public void AMissingFileIsFileNotFound()
    {
        var e = Assert.Throws<FileNotFoundException>(() => BeexModel.Load("/no/such/model.bex"));
        Assert.Contains("/no/such/model.bex", e.Message);
    }

    [Fact]
    public async Task AFifoOrDeviceIsRefusedBeforeItIsOpened()
    {
        // Opening a FIFO for reading blocks until a writer comes: the load must refuse it from stat alone.
        string fifo = Path.Combine(Path.GetTempPath(), $"fifo-{Guid.NewGuid():N}");
        using (var mk = Process.Start("mkfifo", fifo))
            mk.WaitForExit();
        try
        {
            foreach (string path in new[] { fifo, "/dev/zero" })
            {
                Task<Exception> load = Task.Run(() => Record.Exception(() => BeexModel.Load(path).Dispose()));
                Assert.Same(load, await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(20))));
                var e = Assert.IsType<ModelFormatException>(await load);
                Assert.Contains("not a regular file", e.Message);
            }
        }
        finally
        {
            File.Delete(fifo);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OverwritingOrTruncatingTheFileInPlaceCannotReachALoadedModel(bool truncateToNothing)
    {
        // `cp new.bex model.bex` rewrites the same inode; a mapping of it would fault (SIGBUS) on the lost
        // pages. The default load holds a private copy, so the model answers as before.
        string path = TempCopy();
        try
        {
            using BeexModel model = BeexModel.Load(path);
            ClassificationResult[] before = model.ClassifyBatch(Texts);
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                stream.SetLength(truncateToNothing ? 0 : 100);
                if (!truncateToNothing)
                    stream.Write(new byte[100]);
            }
            ClassificationResult[] after = model.ClassifyBatch(Texts);
            for (int i = 0; i < Texts.Length; i++)
                AssertSameAnswer(before[i], after[i]);
            Assert.Throws<ModelFormatException>(() => BeexModel.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AMappedModelSurvivesTheSupportedDeploymentRenameOver()
    {
        string path = TempCopy(), next = TempCopy();
        try
        {
            using BeexModel model = BeexModel.Load(path, new BeexModelOptions { MemoryMap = true });
            ClassificationResult before = model.Classify(Texts[0]);
            File.Move(next, path, overwrite: true); // rename: the mapping keeps the old inode
            AssertSameAnswer(before, model.Classify(Texts[0]));
            using BeexModel reloaded = BeexModel.Load(path);
            AssertSameAnswer(before, reloaded.Classify(Texts[0]));
        }
        finally
        {
            File.Delete(path);
            File.Delete(next);
        }
    }

    [Fact]
    public void LoadFromStreamAndMemoryEqualsLoadFromPath()
    {
        using BeexModel fromPath = BeexModel.Load(_fixture.Path);
        byte[] bytes = File.ReadAllBytes(_fixture.Path);
        using BeexModel fromMemory = BeexModel.Load(bytes);
        using var stream = new MemoryStream(bytes);
        using BeexModel fromStream = BeexModel.Load(stream);
        foreach (string text in Texts)
        {
            ClassificationResult expected = fromPath.Classify(text);
            AssertSameAnswer(expected, fromMemory.Classify(text));
            AssertSameAnswer(expected, fromStream.Classify(text));
            AssertSameAnswer(expected, fromPath.Classify(text.AsSpan()));
        }
        Assert.Throws<ModelFormatException>(() => BeexModel.Load(bytes.AsSpan(0, 1000)));
    }

    [Fact]
    public void OptionsAreFixedAtLoadAndValidated()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path, new BeexModelOptions { Threads = 2, BatchThreads = 3 });
        Assert.Equal(2, model.Threads);
        Assert.Equal(3, model.BatchThreads);
        Assert.Throws<ArgumentOutOfRangeException>(() => BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 0 }));
    }

    [Fact]
    public void EveryCallAfterDisposeIsObjectDisposed()
    {
        BeexModel model = BeexModel.Load(_fixture.Path);
        int[] ids = model.Tokenizer.Encode(Texts[0], model.Architecture.MaxLength);
        model.Dispose();
        model.Dispose(); // twice is fine
        Assert.Throws<ObjectDisposedException>(() => model.Classify(Texts[0]));
        Assert.Throws<ObjectDisposedException>(() => model.Classify(ids.AsSpan()));
        Assert.Throws<ObjectDisposedException>(() => model.ClassifyBatch(Texts));
        Assert.Throws<ObjectDisposedException>(() => model.ClassifyBatch([(ReadOnlyMemory<int>)ids]));
    }

    [Fact]
    public async Task DisposeWhileOtherThreadsClassifyNeverCrashes()
    {
        // Before the lease count, Dispose unmapped the weights under running calls (AccessViolation,
        // the process died). Now a call either finishes with the right answer or meets
        // ObjectDisposedException; nothing else.
        using BeexModel reference = BeexModel.Load(_fixture.Path);
        ClassificationResult[] expected = reference.ClassifyBatch(Texts);
        string[] many = Enumerable.Range(0, 200).Select(i => Texts[i % Texts.Length]).ToArray();
        for (int round = 0; round < 20; round++)
        {
            BeexModel model = BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 2 });
            int answered = 0;
            var start = new ManualResetEventSlim();
            Task[] callers = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
            {
                start.Wait();
                for (int i = 0; ; i++)
                {
                    try
                    {
                        if (t % 2 == 0)
                        {
                            ClassificationResult r = model.Classify(Texts[i % Texts.Length]);
                            AssertSameAnswer(expected[i % Texts.Length], r);
                        }
                        else
                        {
                            ClassificationResult[] rs = model.ClassifyBatch(many);
                            for (int k = 0; k < rs.Length; k++)
                                AssertSameAnswer(expected[k % Texts.Length], rs[k]);
                        }
                        Interlocked.Increment(ref answered);
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                }
            })).ToArray();
            start.Set();
            Thread.Sleep(round % 5); // dispose at different points of the calls
            model.Dispose();
            Task all = Task.WhenAll(callers);
            Assert.True(all == await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(60))), "a caller did not stop after Dispose");
            await all; // rethrows a caller's failed assertion or unexpected exception
        }
    }

    [Fact]
    public void BatchesCanBeCancelledAndReportProgress()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 1 });
        string[] many = Enumerable.Range(0, 100).Select(i => Texts[i % Texts.Length]).ToArray();
        var reports = new List<int>();
        model.ClassifyBatch(many, progress: new SynchronousProgress(reports.Add));
        Assert.Equal(100, reports[^1]);
        Assert.Equal(reports.Order(), reports);
        int chunk = BinEngine.Runtime.InferenceEngine.ChunkSamples;
        Assert.Equal((100 + chunk - 1) / chunk, reports.Count); // one report per chunk

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => model.ClassifyBatch(many, cancellationToken: cancelled.Token));
    }

    private sealed class SynchronousProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    [Fact]
    public void TheFilesSpecialTokensReachTheTokenizer()
    {
        // The file's special tokens were validated, then dropped: the tokenizer used [CLS]/[SEP] whatever
        // the file said. "[unused0]" and "[unused1]" are ids 1 and 2 of the BERT vocabulary.
        using TensorFile source = TensorFile.Open(_fixture.Path);
        byte[] edited = FileSurgery.Rewrite(source, editMetadata: (key, value) => key switch
        {
            ModelKeys.TokenizerClsToken => MetadataValue.FromString("[unused0]"),
            ModelKeys.TokenizerSepToken => MetadataValue.FromString("[unused1]"),
            _ => value,
        }, addMore: w =>
        {
            if (!source.HasMetadata(ModelKeys.TokenizerClsToken)) w.Add(ModelKeys.TokenizerClsToken, MetadataValue.FromString("[unused0]"));
            if (!source.HasMetadata(ModelKeys.TokenizerSepToken)) w.Add(ModelKeys.TokenizerSepToken, MetadataValue.FromString("[unused1]"));
        });
        using BeexModel model = BeexModel.Load(edited);
        int[] ids = model.Tokenizer.Encode("hello", model.Architecture.MaxLength);
        Assert.Equal(1, ids[0]);
        Assert.Equal(2, ids[^1]);
    }

    public static TheoryData<string, int, float> BadValues => new()
    {
        { "blocks.0.ln1.weight", 3, float.NaN },
        { "blocks.1.attn.q.bias", 0, float.PositiveInfinity },
        { "exits.2.weight", 5, 3e38f },
        { "blocks.0.attn.k.alpha", 1, 1e38f },
        { "blocks.0.slfn.g1.alpha", 0, -0.5f },
        { "embed.ln.bias", 7, -65f },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void AValueThatCouldOverflowIsRefusedAtLoadNamingTensorAndIndex(string tensor, int index, float value)
    {
        // Valid checksums (re-stamped by the writer): only the value check stands between these files and
        // answers of NaN labelled "negative".
        using TensorFile source = TensorFile.Open(_fixture.Path);
        byte[] edited = FileSurgery.Rewrite(source, t => t.Name != tensor, addMore: w =>
        {
            float[] values = source.F32(tensor).ToArray();
            values[index] = value;
            w.AddF32(tensor, source.GetTensor(tensor).Shape.ToArray(), values);
        });
        var e = Assert.Throws<ModelFormatException>(() => BeexModel.Load(edited));
        Assert.Contains($"'{tensor}'[{index}]", e.Message);
    }

    [Fact]
    public void ALongMaxLenIsServedWithMemoryForTheTextsSeenAndBeyondTheBoundRefused()
    {
        // max_len 46,341 overflowed T² in 32 bits, 65,536 wrapped to 0 and 20,000 allocated 1.6 GB up
        // front. Now max_len is bounded (ModelConfig.MaxSequenceLength) and the attention scratch grows
        // with the longest text seen.
        using TensorFile source = TensorFile.Open(_fixture.Path);
        byte[] WithMaxLen(int maxLen) => FileSurgery.Rewrite(source,
            t => t.Name is not (ModelLayout.PositionEmbedding or ModelLayout.PositionScale),
            (key, value) => key == ModelKeys.MaxLen ? MetadataValue.FromInt64(maxLen) : value,
            w =>
            {
                // Position rows beyond the trained ones repeat them: the test is about sizes, not answers.
                TensorInfo table = source.GetTensor(ModelLayout.PositionEmbedding);
                int rows = table.Shape[0], words = (int)(table.ByteLength / 8 / rows);
                ReadOnlySpan<ulong> bits = source.Bits(ModelLayout.PositionEmbedding);
                ReadOnlySpan<float> scales = source.F32(ModelLayout.PositionScale);
                var newBits = new ulong[maxLen * words];
                var newScales = new float[maxLen];
                for (int r = 0; r < maxLen; r++)
                {
                    bits.Slice(r % rows * words, words).CopyTo(newBits.AsSpan(r * words));
                    newScales[r] = scales[r % rows];
                }
                w.AddBits(ModelLayout.PositionEmbedding, table.Planes, [maxLen, table.Shape[1]], newBits);
                w.AddF32(ModelLayout.PositionScale, [maxLen], newScales);
            });

        using BeexModel model = BeexModel.Load(WithMaxLen(ModelConfig.MaxSequenceLength));
        ClassificationResult shortText = model.Classify(Texts[0]);
        Assert.Equal(ModelConfig.MaxSequenceLength, model.Architecture.MaxLength);
        string longText = string.Join(' ', Enumerable.Repeat("a gorgeous movie", 2000));
        ClassificationResult longResult = model.Classify(longText);
        Assert.True(longResult.Truncated);
        Assert.Equal(ModelConfig.MaxSequenceLength, longResult.TokenCount);
        Assert.Equal(shortText.Label, model.Classify(Texts[0]).Label);

        var e = Assert.Throws<ModelFormatException>(() => BeexModel.Load(WithMaxLen(ModelConfig.MaxSequenceLength + 1)));
        Assert.Contains("max_len", e.Message);
    }

    [Fact]
    public void TheAttentionScratchGrowsWithTheLongestSampleNotMaxLen()
    {
        var a = new Architecture(100, ModelConfig.MaxSequenceLength, 64, 2, 1, 128, 2, 1, 8, 2, 1e-5f);
        var ws = new Workspace(a, ActivationEncoding.Codes);
        ws.Ensure(10, 1, 10);
        Assert.Equal(10, ws.SequenceCapacity);
        Assert.Equal(Attention.DirectScratch(10, a.HeadDim), (long)ws.Scores.Length); // the direct path's Kᵀ and padded score rows (> 10 × 10)
        ws.Ensure(12, 1, 12);
        Assert.Equal(20, ws.SequenceCapacity); // doubles, so slowly growing texts do not reallocate each call
        ws.Ensure(3000, 1, 3000);
        Assert.Equal(3000, ws.SequenceCapacity);
        ws.Ensure(3001, 1, 3001);
        Assert.Equal(ModelConfig.MaxSequenceLength, ws.SequenceCapacity); // doubling stops at max_len
        Assert.Equal(ModelConfig.MaxSequenceLength * ModelConfig.MaxSequenceLength, ws.Scores.Length);
    }
}
