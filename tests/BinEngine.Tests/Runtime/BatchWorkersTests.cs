using BinEngine.Runtime;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// BatchWorkers (the batch calls' helper threads): every item runs exactly once whatever the thread count, a failure
/// surfaces as the one a loop in item order would throw (the lowest failing index, unwrapped), cancellation, and calls
/// made at once (one holds the lingering helpers, the others run on pool tasks).
/// </summary>
public class BatchWorkersTests
{
    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 1)]
    [InlineData(1, 4)]
    [InlineData(2, 8)]
    [InlineData(7, 3)]
    [InlineData(64, 2)]
    [InlineData(1000, 1)]
    [InlineData(1000, 3)]
    public void EveryItemRunsExactlyOnce(int items, int threads)
    {
        // Twice in a row: the second call finds the helpers still polling from the first.
        for (int call = 0; call < 2; call++)
        {
            var runs = new int[items];
            BatchWorkers.Run(items, threads, i => Interlocked.Increment(ref runs[i]), CancellationToken.None);
            Assert.All(runs, r => Assert.Equal(1, r));
        }
    }

    [Fact]
    public void TheLowestFailingItemIsRethrownUnwrappedAndEveryItemBeforeItRan()
    {
        var runs = new int[300];
        var e = Assert.Throws<InvalidOperationException>(() => BatchWorkers.Run(runs.Length, 3, i =>
        {
            Interlocked.Increment(ref runs[i]);
            if (i == 40)
                Thread.Sleep(20); // fails last in time: a higher item has failed by then
            if (i is 40 or 41 or 150)
                throw new InvalidOperationException($"item {i}");
        }, CancellationToken.None));
        Assert.Equal("item 40", e.Message);
        for (int i = 0; i <= 40; i++)
            Assert.Equal(1, runs[i]);
        Assert.All(runs, r => Assert.InRange(r, 0, 1));
    }

    [Fact]
    public void ACancelledCallRunsNothingAndThrows()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        int ran = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => BatchWorkers.Run(100, 2, _ => Interlocked.Increment(ref ran), cancelled.Token));
        Assert.Equal(0, ran);
    }

    [Fact]
    public void CallsMadeAtOnceEachRunAllTheirItems()
    {
        const int callers = 4, items = 400;
        var runs = new int[callers, items];
        using var start = new Barrier(callers);
        Parallel.For(0, callers, new ParallelOptions { MaxDegreeOfParallelism = callers }, c =>
        {
            start.SignalAndWait();
            BatchWorkers.Run(items, 2, i =>
            {
                Interlocked.Increment(ref runs[c, i]);
                Thread.SpinWait(200);
            }, CancellationToken.None);
        });
        for (int c = 0; c < callers; c++)
            for (int i = 0; i < items; i++)
                Assert.Equal(1, runs[c, i]);
    }
}
