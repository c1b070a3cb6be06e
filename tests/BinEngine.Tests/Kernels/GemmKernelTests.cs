using BinEngine.Kernels;
using static BinEngine.Tests.Kernels.KernelTestData;

namespace BinEngine.Tests.Kernels;

/// <summary>
/// Every implementation the process supports, of every family, against plain integer / double oracles computed from
/// unpacked codes (the scalar references are in the lists too, so they are checked against the same oracles).
/// Runs once per forced ISA leg in test.sh, where the supported set shrinks.
/// </summary>
[Trait("Category", "Isa")]
public class GemmKernelTests
{
    public static TheoryData<string> XnorNames => Names(KernelRegistry.XnorGemms);
    public static TheoryData<string> PlaneNames => Names(KernelRegistry.PlaneGemms);
    public static TheoryData<string> SignNames => Names(KernelRegistry.SignGemms);
    public static TheoryData<string> SgemmNames => Names(KernelRegistry.Sgemms);
    public static TheoryData<string> CodeNames => Names(KernelRegistry.CodeGemms);

    private static TheoryData<string> Names<T>(IEnumerable<T> kernels) where T : GemmKernel
    {
        var data = new TheoryData<string>();
        foreach (var k in kernels.Where(k => k.IsSupported)) data.Add(k.Name);
        return data;
    }

    private static T Kernel<T>(string name) where T : GemmKernel => Assert.IsAssignableFrom<T>(KernelRegistry.Find(name));

    [Theory]
    [MemberData(nameof(XnorNames))]
    public void XnorMatchesIntegerDot(string name)
    {
        var kernel = Kernel<XnorGemm>(name);
        foreach (var (m, k, n) in Shapes)
        {
            var a = Signs(m * k, 1 + k);
            var w = Signs(n * k, 2 + k);
            var c = new int[m * n];
            kernel.Multiply(PackSignRows(a, m, k), m, PackSignRows(w, n, k), n, k, c);
            AssertEqualInts(IntDot(a, m, w, n, k), c, n, $"{name} M={m} K={k} N={n}");
        }
    }

