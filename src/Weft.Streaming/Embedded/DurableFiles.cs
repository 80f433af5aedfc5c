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
    // open(2) with O_RDONLY alone opens a directory on Linux and macOS; O_DIRECTORY is left out
    // because its value differs between architectures (0x10000 on x86-64, 0x4000 on arm64).
    private const int ORdOnly = 0;

    /// <summary>Makes the directory's entries (creates, renames, deletes) durable. A no-op on Windows, which has no such call.</summary>
    public static void FsyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var fd = Open(directory, ORdOnly);
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

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="content"/> so that after a crash it holds either
    /// the old or the new content. <paramref name="unique"/>: a temp name of this write's own, for a file
    /// several processes may replace at once (the log's files have one writer, and a fixed name).
    /// </summary>
    public static async ValueTask ReplaceAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken, bool unique = false)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = unique ? $"{path}.{Guid.NewGuid():N}{LogFormat.TempExtension}" : path + LogFormat.TempExtension;
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
