using System.IO.Compression;
using System.Text;
using static BinEngine.Converter.RestrictedUnpickler;

namespace BinEngine.Converter;

/// <summary>
/// Reads a <c>torch.save</c> checkpoint: a zip archive holding <c>{prefix}/data.pkl</c> (the
/// pickled state_dict, read with <see cref="RestrictedUnpickler"/>) and one entry
/// <c>{prefix}/data/{key}</c> per storage with its raw little-endian elements. The top-level
/// object must be a dict of name → tensor; tensors are copied out of their storages (any
/// non-negative strides, bounds-checked) into contiguous row-major arrays.
/// </summary>
internal static class TorchZipReader
{
    /// <summary>Largest data.pkl accepted (a state_dict's pickle is a few hundred bytes per tensor).</summary>
    public const long MaxPickleBytes = 16 << 20;

    /// <summary>
    /// Most bytes all entries together may decompress to: twice the archive plus 1 MiB. torch.save
    /// stores entries uncompressed, so a real checkpoint's entries sum to less than the archive; a
    /// re-zipped one with deflate barely shrinks float weights. The archive's real length is the only
    /// size a hostile file cannot lie about (declared sizes in the central directory can).
    /// </summary>
    public static long EntryBudget(long archiveBytes) => 2 * archiveBytes + (1L << 20);

    /// <summary>
    /// Most bytes all tensors together may materialize to: four times the archive plus 16 MiB.
    /// Contiguous tensors materialize their own storage bytes; stride-0 views (torch's expand) and
    /// several views of one storage are legal and larger than what they read, within this bound.
    /// </summary>
    public static long TensorBudget(long archiveBytes) => 4 * archiveBytes + (16L << 20);

    /// <summary>Reads the state_dict of a torch.save zip held in memory.</summary>
    public static IReadOnlyDictionary<string, SourceTensor> Read(byte[] file, string name)
    {
        try
        {
            using var zip = new ZipArchive(new MemoryStream(file, writable: false), ZipArchiveMode.Read);
            return ReadArchive(zip, name, file.Length);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new ConversionException($"{name}: not a readable zip archive (truncated or corrupt torch.save file): {e.Message}", e);
        }
    }

    /// <summary>Bytes left to decompress from entries and to materialize as tensors (see the budgets above).</summary>
    private sealed class Budget(long zipLength)
    {
        public long ZipLength { get; } = zipLength;
        public long EntryBytesLeft = EntryBudget(zipLength);
        public long TensorBytesLeft = TensorBudget(zipLength);
    }

    private static Dictionary<string, SourceTensor> ReadArchive(ZipArchive zip, string name, long zipLength)
    {
        CheckEntries(zip, name);
        var budget = new Budget(zipLength);
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new ConversionException($"{name}: expected one '<archive>/data.pkl' entry (torch.save's zip layout), found {pickles.Count}");
        string prefix = pickles[0].FullName[..^"data.pkl".Length];

        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null)
        {
            string order = Encoding.ASCII.GetString(ReadEntry(byteOrder, 16, name, budget)).Trim();
            if (order != "little")
                throw new ConversionException($"{name}: storages are '{order}'-endian; only little-endian checkpoints are supported");
        }

        byte[] pickle = ReadEntry(pickles[0], MaxPickleBytes, name, budget);
        object root = Load(pickle, name + ":" + pickles[0].FullName);
        if (root is not PickledDict dict)
            throw new ConversionException($"{name}: the pickled object is a {Describe(root)}; a state_dict (dict of tensors) is required");

