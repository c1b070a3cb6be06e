using BinEngine.Converter;

namespace BinEngine.Tests.Runtime;

/// <summary>
/// The trainer's tiny smoke checkpoint (models/tiny-smoke) converted once into a temporary model file,
/// shared by the tests of a class and deleted after them.
/// </summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tiny-{Guid.NewGuid():N}.bex");
        ModelConverter.Convert(TestPaths.Repo("models/tiny-smoke/model.safetensors"), Path,
            new ConvertOptions { VocabPath = TestPaths.Repo("data/vocab/bert-base-uncased-vocab.txt") });
    }

    /// <summary>The converted model file.</summary>
    public string Path { get; }

    public void Dispose() => File.Delete(Path);
}
