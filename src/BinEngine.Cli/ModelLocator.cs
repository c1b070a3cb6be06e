using BinEngine.Format;
using BinEngine.Runtime;

namespace BinEngine.Cli;

/// <summary>
/// Finds and loads the model a command runs: the --model path, or the default trained model shipped
/// beside the binengine assembly (the csproj copies models/sst2-default/model.bex there) or found by
/// walking up from the working directory (running from a checkout of the repository), or, in a
/// single-file build (tools/publish.sh sets EmbedDefaultModel), compiled into the binary as a resource.
/// </summary>
internal static class ModelLocator
{
    /// <summary>Where the default model lies, relative to the assembly folder or a repository root.</summary>
    public const string DefaultModelRelative = "models/sst2-default/model.bex";

    /// <summary>What <see cref="Locate"/> returns for the default model compiled into the binary; <see cref="Load"/> reads it from the resource.</summary>
    public const string EmbeddedDefaultModel = "embedded:" + DefaultModelRelative;

    // The manifest resource name the csproj gives the model when EmbedDefaultModel is true.
    private const string EmbeddedResourceName = "BinEngine.Cli.DefaultModel.bex";

    private static bool HasEmbeddedModel =>
        typeof(ModelLocator).Assembly.GetManifestResourceInfo(EmbeddedResourceName) is not null;

    private static Stream OpenEmbedded() =>
        typeof(ModelLocator).Assembly.GetManifestResourceStream(EmbeddedResourceName)
            ?? throw new CliException($"this binengine has no embedded model ({EmbeddedResourceName}); pass --model");

    /// <summary>The bytes of the model at <paramref name="path"/>: the file, or the embedded model for <see cref="EmbeddedDefaultModel"/>.</summary>
    public static Stream OpenBytes(string path) => path == EmbeddedDefaultModel
        ? OpenEmbedded()
        : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);

    /// <summary>Where the FP32 twin of the default model lies when it has been converted.</summary>
    public const string DefaultFp32Relative = "models/sst2-fp32/model.bex";

    /// <summary>The path of --model, or the default model; throws (exit 2) saying to pass --model when there is none.</summary>
    public static string Locate(CliContext cx, string? modelOption)
    {
        if (modelOption is not null)
            return cx.Resolve(modelOption);
        return Find(cx, DefaultModelRelative)
            ?? (HasEmbeddedModel ? EmbeddedDefaultModel : null)
            ?? throw new CliException(
                $"no model given and the default model ({DefaultModelRelative}) was found neither beside binengine ({cx.BaseDirectory}) " +
                $"nor in {cx.WorkingDirectory} or a folder above it; pass --model PATH/TO/model.bex " +
                "(convert a checkpoint with `binengine convert`)");
    }

    /// <summary>The file at <paramref name="relative"/> under the assembly folder, else under the working directory or the nearest folder above it that has it; null if none.</summary>
    public static string? Find(CliContext cx, string relative)
    {
        string beside = Path.Combine(cx.BaseDirectory, relative);
        if (File.Exists(beside)) return beside;
        for (var dir = new DirectoryInfo(cx.WorkingDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Loads the model at <paramref name="path"/>, turning every way it can be unusable into a <see cref="CliException"/> (exit 2).</summary>
    public static BeexModel Load(string path, BeexModelOptions? options = null)
    {
        if (path == EmbeddedDefaultModel)
        {
            using Stream embedded = OpenEmbedded();
            return BeexModel.Load(embedded, options);
        }
        if (Directory.Exists(path))
            throw new CliException($"model '{path}' is a folder; pass the model file inside it (model.bex)");
        if (!File.Exists(path))
            throw new CliException($"model file '{path}' does not exist; pass --model with the path of a .bex file (`binengine convert` makes one from a checkpoint)");
        RequireRegularFile(path, "model");
        try
        {
            return BeexModel.Load(path, options);
        }
        catch (ModelFormatException e)
        {
            throw new CliException($"cannot use model '{path}': {e.Message}; convert the checkpoint again with `binengine convert`", ExitCodes.Usage, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read model '{path}': {e.Message}", ExitCodes.Usage, e);
        }
    }

    /// <summary>
    /// Refuses a path that exists but is not a regular file: reading a FIFO waits for a writer forever, and a
    /// device has no end. (The library checks again when it maps the file; this gives the CLI's message first.)
    /// </summary>
    public static void RequireRegularFile(string path, string what)
    {
        if (UnixFiles.Of(path) is { IsRegular: false })
            throw new CliException($"{what} '{path}' is not a regular file (a FIFO, device, socket or folder); pass the path of a file");
    }

    /// <summary>Opens the container at <paramref name="path"/> (a file, or <see cref="EmbeddedDefaultModel"/>) without binding the weights.</summary>
    public static BinEngine.Format.ModelFile OpenFile(string path)
    {
        if (path == EmbeddedDefaultModel)
        {
            using Stream embedded = OpenEmbedded();
            return BinEngine.Format.ModelFile.Open(embedded);
        }
        if (!File.Exists(path)) throw new CliException($"model file '{path}' does not exist");
        RequireRegularFile(path, "model");
        return BinEngine.Format.ModelFile.Open(path);
    }

    /// <summary>Locates and loads in one step.</summary>
    public static BeexModel LocateAndLoad(CliContext cx, string? modelOption, BeexModelOptions? options = null) =>
        Load(Locate(cx, modelOption), options);
}
