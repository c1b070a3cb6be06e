using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BinEngine.Cli.Evaluation;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine eval DATA.tsv</c>: accuracy, macro-F1, confusion matrix, exits, compute saved, latency and
/// throughput of a model (and its FP32 twin with --fp32) on a labelled GLUE-style TSV; --sweep adds the
/// accuracy/compute curve over the policy's threshold.
/// </summary>
internal static class EvalCommand
{
    internal static Command Create(CliContext cx)
    {
        var data = new Argument<string>("data") { Description = "Labelled TSV with a header (GLUE format, e.g. data/sst2/dev.tsv: sentence<TAB>label)" };
        var textColumn = new Option<string>("--text-column") { Description = "Text column: header name or 0-based index", DefaultValueFactory = _ => "sentence", HelpName = "NAME|INDEX" };
        var labelColumn = new Option<string>("--label-column") { Description = "Label column (a class id or a label name per row): header name or 0-based index", DefaultValueFactory = _ => "label", HelpName = "NAME|INDEX" };
        var model = CommonOptions.Model();
        var fp32 = new Option<string?>("--fp32") { Description = "Also evaluate this FP32 twin (a .bex converted from the full-precision checkpoint) and report the binary/FP32 speed ratio", HelpName = "PATH" };
        var sweep = new Option<bool>("--sweep") { Description = "Print accuracy, macro-F1, mean blocks and compute saved over a grid of the policy's threshold (τ; κ stays fixed for entropy_reduction; t = 1..L for patience)" };
        var limit = new Option<int>("--limit") { Description = "Use only the first N usable rows (0: all)", DefaultValueFactory = _ => 0, HelpName = "N" };
        var threads = CommonOptions.Threads("for the throughput run");
        var latencySamples = new Option<int>("--latency-samples") { Description = "How many texts to time one at a time on one thread for latency p50/p99", DefaultValueFactory = _ => 1000, HelpName = "N" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: accuracy, macro_f1, n, mean_blocks, compute_saved, policy, confusion, latency, throughput, sweep, fp32" };
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
            var set = EvalData.ReadTsv(dataPath, parse.GetValue(textColumn)!, parse.GetValue(labelColumn)!, m.Labels, rowLimit);
            var (texts, gold, errors) = DropEmpty(m, set);
            foreach (string e in errors.Take(10))
                cx.Stderr.WriteLine("skipped: " + e);
            if (errors.Count > 10)
                cx.Stderr.WriteLine($"skipped: … and {errors.Count - 10} more rows");
            if (texts.Length == 0)
                throw new CliException($"'{dataPath}' has no usable rows to evaluate");

            EvalReport report = Evaluator.Run(m, modelPath, exitPolicy, texts, gold, threadCount, latencyCount, parse.GetValue(sweep));
            EvalReport? twin = null;
            if (parse.GetValue(fp32) is { } twinOption)
            {
                string twinPath = cx.Resolve(twinOption);
                using BeexModel t = ModelLocator.Load(twinPath, loadOptions);
                if (!t.Labels.SequenceEqual(m.Labels))
                    throw new CliException($"the FP32 twin's labels ({string.Join(", ", t.Labels)}) differ from the model's ({string.Join(", ", m.Labels)})");
                twin = Evaluator.Run(t, twinPath, policy.Resolve(parse, t), texts, gold, threadCount, latencyCount, sweep: false);
            }

            if (parse.GetValue(json))
                WriteJson(cx.Stdout, dataPath, report, twin, errors.Count);
            else
                WriteText(cx.Stdout, dataPath, report, twin, errors.Count);
            return errors.Count > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Drops texts without a token (the model cannot classify them), reporting each.</summary>
    private static (string[] Texts, int[] Gold, List<string> Errors) DropEmpty(BeexModel m, EvalData set)
    {
        var errors = new List<string>(set.RowErrors);
        var texts = new List<string>(set.Texts.Length);
        var gold = new List<int>(set.Texts.Length);
        var ids = new int[m.Architecture.MaxLength];
        for (int i = 0; i < set.Texts.Length; i++)
        {
            try
            {
                m.Encode(set.Texts[i], ids, out _);
                texts.Add(set.Texts[i]);
                gold.Add(set.Gold[i]);
            }
            catch (ArgumentException e)
            {
                errors.Add($"usable row {i}: {e.Message}");
            }
        }
        return (texts.ToArray(), gold.ToArray(), errors);
    }

    private static string Describe(Architecture a) =>
        $"W{a.WeightBits}A{a.ActBits}E{a.EmbBits}, L={a.Layers}, d={a.Dim}, h={a.Heads}, f={a.FfDim}, max_len={a.MaxLength}";

    internal static void WriteText(TextWriter w, string dataPath, EvalReport r, EvalReport? twin, int skipped)
    {
        var c = CultureInfo.InvariantCulture;
        w.WriteLine($"data        {dataPath} ({r.Metrics.N:N0} rows{(skipped > 0 ? $", {skipped:N0} skipped" : "")})");
        WriteModel(w, r, "model      ");
        if (twin is not null)
        {
            w.WriteLine();
            WriteModel(w, twin, "fp32 twin  ");
            w.WriteLine();
            w.WriteLine(string.Format(c, "binary vs FP32: accuracy {0:+0.0000;-0.0000;0.0000}, throughput {1:0.00}x, latency p50 {2:0.00}x",
                r.Metrics.Accuracy - twin.Metrics.Accuracy, r.Throughput / twin.Throughput, twin.LatencyP50Ms / r.LatencyP50Ms));
        }
        if (r.Sweep is { } points)
        {
            w.WriteLine();
            string param = r.Policy.Kind switch
            {
                ExitPolicyKind.Patience => "t",
                ExitPolicyKind.None => "-",
                _ => "tau",
            };
            string fixedNote = r.Policy.Kind == ExitPolicyKind.EntropyReduction ? string.Format(c, " (kappa = {0})", r.Policy.Kappa) : "";
            w.WriteLine($"sweep of {r.Policy.Name} {param}{fixedNote} over {r.Metrics.N:N0} rows (replayed from one full-depth pass)");
            w.WriteLine($"  {param,7}  accuracy  macro_f1  mean_blocks  compute_saved");
            foreach (var p in points)
            {
                string value = p.Policy.Kind switch
                {
                    ExitPolicyKind.Patience => p.Policy.Patience.ToString(c),
                    ExitPolicyKind.None => "-",
                    _ => p.Policy.Tau.ToString("0.000", c),
                };
                w.WriteLine(string.Format(c, "  {0,7}  {1,8:0.0000}  {2,8:0.0000}  {3,11:0.00}  {4,12:0.0%}", value, p.Accuracy, p.MacroF1, p.MeanBlocks, p.ComputeSaved));
            }
        }
    }

    private static void WriteModel(TextWriter w, EvalReport r, string title)
    {
        var c = CultureInfo.InvariantCulture;
        w.WriteLine($"{title} {r.ModelPath} ({Describe(r.Architecture)})");
        w.WriteLine($"policy      {PolicyOptions.Describe(r.Policy)}");
        w.WriteLine(string.Format(c, "accuracy    {0:0.0000}   macro-F1 {1:0.0000}", r.Metrics.Accuracy, r.Metrics.MacroF1));
        w.WriteLine("confusion   rows: true label, columns: predicted");
        int width = Math.Max(8, r.Labels.Max(l => l.Length));
        w.WriteLine("            " + new string(' ', width) + string.Concat(r.Labels.Select(l => "  " + l.PadLeft(width))));
        for (int t = 0; t < r.Labels.Count; t++)
        {
            w.Write("            " + r.Labels[t].PadRight(width));
            for (int p = 0; p < r.Labels.Count; p++)
                w.Write("  " + r.Metrics.Confusion[t, p].ToString(c).PadLeft(width));
            w.WriteLine();
        }
        w.WriteLine(string.Format(c, "blocks      mean {0:0.00} of {1}; exits per block: {2}", r.MeanBlocks, r.Architecture.Layers,
            string.Join(" ", r.ExitHistogram.Select((count, b) => $"{b + 1}:{count}"))));
        w.WriteLine(string.Format(c, "compute     {0:0.0%} of full-depth FLOPs saved (blocks and exit heads, FLOP-weighted by length)", r.ComputeSaved));
        if (r.Truncated > 0)
            w.WriteLine(string.Format(c, "truncated   {0:N0} texts were cut to max_len = {1} tokens", r.Truncated, r.Architecture.MaxLength));
        if (r.LatencySamples > 0)
            w.WriteLine(string.Format(c, "latency     p50 {0:0.000} ms, p99 {1:0.000} ms (one text at a time, 1 thread, {2:N0} texts)", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencySamples));
        w.WriteLine(string.Format(c, "throughput  {0:N0} texts/s (one batch of {1:N0}, {2} threads)", r.Throughput, r.Metrics.N, r.Threads));
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
            j.WriteNumber("throughput_ratio", Round(r.Throughput / twin.Throughput));
            j.WriteNumber("latency_p50_ratio", Round(twin.LatencyP50Ms / r.LatencyP50Ms));
            j.WriteNumber("accuracy_delta", Round(r.Metrics.Accuracy - twin.Metrics.Accuracy));
        }
        w.WriteLine(line.End());
    }

    private static double Round(double x) => double.IsFinite(x) ? Math.Round(x, 6) : 0;

    private static void WriteReport(Utf8JsonWriter j, EvalReport r)
    {
        j.WriteString("model", r.ModelPath);
        j.WriteNumber("n", r.Metrics.N);
        j.WriteNumber("accuracy", Round(r.Metrics.Accuracy));
        j.WriteNumber("macro_f1", Round(r.Metrics.MacroF1));
        j.WriteNumber("mean_blocks", Round(r.MeanBlocks));
        j.WriteNumber("layers", r.Architecture.Layers);
        j.WriteNumber("compute_saved", Round(r.ComputeSaved));
        j.WriteString("policy", r.Policy.Name);
        WritePolicyParameters(j, "policy_parameters", r.Policy);
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
        foreach (long count in r.ExitHistogram) j.WriteNumberValue(count);
        j.WriteEndArray();
        j.WriteNumber("truncated", r.Truncated);
        if (r.LatencySamples > 0)
        {
            j.WriteNumber("latency_p50_ms", Round(r.LatencyP50Ms));
            j.WriteNumber("latency_p99_ms", Round(r.LatencyP99Ms));
        }
        j.WriteNumber("latency_samples", r.LatencySamples);
        j.WriteNumber("throughput", Math.Round(r.Throughput, 1));
        j.WriteNumber("threads", r.Threads);
        if (r.Sweep is { } points)
        {
            j.WriteStartArray("sweep");
            foreach (var p in points)
            {
                j.WriteStartObject();
                WritePolicyParameters(j, "parameters", p.Policy);
                j.WriteNumber("accuracy", Round(p.Accuracy));
                j.WriteNumber("macro_f1", Round(p.MacroF1));
                j.WriteNumber("mean_blocks", Round(p.MeanBlocks));
                j.WriteNumber("compute_saved", Round(p.ComputeSaved));
                j.WriteEndObject();
            }
            j.WriteEndArray();
        }
    }

    private static void WritePolicyParameters(Utf8JsonWriter j, string name, ExitPolicy p)
    {
        j.WriteStartObject(name);
        switch (p.Kind)
        {
            case ExitPolicyKind.None: break;
            case ExitPolicyKind.Patience: j.WriteNumber("t", p.Patience); break;
            case ExitPolicyKind.EntropyReduction:
                j.WriteNumber("tau", Round(p.Tau));
                j.WriteNumber("kappa", Round(p.Kappa));
                break;
            default: j.WriteNumber("tau", Round(p.Tau)); break;
        }
        j.WriteEndObject();
    }
}
