using System.Numerics.Tensors;
using BinEngine.Runtime;

namespace BinEngine.Cli.Evaluation;

/// <summary>
/// Replays exit policies over full-depth results. A sample's block outputs do not depend on the policy (an exit
/// only stops the forward pass), so one run with <see cref="ExitPolicy.Never"/> gives every block's logits and
/// entropy, and any policy's decision can be replayed from them: the same softmax (TensorPrimitives.SoftMax) and
/// the same entropies feed the same <see cref="ExitPolicy.ShouldExit"/>, so the replay equals a real run exactly.
/// That makes a threshold sweep cost one forward pass instead of one per threshold.
/// </summary>
internal sealed class ExitSimulator
{
    private readonly ClassificationResult[] _full;
    private readonly float[][] _probabilities; // per sample, [L × C]
    private readonly int _classes;

    /// <param name="fullDepth">Results of running every block (policy none), one per sample.</param>
    public ExitSimulator(ClassificationResult[] fullDepth, int classes)
    {
        _full = fullDepth;
        _classes = classes;
        _probabilities = new float[fullDepth.Length][];
        for (int s = 0; s < fullDepth.Length; s++)
        {
            var r = fullDepth[s];
            if (r.ExitBlock != r.Layers)
                throw new ArgumentException($"sample {s} exited at block {r.ExitBlock} of {r.Layers}; the replay needs full-depth results");
            var p = new float[r.Layers * classes];
            for (int b = 1; b <= r.Layers; b++)
                TensorPrimitives.SoftMax(r.LogitsOf(b), p.AsSpan((b - 1) * classes, classes));
            _probabilities[s] = p;
        }
    }

    /// <summary>The predicted labels and exit blocks under <paramref name="policy"/>; returns the FLOP-weighted compute saved.</summary>
    public double Replay(ExitPolicy policy, Span<int> labels, Span<int> exitBlocks)
    {
        double skipped = 0, total = 0;
        for (int s = 0; s < _full.Length; s++)
        {
            var r = _full[s];
            var state = new ExitState();
            int exit = r.Layers;
            for (int b = 1; b <= r.Layers; b++)
            {
                var p = _probabilities[s].AsSpan((b - 1) * _classes, _classes);
                if (policy.ShouldExit(ref state, p, r.Entropies[b - 1]) || b == r.Layers)
                {
                    exit = b;
                    labels[s] = ExitPolicy.ArgMax(p);
                    break;
                }
            }
            exitBlocks[s] = exit;
            // Every block (with its exit head) costs the same for a sample (CostModel), so the skipped share is (L − exit)/L.
            skipped += r.FullDepthFlops * (r.Layers - exit) / r.Layers;
            total += r.FullDepthFlops;
        }
        return total > 0 ? skipped / total : 0;
    }

    /// <summary>The grid a sweep walks for a policy kind: 21 points over the threshold's meaningful range, or t = 1..L.</summary>
    public static IReadOnlyList<ExitPolicy> Grid(ExitPolicy chosen, int classes, int layers)
    {
        float lnC = MathF.Log(classes);
        IEnumerable<float> Steps(float from, float to) => Enumerable.Range(0, 21).Select(i => from + (to - from) * i / 20f);
        return chosen.Kind switch
        {
            // δ (the fractional entropy drop) is at most 1; κ stays at the chosen value.
            ExitPolicyKind.EntropyReduction => Steps(0f, 1f).Select(t => new ExitPolicy(chosen.Kind, tau: t, kappa: chosen.Kappa)).ToList(),
            // Entropy lies in [0, ln C].
            ExitPolicyKind.Entropy => Steps(0f, lnC).Select(t => new ExitPolicy(chosen.Kind, tau: t)).ToList(),
            ExitPolicyKind.NormalizedEntropy => Steps(0f, 1f).Select(t => new ExitPolicy(chosen.Kind, tau: t)).ToList(),
            // The top probability lies in [1/C, 1].
            ExitPolicyKind.Confidence => Steps(1f / classes, 1f).Select(t => new ExitPolicy(chosen.Kind, tau: t)).ToList(),
            ExitPolicyKind.Patience => Enumerable.Range(1, layers).Select(t => new ExitPolicy(chosen.Kind, patience: t)).ToList(),
            _ => [ExitPolicy.Never],
        };
    }
}
