namespace BinEngine.Cli;

/// <summary>
/// What one invocation of the CLI reads from and writes to. <see cref="Program.Main"/> binds it to the
/// console; tests bind it to strings and temporary folders, so many invocations can run side by side.
/// </summary>
/// <param name="Stdin">Where `classify` and `tokenize` read lines when given no text.</param>
/// <param name="Stdout">Results.</param>
/// <param name="Stderr">Messages, progress and summaries.</param>
/// <param name="StderrIsTerminal">True when stderr is a terminal: `batch` then draws a live progress bar instead of plain lines.</param>
/// <param name="BaseDirectory">The folder of the binengine assembly, the first place the default model is looked for.</param>
/// <param name="WorkingDirectory">Where relative paths start and the walk up to models/sst2-default begins.</param>
internal sealed record CliContext(
    TextReader Stdin,
    TextWriter Stdout,
    TextWriter Stderr,
    bool StderrIsTerminal,
    string BaseDirectory,
    string WorkingDirectory)
{
    /// <summary>True when stdin is a terminal: commands that read it say so first, instead of seeming to hang.</summary>
    public bool StdinIsTerminal { get; init; }

    /// <summary>A path given on the command line, made absolute against <see cref="WorkingDirectory"/>.</summary>
    public string Resolve(string path) => Path.GetFullPath(path, WorkingDirectory);
}
