using System.Globalization;
using System.Numerics.Tensors;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// One lever of issue 11, measured alone: the SLFN's σ and tanh over a block's G1/F1 outputs (rows × f) with
/// TensorPrimitives.Sigmoid/Tanh (what ForwardPass did) against <see cref="VectorMath"/>'s (what it does), on one
/// sentence (25 rows) and one block tile (67 rows) at f = 512, interleaved, medians; with the largest difference
/// between the two (VectorMath is a few ulp from MathF; TensorPrimitives is not the reference either).
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- activations [--reps 41]
/// </summary>
public static class ActivationLever
{
    public static int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        int reps = int.Parse(BenchStats.Arg(args, "--reps", "41"), inv);
        KernelIsa isa = KernelRegistry.Selected.Xnor.Isa;
        Console.WriteLine(string.Create(inv, $"activation lever; load {PeerHarness.Load()}; {reps} interleaved repeats, medians; VectorMath at {isa.ToName()}"));
        Console.WriteLine("| rows × f | TensorPrimitives σ + tanh µs | VectorMath σ + tanh µs | speed-up | max abs difference |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var rng = new Random(7);
        foreach (int rows in new[] { 25, 67 })
        {
            int n = rows * 512;
            float[] x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 12 - 6)).ToArray();
            float[] g0 = new float[n], f0 = new float[n], g1 = new float[n], f1 = new float[n];
            void Old()
            {
                TensorPrimitives.Sigmoid(x, g0);
                TensorPrimitives.Tanh(x, f0);
            }
            void New()
            {
                VectorMath.Sigmoid(x, 0f, g1, isa);
                VectorMath.Tanh(x, f1, isa);
            }
            Old();
            New();
            float diff = 0f;
            for (int i = 0; i < n; i++)
                diff = MathF.Max(diff, MathF.Max(MathF.Abs(g0[i] - g1[i]), MathF.Abs(f0[i] - f1[i])));
            var (o, nw) = BenchStats.Interleaved(Old, New, reps, inner: Math.Max(1, 400_000 / n), warmup: 300);
            Console.WriteLine(string.Create(inv, $"| {rows} × 512 | {o:0.00} | {nw:0.00} | {o / nw:0.00}x | {diff:0.0e0} |"));
        }
        return 0;
    }
}
