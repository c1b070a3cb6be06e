using System.Diagnostics;
using System.Globalization;
using System.Text;
using BinEngine.Kernels;

namespace BinEngine.Bench.Peer;

/// <summary>
/// The machine's ceiling beside the engine's XNOR kernels (issue 11): bench/anchor/bgemm.c (a copy of ../shared/anchors/bgemm.c), native C
/// binary GEMMs including AVX-512 VPOPCNTQ (which .NET 10 does not expose), on the same shapes, in the
/// same run, timed the same way (median of 7 repeats of ≈ 0.25 s after a 0.3 s calibration).
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- anchor [--src bench/anchor/bgemm.c]
///       [--ghz 2.1] [--shapes 256x256x25,...] [--rounds 2] [--all] [--out PATH]
///
/// A shape is the anchor's MxKxB: M weight rows (the engine's N, outputs), K bits, B activation rows (tokens).
/// Defaults: the model's products (Q/K/V/O 256x256, G1/F1 512x256, G2/F2 256x512) at one mean SST-2 sentence
/// (B = 25 tokens) and at a batch of 64 sentences (B = 1600), and the anchor's 768x768x32. Each round runs the
/// native binary on a shape, then the engine's kernels on it; the table reports medians over rounds and the
/// engine's selected XNOR kernel as a fraction of the fastest native VPOPCNTQ variant.
/// The binary is compiled with gcc -O3 -march=native into bench/peer/bgemm (git-ignored) when missing or older
/// than the source. Binary MACs per cycle use --ghz (default: the TSC rate from /proc/cpuinfo's bogomips / 2,
/// a nominal clock, not the measured one; the fraction does not depend on it).
/// </summary>
public static class AnchorHarness
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        var inv = CultureInfo.InvariantCulture;
        string src = Arg("--src", "bench/anchor/bgemm.c");
        string exe = Arg("--exe", "bench/peer/bgemm");
        double ghz = double.Parse(Arg("--ghz", NominalGhz().ToString(inv)), inv);
        int rounds = int.Parse(Arg("--rounds", "2"), inv);
        string output = Arg("--out", "");
        (int M, int K, int B)[] shapes = Arg("--shapes", "256x256x25,512x256x25,256x512x25,256x256x1600,512x256x1600,256x512x1600,768x768x32")
            .Split(',').Select(s => s.Split('x').Select(v => int.Parse(v, inv)).ToArray()).Select(v => (v[0], v[1], v[2])).ToArray();
        string loadBefore = PeerHarness.Load();

        Compile(src, exe);
        // The selected kernel, and with --all every supported vector one.
        XnorGemm selected = KernelRegistry.Selected.Xnor;
        XnorGemm[] kernels = args.Contains("--all")
            ? KernelRegistry.XnorGemms.Where(k => k.IsSupported && k.Isa != KernelIsa.Scalar).ToArray()
            : [selected];

        // [shape][variant] → seconds per call, one entry per round
        var native = new Dictionary<(int, string), List<double>>();
        var managed = new Dictionary<(int, string), List<double>>();
        for (int round = 0; round < rounds; round++)
        {
            for (int s = 0; s < shapes.Length; s++)
            {
                var (m, k, b) = shapes[s];
                foreach (var (variant, seconds) in RunNative(exe, ghz, m, k, b))
                    Add(native, (s, variant), seconds);
                foreach (XnorGemm kernel in kernels)
                {
                    Action call = KernelTiming.Prepare(kernel, b, k, m, threads: 1, bits: 1);
                    Add(managed, (s, kernel.Name), TimeLikeAnchor(call));
                }
                Console.Error.WriteLine($"round {round + 1}/{rounds} {m}x{k}x{b}: done");
            }
        }

        var sb = new StringBuilder();
        sb.AppendLine("# The XNOR kernels against the native VPOPCNTQ anchor (bench/anchor/bgemm.c, a copy of ../shared/anchors/bgemm.c)");
        sb.AppendLine();
        sb.AppendLine(inv, $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {BenchStats.CpuName()}; .NET {Environment.Version}; 1 thread");
        sb.AppendLine(inv, $"- load (/proc/loadavg) before: {loadBefore}; after: {PeerHarness.Load()}");
        sb.AppendLine(inv, $"- native: gcc -O3 -march=native {src}; each call timed as bgemm.c does (median of 7 repeats of ≈ 0.25 s), {rounds} rounds interleaved native / managed, medians");
        sb.AppendLine(inv, $"- bMAC/cycle at {ghz:0.00} GHz (nominal: TSC rate, not a measured core clock; the fraction does not depend on it); engine's selected XNOR kernel: {selected.Name}");
        sb.AppendLine(inv, $"- command: `dotnet run -c Release --project bench/BinEngine.Bench -- anchor {string.Join(' ', args)}`");
        sb.AppendLine();
        sb.AppendLine("| M (outputs) x K | B (rows) | kernel | µs/call | G bMAC/s | bMAC/cycle | fraction of best VPOPCNTQ |");
        sb.AppendLine("|---|---:|---|---:|---:|---:|---:|");
        var fractions = new List<double>();
        for (int s = 0; s < shapes.Length; s++)
        {
            var (m, k, b) = shapes[s];
            double macs = (double)m * k * b;
            double best = native.Where(e => e.Key.Item1 == s && e.Key.Item2.Contains("VPOPCNTQ", StringComparison.Ordinal))
                .Min(e => BenchStats.Median(e.Value));
            void Row(string name, double t, bool mark = false) =>
                sb.AppendLine(inv, $"| {m}x{k} | {b} | {(mark ? "**" + name + "**" : name)} | {t * 1e6:0.00} | {macs / t / 1e9:0.0} | {macs / t / 1e9 / ghz:0.0} | {best / t * 100:0}% |");
            foreach (var e in native.Where(e => e.Key.Item1 == s))
                Row("native " + e.Key.Item2, BenchStats.Median(e.Value));
            foreach (var e in managed.Where(e => e.Key.Item1 == s))
            {
                double t = BenchStats.Median(e.Value);
                Row("BinEngine " + e.Key.Item2, t, e.Key.Item2 == selected.Name);
                if (e.Key.Item2 == selected.Name)
                    fractions.Add(best / t);
            }
        }
        sb.AppendLine();
        sb.AppendLine(inv, $"{selected.Name} over the best native VPOPCNTQ variant: {string.Join(", ", fractions.Select(f => (f * 100).ToString("0", inv) + "%"))} " +
            $"(geometric mean {Math.Exp(fractions.Average(Math.Log)) * 100:0}%; target ≥ 60%)");
        string table = sb.ToString();
        ResultTable.Emit(table, output);
        return 0;
    }

    private static void Add<TKey>(Dictionary<TKey, List<double>> d, TKey key, double v) where TKey : notnull
    {
        if (!d.TryGetValue(key, out List<double>? list))
            d[key] = list = [];
        list.Add(v);
    }

    /// <summary>bgemm.c's timing: calls for 0.3 s to size a repeat of ≈ 0.25 s, 7 repeats, the median repeat's time per call.</summary>
    private static double TimeLikeAnchor(Action call)
    {
        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (sw.Elapsed.TotalSeconds < 0.3)
        {
            call();
            calls++;
        }
        double per = sw.Elapsed.TotalSeconds / calls;
        int iterations = Math.Max(1, (int)(0.25 / per));
        var times = new double[7];
        for (int r = 0; r < times.Length; r++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < iterations; i++)
                call();
            times[r] = Stopwatch.GetElapsedTime(start).TotalSeconds / iterations;
        }
        Array.Sort(times);
        return times[3];
    }

    private static IEnumerable<(string Variant, double Seconds)> RunNative(string exe, double ghz, int m, int k, int b)
    {
        var inv = CultureInfo.InvariantCulture;
        var start = new ProcessStartInfo(exe, [ghz.ToString(inv), $"{m}x{k}x{b}"]) { RedirectStandardOutput = true, UseShellExecute = false };
        using Process p = Process.Start(start) ?? throw new InvalidOperationException($"could not start {exe}");
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{exe} exited with {p.ExitCode}: {text}");
        // | MxK | B | variant | time/call (us) | G bMAC/s | bMAC/cycle |
        foreach (string line in text.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && char.IsDigit(l[2])))
        {
            string[] cells = line.Split('|', StringSplitOptions.TrimEntries);
            yield return (cells[3], double.Parse(cells[4], inv) * 1e-6);
        }
    }

    private static void Compile(string src, string exe)
    {
        if (!File.Exists(src))
            throw new FileNotFoundException($"the anchor's source is not at {src} (--src)", src);
        if (File.Exists(exe) && File.GetLastWriteTimeUtc(exe) >= File.GetLastWriteTimeUtc(src))
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(exe))!);
        var start = new ProcessStartInfo("gcc", ["-O3", "-march=native", "-o", exe, src]) { UseShellExecute = false };
        using Process p = Process.Start(start) ?? throw new InvalidOperationException("could not start gcc (apt-get install gcc)");
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"gcc -O3 -march=native {src} failed with {p.ExitCode}");
    }

    /// <summary>The TSC rate: bogomips / 2 on x86 Linux (a nominal clock; 0-safe fallback 1 GHz).</summary>
    private static double NominalGhz()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("bogomips", StringComparison.Ordinal));
            if (line is not null && double.TryParse(line.Split(':', 2)[1].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double mips))
                return mips / 2000;
        }
        catch (IOException)
        {
        }
        return 1.0;
    }
}
