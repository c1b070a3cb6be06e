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
/// Every block costs the same for a given n, so for one sample the skipped fraction is (L − exit)/L;
/// over a data set the fractions are weighted by each sample's full-depth cost.
/// </summary>
internal static class CostModel
{
    /// <summary>FLOPs of one block plus its exit head for a sample of <paramref name="tokens"/> tokens.</summary>
    public static double BlockWithExitFlops(Architecture a, int tokens)
    {
        double n = tokens, d = a.Dim, f = a.FfDim;
        double block = 4 * 2 * n * d * d + 2 * 2 * n * n * d + 4 * 2 * n * d * f;
        double head = n * d + 2 * a.Classes * d;
        return block + head;
    }

    /// <summary>FLOPs of all L blocks and exits for a sample of <paramref name="tokens"/> tokens.</summary>
    public static double FullDepthFlops(Architecture a, int tokens) => a.Layers * BlockWithExitFlops(a, tokens);
}
