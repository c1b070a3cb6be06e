using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BinEngine.Kernels;

/// <summary>
/// W1A1 on AVX-512 by table lookup, written once for each grouping <typeparamref name="TGroups"/>: one byte lookup counts
/// the differing bits of a group of positions for 64 weight rows at once. With VBMI (<see cref="SixBitGroups"/>,
/// xnor-avx512-lut6) a vpermb counts 6 positions, so a product costs 3 vector operations per 384 binary MACs (XOR,
/// lookup, byte add), against ≈ 7 per 512 for the carry-save count (<see cref="XnorGemmAvx512HarleySeal"/>), whose
/// popcount finish is half its work; without VBMI (<see cref="NibbleGroups"/>, xnor-avx512bw-lut4) a vpshufb counts 4.
/// </summary>
/// <remarks>
/// Weights come regrouped, 64 rows to a 512-bit vector (<see cref="BinaryWeights.LookupGroupBlocks"/>), and each
/// activation row is regrouped alike on entry (a copy and a few pext/pdep per row). For activation row i and group g,
/// byte lane l of <c>Lookup(P, W_g ⊕ broadcast(a_ig))</c>, with P[x] = popcount of the bits the lookup reads, is the
/// number of positions of group g where row i and weight row l differ (<see cref="ILookupGroups"/>). Summing over the
/// groups gives d = popcount(a_i ⊕ w_l) and C = K − 2d (<see cref="XnorGemm"/>).
/// <para>
/// Byte bound: a lane gains at most <c>Bits</c> a group, so bytes are summed over chunks of ⌊252 / Bits⌋ groups (≤ 252)
/// and each chunk is widened into 16-bit sums (K up to 65,535 fits them). Register tile: 4 activation rows × 4 blocks
/// of 64 weight rows, 16 byte accumulators; each weight vector is loaded once for 4 rows and each broadcast used for 4
/// blocks. The six-bit kernel is bound by vpermb's port (one a cycle here; bench/README.md, "Levers").
/// </para>
/// <para>
/// Without its layout in the prepared weights (or bare rows), or with rows of more than <see cref="MaxGroups"/> groups,
/// it runs the nibble-lookup blocks like xnor-avx512-nibble.
/// </para>
/// </remarks>
internal sealed class XnorGemmLookup<TGroups> : XnorGemm where TGroups : struct, ILookupGroups
{
    /// <inheritdoc/>
    public override string Name => TGroups.KernelName;
    /// <inheritdoc/>
    public override KernelIsa Isa => KernelIsa.Avx512;
    /// <inheritdoc/>
    public override bool IsSupported => TGroups.IsSupported;

    /// <inheritdoc/>
    internal override int ColBlock => BinaryWeights.LutColumns;

    /// <inheritdoc/>
    internal override LookupLayouts LookupLayout => TGroups.Layout;

    /// <summary>With its groups: the floats are made where the integer sums are turned into products anyway.</summary>
    public override bool FusesEpilogue(BinaryWeights w) =>
        IsSupported && !w.LookupGroupBlocks(TGroups.Layout).IsEmpty && TGroups.Count(w.K) <= MaxGroups;

    /// <summary>Groups a byte lane may sum before widening: 42 six-bit or 63 four-bit groups (≤ 252).</summary>
    private static int ChunkGroups => 252 / TGroups.Bits;

    /// <summary>Groups per row the stack holds for 4 rows (8 KB: K up to ≈ 12,000 in six-bit groups, 8,192 in nibbles).</summary>
    private const int MaxGroups = 2048;

    private const int TileRows = 4, TileBlocks = 4, Lanes = BinaryWeights.LutColumns;

