using BinEngine.Kernels;
using BinEngine.Runtime;
using System.Runtime.Intrinsics;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// The Mamba exit head's fast path against its plain-loop reference (docs/MODEL.md, "mamba_exits"), on every SGEMM the
/// process supports and every ISA cap; the properties the forward pass relies on (causality, the zero-out_proj
/// identity, no state between calls). The vector math it is built from: VectorMathTests.
/// </summary>
[Trait("Category", "Isa")]
public class MambaHeadTests
{
    private const int State = 16, ConvWidth = 4;

    /// <summary>(d, E, R): widths around the vector sizes (E = 8, 24, 130 leave 256- and 128-bit and scalar tails).</summary>
    private static readonly (int D, int E, int R)[] Shapes = [(16, 8, 4), (64, 24, 4), (16, 130, 16), (256, 128, 16), (64, 130, 4)];

    private static readonly int[] TokenCounts = [1, 2, 5, 64];

    /// <summary>
    /// The fast path's error, per pooled element, against the scale of what was summed into it:
    /// mean_t(|u_ti| + Σ_c |W_out[i, c]·y_tc|). The two paths differ by rounding only: SGEMMs that sum in another order
    /// and fuse (relative error up to about K·2⁻²⁴ of Σ|a·w| per dot, K ≤ 256 here), the fused convolution and scan,
    /// and exp, log and σ within 2 ulp instead of correctly rounded. The scan is contractive (decay ≤ 1), so errors in
    /// h add up over tokens instead of growing. Measured worst ratio over all these tests and kernels: 1.5e−7 (about
    /// 2.5 float ulps of the scale). The bound keeps a margin of 13× above it and still catches small bugs: D·x off by
    /// one part in 10⁴ in the scalar scan alone gave ratios up to 1.1e−5 and failed; a wrong tap, token or sign fails
    /// by orders of magnitude more.
    /// </summary>
    private const double RelativeTolerance = 2e-6;

    public static TheoryData<string, string> SgemmAndIsa()
    {
        var data = new TheoryData<string, string>();
        foreach (var kernel in KernelRegistry.Sgemms.Where(k => k.IsSupported))
            foreach (string isa in Enum.GetNames<KernelIsa>())
                data.Add(kernel.Name, isa);
        return data;
    }

    public static TheoryData<string> SgemmNames()
    {
        var data = new TheoryData<string>();
        foreach (var kernel in KernelRegistry.Sgemms.Where(k => k.IsSupported)) data.Add(kernel.Name);
        return data;
    }

    public static TheoryData<string> IsaNames()
    {
        var data = new TheoryData<string>();
        foreach (string isa in Enum.GetNames<KernelIsa>()) data.Add(isa);
        return data;
    }

    private static Sgemm Kernel(string name) => Assert.IsAssignableFrom<Sgemm>(KernelRegistry.Find(name));

