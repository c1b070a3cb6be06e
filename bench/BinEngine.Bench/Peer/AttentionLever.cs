using System.Globalization;
using BinEngine.Kernels;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// One lever of issue 11, measured alone: the direct attention path (Runtime/Attention.cs) of one sample, 4 heads × 64,
/// rows 256 floats apart (the residual layout), at several lengths, and where a 25-token sentence's time goes (scores,
/// max + exponentials, weighted sums). Interleaved repeats, medians.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- attention [--reps 41]
/// </summary>
public static class AttentionLever
{
    public static unsafe int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        int reps = int.Parse(BenchStats.Arg(args, "--reps", "41"), inv);
        KernelIsa isa = KernelRegistry.Selected.Xnor.Isa;
        const int d = 256, heads = 4, dh = 64;
        Console.WriteLine(string.Create(inv, $"attention lever; load {PeerHarness.Load()}; {reps} interleaved repeats, medians; {isa.ToName()}; {heads} heads × {dh}, stride {d}"));
        var rng = new Random(7);
        float[] Make(int n) => Enumerable.Range(0, n * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Sgemm sgemm = KernelRegistry.Selected.Sgemm;
        Console.WriteLine("| n | direct µs per block | copies + 2 SGEMMs per head µs | direct x |");
        Console.WriteLine("|---:|---:|---:|---:|");
        int[] lengths = [8, 25, 40, 48, 64, 96, 128, 192];
        for (int pass = 0; pass < 2; pass++) // pass 0 only warms up: tiered JIT compiles in the background, and the first shape timed cold read 2–3× slow
        foreach (int n in lengths)
        {
            float[] q = Make(n), k = Make(n), v = Make(n), o = new float[n * d], scratch = new float[Attention.DirectScratch(n, dh)];
            var gemm = new float[5][];
            for (int i = 0; i < 4; i++)
                gemm[i] = new float[n * dh];
            gemm[4] = new float[n * n];
            var (a, b) = BenchStats.Interleaved(() => Attention.Direct(q, k, v, o, n, d, heads, dh, scratch, isa),
                () => Attention.Gemm(q, k, v, o, n, d, heads, dh, new Attention.GemmScratch(gemm[0], gemm[1], gemm[2], gemm[3], gemm[4]), sgemm),
                reps, inner: 100, warmup: 200);
            if (pass == 1)
                Console.WriteLine(string.Create(inv, $"| {n} | {a:0.00} | {b:0.00} | {b / a:0.00}x |"));
        }

        {
            const int n = 25;
            float[] q = Make(n), k = Make(n), v = Make(n), o = new float[n * d], scratch = new float[Attention.DirectScratch(n, dh)];
            float[] sums = new float[n];
            int np = (n + 31) & ~31;
            fixed (float* qp = q, kp = k, vp = v, op = o, kt = scratch)
            {
                float* qq = qp, kk = kp, vv = vp, oo = op, tt = kt, sp = kt + dh * np;
                void ScoresOnly() { for (int h = 0; h < heads; h++) Attention.Scores(qq + h * dh, kk + h * dh, d, n, dh, 0.125f, tt, sp, isa); }
                fixed (float* divisors = sums)
                {
                    float* dv = divisors;
                    void ExpOnly() { for (int h = 0; h < heads; h++) Attention.SoftmaxNumerators(sp, n, np, dv, isa); }
                    void SumsOnly() { for (int h = 0; h < heads; h++) Attention.WeightedSums(sp, np, n, vv + h * dh, d, dh, dv, oo + h * dh, isa); }
                    var (sc, ex) = BenchStats.Interleaved(ScoresOnly, ExpOnly, reps, inner: 200, warmup: 300);
                    Array.Fill(sums, 2f);
                    var (ws, _) = BenchStats.Interleaved(SumsOnly, SumsOnly, reps, inner: 200, warmup: 300);
                    Console.WriteLine(string.Create(inv, $"n {n}, all heads: scores {sc:0.00} µs, exponentials {ex:0.00}, weighted sums {ws:0.00}"));
                }
            }
        }
        return 0;
    }
}
