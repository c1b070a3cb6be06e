namespace BinEngine.Tests;

/// <summary>Locates repository files from a test: the root is the nearest folder above the test binaries holding BinEngine.sln.</summary>
public static class TestPaths
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BinEngine.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"No folder above '{AppContext.BaseDirectory}' holds BinEngine.sln.");
    });

    /// <summary>The repository root (the folder holding BinEngine.sln).</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>A path under the repository root, e.g. <c>Repo("data/vocab/bert-base-uncased-vocab.txt")</c>.</summary>
    public static string Repo(string relative) => Path.Combine(RepoRoot, relative);

    /// <summary>A path under tests/fixtures, e.g. <c>Fixture("wordpiece/bert-base-uncased.jsonl")</c>.</summary>
    public static string Fixture(string relative) => Path.Combine(RepoRoot, "tests", "fixtures", relative);
}
