namespace BinEngine.Format;

/// <summary>
/// The one exception every defect of a model file raises: bad magic or version, a count, offset
/// or length that does not fit the file, misalignment, a shape that disagrees with the config, a
/// checksum mismatch, malformed metadata. The message names what is wrong and where (tensor,
/// metadata key, byte offset, expected and actual values).
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception with a message that names the defect and its place.</summary>
    public ModelFormatException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the lower-level cause (I/O, UTF-8 decoding).</summary>
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) { }
}
