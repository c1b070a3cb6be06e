using System.Security.Cryptography;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

[Collection(CliCollection.Name)]
public class CalibrateCommandTests(CliFixture fx)
{
    private string DevSample(int rows) =>
        fx.WriteFile($"calib-{rows}.tsv", string.Join("\n", File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Take(rows + 1)) + "\n");

    [Fact]
    public void WritesACopyWithTheChosenThresholdsAndTheGuaranteeThatInspectAndEvalPrint()
    {
        string data = DevSample(60);
        string output = Path.Combine(fx.NewFolder(), "calibrated.bex");
        var r = fx.RunWithModel("calibrate", data, "--policy", "confidence", "--max-drop", "0.2", "--delta", "0.1", "-o", output, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(60, o.GetProperty("n").GetInt32());
        var steps = o.GetProperty("steps").EnumerateArray().ToArray();
        // The certified steps are a prefix of the chain, and the chosen one is its last.
        int certified = steps.TakeWhile(s => s.GetProperty("certified").GetBoolean()).Count();
        Assert.True(certified > 0);
        Assert.All(steps.Skip(certified), s => Assert.False(s.GetProperty("certified").GetBoolean()));
        Assert.All(steps.Take(certified), s => Assert.True(s.GetProperty("p_value").GetDouble() <= 0.1));
        double tau = steps[certified - 1].GetProperty("parameters").GetProperty("tau").GetDouble();
        Assert.Equal(tau, o.GetProperty("chosen_parameters").GetProperty("tau").GetDouble());

        string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(data)));
        using (var m = BeexModel.Load(output))
        {
            Assert.Equal(ExitPolicyKind.Confidence, m.DefaultPolicy.Kind);
            Assert.Equal(tau, m.DefaultPolicy.Tau, 6);
        }
        var inspect = CliFixture.Run(["inspect", output]);
        Assert.Contains("guarantee    confidence(tau=", inspect.Stdout);
        Assert.Contains(sha[..12], inspect.Stdout);

        var eval = JsonDocument.Parse(CliFixture.Run(["eval", data, "--model", output, "--json", "--latency-samples", "0"]).Stdout).RootElement;
        var g = eval.GetProperty("guarantee");
        Assert.Equal(0.2, g.GetProperty("max_drop").GetDouble());
        Assert.Equal(0.1, g.GetProperty("delta").GetDouble());
        Assert.Equal(60, g.GetProperty("n").GetInt32());
        Assert.Equal(sha, g.GetProperty("data_sha256").GetString());
        Assert.Equal(steps[certified - 1].GetProperty("losses").GetInt32(), g.GetProperty("losses").GetInt32());
        // The calibrated copy's default policy reproduces the chosen step's accuracy on the calibration data.
        Assert.Equal(steps[certified - 1].GetProperty("accuracy").GetDouble(), eval.GetProperty("accuracy").GetDouble(), 6);
    }

    [Fact]
    public void TooFewSamplesCertifyNothingAndWriteNothing()
    {
        string output = Path.Combine(fx.NewFolder(), "calibrated.bex");
        var r = fx.RunWithModel("calibrate", DevSample(60), "--max-drop", "0.005", "--delta", "0.05", "-o", output);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("needs n ≥ 598", r.Stderr);
        Assert.False(File.Exists(output));
        Assert.Equal(2, fx.RunWithModel("calibrate", DevSample(60), "--max-drop", "0", "-o", output).ExitCode);
        Assert.Equal(2, fx.RunWithModel("calibrate", DevSample(60), "--policy", "none", "-o", output).ExitCode);
    }
}
