using System.CommandLine;
using System.CommandLine.Invocation;
using BinEngine.Cli.Commands;
using BinEngine.Format;

namespace BinEngine.Cli;

/// <summary>
/// The `binengine` command: classify, batch, eval, bench, tokenize, isa, convert, inspect.
/// Exit codes: 0 ok, 1 some rows or texts failed (each got an error row), 2 bad usage or an unusable
/// model or input file (the message says what to do).
/// </summary>
public static class Program
{
    /// <summary>The process entry point: runs <see cref="Run(string[], TextReader, TextWriter, TextWriter)"/> on the console.</summary>
    public static int Main(string[] args)
    {
        var cx = new CliContext(Console.In, Console.Out, Console.Error,
            StderrIsTerminal: !Console.IsErrorRedirected,
            BaseDirectory: AppContext.BaseDirectory,
            WorkingDirectory: Environment.CurrentDirectory)
        {
            StdinIsTerminal = !Console.IsInputRedirected,
            StdinClosed = UnixFiles.StdinWasClosed(),
            StdinBytes = Console.OpenStandardInput,
        };
        int code = Run(args, cx);
        Console.Out.Flush();
        return code;
    }

    /// <summary>Runs one command line in-process, reading and writing the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr) =>
        Run(args, new CliContext(stdin, stdout, stderr, StderrIsTerminal: false, AppContext.BaseDirectory, Environment.CurrentDirectory));

    internal static int Run(string[] args, CliContext cx)
    {
        RootCommand root = BuildRoot(cx);
        ParseResult parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            foreach (var error in parse.Errors)
                cx.Stderr.WriteLine("error: " + error.Message);
            string command = parse.CommandResult.Command == root ? "binengine" : "binengine " + parse.CommandResult.Command.Name;
            cx.Stderr.WriteLine($"Run '{command} --help' for usage.");
            return ExitCodes.Usage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                Output = cx.Stdout,
                Error = cx.Stderr,
                EnableDefaultExceptionHandler = false,
            });
        }
        catch (CliException e)
        {
            cx.Stderr.WriteLine("error: " + e.Message);
            return e.ExitCode;
        }
        catch (ModelFormatException e)
        {
            cx.Stderr.WriteLine("error: unusable model file: " + e.Message);
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            cx.Stderr.WriteLine("error: " + e.Message + " Check the path.");
            return ExitCodes.Usage;
        }
        catch (IOException e)
        {
            cx.Stderr.WriteLine("error: input/output failed: " + e.Message);
            return ExitCodes.Usage;
        }
        finally
        {
            cx.Stdout.Flush();
            cx.Stderr.Flush();
        }
    }

    internal static RootCommand BuildRoot(CliContext cx)
    {
        var root = new RootCommand(
            "BinEngine: binarized early-exit transformers (BEExformer) on the CPU. " +
            "Exit codes: 0 ok, 1 some rows failed, 2 bad usage or unusable model.")
        {
            ClassifyCommand.Create(cx),
            BatchCommand.Create(cx),
            EvalCommand.Create(cx),
            CalibrateCommand.Create(cx),
            BenchCommand.Create(cx),
            TokenizeCommand.Create(cx),
            IsaCommand.Create(cx),
            ConvertCommand.Create(),
            InspectCommand.Create(),
        };
        return root;
    }
}
