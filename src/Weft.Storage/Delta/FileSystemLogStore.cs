using System.Runtime.InteropServices;

namespace Weft.Storage;

/// <summary>
/// The log as files in <c>&lt;table&gt;/_delta_log</c> on a local or shared POSIX/Windows file system.
/// A commit is written to a hidden temp file in the log directory, flushed to disk, then published
/// under its final name with a primitive that fails if the name exists: <c>link(2)</c> on Unix,
/// <c>MoveFileEx</c> without replace on Windows. (<see cref="File.Move(string, string, bool)"/> is not
/// used on Unix: without overwrite it checks and then renames, which two racing writers can both pass.)
/// </summary>
internal sealed partial class FileSystemLogStore : IDeltaLogStore
{
    private const int EEXIST = 17; // Linux, macOS and the BSDs agree.

    private readonly string _logDirectory;

    public FileSystemLogStore(string tablePath)
    {
        _logDirectory = Path.Combine(tablePath, DeltaLogNaming.LogDirectoryName);
    }

    public string Location => _logDirectory;

    public string Describe(long version) => Path.Combine(_logDirectory, DeltaLogNaming.CommitFileName(version));

    public ValueTask<LogListing> ListAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var versions = new List<long>();
        var checkpoints = new List<CheckpointFile>();
        if (Directory.Exists(_logDirectory))
        {
            foreach (var path in Directory.EnumerateFiles(_logDirectory))
            {
                var name = Path.GetFileName(path.AsSpan());
                if (DeltaLogNaming.TryParseCommitFileName(name, out var version))
                {
                    versions.Add(version);
                }
                else if (DeltaLogNaming.IsCheckpointFileName(name) && DeltaLogNaming.TryParseCheckpointFileName(name.ToString(), out var checkpoint))
                {
                    checkpoints.Add(checkpoint);
                }
            }
        }

        versions.Sort();
        return ValueTask.FromResult(new LogListing(versions, checkpoints));
    }

    public string DescribeFile(string fileName) => Path.Combine(_logDirectory, fileName);

    public ValueTask<(Stream Content, DateTimeOffset LastModified)?> OpenFileAsync(string fileName, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var path = DescribeFile(fileName);
        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
            return ValueTask.FromResult<(Stream, DateTimeOffset)?>((stream, new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero)));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<(Stream, DateTimeOffset)?>(null);
        }
    }

    public async ValueTask<LogEntry?> ReadAsync(long version, CancellationToken cancellationToken)
    {
        var path = Describe(version);
        try
        {
            var content = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            return new LogEntry(version, content, new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    public async ValueTask<bool> TryCommitAsync(long version, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var finalPath = Describe(version);
        Directory.CreateDirectory(_logDirectory);
        if (File.Exists(finalPath))
        {
            return false; // Cheap early exit; the publish below is what decides.
        }

        var tempPath = Path.Combine(_logDirectory, DeltaLogNaming.TempFileName(version));
        try
        {
            using (var handle = File.OpenHandle(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.Asynchronous))
            {
                await RandomAccess.WriteAsync(handle, content, 0, cancellationToken).ConfigureAwait(false);
                RandomAccess.FlushToDisk(handle);
            }

            cancellationToken.ThrowIfCancellationRequested();
            return PublishIfAbsent(tempPath, finalPath);
        }
        finally
        {
            File.Delete(tempPath);
        }
    }

    /// <summary>Makes <paramref name="tempPath"/> visible as <paramref name="finalPath"/> unless that exists.</summary>
    private static bool PublishIfAbsent(string tempPath, string finalPath)
    {
        if (OperatingSystem.IsWindows())
        {
            try
            {
                File.Move(tempPath, finalPath, overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(finalPath))
            {
                return false;
            }
        }

        if (Link(tempPath, finalPath) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST)
        {
            return false;
        }

        throw new IOException(
            $"Cannot publish log entry '{finalPath}': link(2) failed with errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)}). "
            + "The table directory must be on a file system that supports hard links.");
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existingPath, string newPath);
}
