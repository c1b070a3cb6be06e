using System.Text;

namespace BinEngine.Cli.Batch;

/// <summary>
/// Reads a stream line by line as bytes, in constant memory: a line longer than the limit is skipped to its
/// end (and reported as too long) instead of being buffered, and each line is decoded as strict UTF-8 so a
/// line with invalid bytes can become an error row rather than silently holding U+FFFD.
/// Lines end at '\n'; a '\r' before it is dropped; a lone '\r' is part of the text (as the tokenizer's
/// whitespace); a UTF-8 byte-order mark at the start is skipped. Every command that reads lines (batch,
/// classify and tokenize on stdin) reads them here, so a line means the same to all of them.
/// </summary>
internal sealed class ByteLineReader
{
    /// <summary>The default cap on one line (batch's --max-row-bytes; classify and tokenize read stdin with it).</summary>
    public const int DefaultMaxLineBytes = 1 << 20;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly UTF8Encoding Lenient = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly Stream _stream;
    private readonly byte[] _chunk = new byte[1 << 16];
    private int _chunkStart, _chunkEnd;
    private byte[] _line = new byte[1024];
    private int _lineLength;
    private bool _atStart = true;
    private bool _eof;

    /// <param name="stream">The bytes to split.</param>
    /// <param name="maxLineBytes">Longer lines are reported, not read.</param>
    /// <param name="limitOption">The option that sets the cap, named in the report (null when the command has none).</param>
    public ByteLineReader(Stream stream, int maxLineBytes, string? limitOption = "--max-row-bytes")
    {
        _stream = stream;
        MaxLineBytes = maxLineBytes;
        _limitHint = limitOption is null ? "" : $" ({limitOption})";
    }

    private readonly string _limitHint;

    /// <summary>Lines longer than this many bytes are reported as too long, not read.</summary>
    public int MaxLineBytes { get; }

    /// <summary>Bytes consumed so far (the end of the last line returned).</summary>
    public long Position { get; private set; }

    /// <summary>1-based number of the last line read.</summary>
    public long LineNumber { get; private set; }

    /// <summary>
    /// Reads the next line. Returns false at the end of the stream. <paramref name="text"/> is the decoded line
    /// (decoded leniently when it is not valid UTF-8, so callers can still track quotes); <paramref name="problem"/>
    /// says why the line is unusable (too long, not UTF-8), or is null.
    /// </summary>
    public bool TryReadLine(out string text, out string? problem)
    {
        text = "";
        problem = null;
        _lineLength = 0;
        bool tooLong = false;
        bool sawAny = false;
        while (true)
        {
            if (_chunkStart == _chunkEnd)
            {
                if (_eof || !Fill())
                {
                    if (!sawAny) return false;
                    break; // last line without '\n'
                }
            }
            sawAny = true;
            var span = _chunk.AsSpan(_chunkStart, _chunkEnd - _chunkStart);
            int nl = span.IndexOf((byte)'\n');
            int take = nl < 0 ? span.Length : nl;
            if (!tooLong)
            {
                if (_lineLength + take > MaxLineBytes + 1) // +1: a '\r' before '\n' does not count
                {
                    tooLong = true;
                }
                else
                {
                    Append(span[..take]);
                }
            }
            _chunkStart += nl < 0 ? take : take + 1;
            Position += nl < 0 ? take : take + 1;
            if (nl >= 0) break;
        }
        LineNumber++;
        var bytes = _line.AsSpan(0, _lineLength);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        if (_atStart)
        {
            _atStart = false;
            if (bytes.StartsWith("\uFEFF"u8)) bytes = bytes[3..];
        }
        if (tooLong || bytes.Length > MaxLineBytes)
        {
            problem = $"line {LineNumber} is longer than {MaxLineBytes:N0} bytes{_limitHint}";
            return true;
        }
        try
        {
            text = Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            text = Lenient.GetString(bytes);
            problem = $"line {LineNumber} is not valid UTF-8";
        }
        return true;
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_lineLength + bytes.Length > _line.Length)
            Array.Resize(ref _line, Math.Max(_line.Length * 2, _lineLength + bytes.Length));
        bytes.CopyTo(_line.AsSpan(_lineLength));
        _lineLength += bytes.Length;
    }

    private bool Fill()
    {
        _chunkStart = 0;
        _chunkEnd = _stream.Read(_chunk, 0, _chunk.Length);
        if (_chunkEnd == 0) _eof = true;
        return _chunkEnd > 0;
    }
}
