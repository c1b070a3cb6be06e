using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// BMI2's bit gather and scatter, with a portable equivalent where the CPU lacks them (ARM): the lookup kernels'
/// groupings (<see cref="SixBitGroups"/>, <see cref="NibbleGroups"/>) regroup weights at load on every machine and
/// activations on every call on x64.
/// </summary>
internal static class BitMoves
{
    /// <summary>pext: the bits of <paramref name="x"/> where <paramref name="mask"/> is 1, packed into the low bits in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Extract(ulong x, ulong mask) =>
        Bmi2.X64.IsSupported ? Bmi2.X64.ParallelBitExtract(x, mask) : ExtractPortable(x, mask);

    /// <summary>pdep: the low bits of <paramref name="x"/> in order, placed where <paramref name="mask"/> is 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Deposit(ulong x, ulong mask) =>
        Bmi2.X64.IsSupported ? Bmi2.X64.ParallelBitDeposit(x, mask) : DepositPortable(x, mask);

    /// <summary><see cref="Extract"/> one mask bit at a time (tested equal to pext).</summary>
    internal static ulong ExtractPortable(ulong x, ulong mask)
    {
        ulong packed = 0;
        for (int i = 0; mask != 0; mask &= mask - 1, i++)
            packed |= ((x >> System.Numerics.BitOperations.TrailingZeroCount(mask)) & 1) << i;
        return packed;
    }

    /// <summary><see cref="Deposit"/> one mask bit at a time (tested equal to pdep).</summary>
    internal static ulong DepositPortable(ulong x, ulong mask)
    {
        ulong spread = 0;
        for (int i = 0; mask != 0; mask &= mask - 1, i++)
            spread |= ((x >> i) & 1) << System.Numerics.BitOperations.TrailingZeroCount(mask);
        return spread;
    }
}
