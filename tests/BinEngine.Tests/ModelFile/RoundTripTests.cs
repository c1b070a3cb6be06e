using BinEngine.Kernels;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BinEngine.Format;

namespace BinEngine.Tests.ModelFileTests;

public class RoundTripTests
{
    private static (byte[] File, float[] F32, Half[] F16, sbyte[] I8, int[] I32, ulong[] Bits1, ulong[] Bits3) Build()
    {
        var rng = new Random(42);
        var f32 = Enumerable.Range(0, 3 * 5).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        f32[0] = float.NegativeZero;
        f32[1] = float.Epsilon;
        var f16 = Enumerable.Range(0, 7).Select(i => (Half)(i * 0.25f - 1)).ToArray();
        var i8 = Enumerable.Range(0, 2 * 3 * 4).Select(i => (sbyte)(i * 11 - 128)).ToArray();
        var i32 = new[] { int.MinValue, -1, 0, 1, int.MaxValue };
        var codes1 = Enumerable.Range(0, 2 * 300).Select(_ => (sbyte)(rng.Next(2) * 2 - 1)).ToArray();
        var bits1 = new ulong[2 * TwosComplementPlanes.RowWords(300, 1)];
        for (int r = 0; r < 2; r++)
            TwosComplementPlanes.PackRow(codes1.AsSpan(r * 300, 300), 1, bits1.AsSpan(r * 8, 8));
        var codes3 = Enumerable.Range(0, 3 * 70).Select(_ => (sbyte)rng.Next(-4, 4)).ToArray();
        var bits3 = new ulong[3 * TwosComplementPlanes.RowWords(70, 3)];
        for (int r = 0; r < 3; r++)
            TwosComplementPlanes.PackRow(codes3.AsSpan(r * 70, 70), 3, bits3.AsSpan(r * 12, 12));

        var w = new TensorFileWriter()
            .Add("a.int", MetadataValue.FromInt64(long.MinValue))
            .Add("a.float", MetadataValue.FromFloat64(1e-5))
            .Add("a.nan", MetadataValue.FromFloat64(double.NaN))
            .Add("a.bool", MetadataValue.FromBool(true))
            .Add("a.string", MetadataValue.FromString("naïve café ✓"))
            .Add("a.empty", MetadataValue.FromString(""))
            .Add("a.strings", MetadataValue.FromStringArray(["[PAD]", "", "##s", "日本"]))
            .Add("a.ints", MetadataValue.FromInt64Array([1, -2, long.MaxValue]))
            .Add("a.floats", MetadataValue.FromFloat64Array([0.5, -0.0, double.PositiveInfinity]))
            .AddF32("t.f32", [3, 5], f32)
            .AddF16("t.f16", [7], f16)
            .AddI8("t.i8", [2, 3, 4], i8)
            .AddI32("t.i32", [5], i32)
            .AddBits("t.bits1", 1, [2, 300], bits1)
            .AddBits("t.bits3", 3, [3, 70], bits3);
        return (w.ToArray(), f32, f16, i8, i32, bits1, bits3);
    }

    public static TheoryData<string> Sources => ["bytes", "stream", "mapped file"];

