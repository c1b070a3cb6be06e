using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace BinEngine.Cli;

/// <summary>A file as the kernel knows it: two paths (or a path and a descriptor) name the same file when device and inode are equal.</summary>
/// <param name="IsRegular">A regular file (not a FIFO, device, socket or folder).</param>
internal readonly record struct FileId(ulong Device, ulong Inode, bool IsRegular)
{
    public bool SameFileAs(FileId other) => Device == other.Device && Inode == other.Inode;
}

/// <summary>
/// The few POSIX facts the CLI needs and .NET does not expose: a file's identity (stat(2): device and
/// inode, so a symbolic or hard link to a file is recognised as that file, which comparing names cannot do)
/// and whether descriptor 0 is really the stdin this process was started with.
/// </summary>
/// <remarks>
/// struct stat differs between platforms; only the layouts read here are used: Linux x64 and arm64 (st_dev
/// u64 at 0, st_ino u64 at 8, st_mode u32 at 24 on x64 and 16 on arm64) and macOS (st_dev i32 at 0, st_mode
/// u16 at 4, st_ino u64 at 8, the 64-bit-inode stat). Elsewhere (Windows, 32-bit) the answers are "unknown"
/// (null / false) and callers fall back to comparing full paths.
/// </remarks>
internal static unsafe partial class UnixFiles
{
    private const int StatBufferBytes = 512; // larger than struct stat on every platform above (144 bytes)
    private const uint TypeMask = 0xF000, TypeRegular = 0x8000; // S_IFMT, S_IFREG: the same on Linux and macOS
    private const int F_GETFD = 1, FD_CLOEXEC = 1;           // the same on Linux and macOS

    /// <summary>The identity of the file at <paramref name="path"/> (links followed); null when it does not exist or the platform is not supported.</summary>
    public static FileId? Of(string path)
    {
        if (!Supported) return null;
        byte* buffer = stackalloc byte[StatBufferBytes];
        return StatPath(path, buffer) == 0 ? Decode(buffer) : null;
    }

    /// <summary>The identity of the file open on descriptor <paramref name="fd"/>; null when it is not open or the platform is not supported.</summary>
    public static FileId? Of(int fd)
    {
        if (!Supported) return null;
        byte* buffer = stackalloc byte[StatBufferBytes];
        return StatDescriptor(fd, buffer) == 0 ? Decode(buffer) : null;
    }

    /// <summary>
    /// True when <paramref name="a"/> and <paramref name="b"/> are one file: same device and inode where stat is
    /// available (links and hard links included), else the same full path after resolving symbolic links.
    /// </summary>
    public static bool SameFile(string a, string b)
    {
        if (Of(a) is { } x && Of(b) is { } y) return x.SameFileAs(y);
        if (Supported) return false; // one of them does not exist: nothing to overwrite
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return string.Equals(FinalPath(a), FinalPath(b), comparison);
    }

    /// <summary>
    /// True when this process was started with descriptor 0 closed (`&lt;&amp;-`). The runtime then opens its own
    /// pipe (or another file) on the lowest free descriptor, 0, and reading "stdin" waits on that pipe forever.
    /// Every descriptor .NET opens has FD_CLOEXEC set, while a descriptor inherited through exec cannot have
    /// it (exec would have closed it): so 0 is closed, or 0 with FD_CLOEXEC is not the stdin we were given.
    /// </summary>
    public static bool StdinWasClosed()
    {
        if (!Supported) return false;
        int flags = OperatingSystem.IsMacOS() ? FcntlMac(0, F_GETFD) : FcntlLinux(0, F_GETFD);
        return flags < 0 || (flags & FD_CLOEXEC) != 0;
    }

    private static bool Supported =>
        (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64)
        || (OperatingSystem.IsMacOS() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64);

    private static FileId Decode(byte* buffer)
    {
        var s = new ReadOnlySpan<byte>(buffer, StatBufferBytes);
        if (OperatingSystem.IsMacOS())
            return new FileId(BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt64LittleEndian(s[8..]),
                (BinaryPrimitives.ReadUInt16LittleEndian(s[4..]) & TypeMask) == TypeRegular);
        uint mode = BinaryPrimitives.ReadUInt32LittleEndian(s[(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16)..]);
        return new FileId(BinaryPrimitives.ReadUInt64LittleEndian(s), BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), (mode & TypeMask) == TypeRegular);
    }

    private static int StatPath(string path, byte* buffer)
    {
        if (OperatingSystem.IsMacOS())
            return RuntimeInformation.ProcessArchitecture == Architecture.X64 ? StatMacX64(path, buffer) : StatMac(path, buffer);
        try
        {
            return StatLinux(path, buffer);
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.33 exports stat only through __xstat(_STAT_VER, …): 1 on x64, 0 on arm64.
            return XStatLinux(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 1 : 0, path, buffer);
        }
    }

    private static int StatDescriptor(int fd, byte* buffer)
    {
        if (OperatingSystem.IsMacOS())
            return RuntimeInformation.ProcessArchitecture == Architecture.X64 ? FStatMacX64(fd, buffer) : FStatMac(fd, buffer);
        try
        {
            return FStatLinux(fd, buffer);
        }
        catch (EntryPointNotFoundException)
        {
            return FXStatLinux(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 1 : 0, fd, buffer);
        }
    }

    private static string FinalPath(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            return full;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatLinux(string path, byte* buffer);

    [LibraryImport("libc.so.6", EntryPoint = "__xstat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int XStatLinux(int version, string path, byte* buffer);

    [LibraryImport("libc.so.6", EntryPoint = "fstat")]
    private static partial int FStatLinux(int fd, byte* buffer);

    [LibraryImport("libc.so.6", EntryPoint = "__fxstat")]
    private static partial int FXStatLinux(int version, int fd, byte* buffer);

    [LibraryImport("libc.so.6", EntryPoint = "fcntl")]
    private static partial int FcntlLinux(int fd, int command);

    [LibraryImport("libSystem.dylib", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatMac(string path, byte* buffer);

    [LibraryImport("libSystem.dylib", EntryPoint = "stat$INODE64", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatMacX64(string path, byte* buffer);

    [LibraryImport("libSystem.dylib", EntryPoint = "fstat")]
    private static partial int FStatMac(int fd, byte* buffer);

    [LibraryImport("libSystem.dylib", EntryPoint = "fstat$INODE64")]
    private static partial int FStatMacX64(int fd, byte* buffer);

    [LibraryImport("libSystem.dylib", EntryPoint = "fcntl")]
    private static partial int FcntlMac(int fd, int command);
}
