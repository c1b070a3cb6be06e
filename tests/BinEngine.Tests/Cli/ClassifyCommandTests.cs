using System.Globalization;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

[Collection(CliCollection.Name)]
public class ClassifyCommandTests(CliFixture fx)
{
    private static readonly string[] Texts =
    [
        "a gorgeous, witty, seductive movie.",
        "the plot is thin and the jokes fall flat.",
        "it 's a charming and often affecting journey .",
    ];

    [Fact]
    public void PrintsLabelProbabilityAndExitPerTextAsTheLibraryComputesThem()
    {
        var r = fx.RunWithModel(["classify", .. Texts]);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var model = BeexModel.Load(fx.ModelPath);
        Assert.Equal(Texts.Length, r.Lines.Length);
        for (int i = 0; i < Texts.Length; i++)
        {
            var expected = model.Classify(Texts[i]);
            string p = expected.Probabilities[expected.Label].ToString("0.000", CultureInfo.InvariantCulture);
            Assert.Equal($"{expected.LabelName}  {p}  exit {expected.ExitBlock}/3", r.Lines[i]);
        }
    }

    [Fact]
    public void ReadsLinesFromStdinWhenGivenNoText()
    {
        var fromArgs = fx.RunWithModel(["classify", .. Texts]);
        var fromStdin = CliFixture.Run(["classify", "--model", fx.ModelPath], string.Join("\n", Texts) + "\n");
        Assert.Equal(0, fromStdin.ExitCode);
        Assert.Equal(fromArgs.Stdout, fromStdin.Stdout);
    }

    [Fact]
    public void JsonLinesParseAndCarryTheFields()
    {
        var r = fx.RunWithModel(["classify", "--json", .. Texts]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Texts.Length, r.Lines.Length);
        using var model = BeexModel.Load(fx.ModelPath);
        for (int i = 0; i < Texts.Length; i++)
        {
            string line = r.Lines[i];
            using var doc = JsonDocument.Parse(line);
            var o = doc.RootElement;
            int label = o.GetProperty("label").GetInt32();
            Assert.Equal(new[] { "negative", "positive" }[label], o.GetProperty("label_name").GetString());
            var probabilities = o.GetProperty("probabilities").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(2, probabilities.Length);
            Assert.Equal(1.0, probabilities.Sum(), 4);
            Assert.Equal(model.Classify(Texts[i]).ExitBlock, o.GetProperty("exit_block").GetInt32());
            Assert.Equal(3, o.GetProperty("blocks").GetInt32());
            Assert.False(o.GetProperty("truncated").GetBoolean());
        }
    }

