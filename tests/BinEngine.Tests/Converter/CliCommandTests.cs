using System.CommandLine;
using System.Text.Json;
using BinEngine.Cli.Commands;

namespace BinEngine.Tests.ConverterTests;

public class CliCommandTests
{
    private static (int Code, string Out, string Err) Run(Command command, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = command.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void ConvertThenInspect()
    {
        string dir = Path.Combine(Path.GetTempPath(), "binengine-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string model = Path.Combine(dir, "tiny.bex");
            var (code, output, error) = Run(ConvertCommand.Create(), Fixtures.Pt, "--config", Fixtures.ConfigPath, "--vocab", Fixtures.VocabPath, "-o", model, "--per-tensor");
            Assert.True(code == 0, error);
            Assert.Contains("blocks.0.attn.q.weight", output);
            Assert.Contains("total", output);
            Assert.Contains("smaller than FP32", output);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));

            (code, output, error) = Run(InspectCommand.Create(), model, "--json");
            Assert.True(code == 0, error);
            using var json = JsonDocument.Parse(output);
            var root = json.RootElement;
            long fileBytes = root.GetProperty("file_bytes").GetInt64();
            long fp32Bytes = root.GetProperty("fp32_bytes").GetInt64();
            Assert.Equal(new FileInfo(model).Length, fileBytes);
            Assert.Equal(Fixtures.Convert().Report.Fp32Bytes, fp32Bytes);
            Assert.Equal(Math.Round((double)fp32Bytes / fileBytes, 4), root.GetProperty("ratio").GetDouble());
            Assert.Equal(32, root.GetProperty("config").GetProperty("d_model").GetInt32());
            var vocab = root.GetProperty("metadata").GetProperty("tokenizer.vocab");
            Assert.Equal(50, vocab.GetProperty("count").GetInt32());
            Assert.True(vocab.GetProperty("truncated").GetBoolean());
            var q = root.GetProperty("tensors").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "blocks.0.attn.q.weight");
            Assert.Equal("bits", q.GetProperty("type").GetString());
            Assert.Equal(1, q.GetProperty("planes").GetInt32());

            (code, output, _) = Run(InspectCommand.Create(), model);
            Assert.Equal(0, code);
            Assert.Contains("tokenizer.vocab", output);
            Assert.Contains("bits×2", output);

            var bytes = File.ReadAllBytes(model);
            bytes[^1] ^= 1;
            File.WriteAllBytes(model, bytes);
            (code, _, error) = Run(InspectCommand.Create(), model);
            Assert.Equal(2, code); // 2: unusable model (the CLI's exit codes)
            Assert.Contains("data checksum mismatch", error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ConvertReportsBadInputWithoutAStackTrace()
    {
        var (code, _, error) = Run(ConvertCommand.Create(), Fixtures.VocabPath, "-o", Path.Combine(Path.GetTempPath(), "never.bex"));
        Assert.Equal(2, code); // 2: bad input
        Assert.StartsWith("error: ", error);
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "never.bex")));
    }
}
