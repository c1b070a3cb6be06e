using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace BinEngine.Converter;

/// <summary>
/// Reads the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative
/// to the byte after the header) plus an optional "__metadata__" string→string map, then the raw
/// little-endian tensor data. Every length and offset is checked against the file before use.
/// </summary>
internal static class SafetensorsReader
{
    /// <summary>Largest JSON header accepted (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Parses a whole safetensors file held in memory.</summary>
    public static (IReadOnlyDictionary<string, SourceTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(byte[] file, string name)
    {
        if (file.Length < 8)
            throw new ConversionException($"{name}: {file.Length} bytes; not a safetensors file (needs an 8-byte header length) nor a torch zip");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength < 2 || headerLength > MaxHeaderBytes || headerLength > (ulong)file.Length - 8)
            throw new ConversionException($"{name}: safetensors header length {headerLength} does not fit the {file.Length}-byte file (limit {MaxHeaderBytes}); not a safetensors file, or truncated");
        var dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;

        JsonDocument doc;
        try
        {
            string json = new UTF8Encoding(false, true).GetString(file, 8, (int)headerLength);
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException)
        {
            throw new ConversionException($"{name}: safetensors header is not valid UTF-8 JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ConversionException($"{name}: safetensors header is a JSON {doc.RootElement.ValueKind}, not an object");
            var tensors = new Dictionary<string, SourceTensor>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var spans = new List<(long Begin, long End, string Tensor)>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(entry.Name))
                    throw new ConversionException($"{name}: safetensors header names '{entry.Name}' twice");
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object)
                        throw new ConversionException($"{name}: safetensors __metadata__ is not an object");
                    foreach (var m in entry.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                            : throw new ConversionException($"{name}: safetensors __metadata__ '{m.Name}' is a {m.Value.ValueKind}; values are strings");
                    continue;
                }
                tensors.Add(entry.Name, ReadTensor(file, name, entry.Name, entry.Value, dataStart, dataLength, spans));
            }
            RefuseOverlaps(name, spans);
            return (tensors, metadata);
        }
    }

    /// <summary>At most 40 characters of a JSON value, for messages (a hostile value may be megabytes long).</summary>
    private static string Excerpt(string json) => json.Length <= 40 ? json : json[..40] + "…";

    /// <summary>
    /// Two tensors sharing bytes would let one weight silently alias another (the reference
    /// implementation refuses this too); empty tensors occupy no bytes and never overlap.
    /// </summary>
    private static void RefuseOverlaps(string name, List<(long Begin, long End, string Tensor)> spans)
    {
        spans.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        (long Begin, long End, string Tensor)? previous = null;
        foreach (var s in spans)
        {
            if (s.End == s.Begin) continue;
            if (previous is { } p && s.Begin < p.End)
                throw new ConversionException($"{name}: tensor '{s.Tensor}' data_offsets [{s.Begin}, {s.End}) overlap tensor '{p.Tensor}' [{p.Begin}, {p.End})");
            if (previous is null || s.End > previous.Value.End) previous = s;
        }
    }

    private static SourceTensor ReadTensor(byte[] file, string name, string tensor, JsonElement e, long dataStart, long dataLength,
        List<(long Begin, long End, string Tensor)> spans)
    {
        string where = $"{name}: tensor '{tensor}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new ConversionException($"{where}: header entry is a {e.ValueKind}, not an object");
        if (!e.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new ConversionException($"{where}: no string 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        SourceDType dtype = dtypeName switch
        {
            "F32" => SourceDType.F32,
            "F16" => SourceDType.F16,
            "BF16" => SourceDType.BF16,
            "F64" => SourceDType.F64,
            "I64" => SourceDType.I64,
            "I32" => SourceDType.I32,
            "I16" => SourceDType.I16,
            "I8" => SourceDType.I8,
            "U8" => SourceDType.U8,
            "BOOL" => SourceDType.Bool,
            _ => throw new ConversionException($"{where}: unsupported dtype '{dtypeName}'"),
        };
        if (!e.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new ConversionException($"{where}: no 'shape' array");
        var shape = new List<long>();
        long count = 1;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
                throw new ConversionException($"{where}: shape entry {d} is not a dimension in 0..{int.MaxValue}");
            if (shape.Count == 8)
                throw new ConversionException($"{where}: more than 8 dimensions");
            shape.Add(dim);
            count = count > 0 && dim > long.MaxValue / count ? throw new ConversionException($"{where}: shape [{string.Join(", ", shape)}] overflows") : count * dim;
        }
        // TryGetInt64 throws InvalidOperationException on a non-number, so the kind is checked first:
        // a header is untrusted input and every wrong type must become a ConversionException.
        if (!e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw new ConversionException($"{where}: 'data_offsets' is {(offsets.ValueKind == JsonValueKind.Undefined ? "missing" : Excerpt(offsets.GetRawText()))}, not [begin, end] (two integers)");
        if (begin < 0 || end < begin || end > dataLength)
            throw new ConversionException($"{where}: data_offsets [{begin}, {end}) lie outside the {dataLength}-byte data section (file truncated?)");
        long size = SourceTensor.ElementSize(dtype);
        if (count > long.MaxValue / size || end - begin != count * size)
            throw new ConversionException($"{where}: data_offsets span {end - begin} bytes; {dtypeName} [{string.Join(", ", shape)}] needs {(count > long.MaxValue / size ? "more than 2^63" : (count * size).ToString(System.Globalization.CultureInfo.InvariantCulture))}");
        spans.Add((begin, end, tensor));
        var data = file.AsSpan(checked((int)(dataStart + begin)), (int)(end - begin)).ToArray();
        return new SourceTensor(tensor, dtype, shape.ToArray(), data);
    }
}
