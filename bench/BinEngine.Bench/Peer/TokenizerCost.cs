using System.Diagnostics;
using System.Globalization;
using BinEngine.Runtime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// What tokenizing costs inside Classify(text): each dev sentence encoded right after a full-depth forward pass of
/// another sentence (which evicts the vocabulary from the core's caches, as in a real Classify(text) loop), against
/// the same sentences encoded back to back (everything cached). The gap is the cache misses of the vocabulary
/// look-ups (bench/README.md, "Levers": VocabularyTable). Median over rounds of the per-round mean µs a sentence.
///
///   dotnet run -c Release --project bench/BinEngine.Bench -- tokenizer [--model models/sst2-default/model.bex] [--rounds 5]
/// </summary>
public static class TokenizerCost
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => BenchStats.Arg(args, name, fallback);
        var inv = CultureInfo.InvariantCulture;
        string modelPath = Arg("--model", "models/sst2-default/model.bex");
        int rounds = int.Parse(Arg("--rounds", "5"), inv);
        string[] texts = BenchStats.Texts(Arg("--data", "data/sst2/dev.tsv"));
        using BeexModel model = BeexModel.Load(modelPath);
        var tokenizer = model.Tokenizer;
        int[][] ids = texts.Select(t => tokenizer.Encode(t, model.Architecture.MaxLength)).ToArray();
        int[] buffer = new int[model.Architecture.MaxLength];
        ExitPolicy full = model.Policy("none");
        var afterPass = new List<double>();
        var backToBack = new List<double>();
        long sink = 0;
        for (int round = 0; round <= rounds; round++) // round 0 warms up
        {
            long ticks = 0;
            for (int i = 0; i < texts.Length; i++)
            {
                sink += model.Classify(ids[(i + 7) % ids.Length], full).Label;
                long start = Stopwatch.GetTimestamp();
                sink += tokenizer.Encode(texts[i], buffer, buffer.Length, out _);
                ticks += Stopwatch.GetTimestamp() - start;
            }
            long hot = Stopwatch.GetTimestamp();
            foreach (string text in texts)
                sink += tokenizer.Encode(text, buffer, buffer.Length, out _);
            hot = Stopwatch.GetTimestamp() - hot;
            if (round == 0)
                continue;
            afterPass.Add(ticks * 1e6 / Stopwatch.Frequency / texts.Length);
            backToBack.Add(hot * 1e6 / Stopwatch.Frequency / texts.Length);
        }
        Console.WriteLine(string.Create(inv, $"tokenizer of {modelPath}, {texts.Length} sentences, {rounds} rounds, load {PeerHarness.Load()} ({sink % 2})"));
        Console.WriteLine(string.Create(inv,
            $"encode after a forward pass {BenchStats.Median(afterPass):0.00} µs a sentence (rounds {string.Join(", ", afterPass.Select(v => v.ToString("0.00", inv)))}); back to back {BenchStats.Median(backToBack):0.00} µs"));
        return 0;
    }
}
