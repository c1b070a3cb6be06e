namespace BinEngine.Bench;

/// <summary>The statistics and machine description every harness reports with (one definition for all of them).</summary>
internal static class BenchStats
{
    /// <summary>The value after <paramref name="name"/> on a harness's command line (`--rounds 5`), or <paramref name="fallback"/> when absent or last.</summary>
    public static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The texts of a labelled TSV (text, label; a header line), rows with an empty text left out.</summary>
    public static string[] Texts(string tsvPath) =>
        File.ReadLines(tsvPath).Skip(1).Select(l => l.Split('\t')[0]).Where(t => t.Length > 0).ToArray();

    /// <summary>The q-quantile of ascending <paramref name="sorted"/> (nearest rank).</summary>
    public static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>
    /// A lever measured alone: <paramref name="warmup"/> calls of each, then <paramref name="reps"/> rounds that time
    /// <paramref name="inner"/> calls of <paramref name="before"/> and then of <paramref name="after"/> (interleaved, so
    /// load changes hit both); the medians in µs per call.
    /// </summary>
    public static (double Before, double After) Interleaved(Action before, Action after, int reps, int inner, int warmup)
    {
        for (int w = 0; w < warmup; w++) { before(); after(); }
        var tb = new List<double>(reps);
        var ta = new List<double>(reps);
        for (int r = 0; r < reps; r++)
        {
            long s = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int k = 0; k < inner; k++) before();
            tb.Add(System.Diagnostics.Stopwatch.GetElapsedTime(s).TotalMicroseconds / inner);
            s = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int k = 0; k < inner; k++) after();
            ta.Add(System.Diagnostics.Stopwatch.GetElapsedTime(s).TotalMicroseconds / inner);
        }
        return (Median(tb), Median(ta));
    }

    /// <summary>The CPU's model name from /proc/cpuinfo, or the architecture where there is none.</summary>
    public static string CpuName()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString() : line.Split(':', 2)[1].Trim();
        }
        catch (IOException)
        {
            return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
        }
    }
}
