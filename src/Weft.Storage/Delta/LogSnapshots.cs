using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Weft.Storage;

/// <summary>
/// Weft's own cache of a table's log, so that opening a table a stream has committed to for weeks reads
/// one file and the commits after it, not every commit since version 0 (a stream flushing every 5 s
/// commits ~17,000 times a day). It lives in <c>_delta_log/_weft_snapshots/</c>, which Delta readers
/// skip (they read only the log's own file names), and it is only ever a shortcut: every commit file
/// stays, time travel and other engines read them as before, and a snapshot that is missing, damaged
/// or does not match its log is ignored (the log is replayed from 0).
/// <para>
/// A snapshot of version V is two files. <c>V.state.json</c>: a header line naming V and the length
/// and SHA-256 of V's commit file (so a log rewritten since, e.g. a table deleted and made again, is
/// not mistaken for the one cached), then the reconciled state as log actions (commitInfo with V's
/// timestamp, protocol, metaData, one add per active file). <c>V.commits.json</c>: one line per
/// commit 0…V with what <see cref="CommitSummary"/> holds (what readers of the whole history, such as a
/// stream looking for the offsets it committed, need). The commits file is published first, each by
/// an atomic rename, so a state file never stands without its commits.
/// </para>
/// </summary>
internal sealed class LogSnapshots
{
    public const string DirectoryName = "_weft_snapshots";
    private const string StateSuffix = ".state.json";
    private const string CommitsSuffix = ".commits.json";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly string _directory;

    public LogSnapshots(string logDirectory)
    {
        _directory = Path.Combine(logDirectory, DirectoryName);
    }

    /// <summary>
    /// The newest usable snapshot at or below <paramref name="maxVersion"/>, or null. Usable: both files
    /// complete and parseable, and the header matching the commit file the log holds for its version.
    /// </summary>
    public async ValueTask<LogSnapshot?> TryReadLatestAsync(long maxVersion, DeltaLogReader log, CancellationToken cancellationToken)
    {
        foreach (var version in Versions().Where(v => v <= maxVersion).OrderDescending())
        {
            try
            {
                var bytes = await File.ReadAllBytesAsync(StatePath(version), cancellationToken).ConfigureAwait(false);
                int newline = Array.IndexOf(bytes, (byte)'\n');
                if (newline < 0 || !File.Exists(CommitsPath(version)))
                {
                    continue;
                }

                var header = JsonSerializer.Deserialize(bytes.AsSpan(0, newline), DeltaJsonContext.Default.SnapshotHeader);
                var entry = await log.Store.ReadAsync(version, cancellationToken).ConfigureAwait(false);
                if (header is null || header.Version != version || entry is null
                    || header.EntryLength != entry.Content.Length || header.EntrySha256 != Convert.ToHexString(SHA256.HashData(entry.Content)))
                {
                    continue;
                }

                var actions = DeltaActionCodec.Parse(bytes.AsSpan(newline + 1));
                var state = TableState.Apply(null, version, actions, entry.LastModified, log.TablePath, StatePath(version));
                return new LogSnapshot(state, CommitsPath(version));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or FormatException or DeltaLogException)
            {
                // Not usable: an older one may be, else the log is replayed from 0.
            }
        }

        return null;
    }

    /// <summary>The summaries of commits after <paramref name="afterVersion"/> up to the snapshot's version, oldest first.</summary>
    public static async Task<List<CommitSummary>> ReadCommitsAsync(LogSnapshot snapshot, long afterVersion, CancellationToken cancellationToken)
    {
        var result = new List<CommitSummary>((int)Math.Clamp(snapshot.State.Version - afterVersion, 0, 1 << 20));
        using var reader = new StreamReader(snapshot.CommitsPath);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            var row = JsonSerializer.Deserialize(line, DeltaJsonContext.Default.SnapshotCommit)
                ?? throw new FormatException($"Empty line in '{snapshot.CommitsPath}'.");
            if (row.Version > afterVersion)
            {
                result.Add(new CommitSummary(row.Version, DateTimeOffset.FromUnixTimeMilliseconds(row.Timestamp), row.Operation, row.Parameters, row.FilesAdded, row.FilesRemoved, row.DataChange));
            }
        }

        if (result.Count != Math.Max(0, snapshot.State.Version - Math.Max(afterVersion, -1)) || (result.Count > 0 && result[^1].Version != snapshot.State.Version))
        {
            throw new FormatException($"'{snapshot.CommitsPath}' does not hold every commit up to version {snapshot.State.Version}.");
        }

