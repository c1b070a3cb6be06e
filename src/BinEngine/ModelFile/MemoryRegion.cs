using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace BinEngine.ModelFile;

/// <summary>
/// The bytes of an open model file: a read-only memory map of the file, or a 64-byte-aligned
/// native copy (for streams and byte arrays). Either way the base address is 64-byte aligned (a
/// map starts on a page), so the file's 64-byte-aligned tensors are aligned in memory.
/// </summary>
internal abstract unsafe class MemoryRegion : IDisposable
{
    public abstract byte* Pointer { get; }

    public abstract long Length { get; }

    public abstract void Dispose();

    public static MemoryRegion Map(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"cannot open model file '{path}': {e.Message}", e);
        }
        try
        {
            long length = stream.Length;
            if (length < BexFormat.HeaderBytes)
                throw new ModelFormatException($"'{path}' is {length} bytes; a model file has at least the {BexFormat.HeaderBytes}-byte header");
            return new MappedRegion(stream, length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public static MemoryRegion Copy(ReadOnlySpan<byte> bytes) => new NativeRegion(bytes);

    private sealed class MappedRegion : MemoryRegion
    {
        private readonly MemoryMappedFile _file;
        private readonly MemoryMappedViewAccessor _view;
        private readonly byte* _pointer;
        private int _disposed;

        public MappedRegion(FileStream stream, long length)
        {
            _file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            try
            {
                _view = _file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                _pointer = p + _view.PointerOffset;
                Length = length;
            }
            catch
            {
                _view?.Dispose();
                _file.Dispose();
                throw;
            }
        }

        public override byte* Pointer => _pointer;

        public override long Length { get; }

        public override void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }
    }

    private sealed class NativeRegion : MemoryRegion
    {
        private byte* _pointer;

        public NativeRegion(ReadOnlySpan<byte> bytes)
        {
            // AlignedAlloc(0) may return null; keep at least one aligned block.
            _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes.Length, 1), BexFormat.Alignment);
            bytes.CopyTo(new Span<byte>(_pointer, bytes.Length));
            Length = bytes.Length;
        }

        ~NativeRegion() => Free();

        public override byte* Pointer => _pointer;

        public override long Length { get; }

        public override void Dispose()
        {
            Free();
            GC.SuppressFinalize(this);
        }

        private void Free()
        {
            byte* p = _pointer;
            _pointer = null;
            if (p != null)
                NativeMemory.AlignedFree(p);
        }
    }
}
