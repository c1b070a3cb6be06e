using System.CommandLine;

namespace BinEngine.Cli;

/// <summary>Options several commands share, made fresh per command (an option belongs to one command).</summary>
internal static class CommonOptions
{
    public static Option<string?> Model() => new("--model", "-m")
    {
        Description = $"Model file (.bex); default: {ModelLocator.DefaultModelRelative} beside binengine, else in the current folder or one above it",
        HelpName = "PATH",
    };

    public static Option<int> Threads(string what) => new("--threads", "-t")
    {
        Description = $"Threads {what} (default: all cores)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
        HelpName = "N",
    };

    /// <summary>Validates a --threads value (at least 1).</summary>
    public static int CheckThreads(int threads) => threads >= 1
        ? threads
        : throw new CliException($"--threads must be at least 1, got {threads}");
}
