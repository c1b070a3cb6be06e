using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BinEngine.Kernels;

namespace BinEngine.Runtime;

/// <summary>
/// The weights of one DYNAMAX Mamba exit head (docs/MODEL.md, "mamba_exits"), as the model file stores them, for
/// width d = <see cref="Dim"/>, inner width E = <see cref="Inner"/>, state size N = <see cref="State"/>, convolution
/// width K = <see cref="ConvWidth"/> and Δ rank R = <see cref="DtRank"/>. Matrices are row-major, rows = outputs
/// (nn.Linear), like every other weight of the model.
/// </summary>
/// <remarks>
/// Two tables are derived once per head and kept (<see cref="Prepare"/>): A = −exp(A_log) transposed to [N, E], and
/// the convolution taps transposed to [K, E]. The fast path vectorises across the E channels, so it wants, for each
/// state index j (each tap k), the E values of A[·, j] (w[·, k]) one after another; the file's [E, N] ([E, K]) rows
/// hold them N (K) floats apart. exp(A_log) is a property of the weights, not of the input: computing it per token
/// would spend E·N exps per call on a constant.
/// </remarks>
internal sealed class MambaHeadWeights
{
    /// <summary>d: the width of the block output the head reads.</summary>
    public required int Dim { get; init; }
    /// <summary>E: the inner (channel) width.</summary>
    public required int Inner { get; init; }
    /// <summary>N: the state size per channel.</summary>
    public required int State { get; init; }
    /// <summary>K: the causal depthwise convolution's width (4 in DYNAMAX).</summary>
    public required int ConvWidth { get; init; }
    /// <summary>R: the rank of the Δ projection.</summary>
    public required int DtRank { get; init; }

    /// <summary>W_in [2E, d], no bias: rows 0..E−1 make x, rows E..2E−1 make the gate z.</summary>
    public required TensorView<float> InProj { get; init; }
    /// <summary>Depthwise convolution taps [E, K] (torch's [E, 1, K] squeezed): tap k reads token t − K + 1 + k.</summary>
    public required TensorView<float> ConvWeight { get; init; }
    /// <summary>Convolution bias [E].</summary>
    public required TensorView<float> ConvBias { get; init; }
    /// <summary>W_x [R + 2N, E], no bias: rows 0..R−1 make δ, then N rows B, then N rows C.</summary>
    public required TensorView<float> XProj { get; init; }
    /// <summary>W_dt [E, R].</summary>
    public required TensorView<float> DtProjWeight { get; init; }
    /// <summary>b_dt [E].</summary>
    public required TensorView<float> DtProjBias { get; init; }
    /// <summary>A_log [E, N]; A = −exp(A_log).</summary>
    public required TensorView<float> ALog { get; init; }
    /// <summary>The skip weights D [E].</summary>
    public required TensorView<float> D { get; init; }
    /// <summary>W_out [d, E], no bias.</summary>
    public required TensorView<float> OutProj { get; init; }

    private Derived? _derived;

    /// <summary>A = −exp(A_log) transposed, [N, E]: row j holds A[e, j] for every channel e.</summary>
    internal ReadOnlySpan<float> TransposedA => (_derived ?? Prepare()._derived!).A;

    /// <summary>The convolution taps transposed, [K, E]: row k holds tap k of every channel.</summary>
    internal ReadOnlySpan<float> TransposedConv => (_derived ?? Prepare()._derived!).Conv;

