using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// How a <see cref="BeexModel"/> is loaded and run, fixed at load (as ONNX Runtime's SessionOptions):
/// a model is shared between threads, so no caller's setting may change another caller's calls.
/// </summary>
public sealed record BeexModelOptions
{
    /// <summary>The defaults: one thread per classification, all cores for batches, the best kernels, a private copy of the file.</summary>
    public static BeexModelOptions Default { get; } = new();

    /// <summary>
    /// Threads one classification splits its GEMMs over (default 1: at batch 1 the layers of a small
    /// model are too short to pay for waking threads).
    /// </summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Threads a batch call spreads chunks of samples over (default: all cores). Above 1, the helper threads poll for the
    /// next batch call for 1 ms after each one before they sleep, so back-to-back calls do not pay a thread's wake-up
    /// (≈ 0.3–0.7 ms on a cloud VM); set 1 where even that spinning must not happen.
    /// </summary>
    public int BatchThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// The instruction set to run on; null = the best this CPU supports (the kernels chosen at start-up,
    /// themselves overridable by the BINENGINE_ISA and BINENGINE_KERNELS environment variables).
    /// </summary>
    public KernelIsa? Isa { get; init; }

    /// <summary>
    /// Kernels to use by name in place of the chosen ones, comma-separated (the names <c>binengine isa</c>
    /// lists, e.g. <c>xnor-avx2-harleyseal,sgemm-avx512</c>); null = none.
    /// </summary>
    public string? Kernels { get; init; }

    /// <summary>The kernel set these options name: the ISA's choice (or the process's), then the named kernels.</summary>
    /// <exception cref="ArgumentException">The ISA is not supported by this process, or a kernel name is unknown or unsupported.</exception>
    internal KernelSet ResolveKernels()
    {
        KernelSet set = Isa is { } isa
            ? KernelRegistry.Select(isa) ?? throw new ArgumentException($"instruction set {isa.ToName()} is not supported by this process", nameof(Isa))
            : KernelRegistry.Selected;
        return string.IsNullOrWhiteSpace(Kernels) ? set : KernelRegistry.WithKernels(set, Kernels);
    }

    /// <summary>
    /// Map the file instead of reading it into private memory (default false). Mapping shares pages
    /// between processes; the file must then be replaced only by renaming a new file over it, never
    /// rewritten or truncated in place while a process has it open (docs/FORMAT.md, "Loading").
    /// </summary>
    public bool MemoryMap { get; init; }

    /// <summary>Hash the data section at load and refuse a mismatch (default true).</summary>
    public bool VerifyChecksum { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a thread count outside 1..1024, <see cref="ArgumentException"/> for kernels this process cannot run.</summary>
    public void Validate()
    {
        _ = ResolveKernels();
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Threads, 1024, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchThreads, 1, nameof(BatchThreads));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(BatchThreads, 1024, nameof(BatchThreads));
    }
}
