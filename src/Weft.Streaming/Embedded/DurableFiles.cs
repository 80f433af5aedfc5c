using System.Globalization;
using System.Runtime.InteropServices;

namespace Weft.Streaming.Embedded;

/// <summary>
/// The file-system steps the log's durability rests on: fsync of a directory (so a created,
/// renamed or deleted name survives a crash) and the atomic replacement of a small file
/// (write a temp file, fsync it, rename it over the old one, fsync the directory).
/// </summary>
internal static partial class DurableFiles
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000; // Linux; macOS has 0x100000, handled below.
    private const int ODirectoryMac = 0x100000;

    /// <summary>Makes the directory's entries (creates, renames, deletes) durable. A no-op on Windows, which has no such call.</summary>
    public static void FsyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var flags = ORdOnly | (OperatingSystem.IsMacOS() ? ODirectoryMac : ODirectory);
        var fd = Open(directory, flags);
        if (fd < 0)
        {
            ThrowErrno("open", directory);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                ThrowErrno("fsync", directory);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> so that after a crash it holds either the old or the new content.</summary>
    public static async ValueTask ReplaceAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = path + LogFormat.TempExtension;
        using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            await RandomAccess.WriteAsync(handle, content, 0, cancellationToken).ConfigureAwait(false);
            RandomAccess.FlushToDisk(handle);
        }

        File.Move(temp, path, overwrite: true);
        FsyncDirectory(directory);
    }

    private static void ThrowErrno(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        throw new IOException(string.Create(CultureInfo.InvariantCulture,
            $"{call}(2) on '{path}' failed with errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})."));
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