    /// <summary>
    /// Checks every tensor's length against the dimensions and computes the derived tables; returns this head. The model
    /// binding calls it at load, so the forward pass finds them made; a head used unprepared prepares itself on first
    /// use (two threads racing there compute the same tables and one set is kept).
    /// </summary>
    /// <exception cref="ArgumentException">A dimension is not positive or a tensor's length does not match it.</exception>
    public MambaHeadWeights Prepare()
    {
        if (_derived is not null) return this;
        if (Dim <= 0 || Inner <= 0 || State <= 0 || ConvWidth <= 0 || DtRank <= 0)
            throw new ArgumentException($"Mamba head dimensions must be positive: d={Dim}, E={Inner}, N={State}, K={ConvWidth}, R={DtRank}");
        int e = Inner, n = State, k = ConvWidth;
        Check(nameof(InProj), InProj, 2L * e * Dim);
        Check(nameof(ConvWeight), ConvWeight, (long)e * k);
        Check(nameof(ConvBias), ConvBias, e);
        Check(nameof(XProj), XProj, (long)(DtRank + 2 * n) * e);
        Check(nameof(DtProjWeight), DtProjWeight, (long)e * DtRank);
        Check(nameof(DtProjBias), DtProjBias, e);
        Check(nameof(ALog), ALog, (long)e * n);
        Check(nameof(D), D, e);
        Check(nameof(OutProj), OutProj, (long)Dim * e);

        ReadOnlySpan<float> aLog = ALog.Span, taps = ConvWeight.Span;
        var a = new float[n * e];
        var conv = new float[k * e];
        for (int c = 0; c < e; c++)
        {
            for (int j = 0; j < n; j++)
                a[j * e + c] = NegativeExp(aLog[c * n + j]);
            for (int i = 0; i < k; i++)
                conv[i * e + c] = taps[c * k + i];
        }
        Interlocked.CompareExchange(ref _derived, new Derived(a, conv), null);
        return this;
    }

    /// <summary>
    /// A = −exp(A_log), rounded once: exp is taken in double, so A is the float nearest the true value (torch's float
    /// exp is within an ulp of it). The reference computes A with this same function.
    /// </summary>
    internal static float NegativeExp(float aLog) => (float)-Math.Exp(aLog);

    private static void Check(string name, TensorView<float> tensor, long expected)
    {
        if (tensor.Length != expected)
            throw new ArgumentException($"Mamba head tensor {name} has {tensor.Length} floats, expected {expected}");
    }

    private sealed record Derived(float[] A, float[] Conv);
}

/// <summary>
/// The scratch rows of <see cref="MambaHead.PoolResidual"/> for up to <see cref="TokenCapacity"/> tokens. Buffers grow
/// (and only grow) when a longer sample or a wider head arrives, so a warm scratch makes a call allocate nothing.
/// One scratch serves one thread at a time; heads of different sizes may share it.
/// </summary>
internal sealed class MambaScratch
{
    private float[] _xz = [], _x = [], _dbc = [], _delta = [], _dt = [], _y = [], _m = [], _h = [];
    private int _tokens, _dim;

    /// <summary>Tokens the buffers hold for the widest head seen so far.</summary>
    public int TokenCapacity { get; private set; }

    /// <summary>
    /// m = y W_outᵀ of the last call, [n, d] row-major: the mixer's output per token before the residual. Row t depends
    /// on tokens 0..t only (the tests check this causality on it).
    /// </summary>
    public ReadOnlySpan<float> TokenOutputs => _m.AsSpan(0, _tokens * _dim);

    internal Span<float> Xz => _xz;
    internal Span<float> X => _x;
    internal Span<float> Dbc => _dbc;
    internal Span<float> Delta => _delta;
    internal Span<float> Dt => _dt;
    internal Span<float> Y => _y;
    internal Span<float> M => _m;
    internal Span<float> H => _h;

    /// <summary>Grows the buffers to hold <paramref name="n"/> tokens of head <paramref name="w"/>.</summary>
    internal void Ensure(MambaHeadWeights w, int n)
    {
        int e = w.Inner, p = w.DtRank + 2 * w.State;
        Grow(ref _xz, 2L * n * e);
        Grow(ref _x, (long)n * e);
        Grow(ref _dbc, (long)n * p);
        Grow(ref _delta, (long)n * w.DtRank);
        Grow(ref _dt, (long)n * e);
        Grow(ref _y, (long)n * e);
        Grow(ref _m, (long)n * w.Dim);
        Grow(ref _h, (long)w.State * e);
        TokenCapacity = Math.Max(TokenCapacity, n);
        _tokens = n;
        _dim = w.Dim;
    }

    private static void Grow(ref float[] buffer, long length)
    {
        if (length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), $"a Mamba scratch row of {length} floats is too large");
        if (buffer.Length < length)
            buffer = GC.AllocateUninitializedArray<float>((int)length);
    }
}

