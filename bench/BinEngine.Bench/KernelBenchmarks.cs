using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BinEngine.Kernels;

namespace BinEngine.Bench;

/// <summary>A GEMM shape (M activation rows, K, N weight rows), printed as "MxKxN".</summary>
public readonly record struct GemmShape(int M, int K, int N)
{
    public override string ToString() => $"{M}x{K}x{N}";
}

/// <summary>
/// Every kernel family on the shapes through the registry, one parameter value per ISA (the set
/// <see cref="KernelRegistry.Select"/> returns for it), single thread. SGEMM is the baseline, so BenchmarkDotNet's
/// Ratio column is kernel time / SGEMM time on the same shape and ISA (speed-up = 1 / Ratio); the MAC/s column is
/// M·N·K / mean time. Short runs: the machine is shared, read medians and ratios, not absolute times.
/// Run: dotnet run -c Release --project bench/BinEngine.Bench -- --filter '*KernelBenchmarks*'
/// (BINENGINE_BENCH_SHAPES=64x768x768,1x768x768 limits the shapes).
/// </summary>
[Config(typeof(ShortConfig))]
public class KernelBenchmarks
{
    /// <summary>The shapes, or those listed in BINENGINE_BENCH_SHAPES ("64x768x768,1x768x768").</summary>
    public static IEnumerable<GemmShape> Shapes
    {
        get
        {
            string? only = Environment.GetEnvironmentVariable("BINENGINE_BENCH_SHAPES");
            if (!string.IsNullOrWhiteSpace(only))
            {
                return only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
                {
                    var d = s.Split('x');
                    return d.Length == 3 && int.TryParse(d[0], out int m) && int.TryParse(d[1], out int k) && int.TryParse(d[2], out int n)
                        ? new GemmShape(m, k, n)
                        : throw new FormatException($"BINENGINE_BENCH_SHAPES entry '{s}' is not MxKxN");
                }).ToArray();
            }
            return from m in new[] { 1, 16, 64 }
                   from kn in new[] { (256, 256), (256, 512), (512, 256), (768, 768), (768, 3072) }
                   select new GemmShape(m, kn.Item1, kn.Item2);
        }
    }

    public static IEnumerable<string> Isas =>
        new[] { KernelIsa.Avx512, KernelIsa.Avx2, KernelIsa.Vector128 }.Where(i => KernelRegistry.Select(i) is not null).Select(i => i.ToName());

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; }

    [ParamsSource(nameof(Isas))]
    public string Isa { get; set; } = "avx2";

    private Action sgemm = () => { }, xnor = () => { }, plane4 = () => { }, plane8 = () => { }, code4 = () => { }, code8 = () => { }, sign = () => { };

    [GlobalSetup]
    public void Setup()
    {
        if (!KernelIsaNames.TryParse(Isa, out var isa)) throw new InvalidOperationException($"unknown ISA {Isa}");
        var set = KernelRegistry.Select(isa) ?? throw new InvalidOperationException($"{Isa} is not supported here");
        var (m, k, n) = (Shape.M, Shape.K, Shape.N);
        sgemm = KernelTiming.Prepare(set.Sgemm, m, k, n, 1, 4);
        xnor = KernelTiming.Prepare(set.Xnor, m, k, n, 1, 4);
        plane4 = KernelTiming.Prepare(set.Plane, m, k, n, 1, 4);
        plane8 = KernelTiming.Prepare(set.Plane, m, k, n, 1, 8);
        code4 = KernelTiming.Prepare(set.Code, m, k, n, 1, 4);
        code8 = KernelTiming.Prepare(set.Code, m, k, n, 1, 8);
        sign = KernelTiming.Prepare(set.Sign, m, k, n, 1, 4);
    }

    [Benchmark(Baseline = true)] public void Sgemm() => sgemm();
    [Benchmark] public void W1A1Xnor() => xnor();
    [Benchmark] public void W1A4Planes() => plane4();
    [Benchmark] public void W1A8Planes() => plane8();
    [Benchmark] public void W1A4Int8() => code4();
    [Benchmark] public void W1A8Int8() => code8();
    [Benchmark] public void W1A32Sign() => sign();

    private sealed class ShortConfig : ManualConfig
    {
        public ShortConfig()
        {
            AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithLaunchCount(1));
            AddColumn(StatisticColumn.Median, new MacsPerSecondColumn());
            WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
        }
    }

    /// <summary>M·N·K multiply-accumulates (binary or int8 or float) per second of the median time, in G/s.</summary>
    private sealed class MacsPerSecondColumn : IColumn
    {
        public string Id => nameof(MacsPerSecondColumn);
        public string ColumnName => "G MAC/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "multiply-accumulates per second (M·N·K / median), 10^9";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null) return "-";
            var shape = (GemmShape)benchmarkCase.Parameters["Shape"]!;
            double macs = (double)shape.M * shape.N * shape.K;
            return (macs / report.ResultStatistics.Median).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
