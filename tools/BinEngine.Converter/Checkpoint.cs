using System.Security.Cryptography;

namespace BinEngine.Converter;

/// <summary>A checkpoint read into memory: its tensors by name, plus what the file says about itself.</summary>
internal sealed class Checkpoint
{
    internal Checkpoint(string path, string format, IReadOnlyDictionary<string, SourceTensor> tensors, IReadOnlyDictionary<string, string> metadata, string sha256)
    {
        Path = path;
        Format = format;
        Tensors = tensors;
        Metadata = metadata;
        Sha256 = sha256;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>"safetensors" or "torch" (a torch.save zip archive).</summary>
    public string Format { get; }

    /// <summary>Tensors by their names in the checkpoint, in file order.</summary>
    public IReadOnlyDictionary<string, SourceTensor> Tensors { get; }

    /// <summary>safetensors <c>__metadata__</c> (empty for torch files).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Lower-case hex SHA-256 of the file's bytes.</summary>
    public string Sha256 { get; }

    /// <summary>Largest checkpoint the converter reads (it holds the file in memory).</summary>
    public const long MaxFileBytes = int.MaxValue;

    /// <summary>Reads a safetensors file or a torch.save zip, chosen by the file's first bytes.</summary>
    /// <exception cref="ConversionException">Unreadable, malformed or hostile file.</exception>
    public static Checkpoint Read(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new ConversionException($"checkpoint '{path}' does not exist");
            if (info.Length > MaxFileBytes)
                throw new ConversionException($"checkpoint '{path}' is {info.Length} bytes; the converter reads at most {MaxFileBytes}");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConversionException($"cannot read checkpoint '{path}': {e.Message}", e);
        }
        return Read(bytes, path);
    }

    /// <summary>Reads a checkpoint from its bytes; <paramref name="name"/> is used in messages.</summary>
    public static Checkpoint Read(byte[] bytes, string name)
    {
        string sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        // "PK\x03\x04" opens a zip's first local header; torch.save writes a zip.
        if (bytes.Length >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4)
            return new Checkpoint(name, "torch", TorchZipReader.Read(bytes, name), new Dictionary<string, string>(), sha);
        if (bytes.Length >= 2 && bytes[0] == 0x80 && bytes[1] <= 5)
            throw new ConversionException($"{name}: a bare pickle (legacy torch.save format, _use_new_zipfile_serialization=False); re-save it with torch.save's default zip format");
        var (tensors, metadata) = SafetensorsReader.Read(bytes, name);
        return new Checkpoint(name, "safetensors", tensors, metadata, sha);
    }
}
