namespace BinEngine.Cli.Batch;

/// <summary>
/// What an interrupted batch run left in its output file. A run writes whole rows and flushes after each
/// chunk, so an interruption leaves complete rows, perhaps followed by part of one: the partial line is cut
/// off, the complete rows are counted (and checked to be rows 0, 1, 2, … of this format), and the run
/// continues after them. Because each row depends only on its input row, the result is byte-identical to an
/// uninterrupted run.
/// </summary>
internal static class ResumeState
{
    /// <summary>
    /// Cuts a trailing partial line off <paramref name="output"/> and counts its complete rows, error rows and truncated rows.
    /// Leaves the stream at its end. A file without one complete line (not even a TSV header) is emptied.
    /// </summary>
    /// <exception cref="CliException">The file holds something else than rows of this format in order.</exception>
    public static (long Rows, long Errors, long Truncated) Prepare(FileStream output, string path, ResultFormatter formatter)
    {
        long keep = EndOfLastLine(output);
        output.SetLength(keep);
        output.Position = 0;
        long rows = 0, errors = 0, truncated = 0;
        var lines = new ByteLineReader(output, int.MaxValue - 1);
        bool expectHeader = formatter.Header is not null;
        while (lines.TryReadLine(out string line, out string? problem))
        {
            string where = $"{path} line {lines.LineNumber}";
            if (problem is not null)
                throw NotOurs(where + ": " + problem);
            if (expectHeader)
            {
                if (line != formatter.Header)
                    throw NotOurs($"{where}: the header differs from this model's and format's ({formatter.Header})");
                expectHeader = false;
                continue;
            }
            if (!formatter.TryParseRow(line, out long index, out bool isError, out bool wasTruncated))
                throw NotOurs($"{where} is not a row of this output format");
            if (index != rows)
                throw NotOurs($"{where} is row {index}, expected row {rows}");
            rows++;
            if (isError) errors++;
            if (wasTruncated) truncated++;
        }
        if (expectHeader && keep == 0 && formatter.Header is not null)
        {
            // Nothing complete was written, not even the header: start the file afresh.
            output.SetLength(0);
        }
        output.Seek(0, SeekOrigin.End);
        return (rows, errors, truncated);
    }

    /// <summary>The length of the file up to and including its last '\n' (0 when it has none).</summary>
    private static long EndOfLastLine(FileStream f)
    {
        var buffer = new byte[1 << 16];
        long end = f.Length;
        while (end > 0)
        {
            int n = (int)Math.Min(buffer.Length, end);
            f.Position = end - n;
            f.ReadExactly(buffer, 0, n);
            int nl = buffer.AsSpan(0, n).LastIndexOf((byte)'\n');
            if (nl >= 0) return end - n + nl + 1;
            end -= n;
        }
        return 0;
    }

    private static CliException NotOurs(string what) =>
        new($"cannot resume: {what}; it does not look like the output of this `batch` command (same model, --output-format). " +
            "Delete it, or run without --resume to overwrite it");
}
