using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine bench</c>: quick numbers for this machine in a few seconds, without BenchmarkDotNet: the kernels
/// chosen, end-to-end sentences/s at batch 1 (one thread) and batch 64 (all threads) for the binarized model
/// and its FP32 twin (a trained one, or random weights of the same shapes), and single-thread GEMM timings of the kernel families.
/// For publishable numbers use bench/BinEngine.Bench.
/// </summary>
internal static class BenchCommand
{
    /// <summary>Review-like sentences of assorted lengths (about 5 to 45 tokens), cycled through by the end-to-end runs.</summary>
    internal static readonly string[] Sentences =
    [
        "a quiet, moving film .",
        "the plot is thin and the jokes fall flat .",
        "an absolute delight from the first frame to the last .",
        "i wanted to like it , but the second half drags on and on without any sense of purpose .",
        "sharp writing , honest performances and a score that never tells you how to feel .",
        "boring .",
        "the director seems more interested in his camera tricks than in the people he is filming , and it shows in every scene .",
        "funny , warm and surprisingly wise about families .",
        "a mess of a movie that wastes a talented cast on a script that should never have left the drawer .",
        "it is the kind of picture that stays with you for days , long after the credits have rolled and the lights have come back on in the theater .",
        "not bad , not great .",
        "visually stunning but emotionally hollow .",
        "the performances are uniformly excellent , especially the two leads , whose chemistry carries the film through its weaker stretches .",
        "a tedious , overlong exercise in style over substance .",
        "one of the year 's best .",
        "even the most patient viewers will check their watches long before the predictable ending finally arrives .",
    ];

    /// <summary>The GEMM shape timed: a batch of 64 token rows through a 768 → 768 layer (BERT-base width).</summary>
    private const int GemmM = 64, GemmK = 768, GemmN = 768;

