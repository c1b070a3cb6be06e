using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace BinEngine.Runtime;

/// <summary>
/// Runs the items of one batch call (chunks of samples, ranges of texts to tokenize) on the calling thread and helper
/// threads, each thread taking the next item from a shared counter, so they finish within one item of each other.
/// </summary>
/// <remarks>
/// Why not Parallel.For: waking a blocked thread is slow on a VM, and a small batch pays it every call. On the 2-vCPU
/// cloud VM of bench/README.md, batches of 64 sentences (≈ 2–8 ms a call on one thread) reached 1.65× on two threads,
/// against 1.91× for the same sentences in one call (`bench -- scaling --batch 64` / `--batch 872`); with the .NET pool
/// told to spin longer before it blocks (DOTNET_ThreadPool_UnfairSemaphoreSpinLimit) batch 64 reached 1.87×, so the
/// difference was the helper's wake-up, ≈ 0.3–0.7 ms a call. So the helpers here are dedicated background threads
/// (process-wide, as <see cref="Kernels.GemmThreads"/>'s) that poll for the next call for <see cref="Linger"/> after
/// finishing one before they block, as ONNX Runtime's and OpenMP's pools do: back-to-back batch calls find them awake.
/// The cost is at most <see cref="Linger"/> of one core per helper after each multi-threaded call.
///
/// One call at a time uses the helpers; a call made while another holds them runs its items on pool tasks instead
/// (correct, only without the lingering helpers). The first failure by item index is rethrown as it was thrown (not
/// wrapped in an AggregateException), as a loop over the items in order would throw it: items after a failing one are
/// skipped, those before it run. Cancellation is checked before each item.
///
/// <see cref="Kernels.GemmThreads"/> stays a pool of its own: it splits one GEMM inside a single classification, which
/// must not allocate (0 B per classification besides the result), while a call here allocates its Job; and its workers
/// block at once, so a split GEMM does not leave a core polling through the rest of a sentence's pass.
/// </remarks>
internal static class BatchWorkers
{
    /// <summary>How long a helper, and a caller waiting for its last items, polls before blocking: 1 ms.</summary>
    internal static readonly long Linger = Stopwatch.Frequency / 1000;

    private static readonly object Gate = new();
    private static Helper[] helpers = [];

    /// <summary>Runs <paramref name="work"/>(0 … <paramref name="items"/> − 1) on up to <paramref name="threads"/> threads, the caller's one of them.</summary>
    public static void Run(int items, int threads, Action<int> work, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (items == 0)
            return; // nothing to run, nothing to cancel (as a loop over no items)
        var job = new Job(items, work, cancellationToken);
        int count = Math.Min(Math.Min(threads, items), Environment.ProcessorCount) - 1;
        if (count <= 0)
            job.Loop();
        else if (Monitor.TryEnter(Gate))
            try
            {
                if (helpers.Length < count)
                {
                    var grown = new Helper[count];
                    Array.Copy(helpers, grown, helpers.Length);
                    for (int i = helpers.Length; i < count; i++) grown[i] = new Helper(i + 1);
                    helpers = grown;
                }
                for (int i = 0; i < count; i++) helpers[i].Start(job);
                job.Loop();
                job.Wait();
            }
            finally
            {
                Monitor.Exit(Gate);
            }
        else
        {
            for (int i = 0; i < count; i++)
                _ = Task.Factory.StartNew(job.Loop, CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
            job.Loop();
            job.Wait();
        }
        job.ThrowIfFailed();
    }

    /// <summary>One call's items: a claim counter, a count of items resolved (run or skipped), and the first failure.</summary>
    private sealed class Job(int items, Action<int> work, CancellationToken cancellationToken)
    {
        private readonly ManualResetEventSlim _done = new(false);
        private int _next = -1, _resolved, _failedItem = int.MaxValue;
        private ExceptionDispatchInfo? _failure;

        /// <summary>Claims and runs items until none is left; never throws (a failure is kept for the caller).</summary>
        public void Loop()
        {
            for (int item; (item = Interlocked.Increment(ref _next)) < items;)
            {
                // Items after a failure are skipped, those before it still run: the failure reported is then the one
                // of the lowest index whatever the timing, the one a loop over the items in order would stop at.
                if (item < Volatile.Read(ref _failedItem) && !cancellationToken.IsCancellationRequested)
                {
                    try
                    {
                        work(item);
                    }
                    catch (Exception e)
                    {
                        lock (this)
                            if (item < _failedItem)
                            {
                                _failure = ExceptionDispatchInfo.Capture(e);
                                Volatile.Write(ref _failedItem, item);
                            }
                    }
                }
                if (Interlocked.Increment(ref _resolved) == items)
                    _done.Set();
            }
        }

        /// <summary>Returns once every item is resolved: polls for <see cref="Linger"/> (the last items are in flight on helpers), then blocks.</summary>
        public void Wait()
        {
            long until = Stopwatch.GetTimestamp() + Linger;
            while (Volatile.Read(ref _resolved) < items && Stopwatch.GetTimestamp() < until)
                Thread.SpinWait(20);
            _done.Wait();
        }

        public void ThrowIfFailed()
        {
            _failure?.Throw();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// A dedicated background thread. <see cref="Start"/> hands it a job and releases its semaphore once; it polls the
    /// semaphore for <see cref="Linger"/> before blocking on it. Each release is one wake-up that reads the latest job: a
    /// helper that wakes late may find its job finished (every item claimed: it returns at once) or join a newer one,
    /// both harmless since items are claimed one at a time from the job's counter.
    /// </summary>
    private sealed class Helper
    {
        private readonly SemaphoreSlim _wake = new(0);
        private Job? _job;

        public Helper(int id) => new Thread(Run) { IsBackground = true, Name = $"BinEngine batch worker {id}" }.Start();

        public void Start(Job job)
        {
            Volatile.Write(ref _job, job);
            _wake.Release();
        }

        private void Run()
        {
            while (true)
            {
                long until = Stopwatch.GetTimestamp() + Linger;
                while (_wake.CurrentCount == 0 && Stopwatch.GetTimestamp() < until)
                    Thread.SpinWait(20);
                _wake.Wait();
                if (Volatile.Read(ref _job) is not { } job)
                    continue; // a release whose job an earlier wake-up already ran
                job.Loop();
                Interlocked.CompareExchange(ref _job, null, job); // unless a newer one came: let the finished call's data go
            }
        }
    }
}
