using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BinEngine.Kernels;
using BinEngine.Runtime;
using BinEngine.Tests.Runtime;

namespace BinEngine.Tests.Kernels;

/// <summary>
/// Which kernels a process ends up with: pinned per CPU capability (so a reordered registry or a
/// broken IsSupported shows up as a failure, not as a silently slower model), the BINENGINE_KERNELS
/// override by name, and the execution plan that records the choice for a model.
/// </summary>
[Trait("Category", "Isa")]
public class KernelSelectionTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    [Fact]
    public void TheSelectedKernelsArePinnedByWhatThisProcessSupports()
    {
        string? forced = Environment.GetEnvironmentVariable(KernelRegistry.IsaVariable);
        Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable(KernelRegistry.KernelsVariable)),
            "this test pins the ISA-level choice; run it without BINENGINE_KERNELS");
        bool vbmi = Avx512BW.IsSupported && Avx512Vbmi.IsSupported;
        KernelIsa best = Avx512BW.IsSupported ? KernelIsa.Avx512
            : Avx2.IsSupported ? KernelIsa.Avx2
            : Vector128.IsHardwareAccelerated ? KernelIsa.Vector128
            : KernelIsa.Scalar;
        bool isForced = KernelIsaNames.TryParse(forced, out KernelIsa isa) && KernelRegistry.Select(isa) is not null;
        if (!isForced)
            isa = best;

        // Binary families: the widest ISA wins, by table lookup for W1A1 on AVX-512 (six-bit groups with VBMI, nibbles
        // without) and Harley-Seal elsewhere where it exists (measured faster, bench/README.md). Without VBMI the AVX-512
        // plane kernel is the nibble one, which loses to AVX2's Harley-Seal: unforced, that one is chosen.
        string xnor = isa switch
        {
            KernelIsa.Avx512 => vbmi ? "xnor-avx512-lut6" : "xnor-avx512bw-lut4",
            KernelIsa.Avx2 => "xnor-avx2-harleyseal",
            KernelIsa.Vector128 => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "xnor-v128-cnt" : "xnor-v128-nibble",
            _ => "xnor-scalar",
        };
        string plane = isa switch
        {
            KernelIsa.Avx512 => vbmi ? "plane-avx512-harleyseal" : isForced ? "plane-avx512-nibble" : "plane-avx2-harleyseal",
            KernelIsa.Avx2 => "plane-avx2-harleyseal",
            KernelIsa.Vector128 => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "plane-v128-cnt" : "plane-v128-nibble",
            _ => "plane-scalar",
        };
        // SGEMM: AVX2 measured faster than AVX-512 on the development machine, so the best choice is AVX2 even
        // where AVX-512 is there; forced, each ISA takes its own.
        string sgemm = isForced
            ? $"sgemm-{isa.ToName()}"
            : Avx2.IsSupported && Fma.IsSupported ? "sgemm-avx2" : Avx512F.IsSupported ? "sgemm-avx512"
            : Vector128.IsHardwareAccelerated ? "sgemm-v128" : "sgemm-scalar";
        // The int8 family: 512-bit maddubs first, then 256-bit VNNI (vpdpbusd) where the CPU has AVX-VNNI, then 256-bit
        // maddubs; no Vector128 implementation, so a forced v128 set falls back to scalar.
        string avx2Code = AvxVnni.IsSupported ? "code-avx2-vnni" : "code-avx2-maddubs";
        string code = isForced
            ? isa switch { KernelIsa.Avx2 => avx2Code, KernelIsa.Avx512 => "code-avx512-maddubs", _ => "code-scalar" }
            : Avx512BW.IsSupported ? "code-avx512-maddubs" : Avx2.IsSupported ? avx2Code : "code-scalar";

        KernelSet selected = KernelRegistry.Selected;
        Assert.Equal(xnor, selected.Xnor.Name);
        Assert.Equal(plane, selected.Plane.Name);
        Assert.Equal(sgemm, selected.Sgemm.Name);
        Assert.Equal(code, selected.Code.Name);
    }

    [Fact]
    public void KernelsCanBeForcedByNameFamilyByFamily()
    {
        KernelSet scalar = KernelRegistry.Select(KernelIsa.Scalar)!;
        KernelSet mixed = KernelRegistry.WithKernels(scalar, " xnor-scalar , sgemm-scalar,");
        Assert.Equal(scalar, mixed);

        GemmKernel? other = KernelRegistry.XnorGemms.FirstOrDefault(k => k.IsSupported && k.Isa != KernelIsa.Scalar);
        if (other is not null)
        {
            KernelSet one = KernelRegistry.WithKernels(scalar, other.Name);
            Assert.Same(other, one.Xnor);
            Assert.Same(scalar.Plane, one.Plane); // the other families keep their choice
        }

        Assert.Contains("no kernel is named 'xnor-quantum'", Assert.Throws<ArgumentException>(() => KernelRegistry.WithKernels(scalar, "xnor-quantum")).Message);
        GemmKernel? unsupported = KernelRegistry.All.FirstOrDefault(k => !k.IsSupported);
        if (unsupported is not null) // under a forced-off ISA leg
            Assert.Contains("not supported", Assert.Throws<ArgumentException>(() => KernelRegistry.WithKernels(scalar, unsupported.Name)).Message);
    }

    [Fact]
    public void ThePlanRecordsTheKernelAndTheHelpersFollowItsIsa()
    {
        KernelSet scalar = KernelRegistry.Select(KernelIsa.Scalar)!;
        using BeexModel forced = BeexModel.Load(fixture.Path, new BeexModelOptions { Isa = KernelIsa.Scalar });
        Assert.Same(scalar.Code, forced.Plan.Kernel); // the tiny model is W1A8: int8 codes
        Assert.Equal(ActivationEncoding.Codes, forced.Plan.Activations);
        Assert.False(forced.Plan.VectorisedHelpers); // a forced scalar set runs no Vector256 helper either
        Assert.Contains("code-scalar", forced.DescribePlan());

        using BeexModel best = BeexModel.Load(fixture.Path);
        Assert.Same(best.Kernels.Code, best.Plan.Kernel);
        Assert.Equal(Vector256.IsHardwareAccelerated && best.Kernels.Xnor.Isa is KernelIsa.Avx2 or KernelIsa.Avx512, best.Plan.VectorisedHelpers);
        string text = "a gorgeous, witty, seductive movie.";
        Assert.Equal(best.Classify(text).Label, forced.Classify(text).Label);
    }

    [Theory]
    [InlineData(1, 1, "Planes", "xnor", "Planes", "xnor")]
    [InlineData(1, 2, "Codes", "code", "Planes", "plane")]
    [InlineData(1, 4, "Codes", "code", "Planes", "plane")]
    [InlineData(1, 5, "Codes", "code", "Codes", "code")]
    [InlineData(1, 8, "Codes", "code", "Codes", "code")]
    [InlineData(1, 32, "Float", "sign", "Float", "sign")]
    [InlineData(32, 32, "Float", "sgemm", "Float", "sgemm")]
    public void OneDefinitionMapsActivationWidthToEncodingAndKernelFamily(int weightBits, int actBits,
        string vectorEncoding, string vectorFamily, string scalarEncoding, string scalarFamily)
    {
        var a = new Architecture(100, 16, 64, 2, 2, 128, 2, weightBits, actBits, weightBits == 32 ? 32 : 2, 1e-5f);
        // 2 and 4 bits take the int8 kernel when it is vectorised, the bit planes when it is the scalar one.
        KernelSet scalar = KernelRegistry.Select(KernelIsa.Scalar)!;
        bool vectorCode = KernelRegistry.Selected.Code.Isa >= KernelIsa.Avx2;
        foreach ((KernelSet set, string encodingName, string family) in new[]
        {
            (KernelRegistry.Selected, vectorCode ? vectorEncoding : scalarEncoding, vectorCode ? vectorFamily : scalarFamily),
            (scalar, scalarEncoding, scalarFamily),
        })
        {
            ExecutionPlan plan = ExecutionPlan.Create(a, set);
            Assert.Equal(Enum.Parse<ActivationEncoding>(encodingName), plan.Activations);
            Assert.StartsWith(family + "-", plan.Kernel.Name, StringComparison.Ordinal);
        }
        ExecutionPlan selected = ExecutionPlan.Create(a, KernelRegistry.Selected);
        Assert.Equal(2, selected.Layers.Count);
        Assert.Equal(["blocks.1.attn.q", "blocks.1.attn.k", "blocks.1.attn.v", "blocks.1.attn.o", "blocks.1.slfn.g1", "blocks.1.slfn.f1", "blocks.1.slfn.g2", "blocks.1.slfn.f2"],
            selected.Layers[1].Select(p => p.Name));
    }
}
