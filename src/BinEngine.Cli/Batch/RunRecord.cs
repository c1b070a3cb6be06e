using System.IO.Hashing;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BinEngine.Cli.Batch;

/// <summary>
/// What made a batch output's rows: the model file's SHA-256, the exit policy and every option that changes a
/// row (formats, text column or field, header mode, row length cap). Written beside the output as
/// <c>OUTPUT.batch.json</c> when a run starts; <c>--resume</c> keeps the rows already written only when this
/// run's record is equal, since rows from another model or policy would otherwise be mixed in silently.
/// </summary>
internal static class RunRecord
{
    /// <summary>The record's path for an output path.</summary>
    public static string PathFor(string outputPath) => outputPath + ".batch.json";

    /// <summary>The record of this run; the model path is kept for people, not compared (a moved model is the same model).</summary>
    public static JsonObject Of(string modelPath, string policy, IReadOnlyDictionary<string, string?> options)
    {
        // XXH128, not SHA-256: the record tells one model from another, it is no defence against forgery, and
        // System.Security.Cryptography needs the machine's OpenSSL, which a minimal edge or emulated arm64
        // system may lack (the process would abort before the first row).
        var hash = new XxHash128();
        using (Stream model = ModelLocator.OpenBytes(modelPath)) // a single-file build's embedded model too
            hash.Append(model);
        string digest = Convert.ToHexStringLower(hash.GetCurrentHash());
        var record = new JsonObject
        {
            ["binengine_batch"] = 1,
            ["model_xxh128"] = digest,
            ["policy"] = policy,
        };
        foreach (var (key, value) in options)
            record[key] = value;
        record["model_path"] = modelPath;
        return record;
    }

    /// <summary>Writes <paramref name="record"/> beside the output (to a temporary file, then renamed, so it is whole or absent).</summary>
    public static void Write(string outputPath, JsonObject record)
    {
        string path = PathFor(outputPath);
        string temp = path + ".tmp";
        File.WriteAllText(temp, record.ToJsonString() + "\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Refuses to resume <paramref name="existing"/> unless the record beside <paramref name="outputPath"/> equals
    /// <paramref name="record"/> in every field but the model path.
    /// </summary>
    /// <exception cref="CliException">No record, an unreadable one, or one that differs; the message names the fields.</exception>
    public static void CheckResumable(string outputPath, string existing, JsonObject record)
    {
        string path = PathFor(outputPath);
        if (!File.Exists(path))
            throw new CliException($"cannot resume '{existing}': there is no record of the model and options that wrote it ({path}); " +
                "run without --resume to start afresh");
        JsonObject? written;
        try
        {
            written = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new CliException($"cannot resume '{existing}': its record {path} is not valid JSON ({e.Message}); run without --resume to start afresh");
        }
        if (written is null)
            throw new CliException($"cannot resume '{existing}': its record {path} is not a JSON object; run without --resume to start afresh");
        var differences = new List<string>();
        foreach (var (key, value) in record)
        {
            if (key == "model_path") continue;
            string mine = value?.ToJsonString() ?? "null";
            string theirs = written.TryGetPropertyValue(key, out var w) ? w?.ToJsonString() ?? "null" : "(absent)";
            if (mine != theirs)
                differences.Add(key == "model_xxh128"
                    ? $"the model differs (xxh128 {Short(theirs)} then, {Short(mine)} now{(written["model_path"] is { } p ? ", written with " + p.ToJsonString() : "")})"
                    : $"{key} was {theirs}, now {mine}");
        }
        if (differences.Count > 0)
            throw new CliException($"cannot resume '{existing}': its rows were written by another run: {string.Join("; ", differences)}. " +
                "Resume with the same model and options, or run without --resume to start afresh");
    }

    private static string Short(string jsonString) => jsonString.Trim('"') is { Length: > 12 } s ? s[..12] + "…" : jsonString.Trim('"');
}
