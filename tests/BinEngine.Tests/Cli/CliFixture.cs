using BinEngine.Cli;
using BinEngine.Converter;

namespace BinEngine.Tests.Cli;

/// <summary>
/// One tiny model (models/tiny-smoke, converted in-process) and a scratch folder shared by the CLI tests,
/// which run the CLI in-process through <see cref="Program.Run(string[], TextReader, TextWriter, TextWriter)"/>.
/// They never depend on models/sst2-default: every invocation passes --model, or runs with a working and
/// assembly folder under the scratch folder so the default-model lookup sees only what a test puts there.
/// </summary>
public sealed class CliFixture : IDisposable
{
    public CliFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("binengine-cli-").FullName;
        ModelPath = Path.Combine(Directory, "tiny.bex");
        ModelConverter.Convert(TestPaths.Repo("models/tiny-smoke/model.safetensors"), ModelPath,
            new ConvertOptions { VocabPath = TestPaths.Repo(VocabRelative) });
    }

    public const string VocabRelative = "data/vocab/bert-base-uncased-vocab.txt";

    /// <summary>The scratch folder (deleted at the end).</summary>
    public string Directory { get; }

    /// <summary>The converted tiny model (3 blocks, 2 classes: negative, positive; max_len 48).</summary>
    public string ModelPath { get; }

    /// <summary>A new empty folder under the scratch folder.</summary>
    public string NewFolder() => System.IO.Directory.CreateDirectory(Path.Combine(Directory, Guid.NewGuid().ToString("N"))).FullName;

    /// <summary>Writes a file under the scratch folder and returns its path.</summary>
    public string WriteFile(string name, string text)
    {
        string path = Path.Combine(NewFolder(), name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Runs the CLI with --model added; see <see cref="Run"/>.</summary>
    public CliResult RunWithModel(params string[] args) => Run([.. args, "--model", ModelPath]);

    /// <summary>Runs the CLI as the public entry point does (console-free), with optional stdin text.</summary>
    public static CliResult Run(string[] args, string stdin = "")
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, new StringReader(stdin), stdout, stderr);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs the CLI with the given assembly and working folders (the default-model lookup's two places).</summary>
    public static CliResult RunIn(string baseDirectory, string workingDirectory, string[] args, string stdin = "")
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var cx = new CliContext(new StringReader(stdin), stdout, stderr, StderrIsTerminal: false, baseDirectory, workingDirectory);
        int code = Program.Run(args, cx);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>What one CLI invocation returned and printed.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliFixture>
{
    public const string Name = "cli";
}