    [Fact]
    public void AnEmptyTextGetsAnErrorLineInItsPlaceAndExitCode1()
    {
        var r = fx.RunWithModel(["classify", "good", "   ", "bad"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(3, r.Lines.Length);
        Assert.StartsWith("error:", r.Lines[1]);
        Assert.DoesNotContain("error", r.Lines[0]);
        Assert.Contains("1 of 3", r.Stderr);
    }

    [Fact]
    public void PolicyOptionsChangeWhereTextsExit()
    {
        var none = fx.RunWithModel(["classify", "--json", "--policy", "none", .. Texts]);
        Assert.All(none.Lines, l => Assert.Contains("\"exit_block\":3", l));
        // Confidence ≥ 0 holds at the first exit for every text.
        var eager = fx.RunWithModel(["classify", "--json", "--policy", "confidence", "--tau", "0", .. Texts]);
        Assert.All(eager.Lines, l => Assert.Contains("\"exit_block\":1", l));
    }

    [Fact]
    public void BadPolicyNameIsUsageError()
    {
        var r = fx.RunWithModel(["classify", "--policy", "fastest", "x"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("entropy_reduction", r.Stderr);
        Assert.Empty(r.Stdout);
    }

    [Fact]
    public void UnknownOptionsAreUsageErrors()
    {
        Assert.Equal(2, fx.RunWithModel(["classify", "--jsn", "x"]).ExitCode);
        Assert.Equal(2, fx.RunWithModel(["batch", "in.tsv", "-o", "out.jsonl", "--bogus"]).ExitCode);
        Assert.Equal(2, CliFixture.Run(["frobnicate"]).ExitCode);
        Assert.Equal(2, CliFixture.Run([]).ExitCode);
        Assert.Equal(2, fx.RunWithModel(["classify", "--tau", "abc", "x"]).ExitCode);
        // After "--", a text that looks like an option is a text.
        var dashed = CliFixture.Run(["classify", "--model", fx.ModelPath, "--", "--surprisingly good"]);
        Assert.True(dashed.ExitCode == 0, dashed.ToString());
    }

    [Fact]
    public void MissingModelFileIsUsageErrorSayingWhatToDo()
    {
        var r = CliFixture.Run(["classify", "--model", Path.Combine(fx.Directory, "nope.bex"), "x"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("does not exist", r.Stderr);
        Assert.Contains("--model", r.Stderr);
    }

    [Fact]
    public void CorruptModelFileIsUsageError()
    {
        byte[] bytes = File.ReadAllBytes(fx.ModelPath);
        string truncated = Path.Combine(fx.NewFolder(), "truncated.bex");
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        string flipped = Path.Combine(fx.NewFolder(), "flipped.bex");
        bytes[^100] ^= 0x5A; // in the tensor data: the checksum catches it
        File.WriteAllBytes(flipped, bytes);
        string text = Path.Combine(fx.NewFolder(), "text.bex");
        File.WriteAllText(text, "not a model");
        foreach (string path in new[] { truncated, flipped, text })
        {
            var r = CliFixture.Run(["classify", "--model", path, "x"]);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.StartsWith("error:", r.Stderr);
            Assert.Contains(path, r.Stderr);
        }
    }

    [Fact]
    public void WithoutModelOptionOrDefaultModelItSaysToPassModel()
    {
        string empty = fx.NewFolder();
        var r = CliFixture.RunIn(empty, empty, ["classify", "x"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("pass --model", r.Stderr);
    }

    [Fact]
    public void FindsTheDefaultModelBesideTheAssemblyOrAboveTheWorkingDirectory()
    {
        string root = fx.NewFolder();
        string models = Directory.CreateDirectory(Path.Combine(root, "models", "sst2-default")).FullName;
        File.Copy(fx.ModelPath, Path.Combine(models, "model.bex"));
        string deep = Directory.CreateDirectory(Path.Combine(root, "a", "b")).FullName;
        string elsewhere = fx.NewFolder();

        var walkedUp = CliFixture.RunIn(elsewhere, deep, ["classify", "good"]);
        Assert.True(walkedUp.ExitCode == 0, walkedUp.ToString());
        var beside = CliFixture.RunIn(root, elsewhere, ["classify", "good"]);
        Assert.True(beside.ExitCode == 0, beside.ToString());
        Assert.Equal(walkedUp.Stdout, beside.Stdout);
    }

    [Fact]
    public void HelpListsEveryCommandAndDescribesEveryOption()
    {
        var root = CliFixture.Run(["--help"]);
        Assert.Equal(0, root.ExitCode);
        foreach (string command in new[] { "classify", "batch", "eval", "bench", "tokenize", "isa", "convert", "inspect" })
            Assert.Contains(command, root.Stdout);
        var rootCommand = BinEngine.Cli.Program.BuildRoot(new BinEngine.Cli.CliContext(
            TextReader.Null, TextWriter.Null, TextWriter.Null, false, fx.Directory, fx.Directory));
        foreach (var command in rootCommand.Subcommands)
        {
            Assert.False(string.IsNullOrWhiteSpace(command.Description), command.Name);
            foreach (var option in command.Options)
                Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{command.Name} {option.Name}");
            foreach (var argument in command.Arguments)
                Assert.False(string.IsNullOrWhiteSpace(argument.Description), $"{command.Name} {argument.Name}");
        }
    }
}
