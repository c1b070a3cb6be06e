using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BinEngine.Cli.Evaluation;
using BinEngine.Evaluation;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>What `eval` prints for one model: the library's report with the model's path, shape and guarantee.</summary>
internal sealed record EvalReport(string ModelPath, Architecture Architecture, IReadOnlyList<string> Labels, ExitGuarantee? Guarantee,
    ModelEvaluationReport Run)
{
    public ExitPolicy Policy => Run.Policy;
    public ClassificationMetrics Metrics => Run.Metrics;
}

/// <summary>
/// <c>binengine eval DATA.tsv</c>: accuracy, macro-F1, confusion matrix, exits, compute saved, calibration (ECE),
/// latency and throughput of a model (and its FP32 twin with --fp32) on a labelled GLUE-style TSV; static depths,
/// the oracle and the Pareto front across every policy's thresholds, replayed from one full-depth pass (library:
/// BinEngine.Evaluation); --sweep prints every policy's curve. This file only parses and prints.
/// </summary>
internal static class EvalCommand
{
    internal static Command Create(CliContext cx)
    {
        var data = new Argument<string>("data") { Description = "Labelled TSV with a header (GLUE format, e.g. data/sst2/dev.tsv: sentence<TAB>label)" };
        var textColumn = EvalData.TextColumnOption();
        var labelColumn = EvalData.LabelColumnOption();
        var model = CommonOptions.Model();
        var fp32 = new Option<string?>("--fp32") { Description = "Also evaluate this FP32 twin (a .bex converted from the full-precision checkpoint) and report the binary/FP32 speed ratio", HelpName = "PATH" };
        var sweep = new Option<bool>("--sweep") { Description = "Also print every policy's curve: accuracy, macro-F1, mean blocks, compute saved and ECE over its threshold grid (τ × κ for entropy_reduction, τ for entropy, normalized_entropy and confidence, t = 1..L for patience); --json always has them" };
        var limit = new Option<int>("--limit") { Description = "Use only the first N usable rows (0: all)", DefaultValueFactory = _ => 0, HelpName = "N" };
        var threads = CommonOptions.Threads("for the throughput run");
        var latencySamples = new Option<int>("--latency-samples") { Description = "How many texts to time one at a time on one thread for latency p50/p99", DefaultValueFactory = _ => 1000, HelpName = "N" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: accuracy, macro_f1, ece, n, mean_blocks, compute_saved, policy, confusion, latency, throughput, static_depth, oracle, curves, front, guarantee, fp32" };
        var policy = new PolicyOptions();
        var command = new Command("eval", "Evaluate a model on labelled data: accuracy, macro-F1, confusion, exits, compute saved, latency, throughput")
        {
            data, textColumn, labelColumn, model, fp32, sweep, limit, threads, latencySamples, json,
        };
        policy.AddTo(command);
        command.SetAction(parse =>
        {
            string dataPath = cx.Resolve(parse.GetValue(data)!);
            int threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            int rowLimit = parse.GetValue(limit);
            if (rowLimit < 0) throw new CliException($"--limit must be 0 (all) or more, got {rowLimit}");
            int latencyCount = parse.GetValue(latencySamples);
            if (latencyCount < 0) throw new CliException($"--latency-samples must be 0 or more, got {latencyCount}");

            string modelPath = ModelLocator.Locate(cx, parse.GetValue(model));
            var loadOptions = new BeexModelOptions { Threads = 1, BatchThreads = threadCount };
            using BeexModel m = ModelLocator.Load(modelPath, loadOptions);
            ExitPolicy exitPolicy = policy.Resolve(parse, m);
            var (texts, gold, errors) = EvalData.ReadTsv(dataPath, parse.GetValue(textColumn)!, parse.GetValue(labelColumn)!, m.Labels, rowLimit)
                .Usable(m, cx.Stderr, dataPath);

            var report = new EvalReport(modelPath, m.Architecture, m.Labels, ExitGuarantee.Read(m.File.Container),
                ModelEvaluation.Run(m, exitPolicy, texts, gold, latencyCount, analyzeExits: true));
            EvalReport? twin = null;
            if (parse.GetValue(fp32) is { } twinOption)
            {
                string twinPath = cx.Resolve(twinOption);
                using BeexModel t = ModelLocator.Load(twinPath, loadOptions);
                if (!t.Labels.SequenceEqual(m.Labels))
                    throw new CliException($"the FP32 twin's labels ({string.Join(", ", t.Labels)}) differ from the model's ({string.Join(", ", m.Labels)})");
                twin = new EvalReport(twinPath, t.Architecture, t.Labels, ExitGuarantee.Read(t.File.Container),
                    ModelEvaluation.Run(t, policy.Resolve(parse, t), texts, gold, latencyCount, analyzeExits: false));
            }

            if (parse.GetValue(json))
                WriteJson(cx.Stdout, dataPath, report, twin, errors.Count);
            else
                WriteText(cx.Stdout, dataPath, report, twin, errors.Count, parse.GetValue(sweep));
            return errors.Count > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    private static string Describe(Architecture a) =>
        $"W{a.WeightBits}A{a.ActBits}E{a.EmbBits}, L={a.Layers}, d={a.Dim}, h={a.Heads}, f={a.FfDim}, max_len={a.MaxLength}";

    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    internal static void WriteText(TextWriter w, string dataPath, EvalReport r, EvalReport? twin, int skipped, bool curves)
    {
        w.WriteLine($"data        {dataPath} ({r.Metrics.N:N0} rows{(skipped > 0 ? $", {skipped:N0} skipped" : "")})");
        WriteModel(w, r, "model      ");
        if (r.Run.Exits is { } x)
            WriteExits(w, x, r.Architecture.Layers, curves);
        if (twin is not null)
        {
            w.WriteLine();
            WriteModel(w, twin, "fp32 twin  ");
            w.WriteLine();
            w.WriteLine(string.Format(C, "binary vs FP32: accuracy {0:+0.0000;-0.0000;0.0000}, throughput {1:0.00}x, latency p50 {2:0.00}x",
                r.Metrics.Accuracy - twin.Metrics.Accuracy, r.Run.Throughput / twin.Run.Throughput, twin.Run.LatencyP50Ms / r.Run.LatencyP50Ms));
        }
    }

    private static void WriteModel(TextWriter w, EvalReport r, string title)
    {
        ModelEvaluationReport e = r.Run;
        w.WriteLine($"{title} {r.ModelPath} ({Describe(r.Architecture)})");
        w.WriteLine($"policy      {r.Policy}");
        if (r.Guarantee is { } g)
            w.WriteLine($"guarantee   {g}");
        w.WriteLine(string.Format(C, "accuracy    {0:0.0000}   macro-F1 {1:0.0000}   ECE {2:0.0000} (15 bins)", r.Metrics.Accuracy, r.Metrics.MacroF1, e.Ece));
        w.WriteLine("confusion   rows: true label, columns: predicted");
        int width = Math.Max(8, r.Labels.Max(l => l.Length));
        w.WriteLine("            " + new string(' ', width) + string.Concat(r.Labels.Select(l => "  " + l.PadLeft(width))));
        for (int t = 0; t < r.Labels.Count; t++)
        {
            w.Write("            " + r.Labels[t].PadRight(width));
            for (int p = 0; p < r.Labels.Count; p++)
                w.Write("  " + r.Metrics.Confusion[t, p].ToString(C).PadLeft(width));
            w.WriteLine();
        }
        w.WriteLine(string.Format(C, "blocks      mean {0:0.00} of {1}; exits per block: {2}", e.MeanBlocks, r.Architecture.Layers,
            string.Join(" ", e.ExitHistogram.Select((count, b) => $"{b + 1}:{count}"))));
        w.WriteLine(string.Format(C, "compute     {0:0.0%} of full-depth FLOPs saved (blocks and exit heads, mechanisms' own FLOPs counted, FLOP-weighted by length)", e.ComputeSaved));
        if (!double.IsNaN(e.SetCoverage))
            w.WriteLine(string.Format(C, "sets        conformal prediction sets: coverage {0:0.0000}, mean size {1:0.000} (q̂ from the model file, calibrated on dev)", e.SetCoverage, e.SetMeanSize));
        if (e.Truncated > 0)
            w.WriteLine(string.Format(C, "truncated   {0:N0} texts were cut to max_len = {1} tokens", e.Truncated, r.Architecture.MaxLength));
        if (e.LatencySamples > 0)
            w.WriteLine(string.Format(C, "latency     p50 {0:0.000} ms, p99 {1:0.000} ms (one text at a time, 1 thread, {2:N0} texts)", e.LatencyP50Ms, e.LatencyP99Ms, e.LatencySamples));
        w.WriteLine(string.Format(C, "throughput  {0:N0} texts/s (one batch of {1:N0}, {2} threads)", e.Throughput, r.Metrics.N, e.Threads));
    }

    private static void WriteExits(TextWriter w, ExitAnalysis x, int layers, bool curves)
    {
        w.WriteLine();
        w.WriteLine("exits replayed from one full-depth pass");
        w.WriteLine("static      every text answers at block k" + string.Concat(Enumerable.Range(1, layers).Select(k => $"{k,9}")));
        w.WriteLine("  accuracy                             " + string.Concat(x.StaticDepths.Select(p => string.Format(C, "{0,9:0.0000}", p.Accuracy))));
        w.WriteLine("  compute saved                        " + string.Concat(x.StaticDepths.Select(p => string.Format(C, "{0,9:0.0%}", p.ComputeSaved))));
        w.WriteLine("  ECE (15 bins)                        " + string.Concat(x.StaticDepths.Select(p => string.Format(C, "{0,9:0.0000}", p.Ece))));
        w.WriteLine(string.Format(C, "oracle      accuracy {0:0.0000} (right if any exit is right); mean blocks {1:0.00}, {2:0.0%} saved (first right exit; block 1 if none)",
            x.Oracle.Accuracy, x.Oracle.MeanBlocks, x.Oracle.ComputeSaved));
        int points = x.Curves.Values.Sum(c => c.Count) + x.StaticDepths.Count;
        w.WriteLine($"front       accuracy vs compute saved, Pareto-optimal among {points} settings (static depths and every policy's grid)");
        WriteTable(w, x.Front);
        if (!curves) return;
        foreach (var (kind, curve) in x.Curves)
        {
            w.WriteLine();
            w.WriteLine($"curve of {ExitPolicy.NameOf(kind)} ({curve.Count} settings)");
            WriteTable(w, curve);
        }
    }

    private static void WriteTable(TextWriter w, IEnumerable<OperatingPoint> points)
    {
        w.WriteLine("  compute_saved  accuracy  macro_f1  mean_blocks     ECE  setting");
        foreach (var p in points)
            w.WriteLine(string.Format(C, "  {0,13:0.0%}  {1,8:0.0000}  {2,8:0.0000}  {3,11:0.00}  {4,6:0.0000}  {5}",
                p.ComputeSaved, p.Accuracy, p.Metrics.MacroF1, p.MeanBlocks, p.Ece, p.Policy is { } policy ? policy.ToString() : p.Name));
    }

    internal static void WriteJson(TextWriter w, string dataPath, EvalReport r, EvalReport? twin, int skipped)
    {
        var line = new JsonLine(indented: true);
        Utf8JsonWriter j = line.Begin();
        j.WriteString("data", dataPath);
        j.WriteNumber("skipped_rows", skipped);
        WriteReport(j, r);
        if (twin is not null)
        {
            j.WriteStartObject("fp32");
            WriteReport(j, twin);
            j.WriteEndObject();
            j.WriteNumber("throughput_ratio", Round(r.Run.Throughput / twin.Run.Throughput));
            j.WriteNumber("latency_p50_ratio", Round(twin.Run.LatencyP50Ms / r.Run.LatencyP50Ms));
            j.WriteNumber("accuracy_delta", Round(r.Metrics.Accuracy - twin.Metrics.Accuracy));
        }
        w.WriteLine(line.End());
    }

    private static double Round(double x) => double.IsFinite(x) ? Math.Round(x, 6) : 0;

    private static void WriteReport(Utf8JsonWriter j, EvalReport r)
    {
        ModelEvaluationReport e = r.Run;
        j.WriteString("model", r.ModelPath);
        j.WriteNumber("n", r.Metrics.N);
        j.WriteNumber("accuracy", Round(r.Metrics.Accuracy));
        j.WriteNumber("macro_f1", Round(r.Metrics.MacroF1));
        j.WriteNumber("ece", Round(e.Ece));
        j.WriteNumber("mean_blocks", Round(e.MeanBlocks));
        j.WriteNumber("layers", r.Architecture.Layers);
        j.WriteNumber("compute_saved", Round(e.ComputeSaved));
        if (!double.IsNaN(e.SetCoverage))
        {
            j.WriteNumber("set_coverage", Round(e.SetCoverage));
            j.WriteNumber("set_mean_size", Round(e.SetMeanSize));
        }
        j.WriteString("policy", r.Policy.Name);
        WritePolicyParameters(j, "policy_parameters", r.Policy);
        if (r.Guarantee is { } g)
            WriteGuarantee(j, g);
        j.WriteStartArray("labels");
        foreach (string l in r.Labels) j.WriteStringValue(l);
        j.WriteEndArray();
        j.WriteStartArray("confusion");
        for (int t = 0; t < r.Labels.Count; t++)
        {
            j.WriteStartArray();
            for (int p = 0; p < r.Labels.Count; p++) j.WriteNumberValue(r.Metrics.Confusion[t, p]);
            j.WriteEndArray();
        }
        j.WriteEndArray();
        j.WriteStartArray("exit_histogram");
        foreach (long count in e.ExitHistogram) j.WriteNumberValue(count);
        j.WriteEndArray();
        j.WriteNumber("truncated", e.Truncated);
        if (e.LatencySamples > 0)
        {
            j.WriteNumber("latency_p50_ms", Round(e.LatencyP50Ms));
            j.WriteNumber("latency_p99_ms", Round(e.LatencyP99Ms));
        }
        j.WriteNumber("latency_samples", e.LatencySamples);
        j.WriteNumber("throughput", Math.Round(e.Throughput, 1));
        j.WriteNumber("threads", e.Threads);
        if (e.Exits is not { } x) return;
        j.WriteStartArray("static_depth");
        foreach (var p in x.StaticDepths) WritePoint(j, p);
        j.WriteEndArray();
        j.WritePropertyName("oracle");
        WritePoint(j, x.Oracle);
        j.WriteStartObject("curves");
        foreach (var (kind, curve) in x.Curves)
        {
            j.WriteStartArray(ExitPolicy.NameOf(kind));
            foreach (var p in curve) WritePoint(j, p);
            j.WriteEndArray();
        }
        j.WriteEndObject();
        j.WriteStartArray("front");
        foreach (var p in x.Front) WritePoint(j, p);
        j.WriteEndArray();
    }

    /// <summary>{"setting", "policy" and "parameters" or "k", accuracy, macro_f1, mean_blocks, compute_saved, ece}.</summary>
    private static void WritePoint(Utf8JsonWriter j, OperatingPoint p)
    {
        j.WriteStartObject();
        j.WriteString("setting", p.Policy is { } policy ? policy.ToString() : p.Name);
        if (p.Policy is { } q)
        {
            j.WriteString("policy", q.Name);
            WritePolicyParameters(j, "parameters", q);
        }
        else if (p.StaticDepth > 0)
            j.WriteNumber("k", p.StaticDepth);
        j.WriteNumber("accuracy", Round(p.Accuracy));
        j.WriteNumber("macro_f1", Round(p.Metrics.MacroF1));
        j.WriteNumber("mean_blocks", Round(p.MeanBlocks));
        j.WriteNumber("compute_saved", Round(p.ComputeSaved));
        j.WriteNumber("ece", Round(p.Ece));
        j.WriteEndObject();
    }

    /// <summary>The "guarantee" object of eval and inspect --json.</summary>
    internal static void WriteGuarantee(Utf8JsonWriter j, ExitGuarantee g)
    {
        j.WriteStartObject("guarantee");
        j.WriteString("policy", g.Policy);
        j.WriteString("method", g.Method);
        j.WriteNumber("max_drop", g.MaxDrop);
        j.WriteNumber("delta", g.Delta);
        j.WriteNumber("n", g.Samples);
        j.WriteNumber("losses", g.Losses);
        j.WriteNumber("p_value", g.PValue);
        j.WriteString("data", g.Data);
        j.WriteString("data_sha256", g.DataSha256);
        j.WriteEndObject();
    }

    internal static void WritePolicyParameters(Utf8JsonWriter j, string name, ExitPolicy p)
    {
        j.WriteStartObject(name);
        foreach (var (key, value) in p.Parameters)
        {
            if (key == "t") j.WriteNumber(key, (long)value);
            else j.WriteNumber(key, Round(value));
        }
        j.WriteEndObject();
    }
}
