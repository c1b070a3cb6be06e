using System.Globalization;
using System.Text;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

[Collection(CliCollection.Name)]
public class BatchCommandTests(CliFixture fx)
{
    /// <summary>The first <paramref name="rows"/> rows of the SST-2 dev set, with its header.</summary>
    private string DevSample(int rows)
    {
        var lines = File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Take(rows + 1);
        return fx.WriteFile("dev.tsv", string.Join("\n", lines) + "\n");
    }

    private static JsonElement[] ReadJsonl(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();

    [Fact]
    public void TsvInGivesOneJsonRowPerInputRowInOrderAsTheLibraryClassifies()
    {
        string input = DevSample(30);
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        var r = fx.RunWithModel("batch", input, "-o", output, "--chunk-size", "8");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("30 rows in, 30 ok, 0 with errors", r.Stderr);

        using var model = BeexModel.Load(fx.ModelPath);
        var texts = File.ReadLines(input).Skip(1).Select(l => l.Split('\t')[0]).ToArray();
        var rows = ReadJsonl(output);
        Assert.Equal(texts.Length, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            var expected = model.Classify(texts[i]);
            Assert.Equal(i, rows[i].GetProperty("row").GetInt32());
            Assert.Equal(expected.Label, rows[i].GetProperty("label").GetInt32());
            Assert.Equal(expected.LabelName, rows[i].GetProperty("label_name").GetString());
            Assert.Equal(expected.ExitBlock, rows[i].GetProperty("exit_block").GetInt32());
            Assert.Equal(expected.Truncated, rows[i].GetProperty("truncated").GetBoolean());
            var p = rows[i].GetProperty("probabilities").EnumerateArray().Select(e => e.GetRawText()).ToArray();
            Assert.Equal(expected.Probabilities.Select(x => ((double)x).ToString("0.000000", CultureInfo.InvariantCulture)), p);
        }
    }

    [Fact]
    public void BadRowsGetErrorRowsNeverSkipsAndExitCode1()
    {
        // header; ok; empty text; too few columns (text is column 1); invalid UTF-8; only spaces; ok
        string input = Path.Combine(fx.NewFolder(), "bad.tsv");
        using (var f = File.Create(input))
        {
            f.Write("id\ttext\n1\tgood fun\n2\t\n3\n"u8);
            f.Write("4\tbad "u8);
            f.Write([0xFF, 0xFE]);
            f.Write(" bytes\n5\t   \n6\tawful\n"u8);
        }
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        var r = fx.RunWithModel("batch", input, "-o", output);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("6 rows in, 2 ok, 4 with errors", r.Stderr);
        var rows = ReadJsonl(output);
        Assert.Equal(6, rows.Length);
        bool[] isError = rows.Select(x => x.TryGetProperty("error", out _)).ToArray();
        Assert.Equal(new[] { false, true, true, true, true, false }, isError);
        Assert.Equal(Enumerable.Range(0, 6), rows.Select(x => x.GetProperty("row").GetInt32()));
        Assert.Contains("empty", rows[1].GetProperty("error").GetString());
        Assert.Contains("column", rows[2].GetProperty("error").GetString());
        Assert.Contains("UTF-8", rows[3].GetProperty("error").GetString());
    }

    [Fact]
    public void AHeaderWithoutTheTextColumnIsUsageError()
    {
        string input = fx.WriteFile("in.tsv", "id\tlabel\n1\t0\n");
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        var named = fx.RunWithModel("batch", input, "-o", output, "--text-column", "review");
        Assert.Equal(2, named.ExitCode);
        Assert.Contains("no column 'review'", named.Stderr);
        var unnamed = fx.RunWithModel("batch", input, "-o", output);
        Assert.Equal(2, unnamed.ExitCode);
        Assert.Contains("--text-column", unnamed.Stderr);
        Assert.Equal(2, fx.RunWithModel("batch", Path.Combine(fx.Directory, "missing.tsv"), "-o", output).ExitCode);
    }

    [Fact]
    public void JsonlCsvAndPlainInputsAndTsvOutput()
    {
        string jsonl = fx.WriteFile("in.jsonl", "{\"text\":\"good fun\"}\n{\"body\":\"x\"}\nnot json\n{\"text\":7}\n[1]\n{\"text\":\"awful\"}\n");
        string csv = fx.WriteFile("in.csv", "id,text\n1,\"good, fun\"\n2,\"a \"\"quoted\"\"\nline break\"\n3,awful\n");
        string plain = fx.WriteFile("in.txt", "good fun\n\nawful\n");

        string o1 = Path.Combine(fx.NewFolder(), "o.jsonl");
        var r1 = fx.RunWithModel("batch", jsonl, "-o", o1);
        Assert.Equal(1, r1.ExitCode);
        Assert.Equal(new[] { false, true, true, true, true, false }, ReadJsonl(o1).Select(x => x.TryGetProperty("error", out _)));

        string o2 = Path.Combine(fx.NewFolder(), "o.tsv");
        var r2 = fx.RunWithModel("batch", csv, "-o", o2);
        Assert.True(r2.ExitCode == 0, r2.ToString());
        var tsv = File.ReadAllLines(o2);
        Assert.Equal("row\tlabel\tlabel_name\tp_negative\tp_positive\texit_block\tblocks_run\tblocks\ttokens\ttruncated\terror", tsv[0]);
        Assert.Equal(4, tsv.Length); // the quoted line break stays inside row 1
        Assert.All(tsv.Skip(1), l => Assert.Equal(11, l.Split('\t').Length));
        using var model = BeexModel.Load(fx.ModelPath);
        Assert.Equal(model.Classify("a \"quoted\"\nline break").TokenCount.ToString(CultureInfo.InvariantCulture), tsv[2].Split('\t')[8]);
        Assert.Equal(string.Join(",", model.Classify("a \"quoted\"\nline break").BlocksRun), tsv[2].Split('\t')[6]);

        string o3 = Path.Combine(fx.NewFolder(), "o.jsonl");
        var r3 = fx.RunWithModel("batch", plain, "-o", o3, "--output-format", "jsonl");
        Assert.Equal(1, r3.ExitCode);
        Assert.Equal(new[] { false, true, false }, ReadJsonl(o3).Select(x => x.TryGetProperty("error", out _)));
    }

    [Fact]
    public void LongTextsAreTruncatedAndFlaggedAndOverlongRowsAreErrors()
    {
        string longText = string.Join(' ', Enumerable.Repeat("good", 200)); // 200 tokens > max_len 48
        string input = fx.WriteFile("in.txt", $"{longText}\nshort\n");
        string output = Path.Combine(fx.NewFolder(), "o.jsonl");
        var r = fx.RunWithModel("batch", input, "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = ReadJsonl(output);
        Assert.True(rows[0].GetProperty("truncated").GetBoolean());
        Assert.Equal(48, rows[0].GetProperty("tokens").GetInt32());
        Assert.False(rows[1].GetProperty("truncated").GetBoolean());
        Assert.Contains("(1 truncated to max_len)", r.Stderr);

        // A resumed run counts the truncated rows it kept as well.
        File.WriteAllLines(output, [File.ReadAllLines(output)[0]]);
        var resumed = fx.RunWithModel("batch", input, "-o", output, "--resume");
        Assert.Contains("2 rows in, 2 ok, 0 with errors (1 truncated to max_len)", resumed.Stderr);

        var limited = fx.RunWithModel("batch", input, "-o", output, "--max-row-bytes", "100");
        Assert.Equal(1, limited.ExitCode);
        rows = ReadJsonl(output);
        Assert.Contains("longer than 100 bytes", rows[0].GetProperty("error").GetString());
        Assert.False(rows[1].TryGetProperty("error", out _));
    }

    [Fact]
    public void OutputIsTheSameForAnyThreadCountAndChunkSize()
    {
        string input = DevSample(40);
        string a = Path.Combine(fx.NewFolder(), "a.jsonl"), b = Path.Combine(fx.NewFolder(), "b.jsonl");
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", a, "--threads", "1", "--chunk-size", "1024").ExitCode);
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", b, "--threads", "2", "--chunk-size", "3").ExitCode);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        // Chunks of one row: the most hand-overs between the reading task and the classifying loop.
        string c = Path.Combine(fx.NewFolder(), "c.jsonl");
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", c, "--threads", "2", "--chunk-size", "1").ExitCode);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(c));
    }

    [Theory]
    [InlineData("out.jsonl")]
    [InlineData("out.tsv")]
    public void ResumeAfterAnInterruptionGivesTheSameBytesAsAnUninterruptedRun(string name)
    {
        // Bad rows too, so error rows are counted back when resuming.
        string input = fx.WriteFile("in.tsv", "sentence\tlabel\n" + string.Join("\n",
            File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Skip(1).Take(25).Select((l, i) => i % 7 == 3 ? "\t1" : l)) + "\n");
        string full = Path.Combine(fx.NewFolder(), name);
        var first = fx.RunWithModel("batch", input, "-o", full);
        Assert.Equal(1, first.ExitCode);
        byte[] expected = File.ReadAllBytes(full);

        // Cut at the start, inside the header/first row, mid-line, at a line end, and not at all.
        int secondLineEnd = Array.IndexOf(expected, (byte)'\n', Array.IndexOf(expected, (byte)'\n') + 1) + 1;
        foreach (int cut in new[] { 0, 5, expected.Length / 2, secondLineEnd, expected.Length - 1, expected.Length })
        {
            string partial = Path.Combine(fx.NewFolder(), name);
            File.WriteAllBytes(partial, expected.AsSpan(0, cut).ToArray());
            // An interrupted run leaves its record of model and options beside its rows (--resume checks it).
            File.Copy(BinEngine.Cli.Batch.RunRecord.PathFor(full), BinEngine.Cli.Batch.RunRecord.PathFor(partial));
            var resumed = fx.RunWithModel("batch", input, "-o", partial, "--resume", "--chunk-size", "4");
            Assert.True(resumed.ExitCode == 1, $"cut {cut}: {resumed}"); // the error rows of the first part still count
            Assert.True(resumed.Stderr.Contains("25 rows in, 21 ok, 4 with errors"), $"cut {cut}: {resumed}");
            Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(partial)), $"cut at {cut} of {expected.Length}");
        }
    }

    [Fact]
    public void ResumeRefusesAFileThatIsNotItsOutput()
    {
        string input = DevSample(5);
        string output = fx.WriteFile("out.jsonl", "{\"something\":\"else\"}\n");
        var r = fx.RunWithModel("batch", input, "-o", output, "--resume");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("cannot resume", r.Stderr);
        Assert.Equal("{\"something\":\"else\"}\n", File.ReadAllText(output));

        // More rows in the output than in the input.
        string longer = Path.Combine(fx.NewFolder(), "o.jsonl");
        Assert.Equal(0, fx.RunWithModel("batch", DevSample(8), "-o", longer).ExitCode);
        Assert.Equal(2, fx.RunWithModel("batch", input, "-o", longer, "--resume").ExitCode);
    }

    [Fact]
    public void PlainProgressLinesGoToStderrOnly()
    {
        string input = DevSample(5);
        string output = Path.Combine(fx.NewFolder(), "o.jsonl");
        var r = fx.RunWithModel("batch", input, "-o", output);
        Assert.Empty(r.Stdout);
        Assert.Contains("5 rows in", r.Stderr);
        Assert.Equal(5, File.ReadAllLines(output, Encoding.UTF8).Length);
    }
}
