using System.Text.Json;
using System.Text.Json.Nodes;
using BinEngine.Converter;

namespace BinEngine.Tests.ConverterTests;

/// <summary>The committed checkpoint fixtures (tests/fixtures/checkpoints, made by make_fixtures.py) and ways to convert them.</summary>
internal static class Fixtures
{
    public static string Directory { get; } = FindDirectory();

    public static string Pt => Path.Combine(Directory, "tiny.pt");
    public static string Safetensors => Path.Combine(Directory, "tiny.safetensors");
    public static string ConfigPath => Path.Combine(Directory, "config.json");
    public static string VocabPath => Path.Combine(Directory, "vocab.txt");

    private static string FindDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "checkpoints");
            if (File.Exists(Path.Combine(candidate, "tiny.pt")))
                return candidate;
        }
        throw new InvalidOperationException("tests/fixtures/checkpoints not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The fixture config with some keys replaced.</summary>
    public static string ConfigJson(Action<JsonObject>? edit = null)
    {
        var node = JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
        edit?.Invoke(node);
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    private static readonly Lazy<Checkpoint> PtCheckpoint = new(() => Checkpoint.Read(Pt));

    public static Checkpoint TinyCheckpoint => PtCheckpoint.Value;

    /// <summary>Converts the .pt fixture in memory with the fixture config edited.</summary>
    public static (byte[] File, ConversionReport Report) Convert(Action<JsonObject>? edit = null, Checkpoint? checkpoint = null) =>
        ModelConverter.ConvertToBytes(checkpoint ?? TinyCheckpoint, SourceConfig.Parse(ConfigJson(edit), "test config"),
            Vocabulary.ReadVocabTxt(VocabPath), lowercase: true, name: "tiny");

    private static readonly Lazy<byte[]> DefaultModel = new(() => Convert().File);

    /// <summary>The fixture converted with its own config (W1 A1 E2, token map).</summary>
    public static byte[] TinyModel => DefaultModel.Value;
}
