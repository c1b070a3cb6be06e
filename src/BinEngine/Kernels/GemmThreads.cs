using System.Runtime.ExceptionServices;

namespace BinEngine.Kernels;

/// <summary>
/// Splits one GEMM over threads without allocating: a fixed set of background workers, started on first use, each
/// waits for its part of a grid over (M, N). One parallel GEMM runs at a time (a lock); the calling thread computes
/// part 0 itself. Threads = 1, or work too small to pay for waking a thread, runs inline.
/// </summary>
internal static class GemmThreads
{
    /// <summary>
    /// Work units (one 64-bit binary word op, 8 float MACs or 32 byte MACs) below which a part is not worth a thread.
    /// Measured rates put a unit at ≈ 0.2–0.4 ns, not the nanosecond first assumed (XNOR ≈ 4.6 G words/s on 25-row
    /// shapes, bench/results/anchor.md; int8 VNNI ≈ 80 G MAC/s; SGEMM ≈ 20 G MAC/s), so 200 000 units give a part
    /// ≈ 40–80 µs, several times what waking a worker and joining it costs on a shared VM. With the previous 50 000, a
    /// 50-token sentence split W1A1's N = 512 products into ≈ 10 µs halves and a 25-token one W1A8's; now one
    /// sentence (M ≤ 64) stays on the calling thread and only batches split (bench/README.md, "Levers").
    /// </summary>
    internal const long MinWorkPerPart = 200_000;

    private static readonly object Gate = new();
    private static Worker[] workers = [];
    private static GemmKernel? job;
    private static GemmArgs jobArgs;
    private static int gridM, gridN, pending;
    private static ExceptionDispatchInfo? failure;
    private static readonly ManualResetEventSlim Done = new(false);

    /// <summary>Largest thread count a caller may ask for.</summary>
    internal static int MaxThreads => Math.Max(1, Environment.ProcessorCount);

    public static void Run(GemmKernel kernel, in GemmArgs g, int threads, long work)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), $"threads must be ≥ 1, got {threads}");
        if (g.M == 0 || g.N == 0) return;
        int parts = (int)Math.Min(Math.Min(threads, MaxThreads), Math.Max(1, work / MinWorkPerPart));
        int nBlocks = (g.N + kernel.ColBlock - 1) / kernel.ColBlock;
        int mBlocks = (g.M + kernel.RowBlock - 1) / kernel.RowBlock;
        // Prefer splitting N: every part then reads all of A (small) and its own slice of W (large).
        int pn = Math.Min(parts, nBlocks);
        int pm = Math.Min(Math.Max(1, parts / pn), mBlocks);
        if (pn * pm <= 1)
        {
            kernel.Compute(g, 0, g.M, 0, g.N);
            return;
        }
        lock (Gate)
        {
            int helpers = pn * pm - 1;
            EnsureWorkers(helpers);
            job = kernel;
            jobArgs = g;
            gridM = pm;
            gridN = pn;
            failure = null;
            pending = helpers;
            Done.Reset();
            for (int t = 1; t <= helpers; t++) workers[t - 1].Start(t);
            try
            {
                RunPart(0);
            }
            finally
            {
                Done.Wait();
                job = null;
            }
            failure?.Throw();
        }
    }

    private static void RunPart(int part)
    {
        GemmKernel kernel = job!;
        ref readonly GemmArgs g = ref jobArgs;
        int tm = part / gridN, tn = part % gridN;
        Split(g.M, kernel.RowBlock, gridM, tm, out int m0, out int m1);
        Split(g.N, kernel.ColBlock, gridN, tn, out int n0, out int n1);
        if (m0 < m1 && n0 < n1) kernel.Compute(g, m0, m1, n0, n1);
    }

    /// <summary>Part t of `parts` of [0, length) in whole blocks (the last part takes the remainder).</summary>
    private static void Split(int length, int block, int parts, int t, out int start, out int end)
    {
        long blocks = (length + block - 1) / block;
        start = (int)Math.Min(length, blocks * t / parts * block);
        end = (int)Math.Min(length, blocks * (t + 1) / parts * block);
    }

    private static void EnsureWorkers(int count)
    {
        if (workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(workers, grown, workers.Length);
        for (int i = workers.Length; i < count; i++) grown[i] = new Worker(i + 1);
        workers = grown;
    }

    private static void PartDone()
    {
        if (Interlocked.Decrement(ref pending) == 0) Done.Set();
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim wake = new(0);
        private int part;

        public Worker(int id)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"BinEngine GEMM worker {id}" };
            thread.Start();
        }

        public void Start(int partIndex)
        {
            part = partIndex;
            wake.Release();
        }

        private void Loop()
        {
            while (true)
            {
                wake.Wait();
                try
                {
                    RunPart(part);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(e), null);
                }
                finally
                {
                    PartDone();
                }
            }
        }
    }
}
