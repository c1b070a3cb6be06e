using System.Diagnostics;
using System.Globalization;
using BinEngine.Runtime;

namespace BinEngine.Bench;

/// <summary>
/// <c>bench -- load [MODEL] [--rounds N]</c>: what loading a model costs, read into private memory (the default)
/// against memory-mapped (BeexModelOptions.MemoryMap): wall time of Load and the growth of the process's resident
/// and private memory while the model is held (after one classification, so the prepared weights and a workspace
/// exist). Each round loads in a fresh state after a full GC; medians over the rounds (docs/FORMAT.md, "Loading").
/// </summary>
internal static class LoadCost
{
    public static int Run(string[] args)
    {
        string model = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || args[i - 1] != "--rounds"))
            .FirstOrDefault() ?? "models/sst2-default/model.bex";
        int rounds = args.SkipWhile(a => a != "--rounds").Skip(1).Select(int.Parse).FirstOrDefault(7);
        var inv = CultureInfo.InvariantCulture;
        using (BeexModel warm = BeexModel.Load(model)) warm.Classify("warm up the JIT"); // no JIT in the timings
        foreach (bool map in new[] { false, true, false, true })
        {
            var ms = new List<double>();
            var rss = new List<double>();
            var priv = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                using Process p = Process.GetCurrentProcess();
                p.Refresh();
                long rss0 = p.WorkingSet64, priv0 = p.PrivateMemorySize64;
                var clock = Stopwatch.StartNew();
                using BeexModel m = BeexModel.Load(model, new BeexModelOptions { MemoryMap = map });
                ms.Add(clock.Elapsed.TotalMilliseconds);
                m.Classify("a gorgeous, witty, seductive movie.");
                p.Refresh();
                rss.Add((p.WorkingSet64 - rss0) / 1e6);
                priv.Add((p.PrivateMemorySize64 - priv0) / 1e6);
            }
            Console.WriteLine(string.Create(inv, $"{(map ? "mapped " : "private")}  load {BenchStats.Median(ms),7:0.0} ms   resident +{BenchStats.Median(rss),6:0.0} MB   private +{BenchStats.Median(priv),6:0.0} MB   ({rounds} rounds, medians)"));
        }
        return 0;
    }
}
