namespace BinEngine.Kernels;

/// <summary>The instruction-set level a kernel implementation is written for.</summary>
public enum KernelIsa
{
    /// <summary>Plain loops, no intrinsics: the reference every other implementation is tested against.</summary>
    Scalar,
    /// <summary>Portable Vector128 (SSE on x86, AdvSimd on ARM).</summary>
    Vector128,
    /// <summary>Vector256 with AVX2/FMA intrinsics.</summary>
    Avx2,
    /// <summary>Vector512 with AVX-512 F/BW (and VBMI/GFNI where named).</summary>
    Avx512,
}

/// <summary>Names of <see cref="KernelIsa"/> as the BINENGINE_ISA environment variable spells them.</summary>
internal static class KernelIsaNames
{
    /// <summary>The name of <paramref name="isa"/>: scalar, v128, avx2 or avx512.</summary>
    public static string ToName(this KernelIsa isa) => isa switch
    {
        KernelIsa.Scalar => "scalar",
        KernelIsa.Vector128 => "v128",
        KernelIsa.Avx2 => "avx2",
        KernelIsa.Avx512 => "avx512",
        _ => throw new ArgumentOutOfRangeException(nameof(isa)),
    };

    /// <summary>Parses scalar|v128|avx2|avx512 (case-insensitive); false for anything else.</summary>
    public static bool TryParse(string? name, out KernelIsa isa)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "scalar": isa = KernelIsa.Scalar; return true;
            case "v128": case "vector128": isa = KernelIsa.Vector128; return true;
            case "avx2": isa = KernelIsa.Avx2; return true;
            case "avx512": isa = KernelIsa.Avx512; return true;
            default: isa = KernelIsa.Scalar; return false;
        }
    }
}
