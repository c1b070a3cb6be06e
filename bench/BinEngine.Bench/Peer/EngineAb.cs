using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.Loader;

namespace BinEngine.Bench.Peer;

/// <summary>
/// Two builds of the engine in one process, alternated round by round, so that the shared machine's load lands
/// on both alike (separate processes a minute apart moved by ±30 % here, more than the levers being measured). Each
/// build's BinEngine.Core.dll is loaded from its own directory into its own AssemblyLoadContext and driven through the
/// public API only (BeexModel.Load, Classify(string, ExitPolicy?)), so any two commits can be compared, and every
/// sentence's label and exit block are checked to agree.
///
///   git worktree add /tmp/wt-old REV &amp;&amp; (cd /tmp/wt-old &amp;&amp; dotnet build -c Release src/BinEngine)
///   dotnet run -c Release --project bench/BinEngine.Bench -- ab --a /tmp/wt-old/src/BinEngine/bin/Release/net10.0
///       --b src/BinEngine/bin/Release/net10.0 [--model models/sst2-default/model.bex] [--data data/sst2/dev.tsv] [--rounds 10]
///
/// Each build is loaded twice, in the order A, B, B, A, and a round runs the four in the order ABBA or BAAB
/// (alternating by round; alternating by sentence made each build start every call on the other's weights in
/// cache). With one instance each, loaded A then B, the slot alone was worth ≈ 4 % (A/B of one build pair measured
/// 1.09–1.17 one way round and 0.87–0.93 the other); loading each build both first and last, and running it both
/// first and last, cancels any linear drift within a round, but an A/A control (one build on both sides) still read
/// 1.05–1.08×. So the command then loads four fresh instances in the order B, A, A, B and measures again, and prints
/// the geometric mean of the two orders' A/B ratios: A/A controls (2026-12-02, AMD host, 6 rounds, three runs) read
/// 0.98–1.02 that way, single orders 0.96–1.07. Per order, round and mode (full depth, the model's own exits), the
/// 872 sentences go once through each of the four instances. Reported per order: the mean over sentences of each
/// sentence's least time over the rounds (the cost of the code itself; the medians here moved by 1.5× from minute to
/// minute with the other tenants' load), the median of the rounds' p50s, and the median and range of the per-round
/// ratios of the two p50s (paired: taken back to back); then the two orders' geometric means.
/// </summary>
public static class EngineAb
{
    private sealed class BuildContext(string directory) : AssemblyLoadContext($"engine {directory}")
    {
        protected override Assembly? Load(AssemblyName name)
        {
            string path = Path.Combine(directory, name.Name + ".dll");
            return File.Exists(path) && name.Name!.StartsWith("BinEngine", StringComparison.Ordinal) ? LoadFromAssemblyPath(path) : null;
        }
    }

    private sealed class Engine
    {
        private readonly object _model;
        private readonly MethodInfo _classify;
        private readonly PropertyInfo _label, _exit;

        public Engine(string directory, string modelPath)
        {
            var context = new BuildContext(Path.GetFullPath(directory));
            Assembly core = context.LoadFromAssemblyPath(Path.Combine(Path.GetFullPath(directory), "BinEngine.Core.dll"));
            Type model = core.GetType("BinEngine.BeexModel") ?? core.GetTypes().Single(t => t.Name == "BeexModel");
            Type policy = core.GetTypes().Single(t => t.Name == "ExitPolicy");
            Type result = core.GetTypes().Single(t => t.Name == "ClassificationResult");
            MethodInfo load = model.GetMethods().Single(m => m.Name == "Load" && m.GetParameters() is [{ ParameterType: var p }, _] && p == typeof(string));
            _model = load.Invoke(null, [modelPath, null])!;
            _classify = model.GetMethods().Single(m => m.Name == "Classify" && m.GetParameters() is [{ ParameterType: var p }, _] && p == typeof(string));
            Never = policy.GetProperty("Never", BindingFlags.Public | BindingFlags.Static)?.GetValue(null)
                ?? policy.GetField("Never", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
            _label = result.GetProperty("Label")!;
            _exit = result.GetProperty("ExitBlock")!;
        }

        public object Never { get; }

        public (int Label, int Exit) Classify(string text, object? policy)
        {
            object r = _classify.Invoke(_model, [text, policy])!;
            return ((int)_label.GetValue(r)!, (int)_exit.GetValue(r)!);
        }
    }

