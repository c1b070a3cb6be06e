using System.Globalization;
using BinEngine.Kernels;

namespace BinEngine.Bench;

/// <summary>
/// The kernel table without BenchmarkDotNet: every supported implementation of every family on the shapes,
/// single thread, median of N calls (KernelTiming), with the ratio to the best SGEMM measured on the same shape in the
/// same process and the SGEMM's fraction of the measured FMA peak. Markdown on stdout.
/// </summary>
internal static class QuickTable
{
    public static readonly (int M, int K, int N)[] Shapes =
    [
        (1, 256, 256), (1, 256, 512), (1, 512, 256), (1, 768, 768), (1, 768, 3072),
        (16, 256, 256), (16, 256, 512), (16, 512, 256), (16, 768, 768), (16, 768, 3072),
        (64, 256, 256), (64, 256, 512), (64, 512, 256), (64, 768, 768), (64, 768, 3072),
    ];

    public static int Run(string[] args)
    {
        int iterations = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 31;
        string? only = args.Length > 1 ? args[1] : null;   // substring filter on kernel names
        var inv = CultureInfo.InvariantCulture;
        double peak = KernelTiming.MeasureFmaPeakFlops(300);
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?"
            : "?";
        Console.WriteLine(string.Create(inv, $"date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; cpu: {cpu}; load average: {LoadAverage()}"));
        Console.WriteLine($"{iterations} calls per row, 1 thread; × SGEMM = this kernel's MAC/s over the registry's first SGEMM's on the same shape, same process (median over median, fastest over fastest)");
        Console.WriteLine(KernelRegistry.Report());
        Console.WriteLine(string.Create(inv, $"measured FP32 FMA peak, 1 thread: {peak / 1e9:F1} GFLOP/s"));
        Console.WriteLine();
        Console.WriteLine("| M | K | N | kernel | median µs | fastest µs | G MAC/s (median) | G MAC/s (fastest) | × SGEMM (median) | × SGEMM (fastest) | SGEMM % of FMA peak (median / fastest) |");
        Console.WriteLine("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        var sgemm = KernelRegistry.Sgemms.First(s => s.IsSupported);
        foreach (var (m, k, n) in Shapes)
        {
            var baseline = KernelTiming.Measure(sgemm, m, k, n, iterations);
            double baseRate = baseline.MacsPerSecond, baseBest = baseline.BestMacsPerSecond;
            foreach (var kernel in KernelRegistry.All.Where(x => x.IsSupported && x.Isa != KernelIsa.Scalar))
            {
                if (only is not null && !kernel.Name.Contains(only, StringComparison.Ordinal)) continue;
                var runs = kernel is PlaneGemm or CodeGemm ? new[] { 4, 8 } : new[] { 0 };
                foreach (int bits in runs)
                {
                    var r = kernel == sgemm ? baseline : KernelTiming.Measure(kernel, m, k, n, iterations, bits: bits == 0 ? 4 : bits);
                    string name = bits == 0 ? kernel.Name : $"{kernel.Name} (A{bits})";
                    string frac = kernel is Sgemm ? string.Create(inv, $"{2 * r.MacsPerSecond / peak * 100:F0}% / {2 * r.BestMacsPerSecond / peak * 100:F0}%") : "";
                    Console.WriteLine(string.Create(inv, $"| {m} | {k} | {n} | {name} | {r.MedianNanoseconds / 1e3:F2} | {r.MinNanoseconds / 1e3:F2} | {r.MacsPerSecond / 1e9:F1} | {r.BestMacsPerSecond / 1e9:F1} | {r.MacsPerSecond / baseRate:F2} | {r.BestMacsPerSecond / baseBest:F2} | {frac} |"));
                }
            }
        }
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";
}
