using System.Text;
using BinEngine.ModelFile;

namespace BinEngine.Tests.ModelFileTests;

public class XxHash64Tests
{
    // Published XXH64 (seed 0) values: xxhash.h's sanity checks and python-xxhash's README.
    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1UL)]
    public void MatchesPublishedVectors(string text, ulong expected) =>
        Assert.Equal(expected, XxHash64.Hash(Encoding.ASCII.GetBytes(text)));

    [Fact]
    public void ChunkedAppendEqualsOneShot()
    {
        var rng = new Random(7);
        foreach (int length in new[] { 0, 1, 31, 32, 33, 63, 64, 100, 1000, 4099 })
        {
            var data = new byte[length];
            rng.NextBytes(data);
            ulong oneShot = XxHash64.Hash(data);
            for (int trial = 0; trial < 20; trial++)
            {
                var h = new XxHash64(0);
                int at = 0;
                while (at < length)
                {
                    int n = Math.Min(length - at, rng.Next(0, 70));
                    h.Append(data.AsSpan(at, n));
                    at += n;
                }
                Assert.Equal(oneShot, h.GetCurrentHash());
            }
        }
    }
}