        var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, SourceTensor>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string tensorName)
                throw new ConversionException($"{name}: state_dict key is a {Describe(key)}, not a string");
            if (value is not PickledTensor t)
                throw new ConversionException($"{name}: state_dict entry '{tensorName}' is a {Describe(value)}, not a tensor");
            if (!storages.TryGetValue(t.Storage.Key, out byte[]? storage))
            {
                var entry = zip.GetEntry(prefix + "data/" + t.Storage.Key)
                    ?? throw new ConversionException($"{name}: tensor '{tensorName}' names storage '{t.Storage.Key}', but '{prefix}data/{t.Storage.Key}' is not in the archive");
                long expected = t.Storage.ElementCount > long.MaxValue / 8 ? long.MaxValue : t.Storage.ElementCount * SourceTensor.ElementSize(t.Storage.DType);
                if (entry.Length != expected)
                    throw new ConversionException($"{name}: storage '{t.Storage.Key}' is {entry.Length} bytes; {t.Storage.ElementCount} × {t.Storage.DType} needs {expected}");
                storage = ReadEntry(entry, Checkpoint.MaxFileBytes, name, budget);
                storages[t.Storage.Key] = storage;
            }
            if (!tensors.TryAdd(tensorName, Materialize(tensorName, t, storage, name, budget)))
                throw new ConversionException($"{name}: state_dict names '{tensorName}' twice");
        }
        // Entries the state_dict does not need (version, serialization id, unused storages) are checked too:
        // a damaged archive is refused whole, not only where this reader happened to look.
        var read = new HashSet<string>(storages.Keys.Select(k => prefix + "data/" + k), StringComparer.Ordinal) { pickles[0].FullName };
        if (byteOrder is not null) read.Add(byteOrder.FullName);
        foreach (var entry in zip.Entries)
            if (!read.Contains(entry.FullName))
                VerifyEntry(entry, name, budget);
        return tensors;
    }

    private static SourceTensor Materialize(string tensorName, PickledTensor t, byte[] storage, string name, Budget budget)
    {
        string where = $"{name}: tensor '{tensorName}'";
        int size = SourceTensor.ElementSize(t.Storage.DType);
        long count = 1, maxIndex = t.StorageOffset;
        try
        {
            for (int i = 0; i < t.Size.Length; i++)
            {
                if (t.Size[i] < 0 || t.Size[i] > int.MaxValue || t.Stride[i] < 0 || t.Stride[i] > int.MaxValue)
                    throw new ConversionException($"{where}: size [{string.Join(", ", t.Size)}] / stride [{string.Join(", ", t.Stride)}] out of range");
                count = checked(count * t.Size[i]);
                if (t.Size[i] > 0)
                    maxIndex = checked(maxIndex + (t.Size[i] - 1) * t.Stride[i]);
            }
            // Stride-0 views (torch's expand) are legal and larger than their storage; one budget for
            // all tensors together keeps a small hostile file from asking for gigabytes, one view at a
            // time or many views at once.
            long bytes = checked(count * size);
            if (bytes > Math.Min(Array.MaxLength, budget.TensorBytesLeft))
                throw new ConversionException($"{where}: size [{string.Join(", ", t.Size)}] would materialize {bytes} bytes from a {budget.ZipLength}-byte file; " +
                    $"all tensors together may take {TensorBudget(budget.ZipLength)} (4 × the archive + 16 MiB), {budget.TensorBytesLeft} are left");
            budget.TensorBytesLeft -= bytes;
        }
        catch (OverflowException)
        {
            throw new ConversionException($"{where}: size [{string.Join(", ", t.Size)}] / stride [{string.Join(", ", t.Stride)}] overflow 64 bits");
        }
        if (t.StorageOffset < 0 || (count > 0 && maxIndex >= t.Storage.ElementCount))
            throw new ConversionException($"{where}: view (offset {t.StorageOffset}, size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}]) reaches element {maxIndex} of a {t.Storage.ElementCount}-element storage");
        byte[] data = new byte[count * size];
        if (IsContiguous(t.Size, t.Stride))
        {
            storage.AsSpan(checked((int)(t.StorageOffset * size)), data.Length).CopyTo(data);
        }
        else
        {
            // General strides: walk the index space row-major, odometer style.
            var index = new long[t.Size.Length];
            for (long i = 0; i < count; i++)
            {
                long src = t.StorageOffset;
                for (int d = 0; d < index.Length; d++)
                    src += index[d] * t.Stride[d];
                storage.AsSpan((int)(src * size), size).CopyTo(data.AsSpan((int)(i * size)));
                for (int d = index.Length - 1; d >= 0; d--)
                {
                    if (++index[d] < t.Size[d])
                        break;
                    index[d] = 0;
                }
            }
        }
        return new SourceTensor(tensorName, t.Storage.DType, t.Size, data);
    }

    private static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expected)
                return false;
            expected *= size[d];
        }
        return true;
    }

    /// <summary>
    /// Refuses archives whose entries torch.load and this reader could read differently: a name stored
    /// twice (torch reads the last copy, ZipArchive.GetEntry the first), and encrypted entries (their
    /// bytes are not the tensor data). Checked for every entry, read or not.
    /// </summary>
    private static void CheckEntries(ZipArchive zip, string name)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries)
        {
            if (!names.Add(entry.FullName))
                throw new ConversionException($"{name}: zip entry '{entry.FullName}' is stored twice; torch.load would read the last copy and this converter the first, so the archive is refused");
            if (entry.IsEncrypted)
                throw new ConversionException($"{name}: zip entry '{entry.FullName}' is encrypted; torch.save never encrypts, and its bytes are not tensor data");
        }
    }

    /// <summary>Streams through an entry that is not needed, checking its size and CRC-32 without holding it (within the entry budget).</summary>
    private static void VerifyEntry(ZipArchiveEntry entry, string name, Budget budget)
    {
        CheckDeclaredSize(entry, name, budget);
        var buffer = new byte[Math.Min(entry.Length, 1 << 16)];
        using var stream = entry.Open();
        long total = 0;
        uint crc = 0;
        while (true)
        {
            int n = stream.Read(buffer, 0, buffer.Length);
            if (n == 0) break;
            total += n;
            if (total > entry.Length)
                throw new ConversionException($"{name}: zip entry '{entry.FullName}' holds more than its declared {entry.Length} bytes");
            crc = Crc32.Append(crc, buffer.AsSpan(0, n));
        }
        if (total != entry.Length)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' ends after {total} of {entry.Length} bytes (truncated)");
        if (entry.Length == 0 && stream.ReadByte() >= 0)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' holds more than its declared 0 bytes");
        if (crc != entry.Crc32)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' has CRC-32 0x{crc:x8}, the archive says 0x{entry.Crc32:x8} (corrupt or edited)");
    }

    /// <summary>
    /// Refuses an entry whose declared sizes exceed what cannot lie (the archive's real length and the entry
    /// budget), before anything is allocated for it, and takes its size from the budget.
    /// </summary>
    private static void CheckDeclaredSize(ZipArchiveEntry entry, string name, Budget budget)
    {
        if (entry.CompressedLength > budget.ZipLength)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' claims {entry.CompressedLength} compressed bytes in a {budget.ZipLength}-byte archive; the central directory lies");
        // torch.save stores entries uncompressed, and float weights do not compress below their size:
        // an entry larger than the whole archive, or past what all entries may decompress to, is a
        // zip bomb (or a lie), refused before its buffer is allocated.
        if (entry.Length > budget.ZipLength + 4096 || entry.Length > budget.EntryBytesLeft)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' claims {entry.Length} bytes from a {budget.ZipLength}-byte archive " +
                $"(all entries together may decompress to {EntryBudget(budget.ZipLength)}: 2 × the archive + 1 MiB); refusing a possible zip bomb");
        budget.EntryBytesLeft -= entry.Length;
    }

    /// <summary>
    /// Reads one entry whole, verifying its CRC-32. Its declared size is checked against what cannot
    /// lie (the archive's real length and the entry budget) before its buffer is allocated, and the
    /// bytes that really come out must match the declared size.
    /// </summary>
    private static byte[] ReadEntry(ZipArchiveEntry entry, long limit, string name, Budget budget)
    {
        if (entry.Length > limit)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' is {entry.Length} bytes; limit {limit}");
        CheckDeclaredSize(entry, name, budget);
        var buffer = new byte[entry.Length];
        using var stream = entry.Open();
        int read = 0;
        while (read < buffer.Length)
        {
            int n = stream.Read(buffer, read, buffer.Length - read);
            if (n == 0)
                throw new ConversionException($"{name}: zip entry '{entry.FullName}' ends after {read} of {buffer.Length} bytes (truncated)");
            read += n;
        }
        if (stream.ReadByte() >= 0)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' holds more than its declared {buffer.Length} bytes");
        uint crc = Crc32.Compute(buffer);
        if (crc != entry.Crc32)
            throw new ConversionException($"{name}: zip entry '{entry.FullName}' has CRC-32 0x{crc:x8}, the archive says 0x{entry.Crc32:x8} (corrupt or edited)");
        return buffer;
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip stores it for every entry.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    /// <summary>The CRC-32 of <paramref name="data"/> (0 for no bytes).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>The CRC-32 of the bytes whose CRC-32 is <paramref name="crc"/> followed by <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        foreach (byte b in data)
            c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }
}