    public static int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        string a = Arg("--a", ""), b = Arg("--b", "");
        if (a == "" || b == "")
        {
            Console.Error.WriteLine("usage: ab --a BUILD_DIR --b BUILD_DIR [--model F] [--data F] [--rounds N]");
            return 2;
        }
        string modelPath = Arg("--model", "models/sst2-default/model.bex"), dataPath = Arg("--data", "data/sst2/dev.tsv");
        int rounds = int.Parse(Arg("--rounds", "10"), inv);
        string[] texts = BenchStats.Texts(dataPath);
        Console.WriteLine(string.Create(inv, $"# engine A/B, one process, {texts.Length} sentences × {rounds} rounds × 2 orders, 1 thread"));
        Console.WriteLine($"- A: {a}\n- B: {b}\n- model: {modelPath}; load before: {PeerHarness.Load()}");
        // Order 1 loads A B B A, order 2 four fresh instances B A A B: each build takes the first and last slots once
        // (see the class remarks), and the geometric mean of the two orders' ratios cancels the slot's bias.
        var ratios = new Dictionary<string, List<double>>();
        foreach (bool swapped in new[] { false, true })
        {
            string first = swapped ? b : a, second = swapped ? a : b;
            var engines = new[] { new Engine(first, modelPath), new Engine(second, modelPath), new Engine(second, modelPath), new Engine(first, modelPath) };
            int[] buildOf = swapped ? [1, 0, 0, 1] : [0, 1, 1, 0]; // build 0 is A, 1 is B, whichever was loaded first
            Console.WriteLine(swapped ? "order 2 (loaded B A A B):" : "order 1 (loaded A B B A):");
            foreach (bool exits in new[] { false, true })
            {
                var (minima, medians) = Measure(engines, buildOf, texts, rounds, exits);
                foreach (var (what, r) in new[] { ("mean of per-sentence minima", minima), ("median of per-round p50s", medians) })
                {
                    string key = $"{(exits ? "exits" : "full depth")}, {what}";
                    if (!ratios.TryGetValue(key, out var list)) ratios[key] = list = [];
                    list.Add(r);
                }
            }
        }
        Console.WriteLine("both orders: the geometric mean of their A/B ratios (> 1: B is faster)");
        foreach (var (key, list) in ratios)
            Console.WriteLine(string.Create(inv, $"  {key}: {Math.Sqrt(list[0] * list[1]):0.000} (orders {list[0]:0.000} and {list[1]:0.000})"));
        Console.WriteLine($"- load after: {PeerHarness.Load()}");
        return 0;
    }

    /// <summary>
    /// One order's rounds in one mode (full depth, or the model's exits): prints its figures and returns the A/B ratios
    /// of the mean per-sentence minima and of the median per-round p50s. Instance e runs build buildOf[e] (0 = A, 1 = B).
    /// </summary>
    private static (double Minima, double Medians) Measure(Engine[] engines, int[] buildOf, string[] texts, int rounds, bool exits)
    {
        var inv = CultureInfo.InvariantCulture;
        int[][] orders = [[0, 1, 2, 3], [1, 0, 3, 2]]; // the first-loaded pair outside, then inside: alternated by round
        // Per sentence and build, the least time over the rounds and both instances: what the code costs when no
        // other tenant interferes (medians moved by 1.5× between minutes here).
        var least = new double[2, texts.Length];
        for (int e = 0; e < 2; e++)
            for (int s = 0; s < texts.Length; s++)
                least[e, s] = double.MaxValue;
        var medians = new[] { new List<double>(), new List<double>() };
        int disagreements = 0;
        for (int round = -1; round < rounds; round++) // round −1 warms every instance up (tiered JIT)
        {
            var answers = new (int, int)[2, texts.Length];
            var times = new[] { new List<double>(), new List<double>() };
            foreach (int e in orders[(round + 1) % 2])
            {
                int build = buildOf[e];
                for (int s = 0; s < texts.Length; s++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    answers[build, s] = engines[e].Classify(texts[s], exits ? null : engines[e].Never);
                    double time = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
                    times[build].Add(time);
                    if (round >= 0)
                        least[build, s] = Math.Min(least[build, s], time);
                }
            }
            if (round >= 0)
                for (int build = 0; build < 2; build++)
                    medians[build].Add(times[build].Order().ElementAt(times[build].Count / 2));
            for (int s = 0; s < texts.Length; s++)
                if (answers[0, s] != answers[1, s])
                    disagreements++;
        }
        double Median(IEnumerable<double> x) { var y = x.Order().ToArray(); return y[y.Length / 2]; }
        double SumLeast(int e) => Enumerable.Range(0, texts.Length).Sum(s => least[e, s]) / texts.Length;
        double la = SumLeast(0), lb = SumLeast(1), ma = Median(medians[0]), mb = Median(medians[1]);
        // Paired: each round's two p50s were taken back to back, so their ratio cancels load that drifts slowly.
        double[] paired = Enumerable.Range(0, rounds).Select(r => medians[0][r] / medians[1][r]).Order().ToArray();
        Console.WriteLine(string.Create(inv,
            $"  {(exits ? "exits" : "full depth")}: mean of per-sentence minima A {la:0.0} µs, B {lb:0.0} µs (A/B {la / lb:0.000}); median of per-round p50s A {ma:0.0}, B {mb:0.0} (A/B {ma / mb:0.000}); per-round A/B of the p50s: median {paired[rounds / 2]:0.000}, range {paired[0]:0.000}–{paired[^1]:0.000}; label or exit disagreements: {disagreements}"));
        return (la / lb, ma / mb);
    }
}
