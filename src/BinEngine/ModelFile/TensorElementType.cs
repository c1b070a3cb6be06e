namespace BinEngine.Format;

/// <summary>How a tensor's elements are stored in the model file (the code is the on-disk value).</summary>
internal enum TensorElementType : uint
{
    /// <summary>IEEE 754 binary32, little-endian.</summary>
    F32 = 0,
    /// <summary>IEEE 754 binary16, little-endian.</summary>
    F16 = 1,
    /// <summary>Signed 8-bit integer codes.</summary>
    I8 = 2,
    /// <summary>Signed 32-bit integers, little-endian (index maps such as <c>embed.tok_map</c>).</summary>
    I32 = 3,
    /// <summary>
    /// Bit planes packed per docs/MODEL.md "Packed bits": for shape [..., K] every row of K elements
    /// takes <see cref="TensorInfo.Planes"/> consecutive plane rows of <c>ceil(K/256)·4</c>
    /// little-endian 64-bit words, element j at bit (j mod 64) of word ⌊j/64⌋, padding bits zero.
    /// One plane: bit 1 = +1, bit 0 = −1. P ≥ 2 planes: the P-bit two's complement code, plane p
    /// holding bit p (see docs/FORMAT.md).
    /// </summary>
    Bits = 4,
}
