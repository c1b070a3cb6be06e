using System.IO.Hashing;
using BinEngine.Format;
using BinEngine.Tests.ConverterTests;

namespace BinEngine.Tests.ModelFileTests;

public class ModelFileTests
{
    [Fact]
    public void MappedFileServesTheSameTensorsAsTheInMemoryCopy()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Fixtures.TinyModel);
            using var mapped = ModelFile.Open(path);
            using var memory = ModelFile.Open(Fixtures.TinyModel);
            using var stream = ModelFile.Open(new MemoryStream(Fixtures.TinyModel));
            foreach (var t in mapped.Container.Tensors)
            {
                Assert.True(mapped.Container.Bytes(t).SequenceEqual(memory.Container.Bytes(t.Name)), t.Name);
                Assert.True(mapped.Container.Bytes(t).SequenceEqual(stream.Container.Bytes(t.Name)), t.Name);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ConcurrentReadersSeeTheSameValues()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel);
        var expected = new float[50][];
        for (int id = 0; id < 50; id++)
        {
            expected[id] = new float[32];
            m.TokenEmbedding(id, expected[id]);
        }
        ulong bitsHash = XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.Bits("blocks.1.slfn.f1.weight")));
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var row = new float[32];
            for (int rep = 0; rep < 50; rep++)
            {
                int id = (i * 7 + rep) % 50;
                m.TokenEmbedding(id, row);
                Assert.Equal(expected[id], row);
                Assert.Equal(bitsHash, XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.Bits("blocks.1.slfn.f1.weight"))));
            }
        });
    }

    [Fact]
    public void OutOfRangeLookupsAreArgumentErrors()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel);
        var row = new float[32];
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TokenEmbedding(50, row));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TokenEmbedding(-1, row));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.PositionEmbedding(16, row));
        Assert.Throws<ArgumentException>(() => m.PositionEmbedding(0, new float[31]));
    }

    [Fact]
    public void LayoutListsEveryTensorOnce()
    {
        using var m = ModelFile.Open(Fixtures.TinyModel);
        var expected = ModelLayout.Expected(m.Config, m.TokenRows, m.HasTokenMap);
        Assert.Equal(expected.Select(e => e.Name), m.Container.Tensors.Select(t => t.Name));
        // embed: tok, tok.scale, tok_map, pos, pos.scale, ln ×2; per block 8 BinLinears × 3 + 2 LNs × 2; exits 2 × 2.
        Assert.Equal(7 + 2 * (8 * 3 + 4) + 4, expected.Count);
    }
}
