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
/// commit with what <see cref="CommitSummary"/> holds (what readers of the whole history, such as a
/// stream looking for the offsets it committed, need), for the commits F…V; when F is above 0 the
/// commits before F are in <c>(F-1).commits.json</c>, and so on back to version 0: a chain of segments.
/// The commits file is published first, each by an atomic rename, so a state file never stands without
/// its commits.
/// </para>
/// <para>
/// A new snapshot writes only the commits since the one before it, merged with the newest segments as
/// long as those are no longer than what is merged (a binary counter): a table's segments number about
/// log2(commits / interval), and each commit is rewritten that many times, where one file of every
/// commit, rewritten whole at every snapshot, made each snapshot cost the table's age.
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
                if (header is null || header.Format != SnapshotHeader.CurrentFormat || header.Version != version || entry is null
                    || header.EntryLength != entry.Content.Length || header.EntrySha256 != Convert.ToHexString(SHA256.HashData(entry.Content)))
                {
                    continue;
                }

                if (await ChainAsync(version, cancellationToken).ConfigureAwait(false) is null)
                {
                    continue; // a segment of its commits is missing or damaged
                }

                var actions = DeltaActionCodec.Parse(bytes.AsSpan(newline + 1));
                var state = TableState.Apply(null, version, actions, entry.LastModified, log.TablePath, StatePath(version));
                return new LogSnapshot(state, CommitsPath(version), header.ClockMs is { } clock ? DateTimeOffset.FromUnixTimeMilliseconds(clock) : null);
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
        long last = snapshot.State.Version;
        var result = new List<CommitSummary>((int)Math.Clamp(last - afterVersion, 0, 1 << 20));
        if (afterVersion >= last)
        {
            return result;
        }

        // The segments back to the one holding afterVersion + 1, then each read oldest first.
        var directory = Path.GetDirectoryName(snapshot.CommitsPath)!;
        var segments = new Stack<string>();
        while (true)
        {
            var path = CommitsPath(directory, last);
            long first = await FirstVersionAsync(path, cancellationToken).ConfigureAwait(false);
            segments.Push(path);
            if (first <= afterVersion + 1 || first == 0)
            {
                break;
            }

            last = first - 1;
        }

        long expected = Math.Max(afterVersion + 1, 0);
        foreach (var path in segments)
        {
            foreach (var row in await ReadSegmentAsync(path, cancellationToken).ConfigureAwait(false))
            {
                if (row.Version <= afterVersion)
                {
                    continue;
                }

                if (row.Version != expected++)
                {
                    throw new FormatException($"'{path}' skips from version {expected - 2} to {row.Version}.");
                }

                result.Add(row);
            }
        }

        if (expected != snapshot.State.Version + 1)
        {
            throw new FormatException($"'{snapshot.CommitsPath}' and the segments before it do not hold every commit up to version {snapshot.State.Version}.");
        }

        return result;
    }

    /// <summary>Every line of one segment, oldest first.</summary>
    private static async Task<List<CommitSummary>> ReadSegmentAsync(string path, CancellationToken cancellationToken)
    {
        var rows = new List<CommitSummary>();
        using var reader = new StreamReader(path);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            var row = JsonSerializer.Deserialize(line, DeltaJsonContext.Default.SnapshotCommit)
                ?? throw new FormatException($"Empty line in '{path}'.");
            rows.Add(new CommitSummary(row.Version, DateTimeOffset.FromUnixTimeMilliseconds(row.Timestamp), row.Operation, row.Parameters, row.FilesAdded, row.FilesRemoved, row.DataChange));
        }

        return rows;
    }

    /// <summary>The version of a segment's first commit.</summary>
    private static async Task<long> FirstVersionAsync(string path, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(path);
        var line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) ?? throw new FormatException($"'{path}' is empty.");
        return (JsonSerializer.Deserialize(line, DeltaJsonContext.Default.SnapshotCommit) ?? throw new FormatException($"Empty line in '{path}'.")).Version;
    }

    /// <summary>
    /// The segments holding commits 0…<paramref name="version"/>, newest first (first lines only are
    /// read); null when one is missing or unreadable.
    /// </summary>
    private async Task<List<string>?> ChainAsync(long version, CancellationToken cancellationToken)
    {
        var chain = new List<string>();
        long last = version;
        try
        {
            while (last >= 0)
            {
                var path = CommitsPath(last);
                long first = await FirstVersionAsync(path, cancellationToken).ConfigureAwait(false);
                if (first > last || first < 0)
                {
                    return null;
                }

                chain.Add(path);
                last = first - 1;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or FormatException)
        {
            return null;
        }

        return chain;
    }

    /// <summary>
    /// Writes the snapshot of <paramref name="state"/> (whose commit file is <paramref name="entry"/>).
    /// <paramref name="commits"/> are the summaries of the commits after <paramref name="previous"/>, the
    /// version of a snapshot whose segments hold the rest (-1: they are every commit), and
    /// <paramref name="previousClock"/> that snapshot's commit clock (null: unknown, and so is this one's). Then deletes all but
    /// the two newest snapshots, and the segments neither of them needs. Throws
    /// <see cref="FormatException"/> or <see cref="IOException"/> when a segment behind
    /// <paramref name="previous"/> is missing or damaged.
    /// </summary>
    public async Task<LogSnapshot> WriteAsync(TableState state, LogEntry entry, long previous, DateTimeOffset? previousClock, IReadOnlyList<CommitSummary> commits, CancellationToken cancellationToken)
    {
        if (previous < -1 || commits.Count != state.Version - previous || commits[^1].Version != state.Version || commits[0].Version != previous + 1)
        {
            throw new ArgumentException($"A snapshot of version {state.Version} after {previous} needs the summaries of commits {previous + 1} to {state.Version}.", nameof(commits));
        }

        // Merged with the newest segments while they are no longer than the merge (a binary counter).
        var segment = new List<CommitSummary>(commits);
        long before = previous;
        while (before >= 0)
        {
            var older = await ReadSegmentAsync(CommitsPath(before), cancellationToken).ConfigureAwait(false);
            if (older.Count == 0 || older[^1].Version != before)
            {
                throw new FormatException($"'{CommitsPath(before)}' does not end at version {before}.");
            }

            if (older.Count > segment.Count)
            {
                break;
            }

            older.AddRange(segment);
            segment = older;
            before = older[0].Version - 1;
        }

        if (before >= 0 && await ChainAsync(before, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new FormatException($"A segment of the commits up to version {before} in '{_directory}' is missing or damaged.");
        }

        Directory.CreateDirectory(_directory);
        await PublishAsync(CommitsPath(state.Version), CommitLines(segment), cancellationToken).ConfigureAwait(false);

        // The commit clock at this version (a running maximum, as vacuum keeps it): known from every
        // commit, or from the previous snapshot's clock and the commits since.
        DateTimeOffset? clock = previous == -1 ? DateTimeOffset.MinValue : previousClock;
        if (clock is { } known)
        {
            foreach (var commit in commits)
            {
                known = commit.Timestamp > known ? commit.Timestamp : known;
            }

            clock = known;
        }

        var header = JsonSerializer.SerializeToUtf8Bytes(new SnapshotHeader(state.Version, entry.Content.Length, Convert.ToHexString(SHA256.HashData(entry.Content)), clock?.ToUnixTimeMilliseconds(), SnapshotHeader.CurrentFormat), DeltaJsonContext.Default.SnapshotHeader);
        var actions = new List<DeltaAction>(state.Files.Count + 3)
        {
            new CommitInfoAction { Timestamp = state.Timestamp.ToUnixTimeMilliseconds(), Operation = "WEFT SNAPSHOT" },
            state.Protocol,
            state.Metadata,
        };
        actions.AddRange(state.Transactions.Values.OrderBy(t => t.AppId, StringComparer.Ordinal));
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
        await PruneAsync(cancellationToken).ConfigureAwait(false);
        return new LogSnapshot(state, CommitsPath(state.Version), clock);
    }

    /// <summary>Keeps the two newest snapshots and the segments their chains need; deletes the rest.</summary>
    private async Task PruneAsync(CancellationToken cancellationToken)
    {
        var kept = Versions().OrderDescending().ToList();
        foreach (var old in kept.Skip(2))
        {
            File.Delete(StatePath(old)); // the state first: a commits file alone is never used
        }

        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var version in kept.Take(2))
        {
            if (await ChainAsync(version, cancellationToken).ConfigureAwait(false) is not { } chain)
            {
                return; // a chain broken under us (another writer pruning): delete nothing more this time
            }

            needed.UnionWith(chain);
        }

        foreach (var path in Directory.EnumerateFiles(_directory, "*" + CommitsSuffix))
        {
            if (!needed.Contains(path))
            {
                File.Delete(path);
            }
        }
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

    private string CommitsPath(long version) => CommitsPath(_directory, version);

    private static string CommitsPath(string directory, long version) => Path.Combine(directory, version.ToString("D20", CultureInfo.InvariantCulture) + CommitsSuffix);

    private Task PublishAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        PublishAsync(_directory, path, content, cancellationToken);

    /// <summary>Writes a temporary file in <paramref name="directory"/>, syncs it, and renames it into place: readers see all of it or nothing.</summary>
    internal static async Task PublishAsync(string directory, string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(directory, $".{Guid.NewGuid():N}.tmp");
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

/// <summary>A usable snapshot: the state at its version and the newest segment of the summaries of commits 0…version.</summary>
/// <param name="Clock">The newest commit timestamp of versions 0…State.Version, when known.</param>
internal sealed record LogSnapshot(TableState State, string CommitsPath, DateTimeOffset? Clock = null);

/// <summary>The first line of a snapshot's state file.</summary>
/// <param name="ClockMs">The newest commit timestamp of versions 0…Version (ms since the epoch), the commit
/// clock a vacuum starting here needs; null in snapshots written before it was kept, or when unknown.</param>
/// <remarks>
/// <paramref name="Format"/>: what the state holds. 2 since snapshots carry application transactions
/// (<c>txn</c>) and an add's tags; a snapshot of an older format (no field) is not used, since a
/// checkpoint written from it would drop them.
/// </remarks>
internal sealed record SnapshotHeader(long Version, long EntryLength, string EntrySha256, long? ClockMs = null, int Format = 0)
{
    public const int CurrentFormat = 2;
}

/// <summary>One line of a snapshot's commits file.</summary>
internal sealed record SnapshotCommit(long Version, long Timestamp, string Operation, IReadOnlyDictionary<string, string> Parameters, int FilesAdded, int FilesRemoved, bool DataChange);
