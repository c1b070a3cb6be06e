namespace BinEngine.Converter;

/// <summary>
/// The one exception every converter failure raises: an unreadable or hostile checkpoint (bad
/// safetensors header, truncated zip, forbidden pickle opcode or global), a config or vocabulary
/// that is missing or wrong, a tensor that is missing, of the wrong dtype or shape. The message
/// names the file, the tensor or key, and expected vs actual.
/// </summary>
internal sealed class ConversionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConversionException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping its cause.</summary>
    public ConversionException(string message, Exception innerException) : base(message, innerException) { }
}
