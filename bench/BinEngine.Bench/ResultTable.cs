namespace BinEngine.Bench;

/// <summary>How every harness hands out its markdown table: always to stdout, to a file only when one is named (tracked results are never rewritten by default).</summary>
internal static class ResultTable
{
    public static void Emit(string table, string? output)
    {
        Console.WriteLine(table);
        if (string.IsNullOrEmpty(output))
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, table);
        Console.WriteLine($"written to {output}");
    }
}
