using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace BinEngine.Format;

/// <summary>
/// The bytes of an open model file: a 64-byte-aligned native copy (the default for files, and for
/// streams and byte arrays), or a read-only memory map of the file (opt-in). Either way the base
/// address is 64-byte aligned (a map starts on a page), so the file's 64-byte-aligned tensors are
/// aligned in memory.
/// </summary>
internal abstract unsafe class MemoryRegion : IDisposable
{
    public abstract byte* Pointer { get; }

    public abstract long Length { get; }

    public abstract void Dispose();

    /// <summary>
    /// Reads the whole file into a private aligned buffer. The default for model files: once loaded,
    /// nothing another process does to the file (overwrite in place, truncate, delete) can reach the
    /// model, where a mapping would fault with SIGBUS on a page the file no longer has. Model files
    /// are a few MB and the checksum reads every byte at open anyway, so a map saves no I/O.
    /// </summary>
    public static MemoryRegion Snapshot(string path)
    {
        using FileStream stream = OpenRegularFile(path, out long length);
        var region = new NativeRegion(length);
        try
        {
            // The file may shrink between the length check and the read (a deployment rewriting it):
            // a short read is an error, never a partly filled model.
            stream.ReadExactly(new Span<byte>(region.Pointer, checked((int)length)));
            return region;
        }
        catch (EndOfStreamException e)
        {
            region.Dispose();
            throw new ModelFormatException($"'{path}' shrank below {length} bytes while it was read (replaced during load?)", e);
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Maps the file read-only and shared (opt-in: <c>memoryMap: true</c>): pages are shared with other
    /// processes and the page cache. The file must then not be rewritten in place while mapped —
    /// deploy a new model by writing another file and renaming it over the old one (the mapping keeps
    /// the old inode); truncating a mapped file makes the next read of a lost page fault (SIGBUS).
    /// </summary>
    public static MemoryRegion Map(string path)
    {
        FileStream stream = OpenRegularFile(path, out long length);
        try
        {
            return new MappedRegion(stream, length);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading after checking, without opening it, that it is a
    /// regular file of at least a header's length: opening a FIFO blocks until a writer appears and a
    /// device never ends, so those are refused by what stat reports (a FIFO, socket or character device
    /// reports size 0). A missing file stays <see cref="FileNotFoundException"/>.
    /// </summary>
    private static FileStream OpenRegularFile(string path, out long length)
    {
        ArgumentNullException.ThrowIfNull(path);
        var info = new FileInfo(path);
        if (Directory.Exists(path))
            throw new ModelFormatException($"'{path}' is a directory, not a model file");
        if (!info.Exists)
            throw new FileNotFoundException($"model file '{path}' does not exist", path);
        if (info.Length < BexFormat.HeaderBytes)
            throw new ModelFormatException(info.Length == 0
                ? $"'{path}' is empty or not a regular file (a pipe or device); a model file has at least the {BexFormat.HeaderBytes}-byte header"
                : $"'{path}' is {info.Length} bytes; a model file has at least the {BexFormat.HeaderBytes}-byte header");
        if (info.Length > int.MaxValue)
            throw new ModelFormatException($"'{path}' is {info.Length} bytes; model files up to 2 GiB are supported");
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException and not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new ModelFormatException($"cannot open model file '{path}': {e.Message}", e);
        }
        length = stream.Length;
        if (length < BexFormat.HeaderBytes)
        {
            stream.Dispose();
            throw new ModelFormatException($"'{path}' is {length} bytes; a model file has at least the {BexFormat.HeaderBytes}-byte header");
        }
        return stream;
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

        public NativeRegion(ReadOnlySpan<byte> bytes) : this(bytes.Length) =>
            bytes.CopyTo(new Span<byte>(_pointer, bytes.Length));

        public NativeRegion(long length)
        {
            // AlignedAlloc(0) may return null; keep at least one aligned block.
            _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(length, 1), BexFormat.Alignment);
            Length = length;
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
