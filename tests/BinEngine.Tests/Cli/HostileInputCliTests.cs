using System.Diagnostics;
using System.Text;
using System.Text.Json;
using BinEngine.Cli;
using BinEngine.Cli.Batch;
using BinEngine.Converter;
using BinEngine.Runtime;

namespace BinEngine.Tests.Cli;

/// <summary>
/// Issue 17's CLI findings, each as the input that broke it: rows that must become error rows (lone surrogates,
/// stray CSV quotes), outputs that alias the input, --resume across models and policies, option ranges, one
/// line rule for every command, and stdin closed at start (run as a child process, the only way to close it).
/// </summary>
[Collection(CliCollection.Name)]
public class HostileInputCliTests(CliFixture fx, Xunit.Abstractions.ITestOutputHelper log)
{
    private static JsonElement[] ReadJsonl(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();

    private static bool IsError(JsonElement row) => row.TryGetProperty("error", out _);

    // ---- item 1: JSONL rows that cannot give a text ----------------------------------------------------------

    [Fact]
    public void JsonlRowsThatCannotGiveATextBecomeErrorRowsAndNoRowIsLost()
    {
        // A lone surrogate escape is valid JSON but no .NET string: it aborted the whole run (exit 134) and
        // every --resume stopped at the same chunk.
        var bad = new Dictionary<int, string>
        {
            [150] = "{\"text\":\"a \\ud800 b\"}",
            [151] = "{\"text\":\"\\udc00\"}",
            [152] = "{\"text\":5}",
            [153] = "{\"text\":null}",
            [154] = "{\"text\":[\"good\"]}",
            [155] = "{\"text\":{\"a\":1}}",
            [156] = "{\"text\":\"unterminated}",
            [157] = "[\"text\"]",
            [158] = "{\"text\":\"x\\ud83d\"}",
        };
        var lines = Enumerable.Range(0, 300).Select(i => bad.TryGetValue(i, out var b) ? b : $"{{\"text\":\"good fun number {i}\"}}");
        string input = fx.WriteFile("in.jsonl", string.Join("\n", lines) + "\n");
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        var r = fx.RunWithModel("batch", input, "-o", output, "--chunk-size", "64", "--threads", "2");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"300 rows in, 291 ok, {bad.Count} with errors", r.Stderr);
        var rows = ReadJsonl(output);
        Assert.Equal(300, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.Equal(i, rows[i].GetProperty("row").GetInt32());
            Assert.True(bad.ContainsKey(i) == IsError(rows[i]), $"row {i}: {rows[i]}");
        }
        Assert.Contains("line 151: field \"text\" cannot be read as text", rows[150].GetProperty("error").GetString());

        // --resume from inside the bad rows and before them gives the bytes of an uninterrupted run.
        byte[] expected = File.ReadAllBytes(output);
        foreach (int keepRows in new[] { 100, 151, 155 })
        {
            string partial = Path.Combine(Path.GetDirectoryName(output)!, "cut.jsonl");
            File.Copy(RunRecord.PathFor(output), RunRecord.PathFor(partial), overwrite: true);
            int cut = 0;
            for (int k = 0; k < keepRows; k++) cut = Array.IndexOf(expected, (byte)'\n', cut) + 1;
            File.WriteAllBytes(partial, expected.AsSpan(0, cut + 7).ToArray()); // and part of the next row
            var resumed = fx.RunWithModel("batch", input, "-o", partial, "--resume", "--chunk-size", "64");
            Assert.True(resumed.ExitCode == 1, resumed.ToString());
            Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(partial)), $"resumed after {keepRows} rows");
        }
    }

    [Fact]
    public void FuzzBatchNeverAbortsAndAnswersEveryLine()
    {
        // Random hostile rows in every input format: quotes, separators, backslash and \u escapes (lone surrogates
        // among them), invalid UTF-8, NUL, CR, BOMs, deep JSON. Plain, JSONL and TSV inputs must give exactly one
        // row per line (TSV: after the header); CSV at most one per line, never zero for a non-empty file; the
        // exit code is 0 or 1, never a crash. Fixed seed: 25 files per format, 30 lines each.
        string[] pieces = ["good", "fun", " ", ",", "\t", "\"", "\"\"", "\\", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "{", "}", "[", "]", ":",
            "\"text\":", "{\"text\":\"", "\r", "\u00e9", "\ufeff", "日本", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "null", "7"];
        var rng = new Random(1719);
        int files = 0, lines = 0;
        foreach (string ext in new[] { "txt", "jsonl", "tsv", "csv" })
        {
            for (int c = 0; c < 25; c++, files++)
            {
                var bytes = new MemoryStream();
                if (ext is "tsv" or "csv") bytes.Write(Encoding.UTF8.GetBytes(ext == "tsv" ? "text\tlabel\n" : "text,label\n"));
                for (int l = 0; l < 30; l++)
                {
                    if (ext == "jsonl" && rng.Next(2) == 0) bytes.Write(Encoding.UTF8.GetBytes("{\"text\":\""));
                    for (int p = rng.Next(0, 8); p > 0; p--)
                    {
                        if (rng.Next(20) == 0) bytes.WriteByte((byte)rng.Next(0x80, 0x100)); // not UTF-8
                        else bytes.Write(Encoding.UTF8.GetBytes(pieces[rng.Next(pieces.Length)]));
                    }
                    if (ext == "jsonl" && rng.Next(2) == 0) bytes.Write(Encoding.UTF8.GetBytes("\"}"));
                    bytes.WriteByte((byte)'\n');
                }
                string input = Path.Combine(fx.NewFolder(), "in." + ext);
                File.WriteAllBytes(input, bytes.ToArray());
                string output = Path.Combine(fx.NewFolder(), "o.jsonl");
                var r = fx.RunWithModel("batch", input, "-o", output, "--chunk-size", "7", "--header", ext is "tsv" or "csv" ? "yes" : "auto");
                Assert.True(r.ExitCode is 0 or 1, $"{ext} case {c}: {r}");
                var rows = ReadJsonl(output);
                for (int i = 0; i < rows.Length; i++) Assert.Equal(i, rows[i].GetProperty("row").GetInt32());
                if (ext == "csv") Assert.InRange(rows.Length, 1, 30);
                else Assert.True(rows.Length == 30, $"{ext} case {c}: {rows.Length} rows for 30 lines");
                lines += 30;
            }
        }
        log.WriteLine($"batch rows: {files} hostile files ({lines} lines) in 4 formats, every run exit 0 or 1, every line answered (CSV: records)");
    }

    // ---- item 9: a stray quote in a CSV --------------------------------------------------------------------

    [Fact]
    public void AStrayCsvQuoteNeverMergesRows()
    {
        // Five data lines gave three rows (exit 0): the quote opened on line 2 swallowed lines 3 and 4.
        string csv = fx.WriteFile("in.csv", "text,label\n\"stray,1\ngood fun,0\nawful,1\n\"ok\" then,0\nlast one,1\n");
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        var r = fx.RunWithModel("batch", csv, "-o", output);
        Assert.True(r.ExitCode == 1, r.ToString());
        var rows = ReadJsonl(output);
        Assert.Equal(new[] { true, false, false, true, false }, rows.Select(IsError));
        Assert.Contains("the CSV record starting on line 2 is malformed", rows[0].GetProperty("error").GetString());
        Assert.Contains("line 5: text after the closing quote", rows[3].GetProperty("error").GetString());
        using var model = BeexModel.Load(fx.ModelPath);
        Assert.Equal(model.Classify("good fun").TokenCount, rows[1].GetProperty("tokens").GetInt32());
        Assert.Equal(model.Classify("last one").TokenCount, rows[4].GetProperty("tokens").GetInt32());

        // A quote still open at the end of the file: an error row for its line, the rest read as rows.
        string open = fx.WriteFile("open.csv", "text\n\"never closed\nsecond\nthird\n");
        string o2 = Path.Combine(fx.NewFolder(), "o.jsonl");
        Assert.Equal(1, fx.RunWithModel("batch", open, "-o", o2).ExitCode);
        var rows2 = ReadJsonl(o2);
        Assert.Equal(new[] { true, false, false }, rows2.Select(IsError));
        Assert.Contains("line 2: a quoted CSV field opened here is not closed", rows2[0].GetProperty("error").GetString());
    }

    // ---- item 8: an output that is the input -----------------------------------------------------------------

    [Fact]
    public void AnOutputThatIsTheInputThroughALinkIsRefusedAndTheInputKept()
    {
        if (OperatingSystem.IsWindows()) return; // hard links and the stat identity are the Unix case
        string input = fx.WriteFile("in.tsv", "sentence\tlabel\ngood fun\t1\nawful\t0\n");
        byte[] before = File.ReadAllBytes(input);
        string folder = Path.GetDirectoryName(input)!;
        string symlink = Path.Combine(folder, "sym.jsonl");
        File.CreateSymbolicLink(symlink, input);
        string hardlink = Path.Combine(folder, "hard.jsonl");
        RunTool("ln", input, hardlink);
        foreach (string alias in new[] { symlink, hardlink, Path.Combine(folder, ".", "in.tsv") })
        {
            var r = fx.RunWithModel("batch", input, "-o", alias);
            Assert.True(r.ExitCode == 2, alias + ": " + r);
            Assert.Contains("is the input file", r.Stderr);
            Assert.Equal(before, File.ReadAllBytes(input));
        }

        // A link to some other file is replaced by the output (renamed into place), never written through.
        string other = fx.WriteFile("other.txt", "keep me\n");
        string linkToOther = Path.Combine(folder, "to-other.jsonl");
        File.CreateSymbolicLink(linkToOther, other);
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", linkToOther).ExitCode);
        Assert.Equal("keep me\n", File.ReadAllText(other));
        Assert.Null(new FileInfo(linkToOther).LinkTarget);
        Assert.Equal(2, ReadJsonl(linkToOther).Length);
        Assert.False(File.Exists(linkToOther + ".partial"));
    }

    [Fact]
    public void ConvertRefusesToWriteOverItsCheckpoint()
    {
        string folder = fx.NewFolder();
        string checkpoint = Path.Combine(folder, "model.safetensors");
        File.Copy(TestPaths.Repo("models/tiny-smoke/model.safetensors"), checkpoint);
        byte[] before = File.ReadAllBytes(checkpoint);
        string link = Path.Combine(folder, "model.bex");
        File.CreateSymbolicLink(link, checkpoint);
        foreach (string output in new[] { checkpoint, link })
        {
            var r = CliFixture.Run(["convert", checkpoint, "-o", output, "--vocab", TestPaths.Repo(CliFixture.VocabRelative)]);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains("is the checkpoint", r.Stderr);
            Assert.Equal(before, File.ReadAllBytes(checkpoint));
        }
    }

    // ---- item 11: --resume across runs, option ranges, one line rule ----------------------------------------

    [Fact]
    public void ResumeRefusesRowsWrittenByAnotherModelOrPolicy()
    {
        string input = fx.WriteFile("in.txt", string.Join("\n", Enumerable.Range(0, 20).Select(i => $"good fun {i}")) + "\n");
        string output = Path.Combine(fx.NewFolder(), "out.jsonl");
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", output).ExitCode);
        byte[] full = File.ReadAllBytes(output);
        byte[] half = full.AsSpan(0, full.Length / 2).ToArray();
        File.WriteAllBytes(output, half);

        var policy = fx.RunWithModel("batch", input, "-o", output, "--resume", "--policy", "none");
        Assert.True(policy.ExitCode == 2, policy.ToString());
        Assert.Contains("policy was \"", policy.Stderr);

        string other = Path.Combine(fx.NewFolder(), "other.bex");
        ModelConverter.Convert(TestPaths.Repo("models/tiny-smoke/model.safetensors"), other,
            new ConvertOptions { VocabPath = TestPaths.Repo(CliFixture.VocabRelative), Name = "another" });
        var model = CliFixture.Run(["batch", input, "-o", output, "--resume", "--model", other]);
        Assert.True(model.ExitCode == 2, model.ToString());
        Assert.Contains("the model differs", model.Stderr);

        var format = fx.RunWithModel("batch", input, "-o", output, "--resume", "--format", "tsv");
        Assert.Equal(2, format.ExitCode);
        Assert.Contains("input_format was \"lines\", now \"tsv\"", format.Stderr);
        Assert.Equal(half, File.ReadAllBytes(output)); // refused before anything was touched

        // The same model under another path is the same model.
        string copy = Path.Combine(fx.NewFolder(), "copy.bex");
        File.Copy(fx.ModelPath, copy);
        var same = CliFixture.Run(["batch", input, "-o", output, "--resume", "--model", copy]);
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.Equal(full, File.ReadAllBytes(output));

        // No record at all (an output of something else, or of an older binengine): refused.
        File.Delete(RunRecord.PathFor(output));
        File.WriteAllBytes(output, half);
        var unknown = fx.RunWithModel("batch", input, "-o", output, "--resume");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("there is no record of the model and options", unknown.Stderr);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("65537")]
    [InlineData("33554432")] // crashed: chunk × max_len overflowed int
    [InlineData("2147483647")]
    public void ChunkSizeOutOfRangeIsAUsageError(string size)
    {
        string input = fx.WriteFile("in.txt", "good fun\n");
        var r = fx.RunWithModel("batch", input, "-o", Path.Combine(fx.NewFolder(), "o.jsonl"), "--chunk-size", size);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("--chunk-size must be 1 to 65,536 rows", r.Stderr);
        Assert.Equal(0, fx.RunWithModel("batch", input, "-o", Path.Combine(fx.NewFolder(), "o.jsonl"), "--chunk-size", "65536").ExitCode);
    }

    [Fact]
    public void ClassifyCapsLineLengthLikeBatch()
    {
        // A 1.2 GB line used 6.7 GB and aborted: now a line over 1 MiB is an error line, skipped unbuffered.
        string huge = new('a', (1 << 20) + 1);
        var r = CliFixture.Run(["classify", "--model", fx.ModelPath], "good fun\n" + huge + "\nawful\n");
        Assert.True(r.ExitCode == 1, r.ToString()[..Math.Min(500, r.ToString().Length)]);
        Assert.Equal(3, r.Lines.Length);
        Assert.Equal("error: line 2 is longer than 1,048,576 bytes", r.Lines[1]);
        var t = CliFixture.Run(["tokenize", "--model", fx.ModelPath], huge + "\nok\n");
        Assert.Equal(1, t.ExitCode);
        Assert.Equal(2, t.Lines.Length);
        Assert.Contains("\"error\":\"line 1 is longer than", t.Lines[0]);
    }

    /// <summary>Line separators and look-alikes the commands must agree on: only '\n' (with an optional '\r' before it) ends a line.</summary>
    private static readonly string[] Separators = ["\n", "\r\n", "\r", "\r\r\n", "\u2028", "\u2029", "\u0085", "\f", "\v", "\u001e", "\n\n", "\t"];

    [Fact]
    public void FuzzLineSeparatorsClassifyTokenizeAndBatchSeeTheSameLines()
    {
        // Differential: the same bytes through classify (stdin), tokenize (stdin) and batch (a file) must give
        // the same number of answers, the same token counts and the same labels. classify split at a lone '\r'
        // where batch did not. Fixed seed; 60 inputs of 1-6 texts joined by random separators.
        var rng = new Random(1717);
        string[] words = ["good", "fun", "awful", "movie", "é", "日本", "x", "", " "];
        using var model = BeexModel.Load(fx.ModelPath);
        int cases = 0, lines = 0, errorLines = 0;
        for (int c = 0; c < 60; c++, cases++)
        {
            var sb = new StringBuilder();
            int texts = rng.Next(1, 7);
            for (int i = 0; i < texts; i++)
            {
                for (int w = rng.Next(1, 4); w > 0; w--) sb.Append(words[rng.Next(words.Length)]).Append(' ');
                sb.Append(Separators[rng.Next(Separators.Length)]);
            }
            string input = sb.ToString();
            string file = fx.WriteFile("in.txt", input);
            string output = Path.Combine(fx.NewFolder(), "o.jsonl");
            var batch = fx.RunWithModel("batch", file, "-o", output);
            var rows = ReadJsonl(output);
            var classify = CliFixture.Run(["classify", "--json", "--model", fx.ModelPath], input);
            var tokenize = CliFixture.Run(["tokenize", "--model", fx.ModelPath], input);
            string shown = JsonSerializer.Serialize(input);
            var classified = classify.Lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            var tokenized = tokenize.Lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            Assert.True(rows.Length == classified.Length && rows.Length == tokenized.Length,
                $"case {c} {shown}: batch {rows.Length} rows, classify {classified.Length}, tokenize {tokenized.Length}");
            Assert.Equal(batch.ExitCode, classify.ExitCode);
            lines += rows.Length;
            errorLines += rows.Count(IsError);
            for (int i = 0; i < rows.Length; i++)
            {
                Assert.True(IsError(rows[i]) == IsError(classified[i]), $"case {c} {shown} line {i}");
                if (IsError(rows[i])) continue;
                Assert.Equal(rows[i].GetProperty("label").GetInt32(), classified[i].GetProperty("label").GetInt32());
                Assert.Equal(rows[i].GetProperty("tokens").GetInt32(), classified[i].GetProperty("tokens").GetInt32());
                Assert.Equal(rows[i].GetProperty("tokens").GetInt32(), Math.Min(tokenized[i].GetProperty("count").GetInt32(), model.Architecture.MaxLength));
            }
        }
        log.WriteLine($"line separators: {cases} inputs, {lines} lines, each the same in batch, classify and tokenize ({errorLines} error lines in both)");
        Assert.Equal(60, cases);
    }

    // ---- item 10: stdin closed at start (a child process) ---------------------------------------------------

    /// <summary>Runs the built binengine under /bin/sh with <paramref name="redirect"/> (e.g. "&lt;&amp;-"); fails after 60 s instead of hanging.</summary>
    private (int ExitCode, string Stdout, string Stderr) RunChild(string arguments, string redirect, string? stdin = null)
    {
        string dll = typeof(Program).Assembly.Location;
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = stdin is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"exec '{dotnet}' '{dll}' {arguments} {redirect}");
        using var process = Process.Start(info)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"`binengine {arguments} {redirect}` still running after 60 s (hangs)");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void FuzzClosedStdinIsRefusedAtOnceWhileRealStdinStillWorks()
    {
        if (OperatingSystem.IsWindows()) return; // `<&-` is a POSIX shell's
        string output = Path.Combine(fx.NewFolder(), "o.jsonl");
        string m = $"--model '{fx.ModelPath}'";
        string[] commands = [$"classify {m}", $"classify --json {m}", $"tokenize {m}", $"batch /dev/stdin -o '{output}' {m}", $"batch /dev/fd/0 -o '{output}' {m}"];
        int closed = 0, open = 0;
        foreach (string command in commands)
        {
            // Closed: exit 2 at once with the reason (each hung forever before).
            var (code, _, err) = RunChild(command, "<&-");
            Assert.True(code == 2, $"{command} <&-: exit {code}\n{err}");
            Assert.Contains("stdin is closed", err);
            closed++;

            // Open: a pipe, a file and /dev/null are read as before.
            var piped = RunChild(command, "", stdin: "good fun\nawful\n");
            Assert.True(piped.ExitCode == 0, $"{command} | : exit {piped.ExitCode}\n{piped.Stderr}");
            var empty = RunChild(command, "</dev/null");
            Assert.True(empty.ExitCode == 0, $"{command} </dev/null: exit {empty.ExitCode}\n{empty.Stderr}");
            open += 2;
        }
        // Arguments need no stdin: closed stdin does not matter to them.
        Assert.Equal(0, RunChild($"classify {m} 'good fun'", "<&-").ExitCode);
        log.WriteLine($"closed stdin: {closed} commands refused with exit 2 at once; {open} runs with a pipe or /dev/null unaffected");
        Assert.Equal((5, 10), (closed, open));
    }

    [Fact]
    public async Task AFifoAsTheModelOrCheckpointIsRefusedBeforeItIsRead()
    {
        if (OperatingSystem.IsWindows()) return;
        string fifo = Path.Combine(fx.NewFolder(), "model.bex");
        RunTool("mkfifo", fifo);
        string[][] commands =
        [
            ["classify", "--model", fifo, "good fun"],
            ["inspect", fifo],
            ["tokenize", "--model", fifo],
            ["batch", fx.WriteFile("in.txt", "good\n"), "-o", Path.Combine(fx.NewFolder(), "o.jsonl"), "--model", fifo],
            ["convert", fifo, "-o", Path.Combine(fx.NewFolder(), "m.bex")],
        ];
        foreach (string[] args in commands)
        {
            // Opening a FIFO for reading waits for a writer: run with a deadline so a regression fails instead of hanging.
            var run = Task.Run(() => CliFixture.Run(args, "good\n"));
            var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)));
            Assert.True(finished == run, $"`binengine {string.Join(' ', args)}` hangs on a FIFO");
            CliResult result = await run;
            Assert.True(result.ExitCode == 2, $"{args[0]}: {result}");
            Assert.Contains("is not a regular file", result.Stderr);
        }
    }

    private static void RunTool(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { UseShellExecute = false };
        foreach (string a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
