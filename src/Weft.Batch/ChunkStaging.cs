using System.Globalization;
using System.Text;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// The shares of one chunk of a sharded batch run, staged but not committed:
/// <c>&lt;table&gt;/_weft_staging/&lt;run&gt;/&lt;chunk&gt;/shard-&lt;i&gt;-of-&lt;n&gt;.json</c>, each listing the data files
/// its shard wrote. The directory starts with '_', so Delta readers and <c>weft table vacuum</c> pass it by.
/// A share is published by an atomic rename after its data files are durable: a listed share is complete.
/// </summary>
internal sealed class ChunkStaging
{
    public const string Directory = "_weft_staging";

    private readonly string _tablePath;
    private readonly string _chunkDirectory;
    private readonly BatchShard _shard;

    public ChunkStaging(string tablePath, string runId, string chunkName, BatchShard shard)
    {
        _tablePath = tablePath;
        _chunkDirectory = Path.Combine(tablePath, Directory, runId, SafeName(chunkName));
        _shard = shard;
    }

    /// <summary>Whether this shard's share of the chunk is already staged (a resumed shard skips the work).</summary>
    public bool IsStaged => File.Exists(ShareFile(_shard.Index));

    /// <summary>When the earliest staged share read its raw events (a share file carries that as its modification time).</summary>
    public DateTime? EarliestShareRead()
    {
        DateTime? earliest = null;
        for (int i = 0; i < _shard.Count; i++)
        {
            var file = ShareFile(i);
            if (File.Exists(file) && File.GetLastWriteTimeUtc(file) is var written && (earliest is null || written < earliest))
            {
                earliest = written;
            }
        }

        return earliest;
    }

    /// <param name="readAtUtc">When the share's raw events were read: kept as the file's modification time, for <see cref="EarliestShareRead"/>.</param>
    public async Task WriteAsync(IReadOnlyList<AddFile> files, DateTime readAtUtc, CancellationToken cancellationToken)
    {
        var target = ShareFile(_shard.Index);
        var temporary = target + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var stream = CreateInChunkDirectory(temporary);
        await using (stream.ConfigureAwait(false))
        {
            await stream.WriteAsync(StagedFiles.Serialize(files), cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }

        File.SetLastWriteTimeUtc(temporary, readAtUtc);
        File.Move(temporary, target, overwrite: true);
    }

    /// <summary>
    /// Every shard's staged files, or null while some shard has not staged its share. A share whose data
    /// files are gone (a vacuum past the retention removed them while the share waited) is withdrawn, so
    /// its shard computes it again when it runs, and nothing refers to a missing file.
    /// </summary>
    public async Task<IReadOnlyList<AddFile>?> ReadAllAsync(CancellationToken cancellationToken)
    {
        var all = new List<AddFile>();
        for (int i = 0; i < _shard.Count; i++)
        {
            var file = ShareFile(i);
            if (!File.Exists(file))
            {
                return null;
            }

            IReadOnlyList<AddFile> share;
            try
            {
                share = StagedFiles.Parse(await File.ReadAllBytesAsync(file, cancellationToken).ConfigureAwait(false), file);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return null; // removed since: the shard that committed the chunk cleaned up
            }

            foreach (var staged in share)
            {
                if (!File.Exists(Path.Combine(_tablePath, staged.Path)))
                {
                    File.Delete(file);
                    return null;
                }
            }

            all.AddRange(share);
        }

        return all;
    }

    /// <summary>
    /// Removes the chunk's staging directory once its shares are committed, then the run's and the
    /// staging root when nothing else is staged in them (best effort: a leftover is harmless).
    /// </summary>
    public void Delete()
    {
        try
        {
            if (System.IO.Directory.Exists(_chunkDirectory))
            {
                System.IO.Directory.Delete(_chunkDirectory, recursive: true);
            }

            // Non-recursive: a directory another shard or run still stages in is not empty and stays.
            var runDirectory = Path.GetDirectoryName(_chunkDirectory)!;
            System.IO.Directory.Delete(runDirectory);
            System.IO.Directory.Delete(Path.GetDirectoryName(runDirectory)!);
        }
        catch (IOException)
        {
            // Not empty, or another shard is removing it too.
        }
        catch (UnauthorizedAccessException)
        {
            // Left for an operator; the chunk is committed either way.
        }
    }

    /// <summary>
    /// Creates a file in the chunk's directory, making the directory first. Another shard's
    /// <see cref="Delete"/> may remove the run's empty directory between the two steps, so a vanished
    /// directory is made again.
    /// </summary>
    private FileStream CreateInChunkDirectory(string path)
    {
        for (int attempt = 1; ; attempt++)
        {
            System.IO.Directory.CreateDirectory(_chunkDirectory);
            try
            {
                return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            }
            catch (DirectoryNotFoundException) when (attempt < 5)
            {
            }
        }
    }

    private string ShareFile(int index) =>
        Path.Combine(_chunkDirectory, string.Create(CultureInfo.InvariantCulture, $"shard-{index}-of-{_shard.Count}.json"));

    private static string SafeName(string chunkName)
    {
        var name = new StringBuilder(chunkName.Length);
        foreach (var c in chunkName)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_');
        }

        return name.ToString();
    }
}
