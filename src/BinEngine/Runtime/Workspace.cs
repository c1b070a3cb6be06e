using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// The scratch memory of one forward pass over up to <see cref="TokenCapacity"/> token rows and
/// <see cref="SampleCapacity"/> samples. A model keeps a pool of these, so a call in steady state
/// allocates nothing but its results; buffers grow (and only grow) when a larger batch arrives.
/// One workspace is used by one thread at a time.
/// </summary>
internal sealed class Workspace
{
    private readonly Architecture _a;

    public Workspace(Architecture architecture) => _a = architecture;

    public int TokenCapacity { get; private set; }
    public int SampleCapacity { get; private set; }

    // Token rows, [tokens × d] unless noted. X is the residual stream and the only buffer that survives a block.
    public float[] X = [];
    public float[] Q = [], K = [], V = [];
    public float[] Attended = [];
    public float[] Projected = [];
    public float[] H = [];
    public float[] Gate = [], Forget = [];          // [tokens × f]
    public float[] GateOut = [], ForgetOut = [];    // [tokens × d]

    // Quantized activations of one linear layer's input: one scale per row, and the packed bit planes
    // or (for the int8 kernel) the codes.
    public sbyte[] Codes = [];                      // [tokens × max(d, f)]
    public float[] Scales = [];                     // [tokens]
    public ulong[] Planes = [];                      // [tokens × planes × RowWords(max(d, f))]
    public int[] Products = [];                     // [tokens × max(d, f)] exact integer products
    public float[] RowScale = [];                   // [max(d, f)] α ⊙ one row's activation scale

    // Per sample. Lengths are indexed by live position during a pass (they move with compaction).
    public int[] TokenIds = [];                     // [tokens] ids of all samples, one after another
    public int[] Starts = [], Lengths = [], Slots = [], ExitBlocks = [];
    public int[] SampleLengths = [];                // [samples] tokens of sample s, indexed by sample (Lengths is not, after a pass)
    public ExitState[] States = [];
    public float[] Logits = [];                     // [samples × L × C]
    public float[] Entropies = [];                  // [samples × L]

    // Small per-row scratch.
    public float[] Scores = [];                     // [T × T] one head's attention scores
    public float[] HeadQ = [], HeadK = [];          // [T × d_h] one head's columns, contiguous
    public float[] HeadVt = [];                     // [d_h × T] one head's V, transposed
    public float[] HeadOut = [];                    // [T × d_h]
    public float[] Pooled = [];                     // [d] pooled state, or a position row while embedding
    public float[] Probabilities = [];              // [C]

    /// <summary>
    /// Makes room for <paramref name="tokens"/> rows and <paramref name="samples"/> samples, keeping the
    /// ids and lengths already written (a caller may fill them while it learns how many there are).
    /// </summary>
    public void Ensure(int tokens, int samples)
    {
        int d = _a.Dim, f = _a.FfDim, wide = Math.Max(d, f);
        if (tokens > TokenCapacity)
        {
            int t = Math.Max(tokens, TokenCapacity * 2);
            X = new float[t * d];
            Q = new float[t * d];
            K = new float[t * d];
            V = new float[t * d];
            Attended = new float[t * d];
            Projected = new float[t * d];
            H = new float[t * d];
            Gate = new float[t * f];
            Forget = new float[t * f];
            GateOut = new float[t * d];
            ForgetOut = new float[t * d];
            Scales = new float[t];
            bool codes = ForwardPass.UsesCodes(_a.ActBits);
            Codes = codes ? new sbyte[t * wide] : [];
            int planes = _a.ActBits is >= 1 and <= 8 && !codes ? _a.ActBits : 0;
            Planes = new ulong[t * planes * BitPacking.RowWords(wide)];
            Products = new int[t * wide];
            int[] ids = new int[t];
            TokenIds.CopyTo(ids, 0);
            TokenIds = ids;
            TokenCapacity = t;
        }
        if (samples > SampleCapacity)
        {
            int s = Math.Max(samples, SampleCapacity * 2);
            Starts = new int[s];
            int[] lengths = new int[s];
            Lengths.CopyTo(lengths, 0);
            Lengths = lengths;
            ExitBlocks = new int[s];
            SampleLengths = new int[s];
            Slots = new int[s];
            States = new ExitState[s];
            Logits = new float[s * _a.Layers * _a.Classes];
            Entropies = new float[s * _a.Layers];
            SampleCapacity = s;
        }
        if (Scores.Length == 0)
        {
            int t = _a.MaxLength, dh = _a.HeadDim;
            Scores = new float[t * t];
            HeadQ = new float[t * dh];
            HeadK = new float[t * dh];
            HeadVt = new float[dh * t];
            HeadOut = new float[t * dh];
            Pooled = new float[d];
            RowScale = new float[wide];
            Probabilities = new float[_a.Classes];
        }
    }
}