/// <summary>
/// DYNAMAX's Mamba exit head (docs/MODEL.md, "mamba_exits"): one Mamba block run over a sample's n tokens in order, its
/// output added to the block output u, mean-pooled. The caller applies the exit's linear head to the pooled row.
/// </summary>
/// <remarks>
/// <para>
/// The math, for token t of u [n, d] (docs/MODEL.md is the contract; the reference below transcribes it):
/// [x ; z] = u W_inᵀ; x'_t = c + Σ_{k&lt;K} w_k ⊙ x_{t−K+1+k} (x_{&lt;0} = 0); x_t = SiLU(x'_t);
/// [δ ; B ; C] = x W_xᵀ; Δ = softplus(δ W_dtᵀ + b_dt); h_t[e, j] = exp(Δ_t[e]·A[e, j])·h_{t−1}[e, j] + Δ_t[e]·B_t[j]·x_t[e],
/// h_{−1} = 0; y_t[e] = Σ_j C_t[j]·h_t[e, j] + D[e]·x_t[e]; y_t ⊙= SiLU(z_t); m = y W_outᵀ; pooled = mean_t(u_t + m_t).
/// </para>
/// <para>
/// The fast path runs the four products as SGEMMs on the plan's kernel and everything else in one vectorised pass
/// each: the convolution with SiLU, the Δ bias with softplus, and the scan with its gate, which walks blocks of L
/// channels (outer), tokens (sequential, as the recurrence demands) and state rows j (inner). The state is kept
/// [N, E] like A: for one channel block the N state vectors of that block stay in L1 across all tokens, and every
/// load is a contiguous vector. Channels are independent in the scan, so blocks may be any width: the widest the ISA
/// cap allows goes first, narrower ones and a scalar loop take the remainder (E = 130 on AVX-512: 8 blocks of 16, 2 scalar).
/// </para>
/// <para>
/// exp, the scan's cost (n·E·N of them against 3·n·E·N multiply-adds), is <see cref="VectorMath.Exp(float)"/>: a
/// Cephes-style polynomial written once per width with the same operations, so every width and the scalar tail give
/// the same bits and the ISA cap is honoured (TensorPrimitives.Exp chooses its own width; the BCL's Vector512.Exp has
/// no scalar twin of the same bits). Measured on the scan alone (an uncommitted harness, E = 128 / 512, N = 16, n = 24,
/// Vector512, thread CPU time, median (minimum) of 31 runs of 100 calls): this exp 34 (33) / 190 (146) µs, the BCL's
/// Vector512.Exp 52 (36) / 147 (138) µs, TensorPrimitives.Exp over a per-token [N, E] row 158 (146) / 259 (242) µs
/// (one more pass over memory), MathF.Exp per element 371 (349) / 1403 (1362) µs. The two vector exps are within
/// the noise of each other; this one was kept for its bit-identical widths.
/// </para>
/// <para>
/// One head, d = 256, N = 16, R = 16, K = 4, n = 24 tokens (<see cref="Flops"/>: 5.5 / 22.0 MFLOP), Release, one
/// thread, sgemm-avx2 (the registry's first) with the Avx512 cap, on the 2-core development machine (Xeon, AVX-512)
/// while Python trainings ran (load average 14): thread CPU time, median (minimum) of 41 runs of 200 calls, which
/// leaves out the time the thread waited for a core (wall-clock medians were 3–4× these):
/// E = 128: 117 (109) µs, of which the four SGEMMs 77 (72); E = 512: 462 (442) µs, of which the SGEMMs 347 (300).
/// With the Avx2 cap: 145 and 710 µs. The scan and element-wise passes are the remaining 40 and 115 µs.
/// </para>
/// </remarks>
internal static class MambaHead
{
    /// <summary>
    /// pooled = mean_t(u_t + m_t), m the Mamba block's output for the <paramref name="n"/> token rows of
    /// <paramref name="u"/> [n, d]. Overwrites <paramref name="pooled"/>[0..d); allocates nothing once
    /// <paramref name="scratch"/> is warm. <paramref name="isa"/> caps the vector width of the element-wise passes and
    /// the scan (the plan passes its kernels' ISA); every cap gives the same bits for a given <paramref name="sgemm"/>.
    /// </summary>
    public static void PoolResidual(MambaHeadWeights w, ReadOnlySpan<float> u, int n, Span<float> pooled, MambaScratch scratch,
        Sgemm sgemm, KernelIsa isa)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(scratch);
        ArgumentNullException.ThrowIfNull(sgemm);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        int d = w.Dim, e = w.Inner, rank = w.DtRank, state = w.State;
        int p = rank + 2 * state;
        if (u.Length < (long)n * d)
            throw new ArgumentException($"u holds {u.Length} floats, fewer than n·d = {n}·{d}", nameof(u));
        if (pooled.Length < d)
            throw new ArgumentException($"pooled holds {pooled.Length} floats, fewer than d = {d}", nameof(pooled));
        ReadOnlySpan<float> transposedA = w.TransposedA, transposedConv = w.TransposedConv;
        scratch.Ensure(w, n);
        Span<float> xz = scratch.Xz[..(2 * n * e)], x = scratch.X[..(n * e)], dbc = scratch.Dbc[..(n * p)];
        Span<float> delta = scratch.Delta[..(n * rank)], dt = scratch.Dt[..(n * e)], y = scratch.Y[..(n * e)], m = scratch.M[..(n * d)];

