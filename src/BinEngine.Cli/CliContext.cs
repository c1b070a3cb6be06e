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

    /// <summary>True when the process was started with stdin closed (see <see cref="UnixFiles.StdinWasClosed"/>): commands that would read it refuse at once.</summary>
    public bool StdinClosed { get; init; }

    /// <summary>Opens stdin as bytes (the console's raw stream); when null, <see cref="Stdin"/> is re-encoded as UTF-8.</summary>
    public Func<Stream>? StdinBytes { get; init; }

    /// <summary>
    /// Stdin as a reader of lines, with the one line rule every command shares (<see cref="Batch.ByteLineReader"/>:
    /// lines end at '\n', a '\r' before it is dropped, a lone '\r' is text, strict UTF-8, a length cap).
    /// </summary>
    /// <exception cref="CliException">Stdin was closed when the process started.</exception>
    public Batch.ByteLineReader OpenStdinLines(int maxLineBytes)
    {
        if (StdinClosed)
            throw new CliException("stdin is closed (the command was started with <&-); pass the texts as arguments, or pipe or redirect a file into it");
        return new Batch.ByteLineReader(StdinBytes?.Invoke() ?? new Utf8ReaderStream(Stdin), maxLineBytes, limitOption: null);
    }

    /// <summary>A path given on the command line, made absolute against <see cref="WorkingDirectory"/>.</summary>
    public string Resolve(string path) => Path.GetFullPath(path, WorkingDirectory);
}

/// <summary>A read-only stream of the UTF-8 bytes of a <see cref="TextReader"/>'s characters (stdin given as text, as tests do).</summary>
internal sealed class Utf8ReaderStream(TextReader reader) : Stream
{
    private readonly System.Text.Encoder _encoder = new System.Text.UTF8Encoding(false).GetEncoder();
    private readonly char[] _chars = new char[4096];
    private readonly byte[] _bytes = new byte[3 * 4096 + 8];
    private int _start, _end;
    private bool _done;

    public override int Read(byte[] buffer, int offset, int count)
    {
        while (_start == _end && !_done)
        {
            int n = reader.Read(_chars, 0, _chars.Length);
            _done = n == 0;
            _end = _encoder.GetBytes(_chars, 0, n, _bytes, 0, flush: _done);
            _start = 0;
        }
        int take = Math.Min(count, _end - _start);
        Array.Copy(_bytes, _start, buffer, offset, take);
        _start += take;
        return take;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
