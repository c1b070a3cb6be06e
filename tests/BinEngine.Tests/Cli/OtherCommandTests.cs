using System.Text.Json;
using BinEngine.Tokenization;

namespace BinEngine.Tests.Cli;

[Collection(CliCollection.Name)]
public class OtherCommandTests(CliFixture fx)
{
    [Fact]
    public void TokenizeWritesTheModelsIdsPerLine()
    {
        string[] lines = ["Hello, world!", "", string.Join(' ', Enumerable.Repeat("token", 100))];
        var r = CliFixture.Run(["tokenize", "--model", fx.ModelPath], string.Join("\n", lines) + "\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        var reference = BertWordPieceTokenizer.FromVocabFile(TestPaths.Repo(CliFixture.VocabRelative));
        Assert.Equal(3, r.Lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(r.Lines[i]);
            int[] ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(reference.Encode(lines[i]), ids);
            Assert.Equal(reference.ClsId, ids[0]);
            Assert.Equal(reference.SepId, ids[^1]);
            Assert.False(doc.RootElement.GetProperty("truncated").GetBoolean());
        }
        Assert.Equal(102, JsonDocument.Parse(r.Lines[2]).RootElement.GetProperty("count").GetInt32()); // no truncation by default

        var cut = CliFixture.Run(["tokenize", "--vocab", TestPaths.Repo(CliFixture.VocabRelative), "--max-length", "5", "--tokens"], lines[2] + "\n");
        using var c = JsonDocument.Parse(cut.Lines[0]);
        Assert.Equal(5, c.RootElement.GetProperty("ids").GetArrayLength());
        Assert.True(c.RootElement.GetProperty("truncated").GetBoolean());
        Assert.Equal("[SEP]", c.RootElement.GetProperty("tokens")[4].GetString());

        var json = CliFixture.Run(["tokenize", "--tokenizer-json", TestPaths.Repo("data/vocab/bert-base-uncased-tokenizer.json")], lines[0] + "\n");
        Assert.Equal(r.Lines[0], json.Lines[0]);

        Assert.Equal(2, CliFixture.Run(["tokenize", "--vocab", Path.Combine(fx.Directory, "none.txt")], "x\n").ExitCode);
        Assert.Equal(2, CliFixture.Run(["tokenize", "--vocab", TestPaths.Repo(CliFixture.VocabRelative), "--model", fx.ModelPath], "x\n").ExitCode);
        Assert.Equal(2, CliFixture.Run(["tokenize", "--model", fx.ModelPath, "--max-length", "1"], "x\n").ExitCode);
    }

    [Fact]
    public void IsaPrintsTheKernelReport()
    {
        var r = CliFixture.Run(["isa"]);
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("kernels: ", r.Stdout);
        Assert.Contains(BinEngine.Kernels.KernelRegistry.Selected.Xnor.Name, r.Stdout);
    }

    [Fact]
    public void BenchJsonHasEndToEndAndKernelNumbers()
    {
        var r = fx.RunWithModel("bench", "--seconds", "0.3", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.True(o.GetProperty("sentences_per_second_batch1").GetDouble() > 0);
        Assert.True(o.GetProperty("sentences_per_second_batch64").GetDouble() > 0);
        Assert.Equal(BinEngine.Kernels.KernelRegistry.Selected.ToString(), o.GetProperty("kernels").GetString());
        var gemms = o.GetProperty("gemm").GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(new[] { "W1A1", "W1A8", "FP32" }, gemms.Select(g => g.GetProperty("family").GetString()));
        Assert.All(gemms, g => Assert.True(g.GetProperty("median_us").GetDouble() > 0));
        // No twin file: a random FP32 twin of the same shapes still gives a ratio.
        var randomTwin = o.GetProperty("fp32");
        Assert.StartsWith("random weights", randomTwin.GetProperty("model").GetString());
        Assert.Equal("W32A32E32", randomTwin.GetProperty("model_bits").GetString());
        Assert.True(o.GetProperty("ratio_batch1").GetDouble() > 0);

        var withTwin = fx.RunWithModel("bench", "--seconds", "0.3", "--fp32", fx.ModelPath);
        Assert.True(withTwin.ExitCode == 0, withTwin.ToString());
        Assert.Contains("binary / FP32", withTwin.Stdout);
        Assert.Equal(2, fx.RunWithModel("bench", "--seconds", "0").ExitCode);
    }

    [Fact]
    public void ConvertAndInspectUnderTheSameCommand()
    {
        string output = Path.Combine(fx.NewFolder(), "converted.bex");
        var convert = CliFixture.Run(["convert", TestPaths.Repo("models/tiny-smoke/model.safetensors"),
            "--vocab", TestPaths.Repo(CliFixture.VocabRelative), "-o", output]);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(File.ReadAllBytes(fx.ModelPath), File.ReadAllBytes(output));

        var inspect = CliFixture.Run(["inspect", output, "--json"]);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var o = JsonDocument.Parse(inspect.Stdout).RootElement;
        Assert.Equal(new FileInfo(output).Length, o.GetProperty("file_bytes").GetInt64());
        Assert.True(o.GetProperty("fp32_bytes").GetInt64() > o.GetProperty("file_bytes").GetInt64());
        Assert.True(o.GetProperty("ratio").GetDouble() > 1);

        string corrupt = fx.WriteFile("corrupt.bex", "BEXF but not really");
        Assert.Equal(2, CliFixture.Run(["inspect", corrupt]).ExitCode);
        Assert.Equal(2, CliFixture.Run(["inspect", Path.Combine(fx.Directory, "none.bex")]).ExitCode);
        Assert.Equal(2, CliFixture.Run(["convert", Path.Combine(fx.Directory, "none.safetensors"), "-o", output]).ExitCode);
    }
}
