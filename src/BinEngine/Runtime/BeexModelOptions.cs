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

    /// <summary>Threads a batch call spreads chunks of samples over (default: all cores).</summary>
    public int BatchThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>The kernels to run on; null = those chosen at start-up for this CPU (<see cref="KernelRegistry.Selected"/>, overridable by BINENGINE_ISA).</summary>
    public KernelSet? Kernels { get; init; }

    /// <summary>
    /// Map the file instead of reading it into private memory (default false). Mapping shares pages
    /// between processes; the file must then be replaced only by renaming a new file over it, never
    /// rewritten or truncated in place while a process has it open (docs/FORMAT.md, "Loading").
    /// </summary>
    public bool MemoryMap { get; init; }

    /// <summary>Hash the data section at load and refuse a mismatch (default true).</summary>
    public bool VerifyChecksum { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a thread count outside 1..1024.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Threads, 1024, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchThreads, 1, nameof(BatchThreads));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(BatchThreads, 1024, nameof(BatchThreads));
    }
}