    [Theory]
    [MemberData(nameof(Sources))]
    public void EveryTensorAndMetadataTypeRoundTrips(string source)
    {
        var (file, f32, f16, i8, i32, bits1, bits3) = Build();
        string? temp = null;
        try
        {
            TensorFile t;
            switch (source)
            {
                case "bytes": t = TensorFile.Open(file); break;
                case "stream": t = TensorFile.Open(new MemoryStream(file)); break;
                default:
                    temp = Path.GetTempFileName();
                    File.WriteAllBytes(temp, file);
                    t = TensorFile.Open(temp);
                    break;
            }
            using (t)
            {
                Assert.Equal(long.MinValue, t.GetInt("a.int"));
                Assert.Equal(1e-5, t.GetDouble("a.float"));
                Assert.Equal(1e-5f, t.GetFloat("a.float"));
                Assert.True(double.IsNaN(t.GetDouble("a.nan")));
                Assert.True(t.GetBool("a.bool"));
                Assert.Equal("naïve café ✓", t.GetString("a.string"));
                Assert.Equal("", t.GetString("a.empty"));
                Assert.Equal(["[PAD]", "", "##s", "日本"], t.GetStringArray("a.strings"));
                Assert.Equal([1L, -2L, long.MaxValue], t.GetInt64Array("a.ints"));
                Assert.Equal([0.5, -0.0, double.PositiveInfinity], t.GetFloat64Array("a.floats"));
                Assert.Equal(["a.int", "a.float", "a.nan", "a.bool", "a.string", "a.empty", "a.strings", "a.ints", "a.floats"], t.Metadata.Select(m => m.Key));

                Assert.Equal(f32, t.F32("t.f32").ToArray());
                Assert.True(float.IsNegative(t.F32("t.f32")[0]));
                Assert.Equal(f16, t.F16("t.f16").ToArray());
                Assert.Equal(i8, t.I8("t.i8").ToArray());
                Assert.Equal(i32, t.I32("t.i32").ToArray());
                Assert.Equal(bits1, t.Bits("t.bits1").ToArray());
                Assert.Equal(bits3, t.Bits("t.bits3").ToArray());

                var info = t.GetTensor("t.bits3");
                Assert.Equal(TensorElementType.Bits, info.ElementType);
                Assert.Equal(3, info.Planes);
                Assert.Equal([3, 70], info.Shape);
                Assert.Equal(3 * 12 * 8, info.ByteLength);
                Assert.Equal([2, 3, 4], t.GetTensor("t.i8").Shape);
                Assert.Equal(file.Length, t.FileLength);
                foreach (var x in t.Tensors)
                {
                    Assert.Equal(0, x.Offset % 64);
                    Assert.Equal(0, Address(t.Bytes(x)) % 64);
                }
            }
        }
        finally
        {
            if (temp is not null)
                File.Delete(temp);
        }
    }

    private static unsafe long Address(ReadOnlySpan<byte> span) => (long)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));

    [Fact]
    public void WriterIsDeterministic() => Assert.Equal(Build().File, Build().File);

    [Fact]
    public void WrongTypedAccessAndMissingNamesAreFormatErrors()
    {
        using var t = TensorFile.Open(Build().File);
        Assert.Contains("is F32, read as I8", Assert.Throws<ModelFormatException>(() => t.I8("t.f32").Length).Message);
        Assert.Contains("'nope' is not in the file", Assert.Throws<ModelFormatException>(() => t.GetTensor("nope")).Message);
        Assert.Contains("'a.int' is Int64, expected String", Assert.Throws<ModelFormatException>(() => t.GetString("a.int")).Message);
        Assert.Contains("'missing' is missing", Assert.Throws<ModelFormatException>(() => t.GetInt("missing")).Message);
    }

    [Fact]
    public void WriterRejectsBadInput()
    {
        var w = new TensorFileWriter();
        Assert.Throws<ArgumentException>(() => w.AddF32("x", [2, 2], new float[3]));
        Assert.Throws<ArgumentException>(() => w.AddF32("x", [0], []));
        Assert.Throws<ArgumentException>(() => w.AddF32("", [1], new float[1]));
        Assert.Throws<ArgumentException>(() => w.AddBits("b", 1, [1, 10], new ulong[3]));
        w.AddF32("x", [1], new float[1]);
        Assert.Throws<ArgumentException>(() => w.AddF32("x", [1], new float[1]));
        w.Add("k", MetadataValue.FromBool(false));
        Assert.Throws<ArgumentException>(() => w.Add("k", MetadataValue.FromBool(true)));
        Assert.Throws<ArgumentException>(() => w.Add("bad\ud800", MetadataValue.FromBool(true)));
    }

    [Fact]
    public void DisposedFileRefusesAccess()
    {
        var t = TensorFile.Open(Build().File);
        t.Dispose();
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.F32("t.f32").Length);
    }
}
