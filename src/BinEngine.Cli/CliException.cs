namespace BinEngine.Cli;

/// <summary>
/// A failure the user can fix (bad usage, a missing or unusable file): <see cref="Program.Run"/> prints
/// "error: " + the message, which says what to do, and exits with <see cref="ExitCode"/>.
/// </summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Usage, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>The process exit code (<see cref="ExitCodes"/>).</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>The CLI's exit codes.</summary>
internal static class ExitCodes
{
    /// <summary>Everything worked.</summary>
    public const int Ok = 0;
    /// <summary>The command ran, but some rows or texts could not be processed (each got an error row).</summary>
    public const int RowErrors = 1;
    /// <summary>Bad usage (unknown option, bad value) or an unusable model or input file; nothing useful was done.</summary>
    public const int Usage = 2;
}
