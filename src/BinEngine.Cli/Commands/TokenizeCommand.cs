using System.CommandLine;
using System.Text.Json;
using BinEngine.Format;
using BinEngine.Tokenization;

namespace BinEngine.Cli.Commands;

/// <summary>
/// <c>binengine tokenize</c>: each line of stdin → {"ids":[101, …, 102],"count":N,"truncated":false}, with the
/// model's vocabulary (--model or the default model) or a --vocab / --tokenizer-json. No truncation unless
/// --max-length is given.
/// </summary>
internal static class TokenizeCommand
{
    internal static Command Create(CliContext cx)
    {
        var model = CommonOptions.Model();
        var vocab = new Option<string?>("--vocab") { Description = "Tokenize with this vocab.txt (lower-cased, as bert-base-uncased) instead of the model's vocabulary", HelpName = "PATH" };
        var tokenizerJson = new Option<string?>("--tokenizer-json") { Description = "Tokenize with this Hugging Face tokenizer.json instead of the model's vocabulary", HelpName = "PATH" };
        var maxLength = new Option<int?>("--max-length") { Description = "Keep at most N ids ([CLS] and [SEP] included), as the model does with its max_len (default: no truncation)", HelpName = "N" };
        var tokens = new Option<bool>("--tokens") { Description = "Also print the token strings" };
        var command = new Command("tokenize", "Tokenize lines of stdin into WordPiece ids ([CLS] … [SEP]), one JSON object per line")
        {
            model, vocab, tokenizerJson, maxLength, tokens,
        };
        command.SetAction(parse =>
        {
            int? max = parse.GetValue(maxLength);
            if (max is < 2) throw new CliException($"--max-length must be at least 2 ([CLS] and [SEP]), got {max}");
            BertWordPieceTokenizer tokenizer = Load(cx, parse.GetValue(model), parse.GetValue(vocab), parse.GetValue(tokenizerJson));
            bool withTokens = parse.GetValue(tokens);
            var line = new JsonLine();
            var lines = cx.OpenStdinLines(Batch.ByteLineReader.DefaultMaxLineBytes);
            if (cx.StdinIsTerminal)
                cx.Stderr.WriteLine("reading lines from stdin; end with Ctrl-D");
            int errors = 0;
            while (lines.TryReadLine(out string text, out string? problem))
            {
                if (problem is not null)
                {
                    // The line is unusable (not UTF-8, over the length cap): an error object in its place keeps output line i for input line i.
                    errors++;
                    Utf8JsonWriter e = line.Begin();
                    e.WriteString("error", problem);
                    cx.Stdout.WriteLine(line.End());
                    continue;
                }
                int[] ids = tokenizer.Encode(text);
                bool truncated = false;
                if (max is { } n && ids.Length > n)
                {
                    ids = tokenizer.Encode(text, n);
                    truncated = true;
                }
                Utf8JsonWriter j = line.Begin();
                j.WriteStartArray("ids");
                foreach (int id in ids) j.WriteNumberValue(id);
                j.WriteEndArray();
                if (withTokens)
                {
                    j.WriteStartArray("tokens");
                    foreach (int id in ids) j.WriteStringValue(tokenizer.IdToToken(id));
                    j.WriteEndArray();
                }
                j.WriteNumber("count", ids.Length);
                j.WriteBoolean("truncated", truncated);
                cx.Stdout.WriteLine(line.End());
            }
            if (errors > 0)
                cx.Stderr.WriteLine($"{errors} line(s) could not be tokenized (see the error lines)");
            return errors > 0 ? ExitCodes.RowErrors : ExitCodes.Ok;
        });
        return command;
    }

    private static BertWordPieceTokenizer Load(CliContext cx, string? model, string? vocab, string? tokenizerJson)
    {
        if ((vocab is not null ? 1 : 0) + (tokenizerJson is not null ? 1 : 0) + (model is not null ? 1 : 0) > 1)
            throw new CliException("pass only one of --model, --vocab and --tokenizer-json");
        try
        {
            if (vocab is not null) return BertWordPieceTokenizer.FromVocabFile(RequireFile(cx.Resolve(vocab), "vocabulary"));
            if (tokenizerJson is not null) return BertWordPieceTokenizer.FromTokenizerJson(RequireFile(cx.Resolve(tokenizerJson), "tokenizer.json"));
        }
        catch (InvalidDataException e)
        {
            throw new CliException($"unusable tokenizer file: {e.Message}");
        }
        string path = ModelLocator.Locate(cx, model);
        try
        {
            // Only the vocabulary is needed: open the file without binding the weights.
            using var file = ModelLocator.OpenFile(path);
            return file.Tokenizer.CreateTokenizer();
        }
        catch (ModelFormatException e)
        {
            throw new CliException($"cannot use model '{path}': {e.Message}");
        }
    }

    private static string RequireFile(string path, string what)
    {
        if (!File.Exists(path)) throw new CliException($"{what} file '{path}' does not exist");
        ModelLocator.RequireRegularFile(path, what);
        return path;
    }
}
