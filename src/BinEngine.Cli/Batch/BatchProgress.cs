using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace BinEngine.Cli.Batch;

/// <summary>
/// Progress of a batch run, by bytes of input consumed (the row count of a streamed file is not known in
/// advance; its byte length is): a live Spectre.Console bar with rate and ETA on a terminal, plain lines
/// at most every few seconds otherwise. Always on stderr, so stdout and the output file stay clean.
/// </summary>
internal static class BatchProgress
{
    /// <summary>Seconds between plain progress lines.</summary>
    private const double PlainInterval = 5;

    /// <summary>Runs <paramref name="work"/>, which calls its argument with (rows done, bytes done) after each chunk.</summary>
    public static void Run(CliContext cx, long totalBytes, bool enabled, Action<Action<long, long>> work)
    {
        if (!enabled)
        {
            work((_, _) => { });
            return;
        }
        if (cx.StderrIsTerminal)
        {
            RunBar(cx, totalBytes, work);
            return;
        }
        var clock = Stopwatch.StartNew();
        double last = 0;
        work((rows, bytes) =>
        {
            double now = clock.Elapsed.TotalSeconds;
            if (now - last < PlainInterval) return;
            last = now;
            cx.Stderr.WriteLine("batch: " + Status(rows, bytes, totalBytes, now, withEta: true));
            cx.Stderr.Flush();
        });
    }

    private static void RunBar(CliContext cx, long totalBytes, Action<Action<long, long>> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(cx.Stderr),
            Interactive = InteractionSupport.Yes,
        });
        var clock = Stopwatch.StartNew();
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("classifying", maxValue: Math.Max(1, totalBytes));
                work((rows, bytes) =>
                {
                    task.Value = Math.Min(bytes, task.MaxValue);
                    task.Description = Status(rows, bytes, totalBytes, clock.Elapsed.TotalSeconds, withEta: false);
                });
                task.Value = task.MaxValue;
            });
    }

    /// <summary>"12,288 rows, 3,210 rows/s, 45.2%, ETA 0:00:12".</summary>
    internal static string Status(long rows, long bytes, long totalBytes, double seconds, bool withEta)
    {
        var c = CultureInfo.InvariantCulture;
        double rate = seconds > 0 ? rows / seconds : 0;
        string s = string.Format(c, "{0:N0} rows, {1:N0} rows/s", rows, rate);
        if (totalBytes > 0)
        {
            double fraction = Math.Clamp((double)bytes / totalBytes, 0, 1);
            s += string.Format(c, ", {0:0.0}%", 100 * fraction);
            if (withEta && fraction > 0)
            {
                var eta = TimeSpan.FromSeconds(seconds * (1 - fraction) / fraction);
                s += ", ETA " + eta.ToString(@"h\:mm\:ss", c);
            }
        }
        return s;
    }
}
