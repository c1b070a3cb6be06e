using System.Globalization;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

/// <summary>classify --json and batch JSONL carry every H_i computed on the way, and with --logits every exit's logits.</summary>
[Collection(CliCollection.Name)]
public class PerBlockOutputTests(CliFixture fx)
{
    private static readonly string[] Texts = ["a gorgeous, witty, seductive movie.", "the plot is thin and the jokes fall flat."];

    private static string[] Fixed(IEnumerable<float> values) => values.Select(x => ((double)x).ToString("0.000000", CultureInfo.InvariantCulture)).ToArray();

    private static void AssertPerBlock(JsonElement o, ClassificationResult expected, bool logits)
    {
        Assert.Equal(Fixed(expected.Entropies), o.GetProperty("entropies").EnumerateArray().Select(e => e.GetRawText()));
        Assert.Equal(expected.ExitBlock, o.GetProperty("entropies").GetArrayLength());
        if (!logits)
        {
            Assert.False(o.TryGetProperty("logits", out _));
            return;
        }
        var rows = o.GetProperty("logits").EnumerateArray().ToArray();
        Assert.Equal(expected.ExitBlock, rows.Length);
        for (int b = 1; b <= expected.ExitBlock; b++)
            Assert.Equal(Fixed(expected.LogitsOf(b).ToArray()), rows[b - 1].EnumerateArray().Select(e => e.GetRawText()));
    }

    [Theory]
    [InlineData("none", false)]
    [InlineData("none", true)]
    [InlineData("confidence", true)]
    public void ClassifyJsonCarriesEntropiesAndOptionallyLogits(string policy, bool logits)
    {
        string[] args = ["classify", "--json", "--policy", policy, "--tau", "0.6", .. (logits ? new[] { "--logits" } : []), .. Texts];
        var r = fx.RunWithModel(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var model = BeexModel.Load(fx.ModelPath);
        ExitPolicy p = policy == "none" ? ExitPolicy.Never : new ExitPolicy(ExitPolicyKind.Confidence, tau: 0.6f);
        for (int i = 0; i < Texts.Length; i++)
            AssertPerBlock(JsonDocument.Parse(r.Lines[i]).RootElement, model.Classify(Texts[i], p), logits);
    }

    [Fact]
    public void LogitsAloneImpliesJson()
    {
        var r = fx.RunWithModel(["classify", "--logits", Texts[0]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(JsonDocument.Parse(r.Lines[0]).RootElement.TryGetProperty("logits", out _));
    }

    [Fact]
    public void BatchJsonlCarriesEntropiesAndWithLogitsTheLogits()
    {
        string input = fx.WriteFile("per-block.txt", string.Join("\n", Texts) + "\n");
        using var model = BeexModel.Load(fx.ModelPath);
        foreach (bool logits in new[] { false, true })
        {
            string output = Path.Combine(fx.NewFolder(), "out.jsonl");
            var r = fx.RunWithModel(["batch", input, "-o", output, "--no-progress", .. (logits ? new[] { "--logits" } : [])]);
            Assert.True(r.ExitCode == 0, r.ToString());
            var rows = File.ReadAllLines(output);
            Assert.Equal(Texts.Length, rows.Length);
            for (int i = 0; i < Texts.Length; i++)
                AssertPerBlock(JsonDocument.Parse(rows[i]).RootElement, model.Classify(Texts[i]), logits);
        }
    }
}
