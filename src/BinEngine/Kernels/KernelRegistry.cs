using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using System.Text;

namespace BinEngine.Kernels;

/// <summary>One implementation of each kernel family, chosen together.</summary>
/// <param name="Xnor">W1A1.</param>
/// <param name="Plane">W1Ak, k = 2..8.</param>
/// <param name="Sign">W1A32.</param>
/// <param name="Sgemm">FP32.</param>
/// <param name="Code">W1Ak through int8 multiply-adds, k ≤ 8.</param>
internal sealed record KernelSet(XnorGemm Xnor, PlaneGemm Plane, SignGemm Sign, Sgemm Sgemm, CodeGemm Code)
{
    /// <summary>"xnor-avx512-harleyseal, plane-…, sign-…, sgemm-…, code-…".</summary>
    public override string ToString() => $"{Xnor.Name}, {Plane.Name}, {Sign.Name}, {Sgemm.Name}, {Code.Name}";
}

/// <summary>
/// Every kernel implementation, best first by measured speed on the development machine (bench/README.md), and the
/// set chosen once at start-up: the first supported implementation of each family, or, when the environment variable
/// BINENGINE_ISA = scalar | v128 | avx2 | avx512 names an ISA, the first supported one written for that ISA.
/// </summary>
internal static class KernelRegistry
{
    /// <summary>The environment variable that forces an ISA.</summary>
    public const string IsaVariable = "BINENGINE_ISA";

    /// <summary>Environment variable naming kernels to use in place of the chosen ones (comma-separated), applied after <see cref="IsaVariable"/>.</summary>
    public const string KernelsVariable = "BINENGINE_KERNELS";

    /// <summary>
    /// W1A1 implementations, best first: the six-bit lookup 1.8–2.3× the carry-save kernel on this project's shapes
    /// (bench/README.md, "Levers"); without VBMI (Skylake-SP, Cascade Lake) the four-bit lookup, 1.6–1.9× the AVX2
    /// carry-save kernel, and that ahead of the AVX-512 nibble blocks (≈ 4× slower); the Arm64 CNT kernel ahead of the
    /// portable nibble one by instruction count (not timed).
    /// </summary>
    public static IReadOnlyList<XnorGemm> XnorGemms { get; } =
        [
            new XnorGemmLookup<SixBitGroups>(), new XnorGemmAvx512HarleySeal(), new XnorGemmLookup<NibbleGroups>(), new XnorGemmAvx2HarleySeal(),
            new XnorGemmAvx512Nibble(), new XnorGemmAvx2Nibble(), new XnorGemmArm64Cnt(), new XnorGemmVector128Nibble(), new XnorGemmScalar(),
        ];

    /// <summary>
    /// W1Ak implementations, best first: without VBMI the AVX2 carry-save kernel ahead of the AVX-512 nibble blocks (as
    /// for W1A1); the Arm64 CNT kernel by instruction count (not timed).
    /// </summary>
    public static IReadOnlyList<PlaneGemm> PlaneGemms { get; } =
        [new PlaneGemmAvx512HarleySeal(), new PlaneGemmAvx2HarleySeal(), new PlaneGemmAvx512Nibble(), new PlaneGemmAvx2Nibble(), new PlaneGemmArm64Cnt(), new PlaneGemmVector128Nibble(), new PlaneGemmScalar()];

    /// <summary>W1A32 implementations, best first.</summary>
    public static IReadOnlyList<SignGemm> SignGemms { get; } =
        [new SignGemmVectorised<Lanes512, Vector512<float>>(), new SignGemmVectorised<Lanes256, Vector256<float>>(), new SignGemmVectorised<Lanes128, Vector128<float>>(), new SignGemmScalar()];

    /// <summary>
    /// SGEMM implementations, best first. The 256-bit one measured faster than the 512-bit one on the Zen 4 machine
    /// (bench/README.md): Zen 4 splits 512-bit operations into two 256-bit halves, so the wider path gains no FMA
    /// throughput and pays for the wider reductions.
    /// </summary>
    public static IReadOnlyList<Sgemm> Sgemms { get; } =
        [new SgemmVectorised<Lanes256, Vector256<float>>(), new SgemmVectorised<Lanes512, Vector512<float>>(), new SgemmVectorised<Lanes128, Vector128<float>>(), new SgemmScalar()];

    /// <summary>
    /// Int8 W1Ak implementations, best first on the development machine (a 2-vCPU Intel Xeon with AVX-512 and AVX-VNNI;
    /// bench/README.md, "Levers"): 512-bit maddubs, whose 16 columns a vector halve the loads and broadcasts per product,
    /// measured ahead of 256-bit VNNI (whose 512-bit form .NET 10 exposes only through AVX10), then 256-bit maddubs.
    /// There is no portable Vector128 one (no portable unsigned-by-signed byte multiply-add): a forced v128 set takes
    /// the scalar one.
    /// </summary>
    public static IReadOnlyList<CodeGemm> CodeGemms { get; } =
        [
            new CodeGemmBroadcast<MaddUbsLanes512, Vector512<short>, Vector512<byte>>(), new CodeGemmBroadcast<VnniLanes256, Vector256<int>, Vector256<byte>>(),
            new CodeGemmBroadcast<MaddUbsLanes256, Vector256<short>, Vector256<byte>>(), new CodeGemmScalar(),
        ];

