using System.CommandLine;
using System.Globalization;
using BinEngine.Converter;

namespace BinEngine.Cli.Commands;

/// <summary><c>binengine convert CHECKPOINT [--config] [--vocab | --tokenizer-json] [-o model.bex]</c>: checkpoint → model file, with a size table.</summary>
internal static class ConvertCommand
{
    /// <summary>The repository's bert-base-uncased vocabulary, used when nothing else names one and it exists (run from the repository root).</summary>
    internal const string RepositoryVocab = "data/vocab/bert-base-uncased-vocab.txt";

    internal static Command Create()
    {
        var checkpoint = new Argument<FileInfo>("checkpoint") { Description = "Trained checkpoint: .safetensors, or a torch.save .pt/.bin state_dict" };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "config.json (default: the safetensors __metadata__.config, else config.json beside the checkpoint)" };
        var vocab = new Option<FileInfo?>("--vocab") { Description = $"vocab.txt, one token per line (default: vocab.txt beside the checkpoint, else {RepositoryVocab})" };
        var tokenizerJson = new Option<FileInfo?>("--tokenizer-json") { Description = "Hugging Face tokenizer.json to take the vocabulary from instead of a vocab.txt" };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Model file to write (default: the checkpoint's name with .bex)" };
        var name = new Option<string?>("--name") { Description = "Model name stored in the file (default: the checkpoint's file name)" };
        var perTensor = new Option<bool>("--per-tensor") { Description = "Print a row per tensor as well as the summary" };

        var command = new Command("convert", "Convert a trained checkpoint into a BinEngine model file (.bex): binarize, quantize, pack, embed config and vocabulary")
        {
            checkpoint, config, vocab, tokenizerJson, output, name, perTensor,
        };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            var source = parse.GetValue(checkpoint)!;
            ModelLocator.RequireRegularFile(source.FullName, "checkpoint");
            string outPath = parse.GetValue(output)?.FullName ?? Path.ChangeExtension(source.FullName, ".bex");
            // The model is renamed into place, which would replace the checkpoint if the output named it (directly or
            // through a link): compare the files, not the names, and refuse before reading anything.
            if (string.Equals(source.FullName, outPath, StringComparison.Ordinal) || UnixFiles.SameFile(source.FullName, outPath))
                throw new CliException($"the output '{outPath}' is the checkpoint '{source.FullName}' (the same file, perhaps through a link); writing it would destroy the checkpoint: choose another -o");
            string? vocabPath = parse.GetValue(vocab)?.FullName;
            string? tokenizerPath = parse.GetValue(tokenizerJson)?.FullName;
            if (vocabPath is null && tokenizerPath is null
                && !File.Exists(Path.Combine(source.DirectoryName ?? ".", "vocab.txt")) && File.Exists(RepositoryVocab))
            {
                vocabPath = Path.GetFullPath(RepositoryVocab);
            }
            try
            {
                var report = ModelConverter.Convert(source.FullName, outPath, new ConvertOptions
                {
                    ConfigPath = parse.GetValue(config)?.FullName,
                    VocabPath = vocabPath,
                    TokenizerJsonPath = tokenizerPath,
                    Name = parse.GetValue(name),
                });
                foreach (string note in report.Notes)
                    stdout.WriteLine("note: " + note);
                stdout.WriteLine();
                report.WriteTable(stdout, parse.GetValue(perTensor));
                stdout.WriteLine();
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {outPath}: {report.FileBytes:N0} bytes, {report.Ratio:0.00}× smaller than FP32 ({report.Fp32Bytes:N0} bytes)"));
                return 0;
            }
            catch (ConversionException e)
            {
                stderr.WriteLine("error: " + e.Message);
                return ExitCodes.Usage; // an unusable checkpoint, config or vocabulary: nothing was written
            }
        });
        return command;
    }
}
