using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

[Collection(CliCollection.Name)]
public class EvalCommandTests(CliFixture fx)
{
    private string DevSample(int rows) =>
        fx.WriteFile("dev.tsv", string.Join("\n", File.ReadLines(TestPaths.Repo("data/sst2/dev.tsv")).Take(rows + 1)) + "\n");

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.Clone();

    [Fact]
    public void JsonHasTheRequiredKeysAndMatchesTheLibrary()
    {
        string data = DevSample(60);
        var r = fx.RunWithModel("eval", data, "--json", "--latency-samples", "5");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = Json(r);
        foreach (string key in new[] { "accuracy", "macro_f1", "n", "mean_blocks", "compute_saved", "policy", "confusion", "latency_p50_ms", "latency_p99_ms", "throughput", "exit_histogram" })
            Assert.True(o.TryGetProperty(key, out _), key);

        using var model = BeexModel.Load(fx.ModelPath);
        var rows = File.ReadLines(data).Skip(1).Select(l => l.Split('\t')).ToArray();
        var results = rows.Select(f => model.Classify(f[0])).ToArray();
        double accuracy = rows.Zip(results).Count(x => int.Parse(x.First[1]) == x.Second.Label) / 60.0;
        double saved = results.Sum(x => x.ComputeSkipped * x.FullDepthFlops) / results.Sum(x => x.FullDepthFlops);
        Assert.Equal(60, o.GetProperty("n").GetInt32());
        Assert.Equal(accuracy, o.GetProperty("accuracy").GetDouble(), 6);
        Assert.Equal(results.Average(x => x.ExitBlock), o.GetProperty("mean_blocks").GetDouble(), 6);
        Assert.Equal(saved, o.GetProperty("compute_saved").GetDouble(), 6);
        Assert.Equal("entropy_reduction", o.GetProperty("policy").GetString());
        long confusionTotal = o.GetProperty("confusion").EnumerateArray().SelectMany(row => row.EnumerateArray()).Sum(x => x.GetInt64());
        Assert.Equal(60, confusionTotal);
        long diagonal = o.GetProperty("confusion")[0][0].GetInt64() + o.GetProperty("confusion")[1][1].GetInt64();
        Assert.Equal(accuracy, diagonal / 60.0, 9);
        // Macro-F1 from the library's own predictions: F1 per class = 2·TP / (2·TP + FP + FN), averaged.
        double macroF1 = Enumerable.Range(0, 2).Average(c =>
        {
            int tp = rows.Zip(results).Count(x => int.Parse(x.First[1]) == c && x.Second.Label == c);
            int fp = rows.Zip(results).Count(x => int.Parse(x.First[1]) != c && x.Second.Label == c);
            int fn = rows.Zip(results).Count(x => int.Parse(x.First[1]) == c && x.Second.Label != c);
            return 2.0 * tp / (2 * tp + fp + fn);
        });
        Assert.Equal(macroF1, o.GetProperty("macro_f1").GetDouble(), 6);
    }

    [Fact]
    public void SweepReplayAgreesWithRealRunsAtItsPoints()
    {
        string data = DevSample(50);
        var swept = Json(fx.RunWithModel("eval", data, "--json", "--latency-samples", "0"));
        var points = swept.GetProperty("curves").GetProperty("confidence").EnumerateArray().ToArray();
        Assert.Equal(21, points.Length);
        // Points 0 (τ = 1/C: every text exits at block 1), 10 and 20 (τ = 1: almost none exit early), run for real.
        foreach (int i in new[] { 0, 10, 20 })
        {
            double tau = points[i].GetProperty("parameters").GetProperty("tau").GetDouble();
            float exact = 0.5f + 0.5f * i / 20f;
            Assert.Equal(exact, tau, 5);
            var real = Json(fx.RunWithModel("eval", data, "--json", "--policy", "confidence", "--tau", exact.ToString("R", System.Globalization.CultureInfo.InvariantCulture), "--latency-samples", "0"));
            Assert.Equal(real.GetProperty("accuracy").GetDouble(), points[i].GetProperty("accuracy").GetDouble(), 9);
            Assert.Equal(real.GetProperty("mean_blocks").GetDouble(), points[i].GetProperty("mean_blocks").GetDouble(), 9);
            Assert.Equal(real.GetProperty("compute_saved").GetDouble(), points[i].GetProperty("compute_saved").GetDouble(), 9);
        }
        Assert.Equal(1.0, points[0].GetProperty("mean_blocks").GetDouble());
        // Compute saved falls (weakly) as the confidence bar rises.
        var saved = points.Select(p => p.GetProperty("compute_saved").GetDouble()).ToArray();
        for (int i = 1; i < saved.Length; i++) Assert.True(saved[i] <= saved[i - 1] + 1e-12);
    }

