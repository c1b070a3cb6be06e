using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace BinEngine.Bench.Peer;

/// <summary>
/// The FP32 peer a .NET user would pick: the same architecture (docs/MODEL.md) with the FP32 twin's
/// trained weights, exported by tools/train/export_onnx.py and run in ONNX Runtime (CPU execution
/// provider, sequential execution, all graph optimisations, a given number of intra-op threads).
/// Inputs `input_ids` and `attention_mask` int64 [batch, sequence]; output `logits` [L, batch, C].
/// </summary>
public sealed class OnnxPeer : IDisposable
{
    private static readonly string[] InputNames = ["input_ids", "attention_mask"];
    private static readonly string[] OutputNames = ["logits"];
    private readonly InferenceSession _session;
    private readonly RunOptions _run = new();

    public OnnxPeer(string onnxPath, int threads)
    {
        Threads = threads;
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(onnxPath, options);
    }

    public int Threads { get; }

    /// <summary>Blocks in the FP32 twin (its config.json's n_layers).</summary>
    public static int TwinLayers(string twinDir)
    {
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(twinDir, "config.json")));
        return config.RootElement.GetProperty("n_layers").GetInt32();
    }

    /// <summary>
    /// The graph of the twin's first <paramref name="blocks"/> blocks, exported when missing: <paramref name="onnxPath"/>
    /// itself at the twin's full depth, x-l3.onnx beside it for x.onnx at 3 blocks.
    /// </summary>
    public static string Graph(string onnxPath, string twinDir, int blocks)
    {
        string path = blocks == TwinLayers(twinDir) ? onnxPath : PathForDepth(onnxPath, blocks);
        EnsureExported(path, twinDir, blocks);
        return path;
    }

    private static string PathForDepth(string onnxPath, int blocks) =>
        Path.Combine(Path.GetDirectoryName(onnxPath) ?? "", $"{Path.GetFileNameWithoutExtension(onnxPath)}-l{blocks}.onnx");

    /// <summary>
    /// Exports the ONNX file of the twin's first <paramref name="blocks"/> blocks with the trainer's
    /// Python when it is missing (tools/train/export_onnx.py; ≈ 31 MB at 6 blocks, git-ignored under bench/peer/).
    /// </summary>
    private static void EnsureExported(string onnxPath, string twinDir, int blocks)
    {
        if (File.Exists(onnxPath))
            return;
        Console.Error.WriteLine($"peer: {onnxPath} is missing, exporting it from {twinDir} (tools/train/export_onnx.py --blocks {blocks})");
        var start = new ProcessStartInfo("/usr/bin/python3",
            ["tools/train/export_onnx.py", "--model", twinDir, "--out", onnxPath, "--blocks", blocks.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            UseShellExecute = false,
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
        process.WaitForExit();
        if (process.ExitCode != 0 || !File.Exists(onnxPath))
            throw new InvalidOperationException($"tools/train/export_onnx.py exited with {process.ExitCode} and left no {onnxPath}");
    }

    /// <summary>
    /// Logits of every exit for a padded batch: <paramref name="ids"/> and <paramref name="mask"/> are
    /// [batch × sequence] row-major; returns [L × batch × C] into <paramref name="logits"/> (resized).
    /// </summary>
    public void Run(long[] ids, long[] mask, int batch, int sequence, ref float[] logits)
    {
        long[] shape = [batch, sequence];
        using OrtValue idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using OrtValue maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(_run, InputNames, [idsValue, maskValue], OutputNames);
        ReadOnlySpan<float> result = outputs[0].GetTensorDataAsSpan<float>();
        if (logits.Length != result.Length)
            logits = new float[result.Length];
        result.CopyTo(logits);
    }

    /// <summary>
    /// A batch of id sequences as a user feeds ORT: padded to the longest, with attention_mask (the ids are converted to
    /// int64 here, inside the caller's timing, as a user converts them too).
    /// </summary>
    public void RunPadded(ReadOnlyMemory<int>[] batch, ref float[] logits)
    {
        int sequence = batch.Max(m => m.Length);
        var inputIds = new long[batch.Length * sequence];
        var mask = new long[batch.Length * sequence];
        for (int s = 0; s < batch.Length; s++)
        {
            ReadOnlySpan<int> a = batch[s].Span;
            for (int t = 0; t < a.Length; t++)
            {
                inputIds[s * sequence + t] = a[t];
                mask[s * sequence + t] = 1;
            }
        }
        Run(inputIds, mask, batch.Length, sequence, ref logits);
    }

    /// <summary>
    /// Runs the golden samples of the twin (ids and PyTorch's logits of every exit, one sample at a
    /// time) through ONNX Runtime, one by one and as one padded batch; returns the max abs difference
    /// over the exits the graph has (the first d of the twin's for a graph of d blocks).
    /// </summary>
    public double MaxDiffAgainstGolden(string goldenPath, out int samples)
    {
        using JsonDocument golden = JsonDocument.Parse(File.ReadAllText(goldenPath));
        var ids = new List<long[]>();
        var expected = new List<float[][]>();
        foreach (JsonElement s in golden.RootElement.GetProperty("samples").EnumerateArray())
        {
            ids.Add(s.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray());
            expected.Add(s.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray());
        }
        samples = ids.Count;
        double worst = 0;
        float[] logits = [];
        for (int i = 0; i < ids.Count; i++)
        {
            long[] mask = Enumerable.Repeat(1L, ids[i].Length).ToArray();
            Run(ids[i], mask, 1, ids[i].Length, ref logits);
            worst = Math.Max(worst, Diff(logits, expected[i], 1, 0));
        }
        int sequence = ids.Max(a => a.Length), batch = ids.Count;
        var paddedIds = new long[batch * sequence];
        var paddedMask = new long[batch * sequence];
        for (int i = 0; i < batch; i++)
        {
            ids[i].CopyTo(paddedIds, i * sequence);
            Array.Fill(paddedMask, 1L, i * sequence, ids[i].Length);
        }
        Run(paddedIds, paddedMask, batch, sequence, ref logits);
        for (int i = 0; i < batch; i++)
            worst = Math.Max(worst, Diff(logits, expected[i], batch, i));
        return worst;

        static double Diff(float[] got, float[][] want, int batch, int index)
        {
            int classes = want[0].Length;
            int layers = got.Length / (batch * classes);
            if (layers < 1 || layers > want.Length)
                throw new InvalidOperationException($"the peer graph returned {layers} exits for a twin with {want.Length}");
            double d = 0;
            for (int l = 0; l < layers; l++)
                for (int c = 0; c < classes; c++)
                    d = Math.Max(d, Math.Abs(got[(l * batch + index) * classes + c] - want[l][c]));
            return d;
        }
    }

    public void Dispose()
    {
        _session.Dispose();
        _run.Dispose();
    }
}