    internal static Command Create(CliContext cx)
    {
        var model = CommonOptions.Model();
        var fp32 = new Option<string?>("--fp32") { Description = $"FP32 twin to compare with (default: {ModelLocator.DefaultFp32Relative} when it exists)", HelpName = "PATH" };
        var seconds = new Option<double>("--seconds") { Description = "Approximate time budget for the whole run, split over the measurements", DefaultValueFactory = _ => 10.0, HelpName = "S" };
        var threads = CommonOptions.Threads("for the batch-64 run");
        var json = new Option<bool>("--json") { Description = "Print one JSON object (isa, kernels, sentences_per_second, fp32, ratios, gemm)" };
        var command = new Command("bench", "Quick end-to-end and kernel numbers on this machine: ISA, sentences/s at batch 1 and 64, binary vs FP32, GEMM timings")
        {
            model, fp32, seconds, threads, json,
        };
        command.SetAction(parse =>
        {
            double budget = parse.GetValue(seconds);
            if (!(budget > 0) || double.IsInfinity(budget)) throw new CliException($"--seconds must be a positive number, got {budget}");
            int threadCount = CommonOptions.CheckThreads(parse.GetValue(threads));
            string modelPath = ModelLocator.Locate(cx, parse.GetValue(model));
            string? twinPath = parse.GetValue(fp32) is { } t ? cx.Resolve(t) : ModelLocator.Find(cx, ModelLocator.DefaultFp32Relative);
            bool asJson = parse.GetValue(json);
            if (!asJson) cx.Stdout.WriteLine(KernelRegistry.Report());

            // Budget: 80% end to end (halved between batch 1 and batch 64, and between the models), 20% GEMMs.
            double perRun = budget * 0.8 / 4;
            EndToEnd binary, twinResult;
            Architecture arch, twinArch;
            // Without a twin file, time an FP32 twin of the same shapes with random weights: a dense pass
            // costs the same whatever its weights hold, so the ratio is real; its answers are not.
            string twinName = twinPath ?? "random weights of the same shapes (speed only; --fp32 PATH for a trained twin)";
            var loadOptions = new BeexModelOptions { Threads = 1, BatchThreads = threadCount };
            using (BeexModel m = ModelLocator.Load(modelPath, loadOptions))
            {
                arch = m.Architecture;
                binary = Measure(m, threadCount, perRun);
                if (twinPath is null)
                {
                    InferenceEngine twin = m.CreateRandomFp32Twin();
                    twinArch = twin.Architecture;
                    twinResult = MeasureRandomTwin(m, twin, threadCount, perRun);
                }
                else
                {
                    using BeexModel f = ModelLocator.Load(twinPath, loadOptions);
                    twinArch = f.Architecture;
                    twinResult = Measure(f, threadCount, perRun);
                }
            }
            var gemms = MeasureGemms(budget * 0.2);

            if (asJson)
            {
                WriteJson(cx.Stdout, modelPath, arch, binary, twinName, twinArch, twinResult, gemms, threadCount);
                return ExitCodes.Ok;
            }
            var c = CultureInfo.InvariantCulture;
            var w = cx.Stdout;
            w.WriteLine();
            w.WriteLine($"model       {modelPath} (W{arch.WeightBits}A{arch.ActBits}, L={arch.Layers}, d={arch.Dim})");
            w.WriteLine(string.Format(c, "  batch 1   {0,10:N1} sentences/s  (1 thread)", binary.Batch1));
            w.WriteLine(string.Format(c, "  batch 64  {0,10:N1} sentences/s  ({1} threads)", binary.Batch64, threadCount));
            w.WriteLine($"fp32 twin   {twinName} (W{twinArch.WeightBits}A{twinArch.ActBits}, L={twinArch.Layers}, d={twinArch.Dim}, full depth)");
            w.WriteLine(string.Format(c, "  batch 1   {0,10:N1} sentences/s", twinResult.Batch1));
            w.WriteLine(string.Format(c, "  batch 64  {0,10:N1} sentences/s", twinResult.Batch64));
            w.WriteLine(string.Format(c, "binary / FP32: {0:0.00}x at batch 1, {1:0.00}x at batch 64", binary.Batch1 / twinResult.Batch1, binary.Batch64 / twinResult.Batch64));
            w.WriteLine($"GEMM M={GemmM} K={GemmK} N={GemmN}, 1 thread, median:");
            foreach (var g in gemms)
                w.WriteLine(string.Format(c, "  {0,-6} {1,-24} {2,10:N1} us  {3,8:N1} GOP/s  {4,6:0.0}x SGEMM", g.Family, g.Kernel, g.Microseconds, g.Gops, gemms[^1].Microseconds / g.Microseconds));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal readonly record struct EndToEnd(double Batch1, double Batch64);

    internal sealed record GemmTiming(string Family, string Kernel, double Microseconds, double Gops);

    /// <summary>Sentences/s at batch 1 (one thread, Classify per text) and batch 64 (ClassifyBatch on all threads), tokenization included.</summary>
    private static EndToEnd Measure(BeexModel m, int threads, double seconds)
    {
        var batch = Enumerable.Range(0, 64).Select(i => Sentences[i % Sentences.Length]).ToArray();
        m.ClassifyBatch(batch); // warm-up: JIT, first touch of the mapped weights
        foreach (string s in Sentences) m.Classify(s);

        int i = 0;
        double batch1 = Rate(seconds / 2, () => { m.Classify(Sentences[i++ % Sentences.Length]); return 1; });
        double batch64 = Rate(seconds / 2, () => m.ClassifyBatch(batch).Length);
        return new EndToEnd(batch1, batch64);
    }

    /// <summary>
    /// As <see cref="Measure"/> for the random FP32 twin (full depth), on ids from the binarized model's
    /// tokenizer, tokenized inside the timed loop as <see cref="BeexModel.Classify(string, ExitPolicy?)"/> does.
    /// </summary>
    private static EndToEnd MeasureRandomTwin(BeexModel m, InferenceEngine twin, int threads, double seconds)
    {
        int t = m.Architecture.MaxLength;
        string[] batch = Enumerable.Range(0, 64).Select(i => Sentences[i % Sentences.Length]).ToArray();
        ReadOnlyMemory<int>[] Encode(string[] texts) => texts.Select(s => (ReadOnlyMemory<int>)m.Tokenizer.Encode(s, t)).ToArray();
        twin.ClassifyBatch(Encode(batch), ExitPolicy.Never, threads); // warm-up
        int i = 0;
        double batch1 = Rate(seconds / 2, () => { twin.Classify(m.Tokenizer.Encode(Sentences[i++ % Sentences.Length], t), ExitPolicy.Never, 1); return 1; });
        double batch64 = Rate(seconds / 2, () => twin.ClassifyBatch(Encode(batch), ExitPolicy.Never, threads).Length);
        return new EndToEnd(batch1, batch64);
    }

    /// <summary>Items per second of <paramref name="step"/> (which returns the items it did), run for about <paramref name="seconds"/> (at least once).</summary>
    private static double Rate(double seconds, Func<int> step)
    {
        long items = 0;
        var clock = Stopwatch.StartNew();
        do items += step();
        while (clock.Elapsed.TotalSeconds < seconds);
        return items / clock.Elapsed.TotalSeconds;
    }

    /// <summary>W1A1 (XNOR), W1A8 (bit planes) and SGEMM on random operands; median over repetitions of one call.</summary>
    /// <summary>
    /// The GEMMs the engine runs, on the operands <see cref="KernelTiming.Prepare"/> builds (prepared,
    /// interleaved weights, as the model uses them): W1A1 on the XNOR kernel, W1A8 on the int8 kernel
    /// (the engine's choice for 8-bit activations), FP32 on the SGEMM.
    /// </summary>
    private static List<GemmTiming> MeasureGemms(double seconds)
    {
        KernelSet k = KernelRegistry.Selected;
        double each = seconds / 3;
        return
        [
            Time("W1A1", k.Xnor.Name, each, KernelTiming.Prepare(k.Xnor, GemmM, GemmK, GemmN, threads: 1, bits: 1)),
            Time("W1A8", k.Code.Name, each, KernelTiming.Prepare(k.Code, GemmM, GemmK, GemmN, threads: 1, bits: 8)),
            Time("FP32", k.Sgemm.Name, each, KernelTiming.Prepare(k.Sgemm, GemmM, GemmK, GemmN, threads: 1, bits: 1)),
        ];
    }

    private static GemmTiming Time(string family, string kernel, double seconds, Action call)
    {
        call(); // warm-up
        var samples = new List<double>();
        var clock = Stopwatch.StartNew();
        do
        {
            long start = Stopwatch.GetTimestamp();
            call();
            samples.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
        while ((clock.Elapsed.TotalSeconds < seconds || samples.Count < 5) && samples.Count < 100_000);
        samples.Sort();
        double median = samples[samples.Count / 2];
        return new GemmTiming(family, kernel, median, 2.0 * GemmM * GemmN * GemmK / (median * 1e3));
    }

    private static void WriteJson(TextWriter w, string modelPath, Architecture arch, EndToEnd binary,
        string twinName, Architecture twinArch, EndToEnd twin, List<GemmTiming> gemms, int threads)
    {
        var line = new JsonLine(indented: true);
        Utf8JsonWriter j = line.Begin();
        j.WriteString("kernels", KernelRegistry.Selected.ToString());
        j.WriteString("isa_report", KernelRegistry.Report());
        j.WriteNumber("processors", Environment.ProcessorCount);
        j.WriteNumber("threads", threads);
        j.WriteString("model", modelPath);
        j.WriteString("model_bits", $"W{arch.WeightBits}A{arch.ActBits}E{arch.EmbBits}");
        j.WriteNumber("sentences_per_second_batch1", Math.Round(binary.Batch1, 1));
        j.WriteNumber("sentences_per_second_batch64", Math.Round(binary.Batch64, 1));
        {
            j.WriteStartObject("fp32");
            j.WriteString("model", twinName);
            j.WriteString("model_bits", $"W{twinArch.WeightBits}A{twinArch.ActBits}E{twinArch.EmbBits}");
            j.WriteNumber("sentences_per_second_batch1", Math.Round(twin.Batch1, 1));
            j.WriteNumber("sentences_per_second_batch64", Math.Round(twin.Batch64, 1));
            j.WriteEndObject();
            j.WriteNumber("ratio_batch1", Math.Round(binary.Batch1 / twin.Batch1, 3));
            j.WriteNumber("ratio_batch64", Math.Round(binary.Batch64 / twin.Batch64, 3));
        }
        j.WriteStartObject("gemm");
        j.WriteNumber("m", GemmM);
        j.WriteNumber("k", GemmK);
        j.WriteNumber("n", GemmN);
        j.WriteNumber("threads", 1);
        j.WriteStartArray("results");
        foreach (var g in gemms)
        {
            j.WriteStartObject();
            j.WriteString("family", g.Family);
            j.WriteString("kernel", g.Kernel);
            j.WriteNumber("median_us", Math.Round(g.Microseconds, 2));
            j.WriteNumber("gops", Math.Round(g.Gops, 2));
            j.WriteNumber("speedup_vs_sgemm", Math.Round(gemms[^1].Microseconds / g.Microseconds, 3));
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteEndObject();
        w.WriteLine(line.End());
    }
}
