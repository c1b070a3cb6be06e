using System.Globalization;
using BinEngine.Kernels;

namespace BinEngine.Bench.Peer;

/// <summary>
/// A lever of issue 11 measured at the kernel before any engine change: one GEMM for the products that
/// share an input (Q/K/V as N = 3d, G1/F1 as N = 2f) against the separate GEMMs the forward pass runs
/// today, on the selected XNOR kernel (W1A1) and int8 code kernel (W1A8), at one sentence (25 rows) and
/// at a chunk of 32 sentences (800 rows); interleaved repeats, medians.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- fusion [--reps 31]
/// </summary>
public static class FusionLever
{
    public static int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        int reps = int.Parse(BenchStats.Arg(args, "--reps", "31"), inv);
        KernelSet set = KernelRegistry.Selected;
        Console.WriteLine(string.Create(inv, $"fused products lever; load {PeerHarness.Load()}; {reps} interleaved repeats, medians; 1 thread"));
        Console.WriteLine("| kernel | rows | products | separate µs | fused µs | speed-up |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|");
        foreach (GemmKernel kernel in new GemmKernel[] { set.Xnor, set.Code })
            foreach (int rows in new[] { 25, 800 })
                foreach (var (name, parts, n, k) in new[] { ("Q/K/V: 3 × N=256 vs N=768", 3, 256, 256), ("G1/F1: 2 × N=512 vs N=1024", 2, 512, 256) })
                {
                    Action one = KernelTiming.Prepare(kernel, rows, k, n, threads: 1, bits: 8);
                    Action fused = KernelTiming.Prepare(kernel, rows, k, parts * n, threads: 1, bits: 8);
                    void Separate()
                    {
                        for (int p = 0; p < parts; p++)
                            one();
                    }
                    var (a, b) = BenchStats.Interleaved(Separate, fused, reps, inner: Math.Max(1, 2_000_000 / (rows * n * parts)), warmup: 20);
                    Console.WriteLine(string.Create(inv, $"| {kernel.Name} | {rows} | {name} | {a:0.0} | {b:0.0} | {a / b:0.00}x |"));
                }
        return 0;
    }
}
