using BinEngine.Format;
using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>The public API on a real (tiny, trained) model: text in, results out, bad input named.</summary>
public class BeexModelTests : IClassFixture<TinyModelFixture>
{
    private readonly TinyModelFixture _fixture;

    public BeexModelTests(TinyModelFixture fixture) => _fixture = fixture;

    private static string[] DevSentences(int count) =>
        File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Skip(1).Take(count).Select(l => l.Split('\t')[0]).ToArray();

    [Fact]
    public void ClassifyTextEqualsClassifyOfItsIds()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        foreach (string text in DevSentences(20))
        {
            ClassificationResult fromText = model.Classify(text);
            ClassificationResult fromIds = model.Classify(model.Tokenizer.Encode(text, model.Architecture.MaxLength));
            Assert.Equal(fromIds.Logits, fromText.Logits);
            Assert.Equal(fromIds.ExitBlock, fromText.ExitBlock);
            Assert.Equal(model.Labels[fromText.Label], fromText.LabelName);
            Assert.Equal(1f, fromText.Probabilities.Sum(), 5);
            Assert.Equal(fromText.ExitBlock, fromText.Entropies.Length);
            Assert.Equal((double)(model.Architecture.Layers - fromText.ExitBlock) / model.Architecture.Layers, fromText.ComputeSkipped);
        }
    }

    [Fact]
    public void BatchOfTextsEqualsOneByOneOnMixedLengths()
    {
        // two batch threads on any machine: the texts are tokenized in parallel too
        using BeexModel model = BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 2 });
        // Dev sentences plus long ones that get truncated and short ones, shuffled so lengths mix in every chunk.
        var texts = DevSentences(300).ToList();
        texts.Add(string.Join(' ', Enumerable.Repeat("a remarkably long and winding review", 40)));
        texts.Add("bad");
        var random = new Random(7);
        string[] shuffled = texts.OrderBy(_ => random.Next()).ToArray();
        ClassificationResult[] batch = model.ClassifyBatch(shuffled);
        for (int i = 0; i < shuffled.Length; i++)
        {
            ClassificationResult single = model.Classify(shuffled[i]);
            Assert.Equal(single.Logits, batch[i].Logits);
            Assert.Equal(single.ExitBlock, batch[i].ExitBlock);
            Assert.Equal(single.Truncated, batch[i].Truncated);
            Assert.Equal(single.TokenCount, batch[i].TokenCount);
        }
        Assert.Contains(batch, r => r.ExitBlock < model.Architecture.Layers);
    }

    /// <summary>
    /// ClassifyStream over a lazy sequence: every result equals Classify one by one, in order, for chunk sizes that do
    /// and do not divide the length; the sequence is read one chunk ahead of the results, not all at once.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(50)]
    [InlineData(1024)]
    public void StreamEqualsOneByOneAndReadsOneChunkAtATime(int chunkSize)
    {
        using BeexModel model = BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 2 });
        string[] texts = DevSentences(50);
        int read = 0;
        IEnumerable<string> Source()
        {
            foreach (string text in texts)
            {
                read++;
                yield return text;
            }
        }
        int i = 0;
        foreach (ClassificationResult r in model.ClassifyStream(Source(), chunkSize: chunkSize))
        {
            Assert.Equal(Math.Min(texts.Length, (i / chunkSize + 1) * chunkSize), read);
            ClassificationResult single = model.Classify(texts[i++]);
            Assert.Equal(single.Logits, r.Logits);
            Assert.Equal(single.ExitBlock, r.ExitBlock);
        }
        Assert.Equal(texts.Length, i);
        Assert.Empty(model.ClassifyStream([]));
    }

    /// <summary>A text without tokens fails the stream at its chunk, named by its index in the stream; the chunks before it were answered.</summary>
    [Fact]
    public void StreamErrorsNameTheIndexInTheStream()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        string[] texts = Enumerable.Range(0, 12).Select(i => i == 9 ? " " : $"fine {i}").ToArray();
        var answered = new List<ClassificationResult>();
        var error = Assert.Throws<ArgumentException>(() =>
        {
            foreach (ClassificationResult r in model.ClassifyStream(texts, chunkSize: 4))
                answered.Add(r);
        });
        Assert.StartsWith("text 9:", error.Message);
        Assert.Equal(8, answered.Count);
        Assert.Throws<ArgumentNullException>(() => model.ClassifyStream(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ClassifyStream(texts, chunkSize: 0));
        string[] withNull = ["fine", "fine", null!];
        Assert.Contains("text 2", Assert.Throws<ArgumentNullException>(() => model.ClassifyStream(withNull, chunkSize: 2).ToList()).Message);
    }

    [Fact]
    public void ConcurrentCallersGetTheSequentialResults()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        string[] texts = DevSentences(64);
        ClassificationResult[] expected = texts.Select(t => model.Classify(t)).ToArray();
        var actual = new ClassificationResult[texts.Length];
        Parallel.For(0, texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            ClassificationResult r = model.Classify(texts[i % texts.Length]);
            if (i < texts.Length) actual[i] = r;
            Assert.Equal(expected[i % texts.Length].Logits, r.Logits);
        });
        Assert.All(actual, r => Assert.NotNull(r));
    }

    [Fact]
    public void LongTextIsTruncatedAndSaysSo()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        ClassificationResult r = model.Classify(string.Join(' ', Enumerable.Repeat("wonderful", 500)));
        Assert.True(r.Truncated);
        Assert.Equal(model.Architecture.MaxLength, r.TokenCount);
        Assert.False(model.Classify("wonderful").Truncated);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t\n ")]
    [InlineData("\u0000\u0001")]
    public void EmptyTextIsAClearError(string text)
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => model.Classify(text)).Message);
        var batchError = Assert.Throws<ArgumentException>(() => model.ClassifyBatch(["fine", text]));
        Assert.Contains("text 1", batchError.Message);
        // a batch large enough to be tokenized on several threads still names the first empty text by index
        string[] many = Enumerable.Range(0, 200).Select(i => i is 37 or 150 ? text : $"fine {i}").ToArray();
        using BeexModel parallel = BeexModel.Load(_fixture.Path, new BeexModelOptions { BatchThreads = 2 });
        Assert.StartsWith("text 37:", Assert.Throws<ArgumentException>(() => parallel.ClassifyBatch(many)).Message);
    }

    [Fact]
    public void PoliciesComeFromTheFileAndCanBeOverridden()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        Assert.Equal(ExitPolicyKind.EntropyReduction, model.DefaultPolicy.Kind);
        string text = DevSentences(1)[0];
        Assert.Equal(model.Architecture.Layers, model.Classify(text, ExitPolicy.Never).ExitBlock);
        // Confidence ≥ 0 holds at once: every sample leaves at block 1.
        Assert.Equal(1, model.Classify(text, new ExitPolicy(ExitPolicyKind.Confidence, tau: 0f)).ExitBlock);
        Assert.Throws<ArgumentException>(() => model.Policy("no_such_policy"));
    }

    [Fact]
    public void SteadyStateClassifyOfTextAllocatesOnlyTheResult()
    {
        using BeexModel model = BeexModel.Load(_fixture.Path);
        string text = DevSentences(1)[0];
        model.Classify(text);
        ClassificationResult r = model.Classify(text);
        long allocated = Allocations.Least(() => r = model.Classify(text));
        long resultBytes = 128 + 4 * 32 + 4L * (r.Probabilities.Length + r.Entropies.Length + r.Logits.Length + r.BlocksRun.Length);
        Assert.True(allocated <= resultBytes, $"allocated {allocated} bytes, the result needs about {resultBytes}");
    }

    [Fact]
    public void ACorruptModelFileIsAModelFormatException()
    {
        byte[] bytes = File.ReadAllBytes(_fixture.Path);
        string broken = Path.Combine(Path.GetTempPath(), $"broken-{Guid.NewGuid():N}.bex");
        try
        {
            File.WriteAllBytes(broken, bytes.AsSpan(0, bytes.Length / 2).ToArray());
            Assert.Throws<ModelFormatException>(() => BeexModel.Load(broken));
            bytes[^100] ^= 0xFF; // inside the data: the checksum catches it
            File.WriteAllBytes(broken, bytes);
            Assert.Throws<ModelFormatException>(() => BeexModel.Load(broken));
        }
        finally
        {
            File.Delete(broken);
        }
    }
}