    /// <summary>
    /// The grouping's table as a static field copied into a local before each loop: the JIT keeps that local in a
    /// register, while <c>TGroups.PopCountTable</c> read directly became a vector constant it loaded from memory at
    /// every lookup (0.91× end to end; `DOTNET_JitDisasm`).
    /// </summary>
    private static readonly Vector512<byte> PopCountTable = TGroups.PopCountTable;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal override unsafe void Compute(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        int groups = TGroups.Count(g.K), words = BitPacking.RowWords(g.K);
        if (g.WLookupGroups == null || groups > MaxGroups)
        {
            Debug.Assert(g.Y == null, "MultiplyScaled checks FusesEpilogue");
            BinaryGemmDriver<PopCountBlockNibble<NibbleLanes512, Vector512<byte>>>.Xnor(g, m0, m1, n0, n1);
            return;
        }
        Debug.Assert(n0 % Lanes == 0, "threads split N in multiples of ColBlock");
        byte* act = stackalloc byte[TileRows * groups];
        ushort* sums = stackalloc ushort[TileRows * TileBlocks * Lanes];
        ulong* a = (ulong*)g.A;
        int* c = (int*)g.C;
        int b0 = n0 / Lanes, b1 = (n1 + Lanes - 1) / Lanes;
        for (int i = m0; i < m1; i += TileRows)
        {
            int rows = Math.Min(TileRows, m1 - i);
            for (int r = 0; r < rows; r++)
                TGroups.Row(a + (long)(i + r) * words, words, act + r * groups);
            for (int b = b0; b < b1; b += TileBlocks)
            {
                int blocks = Math.Min(TileBlocks, b1 - b);
                byte* w = g.WLookupGroups + (long)b * groups * Lanes;
                if (blocks == TileBlocks && rows == TileRows)
                    Tile4x4(act, w, groups, sums);
                else
                    for (int r = 0; r < rows; r++)
                        if (blocks == TileBlocks)
                            Tile1x4(act + r * groups, w, groups, sums + r * TileBlocks * Lanes);
                        else
                            for (int q = 0; q < blocks; q++)
                                Tile1x1(act + r * groups, w + (long)q * groups * Lanes, groups, sums + (r * TileBlocks + q) * Lanes);
                int columns = Math.Min(n1, (b + blocks) * Lanes) - b * Lanes;
                for (int r = 0; r < rows; r++)
                {
                    long at = (long)(i + r) * g.N + b * Lanes;
                    if (g.Y == null)
                        StoreRow(sums + r * TileBlocks * Lanes, columns, c + at, g.K);
                    else
                        StoreRowScaled(sums + r * TileBlocks * Lanes, columns, g.Y + at, g.K, g.Scales[i + r], g.Alpha + b * Lanes, g.Bias + b * Lanes);
                }
            }
        }
    }

    /// <summary>Byte lane l: the positions of this group where weight row l and the activation differ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Differing(Vector512<byte> table, Vector512<byte> weights, Vector512<byte> activation) =>
        TGroups.Lookup(table, weights ^ activation);

    /// <summary>4 rows × 4 blocks: sums[(r·4 + q)·64 + l] = d(row r, weight row 64q + l).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile4x4(byte* act, byte* w, int groups, ushort* sums)
    {
        Vector512<byte> popCount = PopCountTable;   // a local: a static read in the loop brought a class-init check that spilled every accumulator
        long stride = (long)groups * Lanes;   // bytes from one block of 64 weight rows to the next
        int chunk = ChunkGroups;
        for (int g0 = 0; g0 < groups; g0 += chunk)
        {
            int g1 = Math.Min(groups, g0 + chunk);
            Vector512<byte> s00 = default, s01 = default, s02 = default, s03 = default;
            Vector512<byte> s10 = default, s11 = default, s12 = default, s13 = default;
            Vector512<byte> s20 = default, s21 = default, s22 = default, s23 = default;
            Vector512<byte> s30 = default, s31 = default, s32 = default, s33 = default;
            byte* wg = w + (long)g0 * Lanes;
            for (int gi = g0; gi < g1; gi++, wg += Lanes)
            {
                var w0 = Vector512.LoadAligned(wg);
                var w1 = Vector512.LoadAligned(wg + stride);
                var w2 = Vector512.LoadAligned(wg + 2 * stride);
                var w3 = Vector512.LoadAligned(wg + 3 * stride);
                var a0 = Vector512.Create(act[gi]);
                s00 += Differing(popCount, w0, a0); s01 += Differing(popCount, w1, a0); s02 += Differing(popCount, w2, a0); s03 += Differing(popCount, w3, a0);
                var a1 = Vector512.Create(act[groups + gi]);
                s10 += Differing(popCount, w0, a1); s11 += Differing(popCount, w1, a1); s12 += Differing(popCount, w2, a1); s13 += Differing(popCount, w3, a1);
                var a2 = Vector512.Create(act[2 * groups + gi]);
                s20 += Differing(popCount, w0, a2); s21 += Differing(popCount, w1, a2); s22 += Differing(popCount, w2, a2); s23 += Differing(popCount, w3, a2);
                var a3 = Vector512.Create(act[3 * groups + gi]);
                s30 += Differing(popCount, w0, a3); s31 += Differing(popCount, w1, a3); s32 += Differing(popCount, w2, a3); s33 += Differing(popCount, w3, a3);
            }
            bool first = g0 == 0;
            Widen(sums + 0 * Lanes, s00, first); Widen(sums + 1 * Lanes, s01, first); Widen(sums + 2 * Lanes, s02, first); Widen(sums + 3 * Lanes, s03, first);
            Widen(sums + 4 * Lanes, s10, first); Widen(sums + 5 * Lanes, s11, first); Widen(sums + 6 * Lanes, s12, first); Widen(sums + 7 * Lanes, s13, first);
            Widen(sums + 8 * Lanes, s20, first); Widen(sums + 9 * Lanes, s21, first); Widen(sums + 10 * Lanes, s22, first); Widen(sums + 11 * Lanes, s23, first);
            Widen(sums + 12 * Lanes, s30, first); Widen(sums + 13 * Lanes, s31, first); Widen(sums + 14 * Lanes, s32, first); Widen(sums + 15 * Lanes, s33, first);
        }
    }

