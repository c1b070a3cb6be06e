using System.CommandLine;
using System.Text.Json;
using BinEngine.Runtime;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine classify "text" …</c> (or lines on stdin): one line per text, "label  probability  exit block/L",
/// or a JSON object per text with --json. A text that cannot be classified (empty) gets an error line in its
/// place and the exit code becomes 1.
/// </summary>
internal static class ClassifyCommand
{
    internal static Command Create(CliContext cx)
    {
        var texts = new Argument<string[]>("text")
        {
            Description = "Texts to classify; with none, every line of stdin is one text",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var model = CommonOptions.Model();
        var json = new Option<bool>("--json") { Description = "Print one JSON object per text (label, label_name, probabilities, entropies, exit_block, blocks_run, blocks, tokens, truncated; lambdas / gate_scores when the policy reads that controller: q_exit, learned_gate) instead of a line" };
        var logits = new Option<bool>("--logits") { Description = "With --json (implied): also every computed exit's logits, \"logits\": [[…C…] per block]" };
        var policy = new PolicyOptions();
        var command = new Command("classify", "Classify texts: label, probability and the block whose exit answered") { texts, model, json, logits };
        policy.AddTo(command);
        command.SetAction(parse =>
        {
            RejectUnknownOptions(parse);
            using BeexModel m = ModelLocator.LocateAndLoad(cx, parse.GetValue(model));
            ExitPolicy exitPolicy = policy.Resolve(parse, m);
            bool withLogits = parse.GetValue(logits);
            bool withSets = policy.Sets(parse, m, exitPolicy);
            bool asJson = parse.GetValue(json) || withLogits || withSets;
            var line = new JsonLine();
            int errors = 0;
            int index = 0;
            string[]? args = parse.GetValue(texts);
            if (args is not { Length: > 0 } && cx.StdinIsTerminal)
                cx.Stderr.WriteLine("reading texts from stdin, one per line; end with Ctrl-D (or pass the texts as arguments)");
            foreach (var (text, problem) in Inputs(args, cx))
            {
                ClassificationResult? r = null;
                string? error = problem;
                try
                {
                    if (error is null) r = m.Classify(text, exitPolicy);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    error = e.Message; // a bad text, or a non-finite output from a hostile model file's weights
                }
                if (error is not null) errors++;
                cx.Stdout.WriteLine(asJson ? JsonOf(line, index, r, error, withLogits, withSets) : TextOf(r, error));
                index++;
            }
            if (errors > 0)
                cx.Stderr.WriteLine($"{errors} of {index} texts could not be classified (see the error lines)");
            return errors > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// The text argument takes any token, so a mistyped option ("--jsn") would be classified as a text; a
    /// text that looks like an option is refused unless it comes after "--".
    /// </summary>
    private static void RejectUnknownOptions(ParseResult parse)
    {
        foreach (var token in parse.Tokens)
        {
            if (token.Type == System.CommandLine.Parsing.TokenType.DoubleDash) return;
            if (token.Type == System.CommandLine.Parsing.TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-'
                && (char.IsLetter(token.Value[1]) || token.Value[1] == '-'))
                throw new CliException($"unknown option '{token.Value}' (see `binengine classify --help`); to classify a text that starts with '-', put it after --");
        }
    }

    /// <summary>
    /// The texts: the arguments, else the lines of stdin read by the rule `batch` uses (split at '\n' only,
    /// strict UTF-8, lines over 1 MiB reported and skipped, never buffered), each with why it is unusable or null.
    /// </summary>
    private static IEnumerable<(string Text, string? Problem)> Inputs(string[]? args, CliContext cx)
    {
        if (args is { Length: > 0 })
        {
            foreach (string a in args) yield return (a, null);
            yield break;
        }
        var lines = cx.OpenStdinLines(Batch.ByteLineReader.DefaultMaxLineBytes);
        while (lines.TryReadLine(out string line, out string? problem))
            yield return (line, problem);
    }

    /// <summary>"positive  0.973  exit 2/6" (+ "  truncated" when the text was cut to max_len tokens).</summary>
    internal static string TextOf(ClassificationResult? r, string? error) => r is null
        ? "error: " + error
        : $"{r.LabelName}  {Fmt.P3(r.Probabilities[r.Label])}  exit {r.ExitBlock}/{r.Layers}{(r.Truncated ? "  truncated" : "")}";

    internal static string JsonOf(JsonLine line, int index, ClassificationResult? r, string? error, bool logits = false, bool sets = false)
    {
        Utf8JsonWriter j = line.Begin();
        j.WriteNumber("index", index);
        if (r is null)
        {
            j.WriteString("error", error);
            return line.End();
        }
        j.WriteResultFields(r, r.Truncated, logits, sets);
        return line.End();
    }
}
