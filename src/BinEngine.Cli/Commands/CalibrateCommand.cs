using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using BinEngine.Cli.Evaluation;
using BinEngine.Evaluation;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine calibrate DATA.tsv --policy P --max-drop ε --delta δ -o calibrated.bex</c>: picks the policy's most
/// aggressive thresholds whose accuracy drop against full depth is certified ≤ ε with probability ≥ 1 − δ (Learn then
/// Test, BinEngine.Evaluation.LearnThenTest), and writes a copy of the model with those thresholds as its default and
/// the guarantee in its metadata. This file only parses and prints.
/// </summary>
internal static class CalibrateCommand
{
    internal static Command Create(CliContext cx)
    {
        var data = new Argument<string>("data") { Description = "Labelled TSV with a header (GLUE format), held out from training, e.g. data/sst2/dev.tsv" };
        var textColumn = EvalData.TextColumnOption();
        var labelColumn = EvalData.LabelColumnOption();
        var model = CommonOptions.Model();
        var policy = new Option<string?>("--policy") { Description = "Exit policy to calibrate: entropy_reduction, entropy, normalized_entropy, confidence, patience, q_exit or learned_gate (the last two need a model with those controllers; default: the model file's)", HelpName = "NAME" };
        var tau = new Option<float?>("--tau") { Description = "entropy_reduction only: τ held fixed while κ is calibrated (default: the model file's)", HelpName = "TAU" };
        var maxDrop = new Option<double>("--max-drop") { Description = "ε: the accuracy drop against full depth to guarantee, as a fraction (0.005 = half a point)", DefaultValueFactory = _ => 0.005, HelpName = "EPSILON" };
        var delta = new Option<double>("--delta") { Description = "δ: the guarantee holds with probability at least 1 − δ", DefaultValueFactory = _ => 0.05, HelpName = "DELTA" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the calibrated copy of the model (may be the model itself)", Required = true, HelpName = "PATH" };
        var threads = CommonOptions.Threads("for the full-depth pass");
        var json = new Option<bool>("--json") { Description = "Print one JSON object: the chain's steps, the chosen thresholds and the guarantee" };
        var command = new Command("calibrate", "Choose exit thresholds with a stated guarantee (Learn then Test): accuracy drop vs full depth ≤ ε with probability ≥ 1 − δ")
        {
            data, textColumn, labelColumn, model, policy, tau, maxDrop, delta, output, threads, json,
        };
        command.SetAction(parse =>
        {
            string dataPath = cx.Resolve(parse.GetValue(data)!);
            string outPath = cx.Resolve(parse.GetValue(output)!);
            double epsilon = parse.GetValue(maxDrop), d = parse.GetValue(delta);
            if (!(epsilon > 0 && epsilon < 1)) throw new CliException($"--max-drop must lie in (0, 1), got {epsilon.ToString(CultureInfo.InvariantCulture)}");
            if (!(d > 0 && d < 1)) throw new CliException($"--delta must lie in (0, 1), got {d.ToString(CultureInfo.InvariantCulture)}");
            int threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));

            string modelPath = ModelLocator.Locate(cx, parse.GetValue(model));
            byte[]? copy = null;
            CalibrationResult result;
            ExitGuarantee? guarantee;
            string sha256;
            int skipped;
            using (BeexModel m = ModelLocator.Load(modelPath, new BeexModelOptions { BatchThreads = threadCount }))
            {
                ExitPolicyKind kind;
                try { kind = ExitPolicy.ParseKind(parse.GetValue(policy) ?? m.File.Config.Policy); }
                catch (ArgumentException e) { throw new CliException(e.Message + " (--policy)"); }
                if (kind == ExitPolicyKind.None)
                    throw new CliException("policy none has no thresholds to calibrate; pass --policy");
                if (ExitPolicy.ControllerOf(kind) is { } controller && !m.Mechanisms.Contains(controller))
                    throw new CliException($"policy {ExitPolicy.NameOf(kind)} needs the '{controller}' controller, which this model does not carry (--policy)");
                float pinnedTau = kind == ExitPolicyKind.EntropyReduction
                    ? parse.GetValue(tau) ?? (float)PolicyOptions.Build(null, null, 1f, null, ExitPolicy.NameOf(kind), m.File.Config.Thresholds).Tau
                    : 0f;

                var (texts, gold, errors) = EvalData.ReadTsv(dataPath, parse.GetValue(textColumn)!, parse.GetValue(labelColumn)!, m.Labels, 0)
                    .Usable(m, cx.Stderr, dataPath);
                skipped = errors.Count;
                sha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dataPath)));
                var replay = ExitReplay.Run(m, texts);
                var chain = LearnThenTest.Chain(kind, m.Labels.Count, m.Architecture.Layers, pinnedTau);
                result = LearnThenTest.Calibrate(replay, gold, chain, epsilon, d);
                guarantee = ExitGuarantee.From(result, Path.GetFileName(dataPath), sha256);
                if (result.Chosen is { } chosen && guarantee is not null)
                {
                    // A stored conformal q̂ for this policy is recomputed for the new thresholds on the same data, at its α.
                    (double, double)? sets = null;
                    if (m.File.Config.Conformal.TryGetValue(chosen.Name, out var stored))
                    {
                        int[] exits = replay.Replay(chosen).ExitBlocks;
                        float[] scores = exits.Select((e, s) => 1f - replay.Probabilities(s, e)[gold[s]]).ToArray();
                        sets = (stored["alpha"], Conformal.Quantile(scores, stored["alpha"]));
                    }
                    copy = ExitGuarantee.CalibratedCopy(m.File.Container, chosen, guarantee, sets);
                }
            }

            if (copy is not null)
            {
                // The source is closed now, so the copy may replace it; write beside it and move, so a failed write leaves the old file.
                string temp = outPath + ".tmp";
                File.WriteAllBytes(temp, copy);
                File.Move(temp, outPath, overwrite: true);
            }
            if (parse.GetValue(json))
                WriteJson(cx.Stdout, dataPath, sha256, modelPath, copy is null ? null : outPath, result, guarantee);
            else
                WriteText(cx.Stdout, dataPath, sha256, modelPath, copy is null ? null : outPath, result, guarantee, skipped);
            if (copy is null)
            {
                cx.Stderr.WriteLine(string.Format(CultureInfo.InvariantCulture,
                    "calibrate: no setting certified, nothing written: the safest one has p = {0:0.####} > δ = {1}{2}",
                    result.Steps[0].PValue, d,
                    result.N < LearnThenTest.MinimumSamples(epsilon, d)
                        ? $" (with n = {result.N} nothing can be: ε = {epsilon.ToString(CultureInfo.InvariantCulture)} at δ = {d.ToString(CultureInfo.InvariantCulture)} needs n ≥ {LearnThenTest.MinimumSamples(epsilon, d)})"
                        : ""));
                return ExitCodes.RowErrors;
            }
            return skipped > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    private static void WriteText(TextWriter w, string dataPath, string sha256, string modelPath, string? outPath,
        CalibrationResult r, ExitGuarantee? g, int skipped)
    {
        w.WriteLine($"data        {dataPath} ({r.N:N0} rows{(skipped > 0 ? $", {skipped:N0} skipped" : "")}; sha256 {sha256})");
        w.WriteLine($"model       {modelPath}");
        w.WriteLine(string.Format(C, "full depth  accuracy {0:0.0000}", r.FullDepthAccuracy));
        w.WriteLine(string.Format(C, "test        learn-then-test, fixed sequence over {0} settings, safest first; loss = exit wrong where full depth is right;", r.Steps.Count));
        w.WriteLine(string.Format(C, "            certified while p = P(Bin({0}, {1}) <= k) <= {2}", r.N, r.MaxDrop, r.Delta));
        w.WriteLine("  setting                                          k      p_value  accuracy  mean_blocks  compute_saved");
        // The steps up to the first non-rejection (the later ones are not tested); of a run of steps with the same
        // losses only its first and last are printed (--json has them all).
        int tested = Math.Min(r.Steps.Count, r.Steps.TakeWhile(s => s.Rejected).Count() + 1);
        for (int i = 0; i < tested; i++)
        {
            var s = r.Steps[i];
            if (!IsEdge(r, i, tested))
            {
                if (IsEdge(r, i - 1, tested)) w.WriteLine("  …"); // once per elided run
                continue;
            }
            w.WriteLine(string.Format(C, "  {0,-45} {1,4} {2,12:0.000000}  {3,8:0.0000}  {4,11:0.00}  {5,13:0.0%}{6}",
                s.Policy.ToString(), s.Losses, s.PValue, s.Accuracy, s.MeanBlocks, s.ComputeSaved, s.Rejected ? "  certified" : "  stop"));
        }
        if (r.ChosenStep is { } c && g is not null)
        {
            w.WriteLine(string.Format(C, "chosen      {0}: accuracy {1:0.0000} ({2:+0.0000;-0.0000;0.0000} vs full depth), mean blocks {3:0.00}, {4:0.0%} of FLOPs saved",
                c.Policy.ToString(), c.Accuracy, c.Accuracy - r.FullDepthAccuracy, c.MeanBlocks, c.ComputeSaved));
            w.WriteLine($"guarantee   {g}");
            w.WriteLine($"wrote       {outPath}");
        }
    }

    private static bool IsEdge(CalibrationResult r, int i, int tested) =>
        i == 0 || i == tested - 1 || r.Steps[i].Losses != r.Steps[i - 1].Losses || r.Steps[i].Losses != r.Steps[i + 1].Losses;

    private static void WriteJson(TextWriter w, string dataPath, string sha256, string modelPath, string? outPath,
        CalibrationResult r, ExitGuarantee? g)
    {
        var line = new JsonLine(indented: true);
        Utf8JsonWriter j = line.Begin();
        j.WriteString("data", dataPath);
        j.WriteString("data_sha256", sha256);
        j.WriteString("model", modelPath);
        if (outPath is null) j.WriteNull("output"); else j.WriteString("output", outPath);
        j.WriteNumber("n", r.N);
        j.WriteNumber("max_drop", r.MaxDrop);
        j.WriteNumber("delta", r.Delta);
        j.WriteNumber("full_depth_accuracy", Math.Round(r.FullDepthAccuracy, 6));
        if (r.ChosenStep is { } c)
        {
            j.WriteString("chosen", c.Policy.ToString());
            EvalCommand.WritePolicyParameters(j, "chosen_parameters", c.Policy);
        }
        else j.WriteNull("chosen");
        if (g is not null) EvalCommand.WriteGuarantee(j, g);
        j.WriteStartArray("steps");
        foreach (var s in r.Steps)
        {
            j.WriteStartObject();
            j.WriteString("setting", s.Policy.ToString());
            EvalCommand.WritePolicyParameters(j, "parameters", s.Policy);
            j.WriteNumber("losses", s.Losses);
            j.WriteNumber("risk", Math.Round(s.Risk, 6));
            j.WriteNumber("p_value", s.PValue);
            j.WriteBoolean("certified", s.Rejected);
            j.WriteNumber("accuracy", Math.Round(s.Accuracy, 6));
            j.WriteNumber("mean_blocks", Math.Round(s.MeanBlocks, 6));
            j.WriteNumber("compute_saved", Math.Round(s.ComputeSaved, 6));
            j.WriteEndObject();
        }
        j.WriteEndArray();
        w.WriteLine(line.End());
    }
}