    /// <summary>1 row × 4 blocks: sums[q·64 + l].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile1x4(byte* act, byte* w, int groups, ushort* sums)
    {
        Vector512<byte> popCount = PopCountTable;   // a local: a static read in the loop brought a class-init check that spilled every accumulator
        long stride = (long)groups * Lanes;
        int chunk = ChunkGroups;
        for (int g0 = 0; g0 < groups; g0 += chunk)
        {
            int g1 = Math.Min(groups, g0 + chunk);
            Vector512<byte> s0 = default, s1 = default, s2 = default, s3 = default;
            byte* wg = w + (long)g0 * Lanes;
            for (int gi = g0; gi < g1; gi++, wg += Lanes)
            {
                var a0 = Vector512.Create(act[gi]);
                s0 += Differing(popCount, Vector512.LoadAligned(wg), a0);
                s1 += Differing(popCount, Vector512.LoadAligned(wg + stride), a0);
                s2 += Differing(popCount, Vector512.LoadAligned(wg + 2 * stride), a0);
                s3 += Differing(popCount, Vector512.LoadAligned(wg + 3 * stride), a0);
            }
            bool first = g0 == 0;
            Widen(sums, s0, first); Widen(sums + Lanes, s1, first); Widen(sums + 2 * Lanes, s2, first); Widen(sums + 3 * Lanes, s3, first);
        }
    }

    /// <summary>1 row × 1 block (the edges): sums[l].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile1x1(byte* act, byte* w, int groups, ushort* sums)
    {
        Vector512<byte> popCount = PopCountTable;   // a local: a static read in the loop brought a class-init check that spilled every accumulator
        int chunk = ChunkGroups;
        for (int g0 = 0; g0 < groups; g0 += chunk)
        {
            int g1 = Math.Min(groups, g0 + chunk);
            Vector512<byte> s0 = default;
            for (int gi = g0; gi < g1; gi++)
                s0 += Differing(popCount, Vector512.LoadAligned(w + (long)gi * Lanes), Vector512.Create(act[gi]));
            Widen(sums, s0, g0 == 0);
        }
    }

    /// <summary>The 64 byte sums of a chunk into (or onto, after the first chunk) 64 16-bit sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Widen(ushort* sums, Vector512<byte> bytes, bool first)
    {
        Vector512<ushort> low = Avx512BW.ConvertToVector512UInt16(bytes.GetLower());
        Vector512<ushort> high = Avx512BW.ConvertToVector512UInt16(bytes.GetUpper());
        if (!first)
        {
            low += Vector512.Load(sums);
            high += Vector512.Load(sums + 32);
        }
        low.Store(sums);
        high.Store(sums + 32);
    }

    /// <summary>C = K − 2d for the first <paramref name="columns"/> sums of a tile row (blocks side by side).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow(ushort* sums, int columns, int* c, int k)
    {
        var kv = Vector512.Create(k);
        int j = 0;
        for (; j + 16 <= columns; j += 16)
        {
            Vector512<int> d = Avx512F.ConvertToVector512Int32(Vector256.Load(sums + j)).AsInt32();
            (kv - d - d).Store(c + j);
        }
        for (; j < columns; j++)
            c[j] = k - 2 * sums[j];
    }

    /// <summary>
    /// y = p · (α · s) + b with p = K − 2d for the first <paramref name="columns"/> sums of a tile row: Epilogue.ScaleBias's
    /// arithmetic in its order (p exact in float, α·s rounded, then an unfused multiply and add), so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRowScaled(ushort* sums, int columns, float* y, int k, float scale, float* alpha, float* bias)
    {
        var kv = Vector512.Create(k);
        var s = Vector512.Create(scale);
        int j = 0;
        for (; j + 16 <= columns; j += 16)
        {
            Vector512<int> d = Avx512F.ConvertToVector512Int32(Vector256.Load(sums + j)).AsInt32();
            Vector512<float> p = Vector512.ConvertToSingle(kv - d - d);
            Vector512<float> rowScale = Vector512.Load(alpha + j) * s;
            (p * rowScale + Vector512.Load(bias + j)).Store(y + j);
        }
        for (; j < columns; j++)
            y[j] = (k - 2 * sums[j]) * (alpha[j] * scale) + bias[j];
    }
}
