namespace BinEngine.Runtime;

/// <summary>
/// FLOPs of the forward pass, counting a multiply-add as 2 (binary XNOR/AND-popcount products
/// count like float ones: this measures work skipped, not time). For n tokens of width d, SLFN width f,
/// C classes:
///
///   block = 4 linear d→d (Q, K, V, O):        4 · 2·n·d·d
///         + attention scores and weighted sum:  2 · 2·n·n·d
///         + SLFN, 2 of d→f and 2 of f→d:        4 · 2·n·d·f
///   exit head = mean pool n·d + linear d→C:     n·d + 2·C·d
///
/// Every block costs the same for a given n, so for one sample of a plain model the skipped fraction is
/// (L − exit)/L; over a data set the fractions are weighted by each sample's full-depth cost. The
/// mechanisms' own work (Mamba heads, controllers, gates) is added to what a sample executed, so compute
/// saved is against the plain model at full depth and can be negative when a mechanism costs more than it saves.
/// </summary>
internal static class CostModel
{
    /// <summary>FLOPs of one block for a sample of <paramref name="tokens"/> tokens.</summary>
    public static double BlockFlops(Architecture a, int tokens)
    {
        double n = tokens, d = a.Dim, f = a.FfDim;
        return 4 * 2 * n * d * d + 2 * 2 * n * n * d + 4 * 2 * n * d * f;
    }

    /// <summary>FLOPs of one linear exit head: the mean pool and the d → C product.</summary>
    public static double LinearHeadFlops(Architecture a, int tokens) => (double)tokens * a.Dim + 2.0 * a.Classes * a.Dim;

    /// <summary>FLOPs of one block plus its exit head for a sample of <paramref name="tokens"/> tokens.</summary>
    public static double BlockWithExitFlops(Architecture a, int tokens) => BlockFlops(a, tokens) + LinearHeadFlops(a, tokens);

    /// <summary>FLOPs of all L blocks and exits for a sample of <paramref name="tokens"/> tokens: the baseline compute saved is measured against.</summary>
    public static double FullDepthFlops(Architecture a, int tokens) => a.Layers * BlockWithExitFlops(a, tokens);

    /// <summary>
    /// FLOPs a sample of <paramref name="tokens"/> tokens costs when it ran <paramref name="blocksRun"/> blocks (each
    /// with its exit) and answered at block <paramref name="exitBlock"/>: the blocks and linear heads, plus what the
    /// mechanisms add (docs/MODEL.md): a Mamba head's own FLOPs at each exit, q_exit's λ-MLP at each exit when the
    /// call evaluated it (<paramref name="lambda"/>: its policy read λ, or recorded every controller), and the skip
    /// gates evaluated before every block up to the exit but the last. (learned_gate's four features and one
    /// dot product are a few dozen FLOPs and counted as the C-wide softmax work they are: not at all.)
    /// With no mechanism and no skipped block this is (exitBlock / L) · <see cref="FullDepthFlops"/>.
    /// </summary>
    public static double ExecutedFlops(Architecture a, MechanismWeights m, int tokens, int blocksRun, int exitBlock, bool lambda)
    {
        double perExit = BlockWithExitFlops(a, tokens);
        if (m.MambaExits is { Length: > 0 } mamba)
            perExit += MambaHead.Flops(mamba[0], tokens);
        if (m.QExit is { } q && lambda)
            perExit += q.Flops;
        double total = blocksRun * perExit;
        if (m.SkipGates is { } gates)
            total += Math.Min(exitBlock, a.Layers - 1) * gates.Flops;
        return total;
    }
}