        sgemm.Multiply(u[..(n * d)], n, w.InProj.Span, 2 * e, d, xz);
        ConvolveSilu(xz, n, e, w.ConvWidth, transposedConv, w.ConvBias.Span, x, isa);
        sgemm.Multiply(x, n, w.XProj.Span, p, e, dbc);
        // W_dt reads δ, the first R columns of each [δ ; B ; C] row; the SGEMM wants its rows contiguous.
        for (int t = 0; t < n; t++)
            dbc.Slice(t * p, rank).CopyTo(delta.Slice(t * rank, rank));
        sgemm.Multiply(delta, n, w.DtProjWeight.Span, e, rank, dt);
        for (int t = 0; t < n; t++)
            BiasSoftplus(dt.Slice(t * e, e), w.DtProjBias.Span, isa);
        var scan = new ScanOperands
        {
            A = transposedA, Dt = dt, X = x, Xz = xz, Dbc = dbc, D = w.D.Span, H = scratch.H[..(state * e)], Y = y,
            Tokens = n, Inner = e, State = state, Rank = rank,
        };
        Scan(scan, isa);
        sgemm.Multiply(y, n, w.OutProj.Span, d, e, m);
        MeanOfSum(u, m, n, d, pooled[..d], isa);
    }

    /// <summary>
    /// The specification (docs/MODEL.md, "mamba_exits") in plain loops over u [n, d]: pooled [d]. Float32 arithmetic in
    /// the formula's order, unfused; exp and log are taken in double and rounded once, so each is the float nearest
    /// the true value (torch's float kernels are within an ulp of that). The tests' oracle.
    /// </summary>
    public static float[] PoolResidualReference(MambaHeadWeights w, float[,] u) => PoolResidualReference(w, u, out _, out _);

    /// <summary>
    /// <see cref="PoolResidualReference(MambaHeadWeights, float[,])"/>, also returning the gated y [n, E] and
    /// m = y W_outᵀ [n, d] per token.
    /// </summary>
    public static float[] PoolResidualReference(MambaHeadWeights w, float[,] u, out float[,] gatedY, out float[,] mixed)
    {
        int n = u.GetLength(0), d = w.Dim, e = w.Inner, ns = w.State, k = w.ConvWidth, r = w.DtRank;
        if (u.GetLength(1) != d) throw new ArgumentException($"u has {u.GetLength(1)} columns, expected d = {d}", nameof(u));
        ReadOnlySpan<float> wIn = w.InProj.Span, conv = w.ConvWeight.Span, convBias = w.ConvBias.Span, wX = w.XProj.Span;
        ReadOnlySpan<float> wDt = w.DtProjWeight.Span, bDt = w.DtProjBias.Span, aLog = w.ALog.Span, skip = w.D.Span, wOut = w.OutProj.Span;

        // [x ; z] = u W_inᵀ: xs[t, c] = Σ_i u[t, i]·W_in[c, i], z from rows E..2E−1.
        var xs = new float[n, e];
        var zs = new float[n, e];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < 2 * e; c++)
            {
                float sum = 0f;
                for (int i = 0; i < d; i++) sum += u[t, i] * wIn[c * d + i];
                if (c < e) xs[t, c] = sum; else zs[t, c - e] = sum;
            }

        // x'_t[c] = b[c] + Σ_k w[c, k]·x_{t−K+1+k}[c], causal (x before token 0 is 0); then x = SiLU(x').
        var xa = new float[n, e];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < e; c++)
            {
                float sum = convBias[c];
                for (int i = 0; i < k; i++)
                {
                    int source = t - k + 1 + i;
                    if (source >= 0) sum += conv[c * k + i] * xs[source, c];
                }
                xa[t, c] = Silu(sum);
            }

        // [δ ; B ; C] = x W_xᵀ [n, R + 2N]; Δ = softplus(δ W_dtᵀ + b_dt) [n, E].
        int p = r + 2 * ns;
        var dbc = new float[n, p];
        for (int t = 0; t < n; t++)
            for (int o = 0; o < p; o++)
            {
                float sum = 0f;
                for (int c = 0; c < e; c++) sum += xa[t, c] * wX[o * e + c];
                dbc[t, o] = sum;
            }
        var dt = new float[n, e];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < e; c++)
            {
                float sum = 0f;
                for (int i = 0; i < r; i++) sum += dbc[t, i] * wDt[c * r + i];
                dt[t, c] = Softplus(sum + bDt[c]);
            }

        // The selective scan, h [E, N] from 0: h[c, j] = exp(Δ_t[c]·A[c, j])·h[c, j] + Δ_t[c]·B_t[j]·x_t[c];
        // y_t[c] = Σ_j C_t[j]·h[c, j] + D[c]·x_t[c], gated: y_t[c]·SiLU(z_t[c]).
        var h = new float[e, ns];
        gatedY = new float[n, e];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < e; c++)
            {
                float sum = 0f;
                for (int j = 0; j < ns; j++)
                {
                    float a = MambaHeadWeights.NegativeExp(aLog[c * ns + j]);
                    h[c, j] = (float)Math.Exp(dt[t, c] * a) * h[c, j] + dt[t, c] * dbc[t, r + j] * xa[t, c];
                    sum += dbc[t, r + ns + j] * h[c, j];
                }
                gatedY[t, c] = (sum + skip[c] * xa[t, c]) * Silu(zs[t, c]);
            }

        // m = y W_outᵀ [n, d]; pooled = mean_t(u_t + m_t), summed over t in order, then divided by n.
        mixed = new float[n, d];
        var pooled = new float[d];
        for (int i = 0; i < d; i++)
        {
            float total = 0f;
            for (int t = 0; t < n; t++)
            {
                float sum = 0f;
                for (int c = 0; c < e; c++) sum += gatedY[t, c] * wOut[i * e + c];
                mixed[t, i] = sum;
                total += u[t, i] + sum;
            }
            pooled[i] = total / n;
        }
        return pooled;

        // SiLU(v) = v·σ(v), σ(v) = 1 / (1 + e^−v).
        static float Silu(float v) => v * (float)(1.0 / (1.0 + Math.Exp(-v)));

        // softplus(v) = v above torch's threshold 20, else ln(1 + e^v), which torch computes as log1p(exp(v)).
        static float Softplus(float v) => v > 20f ? v : (float)LogOnePlus(Math.Exp(v));

        // log1p without a loss for small y (1 + y rounds y away): ln(s)·y/(s − 1) with s = 1 + y rounded is exact to a
        // few ulps, since ln(s)/(s − 1) is flat where the rounding moved s (Goldberg, "What every computer scientist…").
        static double LogOnePlus(double y)
        {
            double s = 1.0 + y;
            return s == 1.0 ? y : Math.Log(s) * y / (s - 1.0);
        }
    }

    /// <summary>
    /// The work of one head over <paramref name="n"/> tokens in FLOPs, a multiply-add counting 2 and any other element
    /// operation (an exp, an add, a division) 1, like <see cref="CostModel"/>; the exit's linear head is not included
    /// (CostModel counts it with every exit). Per token: in_proj 2·2E·d, convolution 2·E·K, x_proj 2·(R + 2N)·E, dt_proj
    /// 2·E·R, softplus and two SiLUs about 3·E exps, the scan 2·3·E·N multiply-adds (decay·h + Δx·B, C·h) plus E·N exps,
    /// D·x and the gate 3·E, out_proj 2·d·E, residual and pool 2·d. The exps cost more time than a multiply-add; the
    /// µs in the remarks of <see cref="MambaHead"/> say how much.
    /// </summary>
    public static long Flops(MambaHeadWeights w, int n)
    {
        long d = w.Dim, e = w.Inner, ns = w.State, k = w.ConvWidth, r = w.DtRank;
        long perToken = 2 * 2 * e * d + 2 * e * k + 2 * (r + 2 * ns) * e + 2 * e * r + 3 * e
                      + 2 * 3 * e * ns + e * ns + 3 * e + 2 * d * e + 2 * d;
        return n * perToken;
    }

    /// <summary>x[t, c] = SiLU(b[c] + Σ_k w[k, c]·xz[t − K + 1 + k, c]) for c &lt; E; xz rows are 2E wide (x, then z).</summary>
    private static void ConvolveSilu(ReadOnlySpan<float> xz, int n, int e, int k, ReadOnlySpan<float> taps, ReadOnlySpan<float> bias,
        Span<float> x, KernelIsa isa)
    {
        ref float input = ref MemoryMarshal.GetReference(xz);
        ref float tap = ref MemoryMarshal.GetReference(taps);
        ref float b = ref MemoryMarshal.GetReference(bias);
        ref float output = ref MemoryMarshal.GetReference(x);
        int stride = 2 * e;
        for (int t = 0; t < n; t++)
        {
            // Taps reading before token 0 multiply zeros: skip them.
            int first = Math.Max(0, k - 1 - t);
            int c = 0;
            if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
            {
                for (; c + Vector512<float>.Count <= e; c += Vector512<float>.Count)
                {
                    Vector512<float> sum = Vector512.LoadUnsafe(ref b, (nuint)c);
                    for (int i = first; i < k; i++)
                        sum = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref tap, (nuint)(i * e + c)),
                            Vector512.LoadUnsafe(ref input, (nuint)((t - k + 1 + i) * stride + c)), sum);
                    VectorMath.Silu(sum).StoreUnsafe(ref output, (nuint)(t * e + c));
                }
            }
            if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
            {
                for (; c + Vector256<float>.Count <= e; c += Vector256<float>.Count)
                {
                    Vector256<float> sum = Vector256.LoadUnsafe(ref b, (nuint)c);
                    for (int i = first; i < k; i++)
                        sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref tap, (nuint)(i * e + c)),
                            Vector256.LoadUnsafe(ref input, (nuint)((t - k + 1 + i) * stride + c)), sum);
                    VectorMath.Silu(sum).StoreUnsafe(ref output, (nuint)(t * e + c));
                }
            }
            if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
            {
                for (; c + Vector128<float>.Count <= e; c += Vector128<float>.Count)
                {
                    Vector128<float> sum = Vector128.LoadUnsafe(ref b, (nuint)c);
                    for (int i = first; i < k; i++)
                        sum = Vector128.FusedMultiplyAdd(Vector128.LoadUnsafe(ref tap, (nuint)(i * e + c)),
                            Vector128.LoadUnsafe(ref input, (nuint)((t - k + 1 + i) * stride + c)), sum);
                    VectorMath.Silu(sum).StoreUnsafe(ref output, (nuint)(t * e + c));
                }
            }
            for (; c < e; c++)
            {
                float sum = Unsafe.Add(ref b, c);
                for (int i = first; i < k; i++)
                    sum = MathF.FusedMultiplyAdd(Unsafe.Add(ref tap, i * e + c), Unsafe.Add(ref input, (t - k + 1 + i) * stride + c), sum);
                Unsafe.Add(ref output, t * e + c) = VectorMath.Silu(sum);
            }
        }
    }

    /// <summary>row[c] = softplus(row[c] + bias[c]) over one token's E values of Δ.</summary>
    private static void BiasSoftplus(Span<float> row, ReadOnlySpan<float> bias, KernelIsa isa)
    {
        ref float r = ref MemoryMarshal.GetReference(row);
        ref float b = ref MemoryMarshal.GetReference(bias);
        int e = row.Length, c = 0;
        if (isa == KernelIsa.Avx512 && Vector512.IsHardwareAccelerated)
            for (; c + Vector512<float>.Count <= e; c += Vector512<float>.Count)
                VectorMath.Softplus(Vector512.LoadUnsafe(ref r, (nuint)c) + Vector512.LoadUnsafe(ref b, (nuint)c)).StoreUnsafe(ref r, (nuint)c);
        if (isa >= KernelIsa.Avx2 && Vector256.IsHardwareAccelerated)
            for (; c + Vector256<float>.Count <= e; c += Vector256<float>.Count)
                VectorMath.Softplus(Vector256.LoadUnsafe(ref r, (nuint)c) + Vector256.LoadUnsafe(ref b, (nuint)c)).StoreUnsafe(ref r, (nuint)c);
        if (isa >= KernelIsa.Vector128 && Vector128.IsHardwareAccelerated)
            for (; c + Vector128<float>.Count <= e; c += Vector128<float>.Count)
                VectorMath.Softplus(Vector128.LoadUnsafe(ref r, (nuint)c) + Vector128.LoadUnsafe(ref b, (nuint)c)).StoreUnsafe(ref r, (nuint)c);
        for (; c < e; c++)
            Unsafe.Add(ref r, c) = VectorMath.Softplus(Unsafe.Add(ref r, c) + Unsafe.Add(ref b, c));
    }

    /// <summary>What the scan reads and writes; rows are [n, E] unless noted.</summary>
    private ref struct ScanOperands
    {
        public ReadOnlySpan<float> A;     // [N, E], A = −exp(A_log) transposed
        public ReadOnlySpan<float> Dt;    // Δ
        public ReadOnlySpan<float> X;     // x after the convolution and SiLU
        public ReadOnlySpan<float> Xz;    // [n, 2E]: the gate z is the second half of each row
        public ReadOnlySpan<float> Dbc;   // [n, R + 2N]: δ, B, C
        public ReadOnlySpan<float> D;     // [E]
        public Span<float> H;             // [N, E] the state
        public Span<float> Y;             // the gated output
        public int Tokens, Inner, State, Rank;
    }

    /// <summary>
    /// The selective scan and its gate. Per channel block (outer) and token t (in order):
    /// decay = exp(Δ·A[j]) ; h[j] = decay·h[j] + (Δ·x)·B[j] (fused) ; acc = C[j]·h[j] + acc (fused) over j in order;
    /// y = (D·x + acc) · SiLU(z) with D·x fused into acc. Every width runs these operations in this order, so all give
    /// the same bits. Δ·x·B is computed as (Δ·x)·B, one multiply per (t, c) saved from each j.
    /// </summary>
    private static void Scan(in ScanOperands o, KernelIsa isa)
    {
        o.H.Clear();
        int c = 0;
        if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
            c = ScanLanes<Lanes512, Vector512<float>>(o, c);
        if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
            c = ScanLanes<Lanes256, Vector256<float>>(o, c);
        if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
            c = ScanLanes<Lanes128, Vector128<float>>(o, c);
        ScanScalar(o, c);
    }

    /// <summary>Channels [c, c + k·Count) of <see cref="Scan"/> on one vector width; returns the first channel left.</summary>
    private static unsafe int ScanLanes<TLanes, TVec>(in ScanOperands o, int c) where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        int n = o.Tokens, e = o.Inner, ns = o.State, p = o.Rank + 2 * ns, w = TLanes.Count;
        fixed (float* a = o.A, dt = o.Dt, x = o.X, xz = o.Xz, dbc = o.Dbc, skip = o.D, h = o.H, y = o.Y)
        {
            float* z = xz + e; // the gate: second half of each [2E] row
            for (; c + w <= e; c += w)
            {
                TVec d = TLanes.Load(skip + c);
                for (int t = 0; t < n; t++)
                {
                    float* b = dbc + t * p + o.Rank;
                    TVec delta = TLanes.Load(dt + t * e + c), xt = TLanes.Load(x + t * e + c);
                    TVec deltaX = TLanes.Multiply(delta, xt);
                    TVec sum = TLanes.Zero;
                    for (int j = 0; j < ns; j++)
                    {
                        TVec decay = TLanes.Exp(TLanes.Multiply(delta, TLanes.Load(a + j * e + c)));
                        TVec state = TLanes.FusedMultiplyAdd(decay, TLanes.Load(h + j * e + c), TLanes.Multiply(deltaX, TLanes.Create(b[j])));
                        TLanes.Store(state, h + j * e + c);
                        sum = TLanes.FusedMultiplyAdd(TLanes.Create(b[ns + j]), state, sum);
                    }
                    sum = TLanes.FusedMultiplyAdd(d, xt, sum);
                    TLanes.Store(TLanes.Multiply(sum, VectorMath.Silu<TLanes, TVec>(TLanes.Load(z + t * 2 * e + c))), y + t * e + c);
                }
            }
        }
        return c;
    }

    private static void ScanScalar(in ScanOperands o, int c)
    {
        int n = o.Tokens, e = o.Inner, ns = o.State, p = o.Rank + 2 * ns;
        ReadOnlySpan<float> a = o.A, dt = o.Dt, x = o.X, xz = o.Xz, dbc = o.Dbc;
        Span<float> h = o.H, y = o.Y;
        for (; c < e; c++)
        {
            float d = o.D[c];
            for (int t = 0; t < n; t++)
            {
                int b = t * p + o.Rank;
                float delta = dt[t * e + c], xt = x[t * e + c];
                float deltaX = delta * xt;
                float sum = 0f;
                for (int j = 0; j < ns; j++)
                {
                    float decay = VectorMath.Exp(delta * a[j * e + c]);
                    float state = MathF.FusedMultiplyAdd(decay, h[j * e + c], deltaX * dbc[b + j]);
                    h[j * e + c] = state;
                    sum = MathF.FusedMultiplyAdd(dbc[b + ns + j], state, sum);
                }
                sum = MathF.FusedMultiplyAdd(d, xt, sum);
                y[t * e + c] = sum * VectorMath.Silu(xz[t * 2 * e + e + c]);
            }
        }
    }

    /// <summary>
    /// pooled[i] = (Σ_t (u[t, i] + m[t, i])) / n, summed over t in order at every width (no fusing: the reference's
    /// operations exactly, so a zero W_out gives mean(u) to the bit).
    /// </summary>
    private static unsafe void MeanOfSum(ReadOnlySpan<float> u, ReadOnlySpan<float> m, int n, int d, Span<float> pooled, KernelIsa isa)
    {
        fixed (float* ur = u, mr = m, pr = pooled)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512 && Lanes512.IsSupported)
                i = MeanOfSumLanes<Lanes512, Vector512<float>>(ur, mr, n, d, pr, i);
            if (isa >= KernelIsa.Avx2 && Lanes256.IsSupported)
                i = MeanOfSumLanes<Lanes256, Vector256<float>>(ur, mr, n, d, pr, i);
            if (isa >= KernelIsa.Vector128 && Lanes128.IsSupported)
                i = MeanOfSumLanes<Lanes128, Vector128<float>>(ur, mr, n, d, pr, i);
            float count = n;
            for (; i < d; i++)
            {
                float sum = 0f;
                for (int t = 0; t < n; t++)
                    sum += ur[t * d + i] + mr[t * d + i];
                pr[i] = sum / count;
            }
        }
    }

    /// <summary>Columns [i, i + k·Count) of <see cref="MeanOfSum"/> on one vector width; returns the first column left.</summary>
    private static unsafe int MeanOfSumLanes<TLanes, TVec>(float* u, float* m, int n, int d, float* pooled, int i)
        where TLanes : IFloatLanes<TVec> where TVec : struct
    {
        TVec count = TLanes.Create(n);
        for (; i + TLanes.Count <= d; i += TLanes.Count)
        {
            TVec sum = TLanes.Zero;
            for (int t = 0; t < n; t++)
                sum = TLanes.Add(sum, TLanes.Add(TLanes.Load(u + t * d + i), TLanes.Load(m + t * d + i)));
            TLanes.Store(TLanes.Divide(sum, count), pooled + i);
        }
        return i;
    }
}
