namespace BinEngine.Kernels;

/// <summary>
/// A packed ±1 weight matrix prepared once (at model load) for the binary kernels: the row-major rows of MODEL.md,
/// the same bits interleaved in blocks of <see cref="BlockRows"/> rows, regrouped for the table-lookup kernels in blocks
/// of <see cref="LutColumns"/> rows (<see cref="LookupGroupBlocks"/>), and the row sums the plane GEMM needs.
/// </summary>
/// <remarks>
/// Interleaved layout, in 32-bit words (little-endian, so 32-bit word t of a row holds elements 32t..32t+31): rows
/// are taken in blocks of 16 (the last block padded with zero rows); inside a block, 32-bit word t of the 16 rows is
/// stored side by side: as uint, Interleaved[(b·2·RowWords + t)·16 + l] = row (16b + l), 32-bit word t. A 512-bit
/// load then holds word t of 16 rows, one per 32-bit lane, so XOR/AND against a broadcast activation word and a
/// per-lane popcount leave each row's count in its own lane: no horizontal sums (a 256-bit path reads the block as
/// two 8-lane halves). 32-bit rather than 64-bit lanes give each lane twice as many inputs per row, which halves the
/// fixed cost per output of finishing a count (K = 768: 24 inputs instead of 12). The row-major copy stays for the
/// kernels that read rows.
/// </remarks>
internal sealed class BinaryWeights
{
    /// <summary>Rows per interleaved block: one 32-bit lane each in a 512-bit vector.</summary>
    public const int BlockRows = 16;

    private readonly ulong[] rowMajor;
    private readonly ulong[] interleaved;
    private readonly int[] rowSums;
    private readonly byte[]? grouped;
    private readonly (byte[] Bytes, int Offset) sixBitGroups, nibbleGroups;

    /// <summary>Rows per block of <see cref="LookupGroupBlocks"/>: one byte lane each in a 512-bit vector.</summary>
    public const int LutColumns = 64;

    /// <summary>Bytes of one group of <see cref="GroupedBytes"/>: 4 elements of each of a block's 16 rows.</summary>
    public const int GroupBytes = 4 * BlockRows;

    /// <summary>Groups of 4 elements per row of <see cref="GroupedBytes"/>: ⌈K / 4⌉.</summary>
    public static int ByteGroupCount(int k) => (k + 3) / 4;

    /// <summary>
    /// Where row <paramref name="row"/>'s first element sits in <see cref="GroupedBytes"/> (rows of <paramref name="k"/>
    /// elements); its elements 4g..4g+3 are the 4 bytes g·<see cref="GroupBytes"/> further on.
    /// </summary>
    public static long GroupedRowOffset(int row, int k) =>
        (long)(row / BlockRows) * ByteGroupCount(k) * GroupBytes + row % BlockRows * 4;

    /// <summary>Prepares <paramref name="n"/> packed rows of <paramref name="k"/> elements (MODEL.md layout).</summary>
    /// <param name="packedRows">N rows of RowWords(K) words.</param>
    /// <param name="n">Rows.</param>
    /// <param name="k">Unpadded row length.</param>
    /// <param name="withBytes">Also keep one byte per weight (0 or 1, <see cref="GroupedBytes"/>) for the int8
    /// multiply-add kernels (<see cref="CodeGemm"/>): 8× the packed size.</param>
    /// <param name="lookups">The layouts to keep for the table-lookup XNOR kernels (<see cref="LookupGroupBlocks"/>; a kernel
    /// whose layout is missing runs the nibble blocks instead, the same results): six-bit groups 1.34× the packed size,
    /// nibbles 2×. All by default; a model keeps the one its kernel set reads.</param>
    /// <exception cref="ArgumentException">The span is too short, or a padding bit is set.</exception>
    public BinaryWeights(ReadOnlySpan<ulong> packedRows, int n, int k, bool withBytes = false, LookupLayouts lookups = LookupLayouts.SixBit | LookupLayouts.Nibble)
    {
        GemmValidation.Shape(0, n, k);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the packed layout assumes a little-endian machine");
        int words = BitPacking.RowWords(k);
        BitPacking.CheckLength(packedRows.Length, (long)n * words, nameof(packedRows));
        if (!BitPacking.PaddingIsZero(packedRows, n, k))
            throw new ArgumentException($"packed weight rows have padding bits set beyond K={k} (MODEL.md: padding must be zero)", nameof(packedRows));
        N = n;
        K = k;
        RowWords = words;
        rowMajor = packedRows[..(n * words)].ToArray();
        int blocks = (n + BlockRows - 1) / BlockRows;
        interleaved = new ulong[(long)blocks * BlockRows * words];
        Span<uint> lanes = System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, uint>(interleaved.AsSpan());
        ReadOnlySpan<uint> rows32 = System.Runtime.InteropServices.MemoryMarshal.Cast<ulong, uint>(rowMajor.AsSpan());
        int words32 = 2 * words;
        for (int r = 0; r < n; r++)
        {
            int b = r / BlockRows, l = r % BlockRows;
            for (int t = 0; t < words32; t++) lanes[(int)(((long)b * words32 + t) * BlockRows + l)] = rows32[(int)((long)r * words32 + t)];
        }
        rowSums = new int[n];
        BitPacking.RowSums(rowMajor, n, k, rowSums);
        sixBitGroups = (lookups & LookupLayouts.SixBit) != 0 ? BuildGroupBlocks<SixBitGroups>(rowMajor, n, k) : ([], 0);
        nibbleGroups = (lookups & LookupLayouts.Nibble) != 0 ? BuildGroupBlocks<NibbleGroups>(rowMajor, n, k) : ([], 0);
        if (withBytes)
        {
            int groups = ByteGroupCount(k), paddedRows = (n + 2 * BlockRows - 1) / (2 * BlockRows) * (2 * BlockRows);
            grouped = new byte[(long)paddedRows * groups * 4];
            for (int r = 0; r < n; r++)
            {
                long row = GroupedRowOffset(r, k);
                for (int t = 0; t < k; t++)
                    grouped[row + (long)(t / 4) * GroupBytes + t % 4] = (byte)((rowMajor[(long)r * words + (t >> 6)] >> (t & 63)) & 1);
            }
        }
    }

