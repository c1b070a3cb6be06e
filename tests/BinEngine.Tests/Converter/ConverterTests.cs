using BinEngine.Kernels;
using BinEngine.Converter;
using BinEngine.Format;

namespace BinEngine.Tests.ConverterTests;

public class ConverterTests
{
    [Fact]
    public void PtAndSafetensorsHoldTheSameTensors()
    {
        var pt = Checkpoint.Read(Fixtures.Pt);
        var st = Checkpoint.Read(Fixtures.Safetensors);
        Assert.Equal("torch", pt.Format);
        Assert.Equal("safetensors", st.Format);
        Assert.Equal(pt.Tensors.Keys.Order(StringComparer.Ordinal), st.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(49, pt.Tensors.Count); // embed 5 + 2 blocks × 20 + 2 exits × 2
        foreach (var (name, a) in pt.Tensors)
        {
            var b = st.Tensors[name];
            Assert.Equal(a.DType, b.DType);
            Assert.Equal(a.Shape, b.Shape);
            Assert.True(a.Data.AsSpan().SequenceEqual(b.Data), name);
        }
        Assert.True(st.Metadata.ContainsKey("config"));
    }

    /// <summary>The fixture pair, plus every models/*/ directory holding model.pt and model.safetensors (the trainer's exports, once merged).</summary>
    public static TheoryData<string, string> CheckpointPairs()
    {
        var data = new TheoryData<string, string> { { Fixtures.Pt, Fixtures.Safetensors } };
        string models = Path.Combine(Fixtures.Directory, "..", "..", "..", "models");
        if (Directory.Exists(models))
            foreach (string dir in Directory.GetDirectories(models).Order(StringComparer.Ordinal))
                if (File.Exists(Path.Combine(dir, "model.pt")) && File.Exists(Path.Combine(dir, "model.safetensors")))
                    data.Add(Path.Combine(dir, "model.pt"), Path.Combine(dir, "model.safetensors"));
        return data;
    }

    [Theory]
    [MemberData(nameof(CheckpointPairs))]
    public void PtAndSafetensorsConvertToIdenticalModelData(string ptPath, string safetensorsPath)
    {
        string dir = Path.GetDirectoryName(ptPath)!;
        string? vocab = File.Exists(Path.Combine(dir, "vocab.txt")) ? null
            : Path.Combine(Fixtures.Directory, "..", "..", "..", "data", "vocab", "bert-base-uncased-vocab.txt");
        var (ptFile, ptReport) = ModelConverter.ConvertToBytes(ptPath, new ConvertOptions { ConfigPath = Path.Combine(dir, "config.json"), VocabPath = vocab, Name = "m" });
        // The safetensors file carries its config in __metadata__.
        var (stFile, stReport) = ModelConverter.ConvertToBytes(safetensorsPath, new ConvertOptions { VocabPath = vocab, Name = "m" });
        Assert.Contains(stReport.Notes, n => n.Contains("__metadata__.config", StringComparison.Ordinal));

        using var a = TensorFile.Open(ptFile);
        using var b = TensorFile.Open(stFile);
        Assert.Equal(a.DataChecksum, b.DataChecksum);
        Assert.True(ptFile.AsSpan((int)a.DataOffset).SequenceEqual(stFile.AsSpan((int)b.DataOffset)));
        Assert.Equal(a.Tensors.Select(t => t.ToString()), b.Tensors.Select(t => t.ToString()));
        // Metadata agree except where they say where the weights came from.
        var ma = a.Metadata.Where(m => !m.Key.StartsWith("provenance.source_", StringComparison.Ordinal) && m.Key != ModelKeys.ConfigJson).Select(m => m.Key + "=" + m.Value.ToDisplayString(int.MaxValue));
        var mb = b.Metadata.Where(m => !m.Key.StartsWith("provenance.source_", StringComparison.Ordinal) && m.Key != ModelKeys.ConfigJson).Select(m => m.Key + "=" + m.Value.ToDisplayString(int.MaxValue));
        Assert.Equal(ma, mb);
        Assert.Equal(Path.GetFileName(ptPath), a.GetString(ModelKeys.SourceFile));
        Assert.Equal("torch", a.GetString(ModelKeys.SourceFormat));
        Assert.Equal("safetensors", b.GetString(ModelKeys.SourceFormat));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(ptPath))), a.GetString(ModelKeys.SourceSha256));
        Assert.Equal(ptReport.Fp32Bytes, stReport.Fp32Bytes);
    }

    [Fact]
    public void SizeReportCountsEveryParameterAtThirtyTwoBits()
    {
        var (file, report) = Fixtures.Convert();
        // Every float parameter at 32 bits, the pruned token table (40 of 50 rows) counted at all 50 rows.
        long floats = Fixtures.TinyCheckpoint.Tensors.Values.Where(t => t.IsFloat).Sum(t => t.ElementCount);
        Assert.Equal((floats + (50 - 40) * 32) * 4, report.Fp32Bytes);
        Assert.Equal(file.Length, report.FileBytes);
        Assert.Equal((double)report.Fp32Bytes / file.Length, report.Ratio);
        using var m = ModelFile.Open(file);
        Assert.Equal(report.Fp32Bytes, m.Fp32ParameterBytes);
        Assert.Equal(report.Fp32Bytes, m.GetInt(ModelKeys.Fp32Bytes));
        Assert.Equal(report.FileBytes, report.HeadBytes + report.DataBytes);
        var table = new StringWriter();
        report.WriteTable(table, perTensor: true);
        Assert.Contains("blocks.1.slfn.f2.weight", table.ToString());
        Assert.Contains("total", table.ToString());
    }

    /// <summary>config.json's exit_temperatures and slfn_gate_center become exit.temperatures and beexformer.slfn_gate_center; absent stays absent.</summary>
    [Fact]
    public void OptionalTemperaturesAndGateFlagAreMapped()
    {
        foreach (string dir in new[] { "models/tiny-smoke", "models/tiny-smoke-a1", "models/tiny-smoke-a1-gc" })
        {
            string bex = Path.Combine(Path.GetTempPath(), $"opt-{Guid.NewGuid():N}.bex");
            try
            {
                ModelConverter.Convert(TestPaths.Repo(dir + "/model.safetensors"), bex,
                    new ConvertOptions { VocabPath = TestPaths.Repo("data/vocab/bert-base-uncased-vocab.txt") });
                using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(TestPaths.Repo(dir + "/config.json")));
                using var m = ModelFile.Open(bex);
                bool hasTemps = config.RootElement.TryGetProperty("exit_temperatures", out var temps);
                Assert.Equal(hasTemps, m.Container.TryGetMetadata(ModelKeys.ExitTemperatures) is not null);
                if (hasTemps)
                    Assert.Equal(temps.EnumerateArray().Select(t => t.GetDouble()), m.Config.ExitTemperatures!);
                else
                    Assert.Null(m.Config.ExitTemperatures);
                bool gate = config.RootElement.TryGetProperty("slfn_gate_center", out var g) && g.GetBoolean();
                Assert.Equal(gate, m.Config.SlfnGateCenter);
            }
            finally
            {
                File.Delete(bex);
            }
        }
    }

    [Fact]
    public void MetadataCarriesConfigTokenizerAndProvenance()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel);
        var c = m.Config;
        Assert.Equal((50, 16, 32, 2, 2, 64, 2), (c.VocabSize, c.MaxLength, c.Dim, c.Heads, c.Layers, c.FfDim, c.Classes));
        Assert.Equal((1, 1, 2), (c.WeightBits, c.ActBits, c.EmbBits));
        Assert.Equal(1e-5, c.LnEps);
        Assert.Equal(["negative", "positive"], c.Labels);
        Assert.Equal("entropy_reduction", c.Policy);
        Assert.Equal(0.05, c.Thresholds["entropy_reduction"]["tau"]);
        Assert.Equal(0.4, c.Thresholds["entropy_reduction"]["kappa"]);
        Assert.Equal(2, c.Thresholds["patience"]["t"]);
        Assert.Equal(2, m.GetInt("exit.thresholds.patience.t"));
        Assert.Equal(File.ReadAllLines(Fixtures.VocabPath), m.Tokenizer.Vocabulary);
        Assert.Equal("café", m.Tokenizer.Vocabulary[48]);
        Assert.True(m.Tokenizer.Lowercase);
        Assert.Equal(("[UNK]", "[CLS]", "[SEP]", "[PAD]"), (m.Tokenizer.UnkToken, m.Tokenizer.ClsToken, m.Tokenizer.SepToken, m.Tokenizer.PadToken));
        Assert.Equal("sst2", m.Provenance.Task);
        Assert.Equal("0.5", m.Provenance.Metrics["dev_accuracy"]);
        Assert.Equal("random", m.Provenance.Metrics["note"]);
        Assert.Equal(ModelConverter.Identity, m.Provenance.Converter);
        Assert.Equal(40, m.TokenRows);
        Assert.True(m.HasTokenMap);
        Assert.Equal(7, m.TokenRow(7));
        Assert.Equal(1, m.TokenRow(45)); // pruned ids map to [UNK]
    }

    [Fact]
    public void BinLinearWeightsAreSignBitsAndMeanAbsAlpha()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel);
        foreach (var (name, outputs, inputs) in ModelLayout.BinLinears(m.Config, 1).Prepend(("blocks.0.attn.q", 32, 32)))
        {
            var w = Fixtures.TinyCheckpoint.Tensors[name + ".weight"].ToFloat32();
            var bits = m.Bits(name + ".weight");
            var alpha = m.F32(name + ".alpha");
            int rowWords = TensorInfo.PackedRowWords(inputs);
            var codes = new sbyte[inputs];
            for (int o = 0; o < outputs; o++)
            {
                TwosComplementPlanes.UnpackRow(bits.Slice(o * rowWords, rowWords), 1, codes);
                double sum = 0;
                for (int i = 0; i < inputs; i++)
                {
                    float x = w[o * inputs + i];
                    Assert.Equal(x >= 0 ? 1 : -1, codes[i]); // sign(0) = +1
                    sum += Math.Abs(x);
                }
                Assert.Equal((float)(sum / inputs), alpha[o]);
            }
        }
        // The fixture zeroed blocks.0.attn.q.weight[0, :5]: those signs are +1.
        Assert.Equal(0b11111UL, m.Bits("blocks.0.attn.q.weight")[0] & 0b11111UL);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(32)]
    public void EmbeddingsDequantizeToTheirQuantizedValues(int embBits)
    {
        var (file, _) = Fixtures.Convert(c => c["emb_bits"] = embBits);
        using var m = ModelFile.Open(file);
        var (type, planes) = ModelLayout.EmbeddingStorage(embBits);
        Assert.Equal(type, m.GetTensor("embed.tok.weight").ElementType);
        Assert.Equal(planes, m.GetTensor("embed.pos.weight").Planes);

        var tok = Fixtures.TinyCheckpoint.Tensors["embed.tok.weight"].ToFloat32();
        var map = Fixtures.TinyCheckpoint.Tensors["embed.tok_map"].ToInt64();
        var row = new float[32];
        for (int id = 0; id < 50; id++)
        {
            m.TokenEmbedding(id, row);
            Assert.Equal(ReferenceQ(tok.AsSpan((int)map[id] * 32, 32), embBits), row);
        }
        var pos = Fixtures.TinyCheckpoint.Tensors["embed.pos.weight"].ToFloat32();
        for (int t = 0; t < 16; t++)
        {
            m.PositionEmbedding(t, row);
            Assert.Equal(ReferenceQ(pos.AsSpan(t * 32, 32), embBits), row);
        }
    }

    /// <summary>docs/MODEL.md Q_n written out directly, as the trainer computes it (float32 ops in the stated order).</summary>
    private static float[] ReferenceQ(ReadOnlySpan<float> x, int n)
    {
        var q = new float[x.Length];
        if (n == 32)
            return x.ToArray();
        if (n == 1)
        {
            double sum = 0;
            foreach (float v in x) sum += Math.Abs(v);
            float beta = (float)(sum / x.Length);
            for (int j = 0; j < x.Length; j++)
                q[j] = x[j] >= 0 ? beta : -beta;
            return q;
        }
        float m = (1 << (n - 1)) - 1;
        float maxAbs = 0;
        foreach (float v in x) maxAbs = Math.Max(maxAbs, Math.Abs(v));
        float s = maxAbs / m;
        float safe = s > 0 ? s : 1;
        for (int j = 0; j < x.Length; j++)
            q[j] = s * Math.Clamp(MathF.Round(x[j] / safe, MidpointRounding.ToEven), -m, m);
        return q;
    }

    [Fact]
    public void FixtureEdgeRowsQuantizeAsTheContractSays()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel); // e = 2: m = 1
        var row = new float[32];
        // Position 0 is [1, 0.5, −0.5, 0.25, −1, 0.75, 0…]: s = 1, halves round to even (0).
        m.PositionEmbedding(0, row);
        Assert.Equal([1f, 0f, 0f, 0f, -1f, 1f, 0f, 0f], row[..8]);
        Assert.Equal(1f, m.F32("embed.pos.scale")[0]);
        // Token 3's row is all zeros: scale 0, codes 0.
        m.TokenEmbedding(3, row);
        Assert.All(row, v => Assert.Equal(0f, v));
        Assert.Equal(0f, m.F32("embed.tok.scale")[3]);
    }

    [Fact]
    public void QuantizerHandCases()
    {
        // s = 7 / 7 = 1 exactly, so x / s = x: 2.5 → 2, −2.5 → −2, 3.5 → 4, ±0.5 → 0, 1.5 → 2 (half to even); 9 clamps… max is 7 here.
        var (codes4, scales4) = Quantizers.QuantizeRows([7f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 1.5f, 0f], 1, 8, 4);
        Assert.Equal([7, 2, -2, 4, 0, 0, 2, 0], codes4.Select(c => (int)c));
        Assert.Equal(1f, scales4[0]);
        var (codes8, scales8) = Quantizers.QuantizeRows([127f, 2.5f, -3.5f, -127f], 1, 4, 8);
        Assert.Equal([127, 2, -4, -127], codes8.Select(c => (int)c));
        Assert.Equal(1f, scales8[0]);
        var (codes1, scales1) = Quantizers.QuantizeRows([0f, -0f, -2f, 3f], 1, 4, 1);
        Assert.Equal([1, 1, -1, 1], codes1.Select(c => (int)c));
        Assert.Equal(1.25f, scales1[0]);
        var (codes2, scales2) = Quantizers.QuantizeRows([0f, 0f, 0f, 0f, 1f, 0.5f, -0.5f, -1f], 2, 4, 2);
        Assert.Equal([0, 0, 0, 0, 1, 0, 0, -1], codes2.Select(c => (int)c));
        Assert.Equal([0f, 1f], scales2);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 8)]
    [InlineData(32, 32)]
    [InlineData(32, 4)]
    public void WeightBitsAndEmbeddingBitsCombine(int weightBits, int embBits)
    {
        var (file, report) = Fixtures.Convert(c => { c["weight_bits"] = weightBits; c["emb_bits"] = embBits; c["act_bits"] = weightBits == 32 ? 32 : 4; });
        using var m = ModelFile.Open(file);
        var q = m.GetTensor("blocks.0.attn.q.weight");
        if (weightBits == 32)
        {
            Assert.Equal(TensorElementType.F32, q.ElementType);
            Assert.False(m.Container.Contains("blocks.0.attn.q.alpha"));
            Assert.Equal(Fixtures.TinyCheckpoint.Tensors["blocks.0.attn.q.weight"].ToFloat32(), m.F32("blocks.0.attn.q.weight").ToArray());
        }
        else
        {
            Assert.Equal(TensorElementType.Bits, q.ElementType);
        }
        Assert.Equal(embBits == 32, !m.Container.Contains("embed.tok.scale"));
        Assert.True(report.Ratio > 0);
    }

    [Fact]
    public void BinarizedFileIsSmallerThanFp32()
    {
        var (_, w1) = Fixtures.Convert(c => c["emb_bits"] = 1);
        var (_, w32) = Fixtures.Convert(c => { c["weight_bits"] = 32; c["emb_bits"] = 32; c["act_bits"] = 32; });
        Assert.True(w1.DataBytes * 3 < w32.DataBytes, $"{w1.DataBytes} vs {w32.DataBytes}");
    }
}
