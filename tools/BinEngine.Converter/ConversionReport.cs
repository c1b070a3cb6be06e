using System.Globalization;

namespace BinEngine.Converter;

/// <summary>One stored tensor of a conversion and its size against FP32.</summary>
/// <param name="Name">The tensor's name in the model file.</param>
/// <param name="Source">Where it came from: the checkpoint tensor's dtype and shape, or "derived".</param>
/// <param name="StoredAs">Its type and shape in the file.</param>
/// <param name="Fp32Bytes">Its parameters at 32 bits each (0 for derived tensors: α, scales, the token map).</param>
/// <param name="StoredBytes">Its bytes in the file (packed rows padded to 256 bits, alignment padding excluded).</param>
internal sealed record TensorSizeRow(string Name, string Source, string StoredAs, long Fp32Bytes, long StoredBytes);

/// <summary>What a conversion produced: the file, its size against the FP32 model, and notes.</summary>
internal sealed class ConversionReport
{
    internal ConversionReport(string outputPath, IReadOnlyList<TensorSizeRow> rows, long fileBytes, long dataOffset, long dataBytes,
        IReadOnlyList<string> notes)
    {
        OutputPath = outputPath;
        Rows = rows;
        FileBytes = fileBytes;
        HeadBytes = dataOffset;
        DataBytes = dataBytes;
        Notes = notes;
    }

    /// <summary>The model file written (empty when converted in memory).</summary>
    public string OutputPath { get; }

    /// <summary>Per stored tensor, in file order.</summary>
    public IReadOnlyList<TensorSizeRow> Rows { get; }

    /// <summary>Every parameter of the checkpoint that the model uses, at 32 bits.</summary>
    public long Fp32Bytes => Rows.Sum(r => r.Fp32Bytes);

    /// <summary>Bytes of the model file, everything included (header, metadata with the vocabulary, table, padding).</summary>
    public long FileBytes { get; }

    /// <summary>Header + metadata + tensor table (the data section's offset).</summary>
    public long HeadBytes { get; }

    /// <summary>The data section: tensors and their 64-byte alignment padding.</summary>
    public long DataBytes { get; }

    /// <summary>FP32 bytes / file bytes: how many times smaller the model file is.</summary>
    public double Ratio => FileBytes == 0 ? 0 : (double)Fp32Bytes / FileBytes;

    /// <summary>FP32 bytes / data-section bytes: the weights alone, without the metadata (vocabulary) and table.</summary>
    public double DataRatio => DataBytes == 0 ? 0 : (double)Fp32Bytes / DataBytes;

    /// <summary>What the converter chose or ignored (config and vocabulary sources, ignored tensors).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Summary rows: embeddings, blocks, exits, head (metadata, vocabulary, table), padding.</summary>
    public IReadOnlyList<TensorSizeRow> Groups
    {
        get
        {
            static string Group(string name) =>
                name.StartsWith("embed.", StringComparison.Ordinal) ? "embeddings"
                : name.StartsWith("blocks.", StringComparison.Ordinal) ? "blocks"
                : name.StartsWith("exits.", StringComparison.Ordinal) ? "exits" : "other";
            var groups = Rows.GroupBy(r => Group(r.Name))
                .Select(g => new TensorSizeRow(g.Key, $"{g.Count()} tensors", "", g.Sum(r => r.Fp32Bytes), g.Sum(r => r.StoredBytes)))
                .ToList();
            groups.Add(new TensorSizeRow("header+metadata+table", "", "", 0, HeadBytes));
            groups.Add(new TensorSizeRow("alignment padding", "", "", 0, DataBytes - Rows.Sum(r => r.StoredBytes)));
            return groups;
        }
    }

    /// <summary>Writes the size table (per group; per tensor too when <paramref name="perTensor"/>).</summary>
    public void WriteTable(TextWriter w, bool perTensor = false)
    {
        static string B(long b) => b.ToString("N0", CultureInfo.InvariantCulture);
        static string R(long fp32, long stored) => stored == 0 || fp32 == 0 ? "" : ((double)fp32 / stored).ToString("0.00", CultureInfo.InvariantCulture) + "×";
        const string Format = "{0,-34} {1,16} {2,16} {3,9}";
        if (perTensor)
        {
            w.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-34} {1,-22} {2,-22} {3,12} {4,12}", "tensor", "source", "stored as", "fp32 bytes", "file bytes"));
            foreach (var r in Rows)
                w.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-34} {1,-22} {2,-22} {3,12} {4,12}", r.Name, r.Source, r.StoredAs, B(r.Fp32Bytes), B(r.StoredBytes)));
            w.WriteLine();
        }
        w.WriteLine(string.Format(CultureInfo.InvariantCulture, Format, "part", "fp32 bytes", "file bytes", "ratio"));
        foreach (var g in Groups)
            w.WriteLine(string.Format(CultureInfo.InvariantCulture, Format, g.Name, B(g.Fp32Bytes), B(g.StoredBytes), R(g.Fp32Bytes, g.StoredBytes)));
        w.WriteLine(string.Format(CultureInfo.InvariantCulture, Format, "weights (data section)", B(Fp32Bytes), B(DataBytes), R(Fp32Bytes, DataBytes)));
        w.WriteLine(string.Format(CultureInfo.InvariantCulture, Format, "total (file)", B(Fp32Bytes), B(FileBytes), R(Fp32Bytes, FileBytes)));
    }
}
