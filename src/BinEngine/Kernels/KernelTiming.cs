using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>One timed kernel shape: median wall time per call and the rate it implies.</summary>
/// <param name="Kernel">Implementation name.</param>
/// <param name="M">Activation rows.</param>
/// <param name="K">Row length.</param>
/// <param name="N">Weight rows.</param>
/// <param name="Threads">Threads per call.</param>
/// <param name="MedianNanoseconds">Median of the timed calls.</param>
/// <param name="MinNanoseconds">Fastest timed call: the least disturbed one on a shared machine.</param>
internal sealed record KernelTimingResult(string Kernel, int M, int K, int N, int Threads, double MedianNanoseconds, double MinNanoseconds)
{
    /// <summary>Multiply-accumulates per second: M·N·K / median time (binary MACs for the binary kernels).</summary>
    public double MacsPerSecond => (double)M * N * K / (MedianNanoseconds * 1e-9);

    /// <summary>Multiply-accumulates per second of the fastest call.</summary>
    public double BestMacsPerSecond => (double)M * N * K / (MinNanoseconds * 1e-9);
}

/// <summary>
/// A quick timer for kernels outside BenchmarkDotNet (what `binengine bench` calls): random operands of the kernel's
/// family, a warm-up, then the median of single-call timings. Medians, because the machine is shared.
/// </summary>
internal static class KernelTiming
{
    /// <summary>Times <paramref name="kernel"/> on (M, K, N) and returns the median nanoseconds per call.</summary>
    /// <param name="kernel">Any implementation from <see cref="KernelRegistry"/>.</param>
    /// <param name="m">Activation rows.</param>
    /// <param name="k">Row length.</param>
    /// <param name="n">Weight rows.</param>
    /// <param name="iterations">Timed calls (at least 1).</param>
    /// <param name="threads">Threads per call.</param>
    /// <param name="bits">Activation bits for a <see cref="PlaneGemm"/> or <see cref="CodeGemm"/> (2..8).</param>
    public static KernelTimingResult Measure(GemmKernel kernel, int m, int k, int n, int iterations = 50, int threads = 1, int bits = 4)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        kernel.ThrowIfUnsupported();
        Action call = Prepare(kernel, m, k, n, threads, bits);
        // Warm up: JIT tiers, caches, thread start.
        var warm = Stopwatch.StartNew();
        for (int r = 0; r < 3 || warm.ElapsedMilliseconds < 20; r++) call();
        var samples = new double[iterations];
        for (int r = 0; r < iterations; r++)
        {
            long start = Stopwatch.GetTimestamp();
            call();
            samples[r] = Stopwatch.GetElapsedTime(start).TotalNanoseconds;
        }
        Array.Sort(samples);
        double median = iterations % 2 == 1 ? samples[iterations / 2] : 0.5 * (samples[iterations / 2 - 1] + samples[iterations / 2]);
        return new KernelTimingResult(kernel.Name, m, k, n, threads, median, samples[0]);
    }

    /// <summary>A closure that runs one call of <paramref name="kernel"/> on random operands (allocated here, once).</summary>
    internal static Action Prepare(GemmKernel kernel, int m, int k, int n, int threads, int bits)
    {
        var rng = new Random(12345);
        float[] Floats(int count)
        {
            var x = new float[count];
            for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            return x;
        }
        ulong[] Signs(int rows)
        {
            var packed = new ulong[rows * BitPacking.RowWords(k)];
            BitPacking.PackSignsMatrix(Floats(rows * k), rows, k, packed);
            return packed;
        }
        switch (kernel)
        {
            case XnorGemm x:
            {
                ulong[] a = Signs(m);
                var w = new BinaryWeights(Signs(n), n, k);   // prepared, as the engine runs it
                var c = new int[m * n];
                return () => x.Multiply(a, m, w, c, threads);
            }
            case PlaneGemm p:
            {
                int words = BitPacking.RowWords(k), top = BitPacking.MaxCode(bits);
                var planes = new ulong[m * bits * words];
                var codes = new sbyte[k];
                for (int i = 0; i < m; i++)
                {
                    for (int t = 0; t < k; t++) codes[t] = (sbyte)rng.Next(-top, top + 1);
                    BitPacking.PackOffsetPlanes(codes, bits, planes.AsSpan(i * bits * words, bits * words));
                }
                var w = new BinaryWeights(Signs(n), n, k);
                var c = new int[m * n];
                return () => p.Multiply(planes, m, bits, w, c, threads);
            }
            case CodeGemm q:
            {
                int top = BitPacking.MaxCode(bits);
                var codes = new sbyte[m * k];
                for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-top, top + 1);
                var w = new BinaryWeights(Signs(n), n, k, withBytes: true);
                var c = new int[m * n];
                return () => q.Multiply(codes, m, w, c, threads);
            }
            case SignGemm s:
            {
                float[] a = Floats(m * k);
                ulong[] w = Signs(n);
                var c = new float[m * n];
                return () => s.Multiply(a, m, w, n, k, c, threads);
            }
            case Sgemm f:
            {
                float[] a = Floats(m * k), w = Floats(n * k);
                var c = new float[m * n];
                return () => f.Multiply(a, m, w, n, k, c, threads);
            }
            default:
                throw new ArgumentException($"unknown kernel family {kernel.GetType().Name}", nameof(kernel));
        }
    }

    /// <summary>
    /// Measured single-thread FP32 fused multiply-add peak in FLOP/s (2 per FMA lane): 16 independent accumulator
    /// chains (more than latency × ports on current x86 cores) of the widest FMA the process has, timed over
    /// <paramref name="milliseconds"/>. The reference for "fraction of FMA peak"; 0 without hardware FMA.
    /// </summary>
    public static double MeasureFmaPeakFlops(int milliseconds = 200)
    {
        if (!Fma.IsSupported) return 0;
        const long inner = 1 << 16;
        var sw = Stopwatch.StartNew();
        double best = 0;
        bool[] widths = Avx512F.IsSupported ? [false, true] : [false];
        while (sw.ElapsedMilliseconds < milliseconds)
        {
            // Both widths: on cores that split 512-bit ops (Zen 4) they peak alike; take the better.
            foreach (bool wide in widths)
            {
                long start = Stopwatch.GetTimestamp();
                float sink = wide ? Chains512(inner) : Chains256(inner);
                double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (float.IsNaN(sink)) throw new InvalidOperationException("unreachable: keeps the loop alive");
                long lanes = inner * 16 * (wide ? 16 : 8);
                best = Math.Max(best, 2.0 * lanes / s);   // best slice: least disturbed by the other processes
            }
        }
        return best;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Chains256(long n)
    {
        Vector256<float> m = Vector256.Create(0.9999f), x = Vector256.Create(1e-7f);
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector256<float> s8 = default, s9 = default, sa = default, sb = default, sc = default, sd = default, se = default, sf = default;
        for (long i = 0; i < n; i++)
        {
            s0 = Fma.MultiplyAdd(s0, m, x); s1 = Fma.MultiplyAdd(s1, m, x); s2 = Fma.MultiplyAdd(s2, m, x); s3 = Fma.MultiplyAdd(s3, m, x);
            s4 = Fma.MultiplyAdd(s4, m, x); s5 = Fma.MultiplyAdd(s5, m, x); s6 = Fma.MultiplyAdd(s6, m, x); s7 = Fma.MultiplyAdd(s7, m, x);
            s8 = Fma.MultiplyAdd(s8, m, x); s9 = Fma.MultiplyAdd(s9, m, x); sa = Fma.MultiplyAdd(sa, m, x); sb = Fma.MultiplyAdd(sb, m, x);
            sc = Fma.MultiplyAdd(sc, m, x); sd = Fma.MultiplyAdd(sd, m, x); se = Fma.MultiplyAdd(se, m, x); sf = Fma.MultiplyAdd(sf, m, x);
        }
        return Vector256.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + sa + sb + sc + sd + se + sf);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Chains512(long n)
    {
        Vector512<float> m = Vector512.Create(0.9999f), x = Vector512.Create(1e-7f);
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector512<float> s8 = default, s9 = default, sa = default, sb = default, sc = default, sd = default, se = default, sf = default;
        for (long i = 0; i < n; i++)
        {
            s0 = Avx512F.FusedMultiplyAdd(s0, m, x); s1 = Avx512F.FusedMultiplyAdd(s1, m, x); s2 = Avx512F.FusedMultiplyAdd(s2, m, x); s3 = Avx512F.FusedMultiplyAdd(s3, m, x);
            s4 = Avx512F.FusedMultiplyAdd(s4, m, x); s5 = Avx512F.FusedMultiplyAdd(s5, m, x); s6 = Avx512F.FusedMultiplyAdd(s6, m, x); s7 = Avx512F.FusedMultiplyAdd(s7, m, x);
            s8 = Avx512F.FusedMultiplyAdd(s8, m, x); s9 = Avx512F.FusedMultiplyAdd(s9, m, x); sa = Avx512F.FusedMultiplyAdd(sa, m, x); sb = Avx512F.FusedMultiplyAdd(sb, m, x);
            sc = Avx512F.FusedMultiplyAdd(sc, m, x); sd = Avx512F.FusedMultiplyAdd(sd, m, x); se = Avx512F.FusedMultiplyAdd(se, m, x); sf = Avx512F.FusedMultiplyAdd(sf, m, x);
        }
        return Vector512.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + sa + sb + sc + sd + se + sf);
    }
}