        return result;
    }

    /// <summary>
    /// Writes the snapshot of <paramref name="state"/> (whose commit file is <paramref name="entry"/>)
    /// with the summaries of commits 0…its version, then deletes all but the two newest snapshots.
    /// </summary>
    public async Task<LogSnapshot> WriteAsync(TableState state, LogEntry entry, IReadOnlyList<CommitSummary> commits, CancellationToken cancellationToken)
    {
        if (commits.Count != state.Version + 1 || commits[^1].Version != state.Version)
        {
            throw new ArgumentException($"A snapshot of version {state.Version} needs the summaries of commits 0 to {state.Version}.", nameof(commits));
        }

        Directory.CreateDirectory(_directory);
        await PublishAsync(CommitsPath(state.Version), CommitLines(commits), cancellationToken).ConfigureAwait(false);

        var header = JsonSerializer.SerializeToUtf8Bytes(new SnapshotHeader(state.Version, entry.Content.Length, Convert.ToHexString(SHA256.HashData(entry.Content))), DeltaJsonContext.Default.SnapshotHeader);
        var actions = new List<DeltaAction>(state.Files.Count + 3)
        {
            new CommitInfoAction { Timestamp = state.Timestamp.ToUnixTimeMilliseconds(), Operation = "WEFT SNAPSHOT" },
            state.Protocol,
            state.Metadata,
        };
        foreach (var file in state.Files.Values.OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            actions.Add(TableState.ToAddAction(file, file.PartitionValues, file.DataChange));
        }

        var body = DeltaActionCodec.Serialize(actions);
        var content = new byte[header.Length + 1 + body.Length];
        header.CopyTo(content, 0);
        content[header.Length] = (byte)'\n';
        body.CopyTo(content, header.Length + 1);
        await PublishAsync(StatePath(state.Version), content, cancellationToken).ConfigureAwait(false);

        foreach (var old in Versions().OrderDescending().Skip(2))
        {
            File.Delete(StatePath(old)); // the state first: a commits file alone is never used
            File.Delete(CommitsPath(old));
        }

        return new LogSnapshot(state, CommitsPath(state.Version));
    }

    private static ReadOnlyMemory<byte> CommitLines(IReadOnlyList<CommitSummary> commits)
    {
        var lines = new ArrayBufferWriter<byte>(commits.Count * 256);
        using var writer = new Utf8JsonWriter(lines, WriterOptions);
        foreach (var c in commits)
        {
            writer.Reset(lines);
            JsonSerializer.Serialize(writer, new SnapshotCommit(c.Version, c.Timestamp.ToUnixTimeMilliseconds(), c.Operation, c.Parameters, c.FilesAdded, c.FilesRemoved, c.DataChange), DeltaJsonContext.Default.SnapshotCommit);
            writer.Flush();
            lines.Write("\n"u8);
        }

        return lines.WrittenMemory;
    }

    private IEnumerable<long> Versions()
    {
        if (!Directory.Exists(_directory))
        {
            yield break;
        }

        foreach (var path in Directory.EnumerateFiles(_directory, "*" + StateSuffix))
        {
            var name = Path.GetFileName(path);
            if (long.TryParse(name.AsSpan(0, name.Length - StateSuffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long version))
            {
                yield return version;
            }
        }
    }

    private string StatePath(long version) => Path.Combine(_directory, version.ToString("D20", CultureInfo.InvariantCulture) + StateSuffix);

    private string CommitsPath(long version) => Path.Combine(_directory, version.ToString("D20", CultureInfo.InvariantCulture) + CommitsSuffix);

    /// <summary>Writes a temporary file, syncs it, and renames it into place: readers see all of it or nothing.</summary>
    private async Task PublishAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(_directory, $".{Guid.NewGuid():N}.tmp");
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.Asynchronous))
            {
                await RandomAccess.WriteAsync(handle, content, 0, cancellationToken).ConfigureAwait(false);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}

/// <summary>A usable snapshot: the state at its version and where the summaries of commits 0…version are.</summary>
internal sealed record LogSnapshot(TableState State, string CommitsPath);

/// <summary>The first line of a snapshot's state file.</summary>
internal sealed record SnapshotHeader(long Version, long EntryLength, string EntrySha256);

/// <summary>One line of a snapshot's commits file.</summary>
internal sealed record SnapshotCommit(long Version, long Timestamp, string Operation, IReadOnlyDictionary<string, string> Parameters, int FilesAdded, int FilesRemoved, bool DataChange);