    [Theory]
    [MemberData(nameof(SgemmAndIsa))]
    public void FastPathMatchesReference(string sgemmName, string isaName)
    {
        var sgemm = Kernel(sgemmName);
        var isa = Enum.Parse<KernelIsa>(isaName);
        var scratch = new MambaScratch();
        foreach (var (d, e, r) in Shapes)
        {
            var w = RandomHead(d, e, r, seed: d * 1000 + e + r);
            foreach (int n in TokenCounts)
            {
                float[,] u = RandomTokens(n, d, seed: n + e);
                AssertMatchesReference(w, u, sgemm, isa, scratch, $"{sgemmName} {isaName} d={d} E={e} R={r} n={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SgemmNames))]
    public void EveryIsaCapGivesTheSameBits(string sgemmName)
    {
        // exp, log, SiLU and softplus are written with the same operations at every width, and the scan's order does
        // not depend on the width: for a given SGEMM, every cap must give the scalar cap's bits.
        var sgemm = Kernel(sgemmName);
        foreach (var (d, e, r) in Shapes)
        {
            var w = RandomHead(d, e, r, seed: e * 7 + r);
            foreach (int n in TokenCounts)
            {
                float[,] u = RandomTokens(n, d, seed: 3 * n + d);
                float[] expected = Fast(w, u, sgemm, KernelIsa.Scalar, new MambaScratch());
                foreach (var isa in Enum.GetValues<KernelIsa>())
                    AssertSameBits(expected, Fast(w, u, sgemm, isa, new MambaScratch()), $"{sgemmName} {isa} d={d} E={e} n={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaNames))]
    public void TokenOutputsAreCausal(string isaName)
    {
        // Changing token t0 leaves m_t for t < t0 unchanged to the bit: the SGEMMs compute each row alone (the same row
        // blocking for the same n) and the scan only moves forward. Token t0's own output must change.
        var isa = Enum.Parse<KernelIsa>(isaName);
        var sgemm = KernelRegistry.Select()!.Sgemm;
        const int d = 64, e = 130, r = 4, n = 24;
        var w = RandomHead(d, e, r, seed: 5);
        float[,] u = RandomTokens(n, d, seed: 6);
        var scratch = new MambaScratch();
        Fast(w, u, sgemm, isa, scratch);
        float[] before = scratch.TokenOutputs.ToArray();
        foreach (int t0 in new[] { 0, 1, 3, 4, 23 })
        {
            float[,] changed = (float[,])u.Clone();
            for (int i = 0; i < d; i++) changed[t0, i] += 0.5f;
            Fast(w, changed, sgemm, isa, scratch);
            float[] after = scratch.TokenOutputs.ToArray();
            AssertSameBits(before.AsSpan(0, t0 * d).ToArray(), after.AsSpan(0, t0 * d).ToArray(), $"{isa} tokens before {t0}");
            Assert.False(before.AsSpan(t0 * d, d).SequenceEqual(after.AsSpan(t0 * d, d)), $"{isa}: token {t0}'s output did not change");

            // The reference is causal in the same way.
            MambaHead.PoolResidualReference(w, u, out _, out float[,] mixedBefore);
            MambaHead.PoolResidualReference(w, changed, out _, out float[,] mixedAfter);
            for (int t = 0; t < t0; t++)
                for (int i = 0; i < d; i++)
                    Assert.Equal(mixedBefore[t, i], mixedAfter[t, i]);
        }
    }

    [Theory]
    [MemberData(nameof(IsaNames))]
    public void ZeroOutProjectionPoolsTheInputExactly(string isaName)
    {
        // m = y·0 = ±0 and u + ±0 = u, so pooled is mean(u) summed in token order and divided by n, to the bit: the
        // distillation's starting point is exactly the plain linear exit.
        var isa = Enum.Parse<KernelIsa>(isaName);
        foreach (var (d, e, r) in Shapes)
        {
            var w = RandomHead(d, e, r, seed: 9, zeroOutProj: true);
            foreach (int n in TokenCounts)
            {
                float[,] u = RandomTokens(n, d, seed: 10 + n);
                var expected = new float[d];
                for (int i = 0; i < d; i++)
                {
                    float sum = 0f;
                    for (int t = 0; t < n; t++) sum += u[t, i];
                    expected[i] = sum / n;
                }
                AssertSameBits(expected, Fast(w, u, KernelRegistry.Select()!.Sgemm, isa, new MambaScratch()), $"{isa} d={d} E={e} n={n}");
                AssertSameBits(expected, MambaHead.PoolResidualReference(w, u), $"reference d={d} E={e} n={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaNames))]
    public void ExtremeDeltaAndALogStayFiniteAndMatch(string isaName)
    {
        // Δ's pre-activation far above softplus' threshold 20 (Δ = v, decay exp(Δ·A) ≈ 0), far below (Δ ≈ e^v, decay ≈ 1),
        // and A_log at ±30 (A ≈ −1e13: the state forgets at once; A ≈ −1e−13: it never forgets).
        var isa = Enum.Parse<KernelIsa>(isaName);
        var sgemm = KernelRegistry.Select()!.Sgemm;
        foreach (float dtBias in new[] { 40f, 21f, -30f })
            foreach (float aLog in new[] { -30f, 30f, 0f })
            {
                var w = RandomHead(64, 130, 4, seed: 12, dtBias: dtBias, aLog: aLog);
                float[,] u = RandomTokens(24, 64, seed: 13);
                float[] fast = Fast(w, u, sgemm, isa, new MambaScratch());
                Assert.All(fast, v => Assert.True(float.IsFinite(v), $"dtBias={dtBias} A_log={aLog}: {v}"));
                AssertMatchesReference(w, u, sgemm, isa, new MambaScratch(), $"{isa} dtBias={dtBias} A_log={aLog}");
            }
    }

    [Theory]
    [MemberData(nameof(IsaNames))]
    public void ReusedScratchGivesTheSameResults(string isaName)
    {
        // The state starts at 0 on every call; a scratch that served a longer, a shorter and a wider head gives the
        // bits of a fresh one.
        var isa = Enum.Parse<KernelIsa>(isaName);
        var sgemm = KernelRegistry.Select()!.Sgemm;
        var w = RandomHead(64, 24, 4, seed: 14);
        var wide = RandomHead(256, 130, 16, seed: 15);
        float[,] u = RandomTokens(5, 64, seed: 16);
        float[] fresh = Fast(w, u, sgemm, isa, new MambaScratch());
        var scratch = new MambaScratch();
        Fast(w, RandomTokens(64, 64, seed: 17), sgemm, isa, scratch);
        AssertSameBits(fresh, Fast(w, u, sgemm, isa, scratch), "after a longer sample");
        Fast(wide, RandomTokens(2, 256, seed: 18), sgemm, isa, scratch);
        AssertSameBits(fresh, Fast(w, u, sgemm, isa, scratch), "after a wider head");
        AssertSameBits(fresh, Fast(w, u, sgemm, isa, scratch), "called twice");
    }

    [Theory]
    [MemberData(nameof(IsaNames))]
    public void WarmCallAllocatesNothing(string isaName)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        var sgemm = KernelRegistry.Select()!.Sgemm;
        var w = RandomHead(64, 130, 4, seed: 22).Prepare();
        var u = new float[24 * 64];
        u.AsSpan().Fill(0.25f);
        var pooled = new float[64];
        var scratch = new MambaScratch();
        MambaHead.PoolResidual(w, u, 24, pooled, scratch, sgemm, isa);
        // The least over a few calls (Allocations.Least says why a single measured call can see the runtime's own allocation).
        Assert.Equal(0, Allocations.Least(() =>
        {
            MambaHead.PoolResidual(w, u, 24, pooled, scratch, sgemm, isa);
            MambaHead.PoolResidual(w, u, 5, pooled, scratch, sgemm, isa);
        }));
    }

    [Fact]
    public void WrongTensorLengthIsNamed()
    {
        var good = RandomHead(16, 8, 4, seed: 19);
        var bad = new MambaHeadWeights
        {
            Dim = 16, Inner = 8, State = State, ConvWidth = ConvWidth, DtRank = 4,
            InProj = good.InProj, ConvWeight = good.ConvWeight, ConvBias = good.ConvBias, XProj = good.XProj,
            DtProjWeight = good.DtProjWeight, DtProjBias = good.DtProjBias, ALog = TensorView<float>.Pinned(new float[8 * State - 1]),
            D = good.D, OutProj = good.OutProj,
        };
        var error = Assert.Throws<ArgumentException>(() => bad.Prepare());
        Assert.Contains("ALog", error.Message);
    }

    [Fact]
    public void PreparedTablesAreTransposed()
    {
        var w = RandomHead(16, 24, 4, seed: 20);
        ReadOnlySpan<float> aLog = w.ALog.Span, taps = w.ConvWeight.Span;
        for (int c = 0; c < 24; c++)
        {
            for (int j = 0; j < State; j++)
                Assert.Equal((float)-Math.Exp(aLog[c * State + j]), w.TransposedA[j * 24 + c]);
            for (int k = 0; k < ConvWidth; k++)
                Assert.Equal(taps[c * ConvWidth + k], w.TransposedConv[k * 24 + c]);
        }
    }

    [Fact]
    public void FlopsCountEveryStep()
    {
        var w = RandomHead(256, 128, 16, seed: 21);
        // Per token: in_proj 131072, conv 1024, x_proj 12288, dt_proj 4096, exps 384, scan 12288 + 2048, D·x and gate 384,
        // out_proj 65536, pool 512.
        Assert.Equal(24L * (131072 + 1024 + 12288 + 4096 + 384 + 12288 + 2048 + 384 + 65536 + 512), MambaHead.Flops(w, 24));
    }

    // ---- helpers ----

    private static void AssertMatchesReference(MambaHeadWeights w, float[,] u, Sgemm sgemm, KernelIsa isa, MambaScratch scratch, string label)
    {
        int n = u.GetLength(0), d = w.Dim, e = w.Inner;
        float[] expected = MambaHead.PoolResidualReference(w, u, out float[,] y, out _);
        float[] actual = Fast(w, u, sgemm, isa, scratch);
        ReadOnlySpan<float> wOut = w.OutProj.Span;
        var failures = new List<string>();
        for (int i = 0; i < d; i++)
        {
            double scale = 0;
            for (int t = 0; t < n; t++)
            {
                scale += Math.Abs(u[t, i]);
                for (int c = 0; c < e; c++) scale += Math.Abs(wOut[i * e + c] * y[t, c]);
            }
            scale /= n;
            double error = Math.Abs(actual[i] - expected[i]);
            if (!(error <= RelativeTolerance * scale) && failures.Count < 5)
                failures.Add($"i={i}: expected {expected[i]:R}, got {actual[i]:R}, error/scale {error / scale:E2}");
        }
        Assert.True(failures.Count == 0, $"{label}: {string.Join("; ", failures)}");
    }

    private static void AssertSameBits(float[] expected, float[] actual, string label)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"{label}: i={i} expected {expected[i]:R}, got {actual[i]:R}");
    }

    private static float[] Fast(MambaHeadWeights w, float[,] u, Sgemm sgemm, KernelIsa isa, MambaScratch scratch)
    {
        int n = u.GetLength(0), d = u.GetLength(1);
        var rows = new float[n * d];
        Buffer.BlockCopy(u, 0, rows, 0, rows.Length * sizeof(float));
        var pooled = new float[d];
        pooled.AsSpan().Fill(float.NaN);   // overwritten in full
        MambaHead.PoolResidual(w, rows, n, pooled, scratch, sgemm, isa);
        return pooled;
    }

    private static float[,] RandomTokens(int n, int d, int seed)
    {
        var random = new Random(seed);
        var u = new float[n, d];
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++)
                u[t, i] = (float)(random.NextDouble() * 2 - 1);
        return u;
    }

    /// <summary>
    /// A head with Mamba's initialisation scales: projections uniform in ±1/√fan-in, Δ's bias so that Δ ∈ [0.001, 0.1]
    /// (softplus⁻¹ of it), A_log = log(1..N) plus noise (A = −1..−N), D near 1. <paramref name="dtBias"/> and
    /// <paramref name="aLog"/> replace those with one extreme value.
    /// </summary>
    internal static MambaHeadWeights RandomHead(int d, int e, int r, int seed, bool zeroOutProj = false, float? dtBias = null, float? aLog = null)
    {
        var random = new Random(seed);
        float Uniform(float scale) => (float)(random.NextDouble() * 2 - 1) * scale;
        TensorView<float> Floats(int count, Func<int, float> value)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++) values[i] = value(i);
            return TensorView<float>.Pinned(values);
        }
        return new MambaHeadWeights
        {
            Dim = d, Inner = e, State = State, ConvWidth = ConvWidth, DtRank = r,
            InProj = Floats(2 * e * d, _ => Uniform(1f / MathF.Sqrt(d))),
            ConvWeight = Floats(e * ConvWidth, _ => Uniform(1f / MathF.Sqrt(ConvWidth))),
            ConvBias = Floats(e, _ => Uniform(0.1f)),
            XProj = Floats((r + 2 * State) * e, _ => Uniform(1f / MathF.Sqrt(e))),
            DtProjWeight = Floats(e * r, _ => Uniform(1f / MathF.Sqrt(r))),
            DtProjBias = Floats(e, _ => dtBias ?? MathF.Log(MathF.Exp(0.001f + 0.099f * (float)random.NextDouble()) - 1f)),
            ALog = Floats(e * State, i => aLog ?? MathF.Log(1 + i % State) + Uniform(0.1f)),
            D = Floats(e, _ => 1f + Uniform(0.5f)),
            OutProj = Floats(d * e, _ => zeroOutProj ? 0f : Uniform(1f / MathF.Sqrt(e))),
        };
    }
}
