using System.Globalization;
using System.Numerics.Tensors;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// One lever of issue 11, measured alone: the linear layers' epilogue y = (α·s)·p + b as three
/// TensorPrimitives passes per row (what ForwardPass did) against <see cref="Epilogue.ScaleBias"/>'s
/// one pass, on the model's row widths at one sentence (25 rows) and at a chunk of 32 sentences (800
/// rows), interleaved, medians; the outputs must agree bit for bit.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- epilogue [--reps 41]
/// </summary>
public static class EpilogueLever
{
    public static int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        int reps = int.Parse(BenchStats.Arg(args, "--reps", "41"), inv);
        Console.WriteLine(string.Create(inv, $"epilogue lever; load {PeerHarness.Load()}; {reps} interleaved repeats, medians"));
        Console.WriteLine("| rows | n | 3 passes µs | 1 pass µs | speed-up | bit-identical |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---|");
        var rng = new Random(7);
        foreach (int rows in new[] { 25, 800 })
            foreach (int n in new[] { 256, 512 })
            {
                var products = Enumerable.Range(0, rows * n).Select(_ => rng.Next(-40000, 40000)).ToArray();
                var alpha = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
                var bias = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
                var scales = Enumerable.Range(0, rows).Select(_ => (float)rng.NextDouble() * 0.01f).ToArray();
                float[] yOld = new float[rows * n], yNew = new float[rows * n], rowScale = new float[n];
                void Old()
                {
                    for (int t = 0; t < rows; t++)
                    {
                        Span<float> yt = yOld.AsSpan(t * n, n);
                        TensorPrimitives.ConvertTruncating<int, float>(products.AsSpan(t * n, n), yt);
                        TensorPrimitives.Multiply(alpha, scales[t], rowScale);
                        TensorPrimitives.MultiplyAdd(yt, rowScale, bias, yt);
                    }
                }
                void New()
                {
                    for (int t = 0; t < rows; t++)
                        Epilogue.ScaleBias(products.AsSpan(t * n, n), alpha, scales.AsSpan(t, 1), bias, yNew.AsSpan(t * n, n), n, KernelIsa.Avx512);
                }
                Old();
                New();
                bool same = yOld.AsSpan().SequenceEqual(yNew);
                var (o, nw) = BenchStats.Interleaved(Old, New, reps, inner: Math.Max(1, 200_000 / (rows * n)), warmup: 200);
                Console.WriteLine(string.Create(inv, $"| {rows} | {n} | {o:0.00} | {nw:0.00} | {o / nw:0.00}x | {(same ? "yes" : "NO")} |"));
            }
        return 0;
    }
}