    [Theory]
    [MemberData(nameof(PlaneNames))]
    public void PlaneIdentityMatchesIntegerDot(string name)
    {
        var kernel = Kernel<PlaneGemm>(name);
        for (int bits = 2; bits <= 8; bits++)
        {
            foreach (var (m, k, n) in Shapes)
            {
                var q = Codes(m * k, bits, 3 + k + bits);
                var w = Signs(n * k, 4 + k);
                var packedW = PackSignRows(w, n, k);
                var sums = new int[n];
                BitPacking.RowSums(packedW, n, k, sums);
                var c = new int[m * n];
                kernel.Multiply(PackPlaneRows(q, m, k, bits), m, bits, packedW, sums, n, k, c);
                AssertEqualInts(IntDot(q, m, w, n, k), c, n, $"{name} bits={bits} M={m} K={k} N={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(XnorNames))]
    public void XnorWithPreparedWeightsMatchesIntegerDot(string name)
    {
        var kernel = Kernel<XnorGemm>(name);
        foreach (var (m, k, n) in Shapes)
        {
            var a = Signs(m * k, 41 + k);
            var w = Signs(n * k, 42 + k);
            var c = new int[m * n];
            kernel.Multiply(PackSignRows(a, m, k), m, new BinaryWeights(PackSignRows(w, n, k), n, k), c);
            AssertEqualInts(IntDot(a, m, w, n, k), c, n, $"{name} prepared M={m} K={k} N={n}");
        }
    }

    [Theory]
    [MemberData(nameof(PlaneNames))]
    public void PlaneWithPreparedWeightsMatchesIntegerDot(string name)
    {
        var kernel = Kernel<PlaneGemm>(name);
        for (int bits = 2; bits <= 8; bits++)
        {
            foreach (var (m, k, n) in Shapes)
            {
                var q = Codes(m * k, bits, 43 + k + bits);
                var w = Signs(n * k, 44 + k);
                var c = new int[m * n];
                kernel.Multiply(PackPlaneRows(q, m, k, bits), m, bits, new BinaryWeights(PackSignRows(w, n, k), n, k), c);
                AssertEqualInts(IntDot(q, m, w, n, k), c, n, $"{name} prepared bits={bits} M={m} K={k} N={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(CodeNames))]
    public void CodeGemmMatchesIntegerDot(string name)
    {
        var kernel = Kernel<CodeGemm>(name);
        foreach (int bits in new[] { 2, 4, 8 })
        {
            foreach (var (m, k, n) in Shapes)
            {
                var q = Codes(m * k, bits, 45 + k + bits);
                var w = Signs(n * k, 46 + k);
                var c = new int[m * n];
                kernel.Multiply(q, m, new BinaryWeights(PackSignRows(w, n, k), n, k, withBytes: true), c);
                AssertEqualInts(IntDot(q, m, w, n, k), c, n, $"{name} bits={bits} M={m} K={k} N={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(XnorNames))]
    public void XnorSurvivesAllEqualAndAllOppositeRows(string name)
    {
        // Random signs never fill a popcount byte: rows equal to a weight row (every XOR bit 0), opposite to it (every bit
        // 1: each byte of every carry-save vector counts 8) or half each, at every K whose count of 8-word steps leaves
        // 0..3 byte sums pending at the end (K = 256 … 1280) and a long one, on raw and prepared weights.
        var kernel = Kernel<XnorGemm>(name);
        foreach (int k in new[] { 256, 512, 768, 1024, 1280, 4096 + 256 })
        {
            const int n = 17;
            var w = Signs(n * k, 48 + k);
            var a = new sbyte[3 * k];
            for (int t = 0; t < k; t++)
            {
                a[t] = w[t];                               // row 0 = weight row 0: dot K
                a[k + t] = (sbyte)-w[t];                   // row 1 = −(weight row 0): dot −K
                a[2 * k + t] = t < k / 2 ? w[k + t] : (sbyte)-w[k + t]; // row 2: weight row 1's first half, then its opposite
            }
            var expected = IntDot(a, 3, w, n, k);
            Assert.Equal(k, expected[0]);
            Assert.Equal(-k, expected[n]);
            var c = new int[3 * n];
            kernel.Multiply(PackSignRows(a, 3, k), 3, PackSignRows(w, n, k), n, k, c);
            AssertEqualInts(expected, c, n, $"{name} K={k}");
            Array.Clear(c);
            kernel.Multiply(PackSignRows(a, 3, k), 3, new BinaryWeights(PackSignRows(w, n, k), n, k), c);
            AssertEqualInts(expected, c, n, $"{name} prepared K={k}");
        }
    }

    [Theory]
    [MemberData(nameof(PlaneNames))]
    public void PlaneSurvivesAllOnesCodes(string name)
    {
        // Every code at its maximum m = 2^(bits−1) − 1: offset u = q + m = 2^bits − 2, every plane but the lowest all ones,
        // so on a weight row of +1s (bits 1) each AND byte counts 8; a second row alternates ±m, a third weight row is −1s.
        var kernel = Kernel<PlaneGemm>(name);
        foreach (int bits in new[] { 2, 8 })
            foreach (int k in new[] { 256, 768, 1024, 1280 })
            {
                const int m = 2, n = 3;
                int top = (1 << (bits - 1)) - 1;
                var q = new sbyte[m * k];
                Array.Fill(q, (sbyte)top);
                for (int t = 0; t < k; t++) q[k + t] = (sbyte)(t % 2 == 0 ? top : -top);
                var w = new sbyte[n * k];
                Array.Fill(w, (sbyte)1);
                for (int t = 0; t < k; t++) w[2 * k + t] = -1;
                var c = new int[m * n];
                kernel.Multiply(PackPlaneRows(q, m, k, bits), m, bits, new BinaryWeights(PackSignRows(w, n, k), n, k), c);
                AssertEqualInts(IntDot(q, m, w, n, k), c, n, $"{name} bits={bits} K={k}");
            }
    }

    [Theory]
    [MemberData(nameof(CodeNames))]
    public void CodeGemmSurvivesExtremeCodesOverLongRows(string name)
    {
        // K = 8192 at |q| = 127 everywhere: many 64-step flushes, the 16-bit accumulators' worst case.
        var kernel = Kernel<CodeGemm>(name);
        const int m = 5, k = 8192 + 33, n = 6;
        var q = new sbyte[m * k];
        for (int x = 0; x < q.Length; x++) q[x] = (sbyte)(x % 3 == 0 ? -127 : 127);
        var w = Signs(n * k, 47);
        var c = new int[m * n];
        kernel.Multiply(q, m, new BinaryWeights(PackSignRows(w, n, k), n, k, withBytes: true), c);
        AssertEqualInts(IntDot(q, m, w, n, k), c, n, name);
    }

    [Theory]
    [MemberData(nameof(SignNames))]
    public void SignGemmMatchesWithinRoundingBound(string name)
    {
        var kernel = Kernel<SignGemm>(name);
        foreach (var (m, k, n) in Shapes)
        {
            var a = Floats(m * k, 5 + k);
            var s = Signs(n * k, 6 + k);
            var c = new float[m * n];
            kernel.Multiply(a, m, PackSignRows(s, n, k), n, k, c);
            var (exact, bound) = FloatOracle(a, m, s.Select(x => (float)x).ToArray(), n, k);
            AssertWithin(exact, bound, c, n, $"{name} M={m} K={k} N={n}");
        }
    }

    [Theory]
    [MemberData(nameof(SgemmNames))]
    public void SgemmMatchesWithinRoundingBound(string name)
    {
        var kernel = Kernel<Sgemm>(name);
        foreach (var (m, k, n) in Shapes)
        {
            var a = Floats(m * k, 7 + k);
            var w = Floats(n * k, 8 + k);
            var c = new float[m * n];
            kernel.Multiply(a, m, w, n, k, c);
            var (exact, bound) = FloatOracle(a, m, w, n, k);
            AssertWithin(exact, bound, c, n, $"{name} M={m} K={k} N={n}");
        }
    }

    [Fact]
    public void SelectedSetMatchesScalarReferences()
    {
        // The set the engine runs (BINENGINE_ISA applies here) against the scalar references, exactly for integers.
        var set = KernelRegistry.Selected;
        const int m = 5, k = 700, n = 21, bits = 4;
        var a = Signs(m * k, 11);
        var w = Signs(n * k, 12);
        var pa = PackSignRows(a, m, k);
        var pw = PackSignRows(w, n, k);
        int[] expected = new int[m * n], actual = new int[m * n];
        new XnorGemmScalar().Multiply(pa, m, pw, n, k, expected);
        set.Xnor.Multiply(pa, m, pw, n, k, actual);
        AssertEqualInts(expected, actual, n, set.Xnor.Name);

        var planes = PackPlaneRows(Codes(m * k, bits, 13), m, k, bits);
        var sums = new int[n];
        BitPacking.RowSums(pw, n, k, sums);
        new PlaneGemmScalar().Multiply(planes, m, bits, pw, sums, n, k, expected);
        set.Plane.Multiply(planes, m, bits, pw, sums, n, k, actual);
        AssertEqualInts(expected, actual, n, set.Plane.Name);
    }

    [Fact]
    public void ForcedIsaIsHonouredWhenSupported()
    {
        string? forced = Environment.GetEnvironmentVariable(KernelRegistry.IsaVariable);
        if (!KernelIsaNames.TryParse(forced, out var isa) || KernelRegistry.Select(isa) is null)
        {
            // Unforced or unsupported: the best supported implementation of each family is chosen.
            Assert.Equal(KernelRegistry.XnorGemms.First(x => x.IsSupported), KernelRegistry.Selected.Xnor);
            return;
        }
        var set = KernelRegistry.Selected;
        Assert.All(new GemmKernel[] { set.Xnor, set.Plane, set.Sign, set.Sgemm }, kern => Assert.Equal(isa, kern.Isa));
        Assert.Contains(forced!.Trim(), KernelRegistry.Report(), StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [MemberData(nameof(XnorNames))]
    public void ThreadedXnorEqualsSingleThread(string name)
    {
        // Big enough that the driver really splits into 4 parts (work = m·n·words ≥ 4 parts' minimum), with edges in M and N.
        var kernel = Kernel<XnorGemm>(name);
        const int m = 67, k = 1000, n = 1201;
        Assert.True((long)m * n * ((k + 63) / 64) >= 4 * GemmThreads.MinWorkPerPart, "shape too small to split");
        var pa = PackSignRows(Signs(m * k, 21), m, k);
        var pw = PackSignRows(Signs(n * k, 22), n, k);
        int[] one = new int[m * n], many = new int[m * n];
        kernel.Multiply(pa, m, pw, n, k, one, threads: 1);
        kernel.Multiply(pa, m, pw, n, k, many, threads: 4);
        AssertEqualInts(one, many, n, name + " threads=4");
        var prepared = new BinaryWeights(pw, n, k);
        Array.Clear(many);
        kernel.Multiply(pa, m, prepared, many, threads: 3);
        AssertEqualInts(one, many, n, name + " prepared threads=3");
    }

    [Theory]
    [MemberData(nameof(SgemmNames))]
    public void ThreadedSgemmEqualsSingleThread(string name)
    {
        var kernel = Kernel<Sgemm>(name);
        const int m = 67, k = 300, n = 401;
        Assert.True((long)m * n * k / 8 >= 3 * GemmThreads.MinWorkPerPart, "shape too small to split");
        var a = Floats(m * k, 23);
        var w = Floats(n * k, 24);
        float[] one = new float[m * n], many = new float[m * n];
        kernel.Multiply(a, m, w, n, k, one, threads: 1);
        kernel.Multiply(a, m, w, n, k, many, threads: 3);
        // Same blocks, same order per entry: splitting over threads must not change a single bit.
        Assert.Equal(one, many);
    }

    [Fact]
    public void KernelCallsAllocateNothing()
    {
        var set = KernelRegistry.Selected;
        const int m = 16, k = 768, n = 64, bits = 8;
        var pa = PackSignRows(Signs(m * k, 31), m, k);
        var pw = PackSignRows(Signs(n * k, 32), n, k);
        var planes = PackPlaneRows(Codes(m * k, bits, 33), m, k, bits);
        var sums = new int[n];
        BitPacking.RowSums(pw, n, k, sums);
        var fa = Floats(m * k, 34);
        var fw = Floats(n * k, 35);
        var ci = new int[m * n];
        var cf = new float[m * n];
        var prepared = new BinaryWeights(pw, n, k, withBytes: true);
        var codes = Codes(m * k, bits, 36);
        void All()
        {
            set.Code.Multiply(codes, m, prepared, ci);
            set.Xnor.Multiply(pa, m, pw, n, k, ci);
            set.Xnor.Multiply(pa, m, prepared, ci);
            set.Plane.Multiply(planes, m, bits, pw, sums, n, k, ci);
            set.Plane.Multiply(planes, m, bits, prepared, ci);
            set.Sign.Multiply(fa, m, pw, n, k, cf);
            set.Sgemm.Multiply(fa, m, fw, n, k, cf);
        }
        All();   // JIT and lazy initialisation first
        Assert.Equal(0, Allocations.Least(() => { for (int r = 0; r < 10; r++) All(); }));
    }

    [Fact]
    public void BadArgumentsThrowNamingTheArgument()
    {
        var x = KernelRegistry.Selected.Xnor;
        var e = Assert.Throws<ArgumentException>(() => x.Multiply(new ulong[4], 2, new ulong[4], 1, 10, new int[2]));
        Assert.Equal("a", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => x.Multiply(new ulong[4], 1, new ulong[4], 1, 10, new int[1], threads: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.Multiply(new ulong[4], -1, new ulong[4], 1, 10, new int[1]));
        var p = KernelRegistry.Selected.Plane;
        Assert.Throws<ArgumentOutOfRangeException>(() => p.Multiply(new ulong[4], 1, 1, new ulong[4], new int[1], 1, 10, new int[1]));
    }

    [Fact]
    public void ReportNamesChoiceAndRuntimeIsas()
    {
        string report = KernelRegistry.Report();
        Assert.Contains(KernelRegistry.Selected.Xnor.Name, report);
        Assert.Contains("Vector512", report);
        Assert.Contains("Avx512BW", report);
    }
}
