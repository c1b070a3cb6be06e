using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using BinEngine.Format;

namespace BinEngine.Tests.ModelFileTests;

/// <summary>
/// The model file's checksums are XXH64 with seed 0 from System.IO.Hashing (docs/FORMAT.md). These tests pin that
/// choice: the published vectors (so a swap to another variant such as XXH3 fails here, not in every shipped model),
/// chunked hashing as the reader does it, and the shipped models' stored checksums.
/// </summary>
public class ChecksumTests
{
    // Published XXH64 (seed 0) values: xxhash.h's sanity checks and python-xxhash's README.
    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1UL)]
    public void MatchesPublishedVectors(string text, ulong expected) =>
        Assert.Equal(expected, XxHash64.HashToUInt64(Encoding.ASCII.GetBytes(text)));

    // The reader appends the data section in chunks (spans stay within int range past 2 GiB); chunk boundaries that
    // split XXH64's 32-byte stripes must not change the result.
    [Fact]
    public void ChunkedAppendEqualsOneShot()
    {
        var rng = new Random(7);
        foreach (int length in new[] { 0, 1, 31, 32, 33, 63, 64, 100, 1000, 4099 })
        {
            var data = new byte[length];
            rng.NextBytes(data);
            ulong oneShot = XxHash64.HashToUInt64(data);
            for (int trial = 0; trial < 20; trial++)
            {
                var h = new XxHash64();
                int at = 0;
                while (at < length)
                {
                    int n = Math.Min(length - at, rng.Next(0, 70));
                    h.Append(data.AsSpan(at, n));
                    at += n;
                }
                Assert.Equal(oneShot, h.GetCurrentHashAsUInt64());
            }
        }
    }

    // The shipped models were written by the hand-written XXH64 this package replaced: their stored checksums must
    // verify through System.IO.Hashing, byte for byte, or every user's model would fail to load.
    [Theory]
    [InlineData("models/sst2-default/model.bex")]
    [InlineData("models/sst2-w1a8/model.bex")]
    [InlineData("models/trec/model.bex")]
    public void ShippedModelsChecksumsVerify(string relative)
    {
        string path = TestPaths.Repo(relative);
        byte[] file = File.ReadAllBytes(path);
        ulong dataOffset = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(BexFormat.OffsetDataOffset));
        ulong storedData = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(BexFormat.OffsetDataChecksum));
        ulong storedHeader = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(BexFormat.OffsetHeaderChecksum));
        Assert.Equal(storedData, XxHash64.HashToUInt64(file.AsSpan((int)dataOffset)));
        Assert.Equal(storedHeader, TensorFileWriter.HeaderChecksum(file, (int)dataOffset));
        // And the reader, which verifies the data checksum at open, accepts the file.
        using var m = BinEngine.Format.ModelFile.Open(path, verifyChecksum: true);
        Assert.True(m.TokenRows > 0);
    }
}