    /// <summary>Every implementation of every family.</summary>
    public static IEnumerable<GemmKernel> All =>
        XnorGemms.Cast<GemmKernel>().Concat(PlaneGemms).Concat(SignGemms).Concat(Sgemms).Concat(CodeGemms);

    private static readonly Lazy<(KernelSet Set, string Note)> Chosen = new(() => ChooseFromEnvironment());

    /// <summary>The set the engine uses, chosen once per process.</summary>
    public static KernelSet Selected => Chosen.Value.Set;

    /// <summary>The implementation named <paramref name="name"/> (e.g. "xnor-avx2-nibble"), or null.</summary>
    public static GemmKernel? Find(string name) => All.FirstOrDefault(k => k.Name == name);

    /// <summary>The best supported set, or the best supported set written for <paramref name="isa"/>.</summary>
    /// <returns>Null when <paramref name="isa"/> is given and not supported by this process.</returns>
    public static KernelSet? Select(KernelIsa? isa = null)
    {
        T? Pick<T>(IReadOnlyList<T> list) where T : GemmKernel =>
            list.FirstOrDefault(k => k.IsSupported && (isa is null || k.Isa == isa));
        var x = Pick(XnorGemms);
        var p = Pick(PlaneGemms);
        var s = Pick(SignGemms);
        var f = Pick(Sgemms);
        // The int8 family has no Vector128 implementation: a forced v128 set takes its scalar one.
        var q = Pick(CodeGemms) ?? CodeGemms.First(k => k.Isa == KernelIsa.Scalar);
        return x is null || p is null || s is null || f is null ? null : new KernelSet(x, p, s, f, q);
    }

    private static (KernelSet, string) ChooseFromEnvironment()
    {
        var (set, note) = ChooseIsa(Environment.GetEnvironmentVariable(IsaVariable));
        string? names = Environment.GetEnvironmentVariable(KernelsVariable);
        if (string.IsNullOrWhiteSpace(names))
            return (set, note);
        try
        {
            return (WithKernels(set, names), $"{note}; {KernelsVariable}={names}");
        }
        catch (ArgumentException e)
        {
            return (set, $"{note}; {KernelsVariable} ignored: {e.Message}");
        }
    }

    private static (KernelSet, string) ChooseIsa(string? forced)
    {
        if (string.IsNullOrWhiteSpace(forced)) return (Select()!, "best supported");
        if (!KernelIsaNames.TryParse(forced, out var isa))
            return (Select()!, $"{IsaVariable}={forced} is not one of scalar|v128|avx2|avx512; using the best supported");
        var set = Select(isa);
        return set is null
            ? (Select()!, $"{IsaVariable}={forced} is not supported by this process; using the best supported")
            : (set, $"forced by {IsaVariable}={forced}");
    }

    /// <summary>
    /// <paramref name="set"/> with the kernels named in <paramref name="names"/> (comma-separated, e.g.
    /// <c>xnor-avx2-harleyseal,sgemm-avx512</c>) in place of its choice for their families: what
    /// BINENGINE_KERNELS applies at start-up, and what a caller passes in BeexModelOptions.Kernels to pin one kernel.
    /// </summary>
    /// <exception cref="ArgumentException">A name is unknown or its kernel is not supported by this process.</exception>
    public static KernelSet WithKernels(KernelSet set, string names)
    {
        ArgumentNullException.ThrowIfNull(set);
        foreach (string raw in (names ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            GemmKernel kernel = Find(raw)
                ?? throw new ArgumentException($"no kernel is named '{raw}' (known: {string.Join(", ", All.Select(k => k.Name))})", nameof(names));
            if (!kernel.IsSupported)
                throw new ArgumentException($"kernel '{raw}' is not supported by this process", nameof(names));
            set = kernel switch
            {
                XnorGemm x => set with { Xnor = x },
                PlaneGemm p => set with { Plane = p },
                SignGemm g => set with { Sign = g },
                Sgemm f => set with { Sgemm = f },
                CodeGemm q => set with { Code = q },
                _ => throw new ArgumentException($"kernel '{raw}' belongs to no family of a kernel set", nameof(names)),
            };
        }
        return set;
    }

    public static string Report()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"kernels: {Selected} ({Chosen.Value.Note})");
        sb.AppendLine($"runtime: .NET {Environment.Version}, {Environment.ProcessorCount} logical processors, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");
        sb.AppendLine("hardware acceleration: " + string.Join(", ",
            Flag("Vector128", Vector128.IsHardwareAccelerated), Flag("Vector256", Vector256.IsHardwareAccelerated),
            Flag("Vector512", Vector512.IsHardwareAccelerated)));
        sb.AppendLine("x86: " + string.Join(", ",
            Flag("Popcnt", Popcnt.IsSupported), Flag("Avx2", Avx2.IsSupported), Flag("Fma", Fma.IsSupported),
            Flag("Avx512F", Avx512F.IsSupported), Flag("Avx512BW", Avx512BW.IsSupported),
            Flag("Avx512Vbmi", Avx512Vbmi.IsSupported), Flag("Gfni", Gfni.IsSupported), Flag("Gfni.V512", Gfni.V512.IsSupported),
            Flag("AvxVnni", AvxVnni.IsSupported)));
        sb.AppendLine("arm: " + Flag("AdvSimd", System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported));
        sb.Append("supported implementations: " + string.Join(" ", All.Where(k => k.IsSupported).Select(k => k.Name)));
        return sb.ToString();
    }

    private static string Flag(string name, bool on) => on ? name + "+" : name + "-";
}
