namespace BinEngine.Format;

/// <summary>
/// The constants of the BinEngine model file (".bex"), version 1. The layout is documented in
/// docs/FORMAT.md; this class is its single source in code.
/// </summary>
internal static class BexFormat
{
    /// <summary>The four magic bytes "BEXF" read as a little-endian uint.</summary>
    public const uint Magic = 'B' | ('E' << 8) | ('X' << 16) | ((uint)'F' << 24);

    /// <summary>The format version this build writes and reads.</summary>
    public const uint Version = 1;

    /// <summary>Alignment of the data section and of every tensor in it, in bytes (a cache line, one Vector512).</summary>
    public const int Alignment = 64;

    /// <summary>Size of the fixed header.</summary>
    public const int HeaderBytes = 64;

    /// <summary>The longest metadata key, in UTF-8 bytes.</summary>
    public const int MaxKeyBytes = 256;

    internal const int OffsetMagic = 0;
    internal const int OffsetVersion = 4;
    internal const int OffsetAlignment = 8;
    internal const int OffsetFlags = 12;
    internal const int OffsetMetadataCount = 16;
    internal const int OffsetTensorCount = 24;
    internal const int OffsetDataOffset = 32;
    internal const int OffsetDataLength = 40;
    internal const int OffsetDataChecksum = 48;
    internal const int OffsetHeaderChecksum = 56;

    internal static long AlignUp(long value) => (value + (Alignment - 1)) & ~(long)(Alignment - 1);
}
