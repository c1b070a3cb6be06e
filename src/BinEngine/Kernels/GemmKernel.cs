namespace BinEngine.Kernels;

/// <summary>
/// What every GEMM implementation shares: a name, the ISA it needs, and a range computation the threading driver
/// calls. All kernels compute C[M, N] from M activation rows A and N weight rows W over K (weights stored rows =
/// outputs, like nn.Linear), C row-major.
/// </summary>
internal abstract class GemmKernel
{
    /// <summary>Unique name, e.g. "xnor-avx512-nibble": what BINENGINE_ISA reports and tests enumerate.</summary>
    public abstract string Name { get; }

    /// <summary>The ISA this implementation is written for.</summary>
    public abstract KernelIsa Isa { get; }

    /// <summary>True when the process can run this implementation (hardware and runtime switches).</summary>
    public abstract bool IsSupported { get; }

    /// <summary>Rows of A one register block covers (threads split M in multiples of this).</summary>
    internal virtual int RowBlock => 4;

    /// <summary>Rows of W one register block covers (threads split N in multiples of this).</summary>
    internal virtual int ColBlock => 16;   // a multiple of BinaryWeights.BlockRows: a split never cuts a block

    /// <summary>Computes C[m0..m1, n0..n1) single-threaded. Arguments are validated by the caller.</summary>
    /// <remarks>
    /// Implementations and their loops carry [MethodImpl(AggressiveOptimization)]: a forward pass enters each kernel
    /// only a few times, so tiered compilation would run them as Tier-0 / on-stack-replacement code for the first
    /// 100+ ms (measured: the AVX-512 XNOR block at about a third of its speed in the first calls of a benchmark).
    /// </remarks>
    internal abstract unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1);

    /// <inheritdoc/>
    public override string ToString() => Name;

    internal void ThrowIfUnsupported()
    {
        if (!IsSupported) throw new PlatformNotSupportedException($"kernel {Name} needs {Isa.ToName()}, which this process does not support");
    }
}

/// <summary>Raw arguments of one GEMM call, pinned for its duration.</summary>
internal unsafe struct GemmArgs
{
    public void* A;
    public void* W;
    /// <summary>The same weights in <see cref="BinaryWeights"/>' interleaved layout, or null when only rows were given.</summary>
    public ulong* WInterleaved;
    /// <summary>The same weights in the layout of <see cref="XnorGemm.LookupLayout"/> (<see cref="BinaryWeights.LookupGroupBlocks"/>), or null when missing.</summary>
    public byte* WLookupGroups;
    public void* C;
    public int* RowSums;
    /// <summary>
    /// A linear layer's epilogue for kernels that apply it as they store (<see cref="XnorGemm.MultiplyScaled"/>): when
    /// Y is set, Y[i, o] = C[i, o] · (Alpha[o] · Scales[i]) + Bias[o] in floats replaces the integer C.
    /// </summary>
    public float* Scales, Alpha, Bias, Y;
    public int M, N, K;
    /// <summary>Activation bits of the plane GEMM (0 elsewhere).</summary>
    public int Bits;
}
