using System.Runtime.Intrinsics;

namespace BinEngine.Kernels;

/// <summary>The regrouped weight layouts <see cref="BinaryWeights"/> can keep for the table-lookup XNOR kernels.</summary>
[Flags]
internal enum LookupLayouts
{
    None = 0,
    /// <summary><see cref="SixBitGroups"/>, for xnor-avx512-lut6 (VBMI).</summary>
    SixBit = 1,
    /// <summary><see cref="NibbleGroups"/>, for xnor-avx512bw-lut4 (AVX-512 without VBMI).</summary>
    Nibble = 2,
}

/// <summary>
/// What one table-lookup XNOR kernel (<see cref="XnorGemmLookup{TGroups}"/>) is made of: how a packed row's bits are
/// regrouped into byte-sized groups of <see cref="Bits"/> positions, and the byte lookup that counts a group's bits.
/// </summary>
/// <remarks>
/// A weight row and an activation row regrouped alike meet position for position, every real position in exactly one
/// group and padding zero in both, so Σ_g popcount(w_g ⊕ a_g) = popcount(w ⊕ a). The lookup reads only the low
/// <see cref="Bits"/> of each index byte (any bits it does not read are ignored or zero in both rows), so
/// <c>Lookup(PopCountTable, W_g ⊕ broadcast(a_g))</c> counts the differing positions of group g for 64 weight rows.
/// </remarks>
internal unsafe interface ILookupGroups
{
    /// <summary>The kernel's name (<see cref="GemmKernel.Name"/>).</summary>
    static abstract string KernelName { get; }

    /// <summary>True when the process has the lookup instruction.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>Positions per group: the lookup's index width.</summary>
    static abstract int Bits { get; }

    /// <summary>Which of <see cref="BinaryWeights"/>' layouts holds weights regrouped this way.</summary>
    static abstract LookupLayouts Layout { get; }

    /// <summary>Groups of one row of <paramref name="k"/> elements.</summary>
    static abstract int Count(int k);

    /// <summary>Writes the <see cref="Count"/> groups of one packed row of <paramref name="words"/> words.</summary>
    static abstract void Row(ulong* row, int words, byte* groups);

    /// <summary>P[x] = popcount of the bits of x the lookup reads, at every index it can see.</summary>
    static abstract Vector512<byte> PopCountTable { get; }

    /// <summary>Lane l = table entry of index_l.</summary>
    static abstract Vector512<byte> Lookup(Vector512<byte> table, Vector512<byte> index);
}