    [Fact]
    public void TextReportHasMetricsConfusionAndSweepTable()
    {
        var r = fx.RunWithModel("eval", DevSample(20), "--sweep", "--latency-samples", "3");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (string s in new[] { "accuracy", "macro-F1", "confusion", "negative", "positive", "mean", "compute", "latency", "throughput", "ECE", "static", "oracle", "front", "curve of entropy_reduction", "curve of patience" })
            Assert.Contains(s, r.Stdout);
    }

    [Fact]
    public void JsonHasStaticDepthsOracleCurvesAndFront()
    {
        string data = DevSample(40);
        var o = Json(fx.RunWithModel("eval", data, "--json", "--latency-samples", "0"));
        var full = Json(fx.RunWithModel("eval", data, "--json", "--latency-samples", "0", "--policy", "none"));
        var depths = o.GetProperty("static_depth").EnumerateArray().ToArray();
        int layers = o.GetProperty("layers").GetInt32();
        Assert.Equal(Enumerable.Range(1, layers), depths.Select(d => d.GetProperty("k").GetInt32()));
        // Static depth L is full depth; its ECE is the full-depth run's.
        Assert.Equal(full.GetProperty("accuracy").GetDouble(), depths[^1].GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(full.GetProperty("ece").GetDouble(), depths[^1].GetProperty("ece").GetDouble(), 6);
        Assert.Equal(0.0, depths[^1].GetProperty("compute_saved").GetDouble());
        double oracle = o.GetProperty("oracle").GetProperty("accuracy").GetDouble();
        Assert.All(depths, d => Assert.True(d.GetProperty("accuracy").GetDouble() <= oracle));
        foreach (string policy in new[] { "entropy_reduction", "entropy", "normalized_entropy", "confidence", "patience" })
            Assert.True(o.GetProperty("curves").GetProperty(policy).GetArrayLength() > 1, policy);
        var front = o.GetProperty("front").EnumerateArray().ToArray();
        // Most compute saved first, accuracy strictly rising along it.
        for (int i = 1; i < front.Length; i++)
        {
            Assert.True(front[i].GetProperty("compute_saved").GetDouble() <= front[i - 1].GetProperty("compute_saved").GetDouble());
            Assert.True(front[i].GetProperty("accuracy").GetDouble() > front[i - 1].GetProperty("accuracy").GetDouble());
        }
    }

    [Fact]
    public void Fp32TwinIsEvaluatedAlongside()
    {
        // The tiny model stands in for its own twin: the comparison keys appear and the accuracies agree.
        var r = fx.RunWithModel("eval", DevSample(10), "--json", "--fp32", fx.ModelPath, "--latency-samples", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = Json(r);
        Assert.Equal(o.GetProperty("accuracy").GetDouble(), o.GetProperty("fp32").GetProperty("accuracy").GetDouble());
        Assert.True(o.TryGetProperty("throughput_ratio", out _));
        Assert.Equal(0.0, o.GetProperty("accuracy_delta").GetDouble());
    }

    [Fact]
    public void LimitOverridesAndBadRows()
    {
        var limited = Json(fx.RunWithModel("eval", DevSample(30), "--json", "--limit", "7", "--latency-samples", "0", "--policy", "patience", "--patience", "2"));
        Assert.Equal(7, limited.GetProperty("n").GetInt32());
        Assert.Equal("patience", limited.GetProperty("policy").GetString());
        Assert.Equal(2, limited.GetProperty("policy_parameters").GetProperty("t").GetInt32());

        string data = fx.WriteFile("d.tsv", "sentence\tlabel\ngood fun\t1\nawful\tnegative\nno label here\n\t0\nfine\t7\nnice\tpositive\n");
        var r = fx.RunWithModel("eval", data, "--json", "--latency-samples", "0");
        Assert.True(r.ExitCode == 1, r.ToString());
        var o = Json(r);
        Assert.Equal(3, o.GetProperty("n").GetInt32());
        Assert.Equal(3, o.GetProperty("skipped_rows").GetInt32());
        Assert.Contains("skipped:", r.Stderr);
    }

    [Fact]
    public void MissingColumnsAndFilesAreUsageErrors()
    {
        string data = fx.WriteFile("d.tsv", "text\tgold\ngood\t1\n");
        var r = fx.RunWithModel("eval", data);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no column 'sentence'", r.Stderr);
        Assert.Equal(0, fx.RunWithModel("eval", data, "--text-column", "text", "--label-column", "gold", "--latency-samples", "0").ExitCode);
        Assert.Equal(2, fx.RunWithModel("eval", Path.Combine(fx.Directory, "none.tsv")).ExitCode);
        Assert.Equal(2, fx.RunWithModel("eval", data, "--text-column", "text", "--label-column", "gold", "--fp32", Path.Combine(fx.Directory, "none.bex")).ExitCode);
    }
}
