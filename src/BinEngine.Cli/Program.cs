namespace BinEngine.Cli;

/// <summary>The `binengine` command. Subcommands are wired in as the engine's parts land.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("binengine: no commands yet");
        return 2;
    }
}
