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
    private readonly ActivationEncoding _encoding;
    private readonly int _controllerScratch;
    private readonly bool _lexical;

    /// <param name="architecture">The model's hyper-parameters.</param>
    /// <param name="encoding">How the plan encodes activations (<see cref="ExecutionPlan.Activations"/>): int8 codes or bit planes.</param>
    /// <param name="mechanisms">The model's optional mechanisms, which size the controllers' scratch (none if null).</param>
    public Workspace(Architecture architecture, ActivationEncoding encoding, MechanismWeights? mechanisms = null)
    {
        _a = architecture;
        _encoding = encoding;
        _lexical = mechanisms?.Lexical is not null;
        // q_exit: u (2d) and two hidden rows (2H); skip gates: H + 1; learned_gate: C.
        int d = architecture.Dim;
        _controllerScratch = Math.Max(architecture.Classes, Math.Max(
            mechanisms?.QExit is { } q ? 2 * d + 2 * q.Hidden : 0,
            mechanisms?.SkipGates is { } g ? g.Hidden[0].Out + 1 : 0));
    }

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

    // Per sample. Lengths are indexed by live position during a pass (they move with compaction).
    public int[] TokenIds = [];                     // [tokens] ids of all samples, one after another
    public int[] Starts = [], Lengths = [], Slots = [], ExitBlocks = [];
    public int[] SampleLengths = [];                // [samples] tokens of sample s, indexed by sample (Lengths is not, after a pass)
    public ExitState[] States = [];
    public float[] Logits = [];                     // [samples × L × C]
    public float[] Entropies = [];                  // [samples × L]
    public float[] Answers = [];                    // [samples × C] probabilities of the last exit run (the answering one, after a pass)
    // Per sample and exit evaluated (row s·L + k, k = 0 … Evaluated[s] − 1; k = block − 1 unless blocks were skipped).
    public int[] Evaluated = [];                    // [samples] exits evaluated
    public int[] BlocksRun = [];                    // [samples × L] the 1-based block of exit k
    public float[] Lambdas = [], GateScores = [];   // [samples × L] q_exit's λ and learned_gate's g of exit k
    public float[] PooledStates = [];               // [samples × d] pool of the sample's state so far (m_0, then each exit's m_i)
    public float[] LexicalLogits = [];              // [samples × C] the lexical head's z_lex (every exit adds it)
    // Skip gates' stable partition: the decision per live position and the arrays it is staged through.
    public bool[] Runs = [];
    public int[] StagedSlots = [], StagedStarts = [], StagedLengths = [];
    public ExitState[] StagedStates = [];

    // Small per-row scratch.
    public float[] Scores = [];                     // one head's attention scores: Attention.ScoresScratch (T × T, or the direct path's Kᵀ and padded rows)
    public float[] HeadQ = [], HeadK = [];          // [T × d_h] one head's columns, contiguous
    public float[] HeadVt = [];                     // [d_h × T] one head's V, transposed
    public float[] HeadOut = [];                    // [T × d_h]
    public float[] Pooled = [];                     // [d] pooled state
    public float[] ControllerScratch = [];          // the controllers' and gates' hidden rows
    public int[] LexicalBuckets = [];               // [2T − 1] one sample's n-gram buckets (the lexical head)
    public MambaScratch Mamba = new();              // the Mamba exit heads' buffers (grow with the longest sample)

    /// <summary>Longest sample the per-head attention scratch holds (grows with the texts seen, up to max_len).</summary>
    public int SequenceCapacity { get; private set; }

    /// <summary>
    /// Makes room for <paramref name="tokens"/> rows, <paramref name="samples"/> samples and samples of up
    /// to <paramref name="longest"/> tokens, keeping the ids and lengths already written (a caller may fill
    /// them while it learns how many there are). Sizes are computed in 64 bits and checked: the attention
    /// scratch grows with the longest sample seen, not with max_len, so a model with a long max_len costs
    /// memory only when long texts arrive.
    /// </summary>
    public void Ensure(int tokens, int samples, int longest)
    {
        int d = _a.Dim, f = _a.FfDim, wide = Math.Max(d, f);
        if (tokens > TokenCapacity)
        {
            int t = (int)Math.Min(Math.Max(tokens, 2L * TokenCapacity), int.MaxValue);
            X = new float[Size(t, d)];
            Q = new float[Size(t, d)];
            K = new float[Size(t, d)];
            V = new float[Size(t, d)];
            Attended = new float[Size(t, d)];
            Projected = new float[Size(t, d)];
            H = new float[Size(t, d)];
            Gate = new float[Size(t, f)];
            Forget = new float[Size(t, f)];
            GateOut = new float[Size(t, d)];
            ForgetOut = new float[Size(t, d)];
            Scales = new float[t];
            Codes = _encoding == ActivationEncoding.Codes ? new sbyte[Size(t, wide)] : [];
            int planes = _encoding == ActivationEncoding.Planes ? _a.ActBits : 0;
            Planes = new ulong[Size(t, (long)planes * BitPacking.RowWords(wide))];
            Products = new int[Size(t, wide)];
            int[] ids = new int[t];
            TokenIds.CopyTo(ids, 0);
            TokenIds = ids;
            TokenCapacity = t;
        }
        if (samples > SampleCapacity)
        {
            int s = (int)Math.Min(Math.Max(samples, 2L * SampleCapacity), int.MaxValue);
            Starts = new int[s];
            int[] lengths = new int[s];
            Lengths.CopyTo(lengths, 0);
            Lengths = lengths;
            ExitBlocks = new int[s];
            SampleLengths = new int[s];
            Slots = new int[s];
            States = new ExitState[s];
            Logits = new float[Size(s, (long)_a.Layers * _a.Classes)];
            Entropies = new float[Size(s, _a.Layers)];
            Answers = new float[Size(s, _a.Classes)];
            Evaluated = new int[s];
            BlocksRun = new int[Size(s, _a.Layers)];
            Lambdas = new float[Size(s, _a.Layers)];
            GateScores = new float[Size(s, _a.Layers)];
            PooledStates = new float[Size(s, d)];
            LexicalLogits = _lexical ? new float[Size(s, _a.Classes)] : [];
            Runs = new bool[s];
            StagedSlots = new int[s];
            StagedStarts = new int[s];
            StagedLengths = new int[s];
            StagedStates = new ExitState[s];
            SampleCapacity = s;
        }
        if (longest > SequenceCapacity)
        {
            // Doubling keeps a stream of slowly growing texts from reallocating every call.
            int t = (int)Math.Min(Math.Max(longest, 2L * SequenceCapacity), _a.MaxLength), dh = _a.HeadDim;
            Scores = new float[Size(Attention.ScoresScratch(t, dh), 1)];
            HeadQ = new float[Size(t, dh)];
            HeadK = new float[Size(t, dh)];
            HeadVt = new float[Size(dh, t)];
            HeadOut = new float[Size(t, dh)];
            LexicalBuckets = _lexical ? new int[LexicalWeights.MaxBuckets(t)] : [];
            SequenceCapacity = t;
        }
        if (Pooled.Length == 0)
        {
            Pooled = new float[d];
            ControllerScratch = new float[_controllerScratch];
        }
    }

    /// <summary>rows · columns as an array length, or a clear error where a 32-bit product would have wrapped.</summary>
    private static int Size(long rows, long columns)
    {
        long n = rows * columns; // both < 2^31: the product fits in 64 bits
        return n <= Array.MaxLength ? (int)n
            : throw new InsufficientMemoryException($"a workspace buffer of {rows} × {columns} elements exceeds an array's limit; classify fewer or shorter texts per call");
    }
}