    // Block b, group g, row l (row 64b + l; zero rows pad N to a multiple of 64) at byte (b·G + g)·64 + l, G =
    // TGroups.Count(K): a 512-bit load holds group g of 64 rows, one per byte lane. The array is pinned and the
    // layout starts on a 64-byte boundary, so those loads never split a cache line.
    private static unsafe (byte[] Bytes, int Offset) BuildGroupBlocks<TGroups>(ulong[] rows, int n, int k) where TGroups : struct, ILookupGroups
    {
        int words = BitPacking.RowWords(k), groups = TGroups.Count(k), blocks = (n + LutColumns - 1) / LutColumns;
        long size = (long)blocks * groups * LutColumns;
        byte[] bytes = GC.AllocateArray<byte>(checked((int)size + 64), pinned: true);
        fixed (byte* start = bytes)
        fixed (ulong* packed = rows)
        {
            int offset = (int)((64 - ((nuint)start & 63)) & 63);
            byte* layout = start + offset;
            byte[] rowGroups = new byte[groups];
            fixed (byte* one = rowGroups)
                for (int r = 0; r < n; r++)
                {
                    TGroups.Row(packed + (long)r * words, words, one);
                    byte* block = layout + (long)(r / LutColumns) * groups * LutColumns + r % LutColumns;
                    for (int g = 0; g < groups; g++)
                        block[(long)g * LutColumns] = one[g];
                }
            return (bytes, offset);
        }
    }

    /// <summary>
    /// The rows regrouped for a table-lookup kernel (<paramref name="layout"/>: <see cref="SixBitGroups"/> or
    /// <see cref="NibbleGroups"/>) in blocks of <see cref="LutColumns"/> rows: block b's group g is 64 bytes, row 64b + l's
    /// at byte l, i.e. byte (b·G + g)·64 + l with G groups a row; zero rows pad N to a multiple of 64. Starts on a 64-byte
    /// boundary (the array is pinned). Empty when built without it.
    /// </summary>
    public ReadOnlySpan<byte> LookupGroupBlocks(LookupLayouts layout)
    {
        (byte[] bytes, int offset) = layout switch
        {
            LookupLayouts.SixBit => sixBitGroups,
            LookupLayouts.Nibble => nibbleGroups,
            _ => ([], 0),
        };
        return bytes.Length == 0 ? default : bytes.AsSpan(offset, bytes.Length - 64);
    }

    /// <summary>True when <see cref="GroupedBytes"/> was built (constructor's withBytes).</summary>
    public bool HasBytes => grouped is not null;

    /// <summary>
    /// One byte per weight (b = 1 for +1, 0 for −1) in the int8 kernels' layout: rows in blocks of <see cref="BlockRows"/>
    /// (zero rows pad N to a multiple of 32, so a kernel may read two adjacent blocks), elements in groups of 4 (zeros pad
    /// K to a multiple of 4); block b's group g is <see cref="GroupBytes"/> bytes, row 16b + l's elements 4g..4g+3 at
    /// bytes 4l..4l+3: byte ((b·⌈K/4⌉ + g)·16 + l)·4 + e (<see cref="GroupedRowOffset"/>). One 32-bit lane per row, like
    /// <see cref="Interleaved"/>.
    /// </summary>
    public ReadOnlySpan<byte> GroupedBytes => grouped;

    /// <summary>Rows (outputs).</summary>
    public int N { get; }

    /// <summary>Unpadded row length.</summary>
    public int K { get; }

    /// <summary>Words per packed row, <see cref="BitPacking.RowWords"/>(K).</summary>
    public int RowWords { get; }

    /// <summary>The rows in MODEL.md's row-major layout.</summary>
    public ReadOnlySpan<ulong> RowMajor => rowMajor;

    /// <summary>The rows interleaved in blocks of <see cref="BlockRows"/> (see remarks).</summary>
    public ReadOnlySpan<ulong> Interleaved => interleaved;

    /// <summary>rowsum(B_j) = 2·popcount(b_j) − K per row.</summary>
    public ReadOnlySpan<int> RowSums => rowSums;
}
