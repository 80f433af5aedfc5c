using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// A Delta Lake table (reader version 1, writer version 2): Parquet data files under a directory,
/// described by the JSON commit log in <c>_delta_log</c>. Obtain one with <see cref="OpenAsync"/>,
/// <see cref="CreateAsync"/> or <see cref="OpenOrCreateAsync"/>. A handle is safe to share between
/// tasks; many handles (in one or many processes) may write the same table, and optimistic
/// concurrency makes sure no commit is lost.
/// </summary>
public sealed class DeltaTable
{
    internal const string EngineInfo = "Weft.Storage/1.0";
    private const string AppendOnlyProperty = "delta.appendOnly";

    private readonly DeltaLogReader _log;
    private readonly DeltaTableOptions _options;
    private readonly Lock _gate = new();
    private TableState _latest;
    private LogSnapshots? _snapshots;
    private LogSnapshot? _snapshot; // the one this handle opened from (or wrote): commits up to it are read from it
    private Task _snapshotWrite = Task.CompletedTask; // the background write a long-lived handle started, if any
    private int _snapshotWriting;
    private long _snapshotFailedAt = -1; // the version a write last failed at: not tried again before another interval
    private Task _checkpointWrite = Task.CompletedTask; // the background checkpoint write this handle started last
    private int _checkpointWriting;
    private VacuumBase? _vacuumBase; // the version current at the last vacuum's horizon: the next vacuum replays from it

    private DeltaTable(string path, DeltaLogReader log, DeltaTableOptions options, TableState latest)
    {
        Path = path;
        _log = log;
        _options = options;
        _latest = latest;
    }

    /// <summary>Full path of the table's root directory.</summary>
    public string Path { get; }

    /// <summary>Opens an existing table, replaying its log; throws <see cref="DeltaLogException"/> when there is none or it is unreadable.</summary>
    public static Task<DeltaTable> OpenAsync(string path, DeltaTableOptions? options = null, CancellationToken cancellationToken = default)
    {
        var fullPath = FullPath(path);
        return OpenAsync(new FileSystemLogStore(fullPath), fullPath, options, cancellationToken);
    }

    /// <summary>
    /// Creates a table (version 0: protocol 1/2, metadata with the schema and partition columns).
    /// Throws <see cref="DeltaLogException"/> when a table already exists at <paramref name="path"/>.
    /// </summary>
    public static async Task<DeltaTable> CreateAsync(
        string path,
        DeltaSchema schema,
        IReadOnlyList<string> partitionColumns,
        DeltaTableOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var fullPath = FullPath(path);
        var store = new FileSystemLogStore(fullPath);
        return await TryCreateAsync(store, fullPath, schema, partitionColumns, options, cancellationToken).ConfigureAwait(false)
            ?? throw new DeltaLogException(fullPath, store.Describe(0), $"A table already exists at '{fullPath}' ('{store.Describe(0)}' is committed).");
    }

    /// <summary>
    /// Opens the table at <paramref name="path"/>, creating it when absent. An existing table must have
    /// exactly this schema (else <see cref="SchemaMismatchException"/>) and these partition columns.
    /// </summary>
    public static Task<DeltaTable> OpenOrCreateAsync(
        string path,
        DeltaSchema schema,
        IReadOnlyList<string> partitionColumns,
        DeltaTableOptions? options = null,
        CancellationToken cancellationToken = default) =>
        OpenOrCreateAsync(path, schema, partitionColumns, options, addColumns: false, cancellationToken);

    /// <summary>
    /// As <see cref="OpenOrCreateAsync(string, DeltaSchema, IReadOnlyList{string}, DeltaTableOptions?, CancellationToken)"/>;
    /// with <paramref name="addColumns"/>, an existing table whose schema lacks some of
    /// <paramref name="schema"/>'s columns gains them in a commit of its own (Delta's schema
    /// evolution: the files written before read them as nulls), as a signal's added element column
    /// needs. A column removed or retyped still fails.
    /// </summary>
    internal static async Task<DeltaTable> OpenOrCreateAsync(
        string path,
        DeltaSchema schema,
        IReadOnlyList<string> partitionColumns,
        DeltaTableOptions? options,
        bool addColumns,
        CancellationToken cancellationToken)
    {
        var fullPath = FullPath(path);
        var store = new FileSystemLogStore(fullPath);
        var listing = await store.ListAsync(cancellationToken).ConfigureAwait(false);
        if (listing.Versions.Count == 0)
        {
            // Files with no log may be another process's table created a moment ago (its first commit, then
            // its first data): only a folder that still has no log is refused.
            if (HoldsFiles(fullPath) is { } files && (await store.ListAsync(cancellationToken).ConfigureAwait(false)).Versions.Count == 0)
            {
                throw new DeltaLogException(fullPath, store.Describe(0),
                    $"'{fullPath}' holds files but no Delta table ({files}): Weft creates a table only in a new or empty folder, " +
                    "since a vacuum of the table would delete files none of its versions references. Point the table elsewhere, or move the files out.");
            }

            if (await TryCreateAsync(store, fullPath, schema, partitionColumns, options, cancellationToken).ConfigureAwait(false) is { } created)
            {
                return created;
            }
        }

        var table = await OpenAsync(store, fullPath, options, cancellationToken).ConfigureAwait(false);
        var existing = table._latest;
        if (addColumns && !existing.Schema.Equals(schema) && existing.Metadata.PartitionColumns.SequenceEqual(partitionColumns, StringComparer.Ordinal))
        {
            table = await table.AddColumnsAsync(schema, cancellationToken).ConfigureAwait(false);
            existing = table._latest;
        }

        if (!existing.Schema.Equals(schema) && !(addColumns && existing.Schema.FindMismatch(schema, allowMissingNullable: true) is null))
        {
            var column = existing.Schema.FindMismatch(schema)?.Column ?? FirstDifferentColumn(existing.Schema, schema);
            // Said, or the refusal of an additive change reads like a removed or retyped column.
            var reason = addColumns && existing.Schema.Find(column) is null ? WhyNoColumnsAdded(existing) : null;
            var notAdded = reason is null
                ? ""
                : $" Weft adds columns only to a table in its own layout, and this one is not: {reason}. Add them with the engine that keeps the table, or point the table elsewhere.";
            throw new SchemaMismatchException(fullPath, column,
                $"Table '{fullPath}' exists with schema ({existing.Schema}), which differs from the requested ({schema}) at column '{column}'.{notAdded}")
            {
                ColumnsNotAddedBecause = reason,
            };
        }

        if (!existing.Metadata.PartitionColumns.SequenceEqual(partitionColumns, StringComparer.Ordinal))
        {
            throw new ArgumentException(
                $"Table '{fullPath}' exists partitioned by [{string.Join(", ", existing.Metadata.PartitionColumns)}], not [{string.Join(", ", partitionColumns)}].",
                nameof(partitionColumns));
        }

        return table;
    }

    /// <summary>
    /// Commits the columns of <paramref name="requested"/> this table lacks (see
    /// <see cref="DeltaSchema.WithColumnsOf"/>); another writer committing first is read and the check
    /// made again. Returns this handle when there is nothing to add or it cannot be done (the caller's
    /// schema check then names the column), else a handle at the new version.
    /// </summary>
    private async Task<DeltaTable> AddColumnsAsync(DeltaSchema requested, CancellationToken cancellationToken)
    {
        var table = this;
        for (int attempt = 0; ; attempt++)
        {
            var state = table._latest;
            if (WhyNoColumnsAdded(state) is not null || state.Schema.WithColumnsOf(requested) is not { } widened || ReferenceEquals(widened, state.Schema))
            {
                return table;
            }

            var now = _options.TimeProvider.GetUtcNow();
            var added = widened.Fields.Where(f => state.Schema.Find(f.Name) is null).Select(f => f.Name).ToList();
            var actions = new List<DeltaAction>
            {
                new CommitInfoAction
                {
                    Timestamp = now.ToUnixTimeMilliseconds(),
                    Operation = "ADD COLUMNS",
                    OperationParameters = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["columns"] = new JsonArray([.. added.Select(c => (JsonNode?)JsonValue.Create(c))]).ToJsonString(),
                    },
                    IsBlindAppend = false, // a schema change, as Spark records one
                    EngineInfo = EngineInfo,
                    TxnId = Guid.NewGuid().ToString(),
                },
                state.Metadata with { SchemaString = widened.ToSchemaString() },
            };
            long version = state.Version + 1;
            if (await _log.Store.TryCommitAsync(version, DeltaActionCodec.Serialize(actions), cancellationToken).ConfigureAwait(false))
            {
                return await OpenAsync(_log.Store, Path, _options, cancellationToken).ConfigureAwait(false);
            }

            if (attempt >= 8)
            {
                throw new ConcurrentModificationException(Path, version, retriesExhausted: true, $"Adding columns [{string.Join(", ", added)}] to table '{Path}' lost {attempt + 1} races for the next version to other writers.");
            }

            table = await OpenAsync(_log.Store, Path, _options, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Null when Weft may add columns to the table, else why not: only Weft's own layout takes them;
    /// another engine's table (column mapping, invariants, types Weft converts or does not read) keeps
    /// its schema for that engine to change.
    /// </summary>
    private static string? WhyNoColumnsAdded(TableState state) =>
        ProtocolSupport.WriteProblem(state)
        ?? (state.Metadata.Configuration.TryGetValue("delta.columnMapping.mode", out var mode)
            ? $"it sets delta.columnMapping.mode ({mode}), whose columns Weft leaves to the engine that set it"
            : null);

    internal static async Task<DeltaTable> OpenAsync(IDeltaLogStore store, string fullPath, DeltaTableOptions? options, CancellationToken cancellationToken)
    {
        options ??= DeltaTableOptions.Default;
        options.Validate();
        var log = new DeltaLogReader(store, fullPath, options.TimeProvider, options.LogCheckInterval);
        var latestVersion = await log.LatestVersionAsync(cancellationToken).ConfigureAwait(false);
        // Weft's log snapshots chain commit summaries back to version 0, so a log another engine cleaned up
        // behind a checkpoint is read from that checkpoint instead.
        var snapshots = options.SnapshotInterval > 0 && log.StartsAtZero && store is FileSystemLogStore files ? new LogSnapshots(files.Location) : null;
        var snapshot = snapshots is null ? null : await snapshots.TryReadLatestAsync(latestVersion, log, cancellationToken).ConfigureAwait(false);
        var replayed = new List<CommitSummary>();
        var state = await log.ReplayAsync(snapshot?.State, latestVersion, snapshots is null ? null : (_, entry) => replayed.Add(Summary(entry)), cancellationToken).ConfigureAwait(false);
        var table = new DeltaTable(fullPath, log, options, state) { _snapshots = snapshots, _snapshot = snapshot };
        if (snapshots is not null && replayed.Count >= options.SnapshotInterval)
        {
            await table.TryWriteSnapshotAsync(state, replayed, cancellationToken).ConfigureAwait(false);
        }

        return table;
    }

    /// <summary>The background snapshot write this handle started, if any (for tests).</summary>
    internal Task SnapshotWrite => Volatile.Read(ref _snapshotWrite);

    /// <summary>
    /// A handle that stays open (a stream's, for days) takes a new snapshot every
    /// <see cref="DeltaTableOptions.SnapshotInterval"/> commits, in the background, so that the next
    /// process to open the table does not replay all of them.
    /// </summary>
    private void SnapshotWhenDue()
    {
        var latest = Volatile.Read(ref _latest);
        long covered = Math.Max(Volatile.Read(ref _snapshot)?.State.Version ?? -1, Interlocked.Read(ref _snapshotFailedAt));
        if (_snapshots is null || latest.Version - covered < _options.SnapshotInterval
            || Interlocked.Exchange(ref _snapshotWriting, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _snapshotWrite, BackgroundLogWrites.Start(async () =>
        {
            try
            {
                await TryWriteSnapshotAsync(latest, null, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _snapshotWriting, 0);
            }
        }));
    }

    /// <summary>The background checkpoint write this handle started last, if any (for tests).</summary>
    internal Task CheckpointWrite => Volatile.Read(ref _checkpointWrite);

    /// <summary>
    /// After this handle committed <paramref name="state"/>: when its version is a multiple of the
    /// checkpoint interval, writes its checkpoint in the background (one at a time; a version that comes
    /// due while one is written is skipped, the next due one is not).
    /// </summary>
    private void CheckpointWhenDue(TableState state)
    {
        int interval = state.Metadata.Configuration.TryGetValue("delta.checkpointInterval", out var text)
            && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var configured) && configured > 0
            ? configured
            : _options.CheckpointInterval;
        if (interval <= 0 || state.Version == 0 || state.Version % interval != 0 || _log.Store is not FileSystemLogStore files
            || ProtocolSupport.WriteProblem(state) is not null || Interlocked.Exchange(ref _checkpointWriting, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _checkpointWrite, BackgroundLogWrites.Start(async () =>
        {
            try
            {
                await TryWriteCheckpointAsync(files.Location, state, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _checkpointWriting, 0);
            }
        }));
    }

    /// <summary>
    /// Writes the Delta checkpoint of the latest version now (what a handle does every
    /// <see cref="DeltaTableOptions.CheckpointInterval"/> commits in the background), so that other engines
    /// open an existing table from it. Throws <see cref="DeltaLogException"/> when Weft cannot write the
    /// table's protocol, and what the file system throws when the checkpoint cannot be written.
    /// </summary>
    public async Task<CheckpointResult> WriteCheckpointAsync(CancellationToken cancellationToken = default)
    {
        var state = await RefreshAsync(cancellationToken).ConfigureAwait(false);
        if (ProtocolSupport.WriteProblem(state) is { } problem)
        {
            throw new DeltaLogException(Path, _log.Store.Describe(state.ProtocolVersion), $"Cannot checkpoint table '{Path}': {problem}.");
        }

        if (_log.Store is not FileSystemLogStore files)
        {
            throw new InvalidOperationException($"Table '{Path}' keeps its log outside the file system; Weft writes checkpoints only beside a file-system log.");
        }

        return await WriteCheckpointAsync(files.Location, state, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Best effort, like the log snapshots: a checkpoint is a shortcut for readers, and the log stays the
    /// truth; readers replay it instead, and the next due version tries again.
    /// </summary>
    private async Task TryWriteCheckpointAsync(string logDirectory, TableState state, CancellationToken cancellationToken)
    {
        try
        {
            await WriteCheckpointAsync(logDirectory, state, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DeltaLogException or ParquetFormatException
            or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // Nothing to undo: the checkpoint is published only once complete.
        }
    }

    /// <summary>
    /// The checkpoint of <paramref name="state"/>. Its tombstones are the removes not yet expired: those the
    /// previous checkpoint carried, and those of the commits since (or, without a readable previous
    /// checkpoint, of the commits whose files were written within the retention), less the paths live again.
    /// </summary>
    private async Task<CheckpointResult> WriteCheckpointAsync(string logDirectory, TableState state, CancellationToken cancellationToken)
    {
        var horizon = _options.TimeProvider.GetUtcNow() - CheckpointWriter.TombstoneRetention(state.Metadata.Configuration);
        var tombstones = new Dictionary<string, RemoveAction>(StringComparer.Ordinal);
        long from = OldestCommitWithin(logDirectory, horizon, state.Version);
        var listing = await _log.Store.ListAsync(cancellationToken).ConfigureAwait(false);
        if (CheckpointAt.Complete(listing.Checkpoints, out _).LastOrDefault(c => c.Version < state.Version && c.Version >= from - 1) is { } previous)
        {
            try
            {
                var (actions, _) = await CheckpointReader.ReadAsync(_log.Store, Path, previous.Parts, cancellationToken).ConfigureAwait(false);
                foreach (var remove in actions.OfType<RemoveAction>())
                {
                    tombstones[DeltaPaths.FromLogPath(remove.Path)] = remove;
                }

                from = previous.Version + 1;
            }
            catch (DeltaLogException)
            {
                tombstones.Clear(); // unreadable: the commits say the same
            }
        }

        for (long version = Math.Max(from, _log.EarliestCommit); version <= state.Version; version++)
        {
            foreach (var action in (await _log.ReadAsync(version, cancellationToken).ConfigureAwait(false)).Actions)
            {
                if (action is RemoveAction remove)
                {
                    tombstones[DeltaPaths.FromLogPath(remove.Path)] = remove;
                }
            }
        }

        long horizonMs = horizon.ToUnixTimeMilliseconds();
        var kept = tombstones
            .Where(t => !state.Files.ContainsKey(t.Key) && (t.Value.DeletionTimestamp ?? long.MinValue) >= horizonMs)
            .OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => t.Value)
            .ToList();
        var path = await CheckpointWriter.WriteAsync(logDirectory, state, kept, cancellationToken).ConfigureAwait(false);
        return new CheckpointResult(state.Version, path, state.Files.Count, kept.Count, new FileInfo(path).Length);
    }

    /// <summary>
    /// The oldest commit that can hold an unexpired remove: a commit file last written before the horizon
    /// (less a day for clocks that disagree) removed its files before it too. Commit files are written in
    /// version order, so a binary search over their times finds it without reading them.
    /// </summary>
    private long OldestCommitWithin(string logDirectory, DateTimeOffset horizon, long version)
    {
        var before = (horizon - TimeSpan.FromDays(1)).UtcDateTime;
        long low = _log.EarliestCommit, high = version;
        while (low < high)
        {
            long middle = low + (high - low) / 2;
            var file = System.IO.Path.Combine(logDirectory, DeltaLogNaming.CommitFileName(middle));
            if (File.Exists(file) && File.GetLastWriteTimeUtc(file) < before)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    /// <summary>
    /// Best effort: a table on a read-only or failing disk still opens, it only replays its log again
    /// next time. <paramref name="replayed"/> are the commits after the snapshot this handle has (read
    /// from the log when null).
    /// </summary>
    private async Task TryWriteSnapshotAsync(TableState state, List<CommitSummary>? replayed, CancellationToken cancellationToken)
    {
        try
        {
            // Only the commits since the snapshot this handle has: its segments hold the rest.
            var opened = Volatile.Read(ref _snapshot);
            long previous = opened is not null && opened.State.Version < state.Version ? opened.State.Version : -1;
            if (await _log.Store.ReadAsync(state.Version, cancellationToken).ConfigureAwait(false) is not { } entry)
            {
                Interlocked.Exchange(ref _snapshotFailedAt, state.Version);
                return;
            }

            LogSnapshot written;
            try
            {
                written = await _snapshots!.WriteAsync(state, entry, previous, previous >= 0 ? opened!.Clock : null, await SummariesAsync(previous, state.Version, replayed, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (previous >= 0 && e is IOException or FormatException or System.Text.Json.JsonException)
            {
                // A segment behind the opened snapshot is gone or damaged: every commit, from the log.
                written = await _snapshots!.WriteAsync(state, entry, -1, null, await SummariesAsync(-1, state.Version, replayed, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            }

            Volatile.Write(ref _snapshot, written);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException or DeltaLogException)
        {
            // The log is the truth; the snapshot only a shortcut.
            Interlocked.Exchange(ref _snapshotFailedAt, state.Version);
        }
    }

    /// <summary>The summaries of commits after <paramref name="after"/> up to <paramref name="version"/>: from <paramref name="replayed"/> where it has them, else the log.</summary>
    private async Task<List<CommitSummary>> SummariesAsync(long after, long version, List<CommitSummary>? replayed, CancellationToken cancellationToken)
    {
        var commits = new List<CommitSummary>((int)Math.Clamp(version - after, 0, 1 << 20));
        if (replayed is { Count: > 0 } && replayed[0].Version == after + 1)
        {
            commits.AddRange(replayed.Where(c => c.Version <= version));
        }

        for (long v = after + 1 + commits.Count; v <= version; v++)
        {
            commits.Add(await ReadSummaryAsync(v, cancellationToken).ConfigureAwait(false));
        }

        return commits;
    }

    /// <summary>
    /// Commits a reader should have folded before it keeps its fold (<see cref="WriteFoldAsync"/>): fewer
    /// cost the next reader less to read again than a file written and synced now.
    /// </summary>
    public const int FoldWorthKeeping = 256;

    /// <summary>
    /// The fold named <paramref name="name"/> a reader of this table's history left (see
    /// <see cref="WriteFoldAsync"/>): the version it covers and its value, or null when there is none
    /// usable (also for a log not on the file system).
    /// </summary>
    public async Task<(long Version, string Value)?> ReadFoldAsync(string name, CancellationToken cancellationToken = default)
    {
        LogFolds.Validate(name);
        return _log.Store is FileSystemLogStore files
            ? await new LogFolds(files.Location).TryReadAsync(name, _log.Store, cancellationToken).ConfigureAwait(false)
            : null;
    }

    /// <summary>
    /// Keeps <paramref name="value"/>, the caller's fold over the commits 0…<paramref name="version"/>, so that
    /// the next reader of the history can start after <paramref name="version"/> (<see cref="LogFolds"/>).
    /// Best effort: false when it could not be written (a read-only disk, a log not on the file system).
    /// </summary>
    public async Task<bool> WriteFoldAsync(string name, long version, string value, CancellationToken cancellationToken = default)
    {
        LogFolds.Validate(name);
        ArgumentNullException.ThrowIfNull(value);
        if (_log.Store is not FileSystemLogStore files)
        {
            return false;
        }

        try
        {
            if (await _log.Store.ReadAsync(version, cancellationToken).ConfigureAwait(false) is not { } entry)
            {
                throw new ArgumentOutOfRangeException(nameof(version), version, $"Table '{Path}' has no version {version}.");
            }

            await new LogFolds(files.Location).WriteAsync(name, entry, value, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The latest snapshot (reads only the log entries committed since this handle last looked).</summary>
    public async Task<DeltaSnapshot> GetSnapshotAsync(CancellationToken cancellationToken = default) =>
        new(Path, await RefreshAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Time travel: the snapshot at <paramref name="version"/>.</summary>
    public async Task<DeltaSnapshot> GetSnapshotAsync(long version, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        var latestVersion = await _log.LatestVersionAsync(Volatile.Read(ref _latest).Version, cancellationToken).ConfigureAwait(false);
        if (version > latestVersion)
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, $"Table '{Path}' has versions 0 to {latestVersion}.");
        }

        var cached = Volatile.Read(ref _latest);
        var state = cached.Version == version
            ? cached
            : await _log.ReplayAsync(cached.Version < version ? cached : null, version, null, cancellationToken).ConfigureAwait(false);
        return new DeltaSnapshot(Path, state);
    }

    /// <summary>Time travel: the snapshot current at <paramref name="asOf"/> (the last version committed at or before it).</summary>
    public async Task<DeltaSnapshot> GetSnapshotAsync(DateTimeOffset asOf, CancellationToken cancellationToken = default)
    {
        var latestVersion = await _log.LatestVersionAsync(Volatile.Read(ref _latest).Version, cancellationToken).ConfigureAwait(false);
        TableState? chosen = null;
        var clock = new CommitClock();
        var first = DateTimeOffset.MinValue;
        await _log.ReplayAsync(null, latestVersion, (state, _) =>
        {
            var time = clock.Next(state.Timestamp);
            if (first == DateTimeOffset.MinValue)
            {
                first = time; // version 0, or the checkpoint a cleaned-up log starts from
            }

            if (time <= asOf)
            {
                chosen = state;
            }
        }, cancellationToken).ConfigureAwait(false);

        if (chosen is null)
        {
            throw new ArgumentOutOfRangeException(nameof(asOf), asOf, _log.StartsAtZero
                ? $"Table '{Path}' did not exist yet; its first commit is at {first:O}."
                : $"Table '{Path}' can be read only from {first:O} on: the log's entries before its oldest checkpoint were cleaned up.");
        }

        _log.EnsureReadable(chosen);
        return new DeltaSnapshot(Path, chosen);
    }

    /// <summary>
    /// Commits a transaction atomically as the next version. If another writer takes that version first,
    /// the commits in between are checked: appends never conflict and the commit is retried at the next
    /// version; a concurrent metadata/protocol change, or a concurrent add/remove in partitions this
    /// transaction replaces or of files it removes, fails with <see cref="ConcurrentModificationException"/>,
    /// except a commit that only rearranges rows (every add and remove without dataChange, as a compaction
    /// writes; Weft trusts the flag as Delta readers do) within replaced partitions: the replace then
    /// removes the files there at the new version. A transaction with <see cref="DeltaTransaction.Once"/>
    /// also conflicts with any commit after the version its writer checked that records the same value.
    /// A writer schema that does not match the table fails with <see cref="SchemaMismatchException"/>.
    /// On any failure nothing is committed.
    /// </summary>
    public async Task<CommitResult> CommitAsync(DeltaTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var state = await RefreshAsync(cancellationToken).ConfigureAwait(false);
        var readVersion = state.Version;
        Validate(transaction, state);
        if (transaction.Once is { } once && state.Version > once.CheckedThrough)
        {
            // Commits its writer did not look through before deciding to write: one may be the same work.
            foreach (var commit in await GetCommitsAfterAsync(once.CheckedThrough, cancellationToken).ConfigureAwait(false))
            {
                if (commit.Parameters.TryGetValue(once.Parameter, out var value) && value == once.Value)
                {
                    throw new ConcurrentModificationException(Path, commit.Version, retriesExhausted: false,
                        $"Concurrent modification of table '{Path}': version {commit.Version} ({commit.Operation}) {RecordedAlready(once)}, "
                        + $"which this '{transaction.Operation}' transaction records only once (checked through version {once.CheckedThrough}). Nothing was committed.");
                }
            }
        }

        var removed = ResolveRemoves(transaction, state);
        var addedPaths = transaction.Adds.Select(a => a.Path).ToHashSet(StringComparer.Ordinal);
        var removedPaths = removed.Select(r => r.Path).ToHashSet(StringComparer.Ordinal);
        var fileActions = BuildFileActions(transaction, removed, state.Metadata.PartitionColumns, _options.TimeProvider.GetUtcNow());
        var rearranged = new StrongBox<bool>();
        var parameters = new Dictionary<string, string>(transaction.Parameters, StringComparer.Ordinal);
        parameters.TryAdd("mode", transaction.ReplacedPartitions is null ? "Append" : "Overwrite");
        if (transaction.ReplacedPartitions is { } replaced)
        {
            parameters.TryAdd("predicate", replaced.ToString());
        }

        var txnId = Guid.NewGuid().ToString();
        for (var attempt = 1; ; attempt++)
        {
            var now = _options.TimeProvider.GetUtcNow();
            var version = state.Version + 1;
            var actions = new List<DeltaAction>(fileActions.Count + 1)
            {
                new CommitInfoAction
                {
                    Timestamp = now.ToUnixTimeMilliseconds(),
                    Operation = transaction.Operation,
                    OperationParameters = parameters,
                    ReadVersion = state.Version,
                    IsBlindAppend = transaction.IsBlindAppend,
                    EngineInfo = EngineInfo,
                    TxnId = txnId,
                },
            };
            actions.AddRange(fileActions);

            if (await _log.Store.TryCommitAsync(version, DeltaActionCodec.Serialize(actions), cancellationToken).ConfigureAwait(false))
            {
                var committed = TableState.Apply(state, version, actions, now, Path, _log.Store.Describe(version));
                Publish(committed);
                CheckpointWhenDue(committed);
                return new CommitResult(version, attempt, transaction.Adds.Count, removed.Count);
            }

            if (attempt >= _options.MaxCommitAttempts)
            {
                throw new ConcurrentModificationException(Path, null, retriesExhausted: true,
                    $"Gave up committing '{transaction.Operation}' to table '{Path}' after {attempt} attempts: each version tried (last {version}) "
                    + "was taken by a concurrent writer. No conflicting change was found; the commit may be retried. Nothing was committed.");
            }

            state = await CatchUpAsync(state, readVersion, transaction, addedPaths, removedPaths, rearranged, cancellationToken).ConfigureAwait(false);
            if (rearranged.Value)
            {
                // A compaction rewrote files of the partitions this transaction replaces: the same rows in
                // other files. Replace what is there now.
                rearranged.Value = false;
                removed = ResolveRemoves(transaction, state);
                removedPaths = removed.Select(r => r.Path).ToHashSet(StringComparer.Ordinal);
                fileActions = BuildFileActions(transaction, removed, state.Metadata.PartitionColumns, _options.TimeProvider.GetUtcNow());
            }

            await BackOffAsync(attempt, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The commits, newest first; at most <paramref name="limit"/> when given.</summary>
    public async Task<IReadOnlyList<CommitSummary>> GetHistoryAsync(int? limit = null, CancellationToken cancellationToken = default)
    {
        if (limit is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "The history limit must be at least 1.");
        }

        var latestVersion = await _log.LatestVersionAsync(Volatile.Read(ref _latest).Version, cancellationToken).ConfigureAwait(false);
        var oldest = Math.Max(_log.EarliestCommit, limit is { } l ? latestVersion - l + 1 : 0);
        var result = new List<CommitSummary>();
        for (var version = latestVersion; version >= oldest; version--)
        {
            result.Add(await ReadSummaryAsync(version, cancellationToken).ConfigureAwait(false));
        }

        return result;
    }

    /// <summary>
    /// The commits after <paramref name="afterVersion"/> up to the latest, oldest first: what a reader that
    /// has seen the table through <paramref name="afterVersion"/> (-1: nothing) reads to catch up, so a
    /// long-lived reader's cost follows the new commits, not the table's age.
    /// </summary>
    public async Task<IReadOnlyList<CommitSummary>> GetCommitsAfterAsync(long afterVersion, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(afterVersion, -1);
        var latestVersion = await _log.LatestVersionAsync(Volatile.Read(ref _latest).Version, cancellationToken).ConfigureAwait(false);
        if (afterVersion + 1 < _log.EarliestCommit)
        {
            throw new DeltaLogException(Path, _log.Store.Describe(afterVersion + 1),
                $"The commits of '{Path}' after version {afterVersion} cannot be listed: the log's entries before version {_log.EarliestCommit} were cleaned up behind a checkpoint.");
        }

        var result = new List<CommitSummary>((int)Math.Clamp(latestVersion - afterVersion, 0, 1024));
        long next = afterVersion + 1;
        if (_snapshot is { } snapshot && afterVersion < snapshot.State.Version && snapshot.State.Version <= latestVersion)
        {
            try
            {
                result = await LogSnapshots.ReadCommitsAsync(snapshot, afterVersion, cancellationToken).ConfigureAwait(false);
                next = snapshot.State.Version + 1;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException)
            {
                result.Clear(); // gone or damaged since it was opened: the commit files say the same
            }
        }

        for (var version = next; version <= latestVersion; version++)
        {
            result.Add(await ReadSummaryAsync(version, cancellationToken).ConfigureAwait(false));
        }

        return result;
    }

    private async Task<CommitSummary> ReadSummaryAsync(long version, CancellationToken cancellationToken) =>
        Summary(await _log.ReadAsync(version, cancellationToken).ConfigureAwait(false));

    private static CommitSummary Summary(CommitEntry entry)
    {
        var info = entry.Actions.OfType<CommitInfoAction>().FirstOrDefault();
        return new CommitSummary(
            entry.Version,
            info?.Timestamp is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : entry.FileTime,
            info?.Operation ?? "UNKNOWN",
            info?.OperationParameters ?? new Dictionary<string, string>(),
            entry.Actions.Count(a => a is AddAction),
            entry.Actions.Count(a => a is RemoveAction),
            DataChange(entry.Actions));
    }

    /// <summary>Whether a commit changes rows: a file action with dataChange, or no file action at all (metadata and the like); false for a pure rearrangement (a compaction).</summary>
    private static bool DataChange(IReadOnlyList<DeltaAction> actions)
    {
        bool anyFile = false;
        foreach (var action in actions)
        {
            switch (action)
            {
                case AddAction { DataChange: true }:
                case RemoveAction { DataChange: true }:
                    return true;
                case AddAction or RemoveAction:
                    anyFile = true;
                    break;
            }
        }

        return !anyFile;
    }

    /// <summary>
    /// Deletes data files that no version from the latest back to the retention horizon
    /// (<c>now - retention</c>, by the injected clock) references, and that were last written before the
    /// horizon. The version current at the horizon counts as retained, so time travel to any instant
    /// within the retention keeps working. A table that sets <c>delta.deletedFileRetentionDuration</c>
    /// keeps its removed files at least that long, whatever <paramref name="retention"/> asks (the
    /// result's <see cref="VacuumResult.Retention"/> says which applied). A file counts as referenced
    /// however the log names it (relative, absolute, a <c>file:</c> URI), and so does a referenced
    /// file's deletion vector. Never touches <c>_delta_log</c> or other hidden files; never commits.
    /// With <paramref name="dryRun"/>, only lists what would be deleted.
    /// </summary>
    public async Task<VacuumResult> VacuumAsync(TimeSpan retention, bool dryRun = false, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retention, TimeSpan.Zero);
        var asked = retention;
        retention = Retention(asked, Volatile.Read(ref _latest).Metadata.Configuration);
        var horizon = _options.TimeProvider.GetUtcNow() - retention;
        var latestVersion = await _log.LatestVersionAsync(Volatile.Read(ref _latest).Version, cancellationToken).ConfigureAwait(false);
        if (!_log.StartsAtZero)
        {
            // Which files the versions before the checkpoint still need is in its remove tombstones, which
            // Weft does not keep: vacuuming is for the engine that cleans the log up.
            throw new DeltaLogException(Path, _log.Store.Describe(_log.EarliestCommit),
                $"Cannot vacuum table '{Path}': its log starts at version {_log.EarliestCommit} (earlier entries were cleaned up behind a checkpoint), and Weft vacuums only tables whose log is complete from version 0.");
        }

        // One pass over the log, keeping only what the answer needs (a stream commits ~17,000 times a
        // day, so holding every version's state and actions would grow without bound): the files of the
        // version current at the horizon, and the files added after it. The oldest retained version is
        // the one current at the horizon; 0 when every commit is newer.
        //
        // A handle that vacuums again (a stream's, once a day) starts from the version its last vacuum
        // found current at the horizon, with the commit clock as it stood there: horizons only move
        // forward, so the replay covers the commits since, not the table's whole age. Not when the
        // horizon moved back before it (a longer retention), or the log no longer reaches it.
        var start = Volatile.Read(ref _vacuumBase);
        if (start is not null && (start.Clock > horizon || start.State.Version > latestVersion))
        {
            start = null;
        }

        // A handle's first vacuum (a stream's, a day after it started) starts from the log snapshot it
        // opened from, when that knows its commit clock and is older than the horizon.
        if (start is null && Volatile.Read(ref _snapshot) is { Clock: { } snapshotClock } snapshot && snapshotClock <= horizon && snapshot.State.Version <= latestVersion)
        {
            start = new VacuumBase(snapshot.State, snapshotClock);
        }

        var clock = new CommitClock(start?.Clock ?? DateTimeOffset.MinValue);
        var atHorizon = start;
        HashSet<string>? referenced = start is null ? null : ReferencedBy(start.State);
        var latest = await _log.ReplayAsync(start?.State, latestVersion, (state, entry) =>
        {
            var at = clock.Next(state.Timestamp);
            if (referenced is null || at <= horizon)
            {
                // Current at the horizon (or version 0): it and everything after it are retained.
                atHorizon = new VacuumBase(state, at);
                referenced = ReferencedBy(state);
                return;
            }

            foreach (var action in entry.Actions)
            {
                if (action is AddAction add)
                {
                    Reference(referenced, DeltaPaths.FromLogPath(add.Path), add.DeletionVector, entry.Version);
                }
            }
        }, cancellationToken).ConfigureAwait(false);
        if (ProtocolSupport.WriteProblem(latest) is { } problem)
        {
            throw new DeltaLogException(Path, _log.Store.Describe(latest.ProtocolVersion), $"Cannot vacuum table '{Path}': {problem}.");
        }

        if (Retention(asked, latest.Metadata.Configuration) > retention)
        {
            // The table's retention was raised since this handle last read it: vacuum by the new one.
            return await VacuumAsync(Retention(asked, latest.Metadata.Configuration), dryRun, cancellationToken).ConfigureAwait(false);
        }

        referenced ??= ReferencedBy(latest); // the replay saw version 0 at least
        long oldest = atHorizon?.State.Version ?? 0;
        Volatile.Write(ref _vacuumBase, atHorizon);
        var files = new List<VacuumedFile>();
        foreach (var (relative, info) in EnumerateDataFiles(Path, latest.Metadata.PartitionColumns))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (referenced.Contains(relative) || info.LastWriteTimeUtc >= horizon.UtcDateTime)
            {
                continue; // Referenced, or young enough to belong to a writer that has not committed yet.
            }

            var size = info.Length;
            if (!dryRun)
            {
                info.Delete();
            }

            files.Add(new VacuumedFile(relative, size));
        }

        // Temporary files of log writes (a commit, a checkpoint, a log snapshot) whose writer was killed
        // before its rename: no reader opens them, and nothing else removes them. One older than the
        // horizon cannot belong to a write still running.
        foreach (var directory in new[] { System.IO.Path.Combine(Path, "_delta_log"), System.IO.Path.Combine(Path, "_delta_log", LogSnapshots.DirectoryName) })
        {
            if (!Directory.Exists(directory))
            {
                continue;
            }

            foreach (var temp in new DirectoryInfo(directory).EnumerateFiles(".*.tmp"))
            {
                if (temp.LastWriteTimeUtc >= horizon.UtcDateTime)
                {
                    continue;
                }

                var size = temp.Length;
                if (!dryRun)
                {
                    temp.Delete();
                }

                files.Add(new VacuumedFile(System.IO.Path.GetRelativePath(Path, temp.FullName).Replace('\\', '/'), size));
            }
        }

        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new VacuumResult(dryRun, horizon, oldest, latestVersion, files) { Retention = retention };
    }

    /// <summary>
    /// <paramref name="asked"/>, or the table's <c>delta.deletedFileRetentionDuration</c> when it sets a longer
    /// one. A value Weft cannot read stops the vacuum: guessing could delete what the table promised to keep.
    /// </summary>
    private TimeSpan Retention(TimeSpan asked, IReadOnlyDictionary<string, string> configuration)
    {
        if (!configuration.TryGetValue(CheckpointWriter.DeletedFileRetentionProperty, out var text))
        {
            return asked;
        }

        if (!CheckpointWriter.TryParseInterval(text, out var table))
        {
            throw new DeltaLogException(Path, _log.Store.Describe(Volatile.Read(ref _latest).Version),
                $"Cannot vacuum table '{Path}': its {CheckpointWriter.DeletedFileRetentionProperty} '{text}' is not a duration Weft reads (e.g. 'interval 30 days'), so how long it keeps removed files is unknown.");
        }

        return table > asked ? table : asked;
    }

    /// <summary>The files <paramref name="state"/> references, and their deletion vectors' files, as vacuum lists the table's files.</summary>
    private HashSet<string> ReferencedBy(TableState state)
    {
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, file) in state.Files)
        {
            Reference(referenced, path, file.DeletionVector, state.Version);
        }

        return referenced;
    }

    /// <summary>
    /// Adds a data file and its deletion vector's file in the form vacuum lists files: relative to the
    /// table with '/' separators. A log may name a file by an absolute path or a <c>file:</c> URI (other
    /// engines write them), which <see cref="DeltaPaths.FromLogPath"/> turns into an absolute local path.
    /// </summary>
    private void Reference(HashSet<string> referenced, string path, DeletionVectorDescriptor? vector, long version)
    {
        referenced.Add(TableRelative(path));
        if (vector is { StorageType: "u" or "p" })
        {
            string vectorPath;
            try
            {
                vectorPath = DeletionVectorReader.FilePath(Path, vector);
            }
            catch (FormatException e)
            {
                // Which file the vector is in is unknown, so any file could be it: stop before deleting.
                throw new DeltaLogException(Path, _log.Store.Describe(version),
                    $"Cannot vacuum table '{Path}': the deletion vector of '{TableRelative(path)}' (as of version {version}) does not name a file: {e.Message}.", e);
            }

            referenced.Add(TableRelative(vectorPath));
        }
    }

    private string TableRelative(string path) =>
        System.IO.Path.IsPathRooted(path) ? System.IO.Path.GetRelativePath(Path, path).Replace('\\', '/') : path;

    private async ValueTask<TableState> RefreshAsync(CancellationToken cancellationToken)
    {
        // Read the cache before listing: another caller may publish a newer state while this one lists.
        var cached = Volatile.Read(ref _latest);
        var latestVersion = await _log.LatestVersionAsync(cached.Version, cancellationToken).ConfigureAwait(false);
        if (latestVersion == cached.Version)
        {
            return cached;
        }

        var state = await _log.ReplayAsync(cached, latestVersion, null, cancellationToken).ConfigureAwait(false);
        Publish(state);
        return state;
    }

    private void Publish(TableState state)
    {
        lock (_gate)
        {
            if (state.Version > _latest.Version)
            {
                _latest = state;
            }
        }

        SnapshotWhenDue();
    }

    private static string RecordedAlready(CommitOnce once) => $"recorded {once.Parameter} '{once.Value}' already";

    /// <summary>Replays the commits that beat this transaction, throwing at the first one it conflicts with.</summary>
    private async ValueTask<TableState> CatchUpAsync(
        TableState state,
        long readVersion,
        DeltaTransaction transaction,
        HashSet<string> addedPaths,
        HashSet<string> removedPaths,
        StrongBox<bool> rearranged,
        CancellationToken cancellationToken)
    {
        var latestVersion = await _log.LatestVersionAsync(state.Version, cancellationToken).ConfigureAwait(false);
        var before = state;
        var caughtUp = await _log.ReplayAsync(state, latestVersion, (after, entry) =>
        {
            if (FindConflict(transaction, addedPaths, removedPaths, before, entry, rearranged) is { } reason)
            {
                var operation = entry.Actions.OfType<CommitInfoAction>().FirstOrDefault()?.Operation ?? "UNKNOWN";
                throw new ConcurrentModificationException(Path, entry.Version, retriesExhausted: false,
                    $"Concurrent modification of table '{Path}': version {entry.Version} ({operation}) {reason}, "
                    + $"which conflicts with this '{transaction.Operation}' transaction (read at version {readVersion}). Nothing was committed.");
            }

            before = after;
        }, cancellationToken).ConfigureAwait(false);
        Publish(caughtUp);
        return caughtUp;
    }

    /// <summary>
    /// Whether <paramref name="after"/> only adds nullable columns to <paramref name="before"/> (or
    /// allows nulls in one), as another writer's <see cref="AddColumnsAsync"/> does: a transaction
    /// written against the narrower schema is still valid (its files read the new columns as null), so a
    /// stream still running the earlier definition of a signal goes on committing.
    /// </summary>
    private static bool OnlyAddsColumns(MetadataAction before, MetadataAction after)
    {
        if (before.Id != after.Id || !before.PartitionColumns.SequenceEqual(after.PartitionColumns, StringComparer.Ordinal)
            || before.Configuration.Count != after.Configuration.Count || before.Configuration.Any(c => after.Configuration.GetValueOrDefault(c.Key) != c.Value))
        {
            return false;
        }

        try
        {
            var wider = DeltaSchema.Parse(after.SchemaString);
            return DeltaSchema.Parse(before.SchemaString).WithColumnsOf(wider) is { } widened
                && widened.Fields.Count == wider.Fields.Count && widened.Fields.All(f => wider.Find(f.Name) == f);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static string? FindConflict(
        DeltaTransaction transaction,
        HashSet<string> addedPaths,
        HashSet<string> removedPaths,
        TableState before,
        CommitEntry winner,
        StrongBox<bool> rearranged)
    {
        var replaced = transaction.ReplacedPartitions;
        var partitionColumns = before.Metadata.PartitionColumns;
        // A commit that only rearranges rows (a compaction: every add and remove without dataChange)
        // within partitions this transaction replaces changes nothing it means to replace: it is not a
        // conflict, and the transaction's removals are resolved again against the new files.
        bool rearranges = replaced is not null && !DataChange(winner.Actions);
        foreach (var action in winner.Actions)
        {
            switch (action)
            {
                case CommitInfoAction info when transaction.Once is { } once
                    && info.OperationParameters?.TryGetValue(once.Parameter, out var value) == true && value == once.Value:
                    return RecordedAlready(once);
                case MetadataAction metadata when !OnlyAddsColumns(before.Metadata, metadata):
                    return "changed the table metadata (schema, partitioning or configuration)";
                case ProtocolAction:
                    return "changed the table protocol";
                case AddAction add:
                {
                    var path = DeltaPaths.FromLogPath(add.Path);
                    if (addedPaths.Contains(path))
                    {
                        return $"also added file '{path}'";
                    }

                    if (replaced is not null && replaced.Matches(add.PartitionValues))
                    {
                        if (rearranges)
                        {
                            rearranged.Value = true;
                            break;
                        }

                        return $"added file '{path}' to partition {Describe(add.PartitionValues, partitionColumns)}, which this transaction replaces ({replaced})";
                    }

                    break;
                }

                case RemoveAction remove:
                {
                    var path = DeltaPaths.FromLogPath(remove.Path);
                    var values = remove.PartitionValues ?? before.Files.GetValueOrDefault(path)?.PartitionValues;
                    bool inReplaced = replaced is not null && values is not null && replaced.Matches(values);
                    if (rearranges && inReplaced && !transaction.Removes.Contains(path))
                    {
                        rearranged.Value = true;
                        break;
                    }

                    if (removedPaths.Contains(path))
                    {
                        return $"removed file '{path}', which this transaction also removes";
                    }

                    if (inReplaced)
                    {
                        return $"removed file '{path}' from partition {Describe(values!, partitionColumns)}, which this transaction replaces ({replaced})";
                    }

                    break;
                }
            }
        }

        return null;
    }

    private async ValueTask BackOffAsync(int attempt, CancellationToken cancellationToken)
    {
        if (_options.CommitRetryDelay <= TimeSpan.Zero)
        {
            return;
        }

        var units = Random.Shared.Next(0, Math.Min(attempt, 20) + 1);
        if (units > 0)
        {
            await Task.Delay(_options.CommitRetryDelay * units, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Validate(DeltaTransaction transaction, TableState state)
    {
        if (ProtocolSupport.WriteProblem(state) is { } problem)
        {
            throw new DeltaLogException(Path, _log.Store.Describe(state.ProtocolVersion), $"Cannot write table '{Path}': {problem}.");
        }

        var partitionColumns = state.Metadata.PartitionColumns;
        if (transaction.Adds.Count > 0)
        {
            var writerSchema = transaction.WriterSchema ?? throw new ArgumentException(
                $"Transaction '{transaction.Operation}' adds files to table '{Path}' but declares no writer schema (DeltaTransactionBuilder.WithWriterSchema).",
                nameof(transaction));
            if (state.Schema.FindMismatch(writerSchema, allowMissingNullable: true) is { } mismatch)
            {
                throw new SchemaMismatchException(Path, mismatch.Column,
                    $"Schema mismatch writing to table '{Path}': column '{mismatch.Column}': {mismatch.Problem}. Nothing was committed.");
            }
        }

        foreach (var add in transaction.Adds)
        {
            if (DeltaPaths.CheckDataFilePath(add.Path, partitionColumns) is { } pathProblem)
            {
                throw new ArgumentException($"Cannot add '{add.Path}' to table '{Path}': {pathProblem}.", nameof(transaction));
            }

            if (add.Size < 0)
            {
                throw new ArgumentException($"Cannot add '{add.Path}' to table '{Path}': size {add.Size} is negative.", nameof(transaction));
            }

            var keys = add.PartitionValues.Keys;
            if (keys.Count() != partitionColumns.Count || !partitionColumns.All(add.PartitionValues.ContainsKey))
            {
                throw new ArgumentException(
                    $"Cannot add '{add.Path}' to table '{Path}': its partition values name [{string.Join(", ", keys)}], the table is partitioned by [{string.Join(", ", partitionColumns)}].",
                    nameof(transaction));
            }

            if (state.Files.ContainsKey(add.Path))
            {
                throw new ArgumentException($"Cannot add '{add.Path}' to table '{Path}': the file is already in the table (version {state.Version}).", nameof(transaction));
            }

            if (transaction.ReplacedPartitions is { } replacedFilter && !replacedFilter.Matches(add.PartitionValues))
            {
                throw new ArgumentException(
                    $"Cannot add '{add.Path}' while replacing partitions {replacedFilter} of table '{Path}': its partition {add.DescribePartition(partitionColumns)} is outside them.",
                    nameof(transaction));
            }
        }

        transaction.ReplacedPartitions?.Validate(partitionColumns, Path);

        if (!transaction.IsBlindAppend
            && state.Metadata.Configuration.TryGetValue(AppendOnlyProperty, out var appendOnly)
            && string.Equals(appendOnly, "true", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Table '{Path}' is append-only ({AppendOnlyProperty}=true); '{transaction.Operation}' would remove files.");
        }

        foreach (var path in transaction.Removes)
        {
            if (!state.Files.ContainsKey(path))
            {
                throw new ConcurrentModificationException(Path, null, retriesExhausted: false,
                    $"Cannot remove '{path}' from table '{Path}': it is not an active file at version {state.Version} (removed concurrently, or never added). Nothing was committed.");
            }
        }
    }

    private static List<AddFile> ResolveRemoves(DeltaTransaction transaction, TableState state)
    {
        var removed = new Dictionary<string, AddFile>(StringComparer.Ordinal);
        foreach (var path in transaction.Removes)
        {
            removed[path] = state.Files[path];
        }

        if (transaction.ReplacedPartitions is { } filter)
        {
            foreach (var file in state.Files.Values)
            {
                if (filter.Matches(file.PartitionValues))
                {
                    removed[file.Path] = file;
                }
            }
        }

        return [.. removed.Values.OrderBy(f => f.Path, StringComparer.Ordinal)];
    }

    private static List<DeltaAction> BuildFileActions(DeltaTransaction transaction, List<AddFile> removed, IReadOnlyList<string> partitionColumns, DateTimeOffset now)
    {
        var actions = new List<DeltaAction>(removed.Count + transaction.Adds.Count);
        var deletionTimestamp = now.ToUnixTimeMilliseconds();
        foreach (var file in removed)
        {
            actions.Add(new RemoveAction(DeltaPaths.ToLogPath(file.Path), deletionTimestamp, DataChange: transaction.DataChange,
                ExtendedFileMetadata: true, PartitionValues: file.PartitionValues, Size: file.Size));
        }

        foreach (var file in transaction.Adds)
        {
            var values = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var column in partitionColumns)
            {
                var value = file.PartitionValues[column];
                values[column] = string.IsNullOrEmpty(value) ? null : value;
            }

            actions.Add(TableState.ToAddAction(file, values, file.DataChange && transaction.DataChange));
        }

        return actions;
    }

    private static async Task<DeltaTable?> TryCreateAsync(
        IDeltaLogStore store,
        string fullPath,
        DeltaSchema schema,
        IReadOnlyList<string> partitionColumns,
        DeltaTableOptions? options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(partitionColumns);
        options ??= DeltaTableOptions.Default;
        options.Validate();
        ValidateDefinition(fullPath, schema, partitionColumns);

        Directory.CreateDirectory(fullPath);
        var now = options.TimeProvider.GetUtcNow();
        var partitionBy = new JsonArray([.. partitionColumns.Select(c => (JsonNode?)JsonValue.Create(c))]).ToJsonString();
        var actions = new List<DeltaAction>
        {
            new CommitInfoAction
            {
                Timestamp = now.ToUnixTimeMilliseconds(),
                Operation = "CREATE TABLE",
                OperationParameters = new Dictionary<string, string>(StringComparer.Ordinal) { ["partitionBy"] = partitionBy },
                IsBlindAppend = true,
                EngineInfo = EngineInfo,
                TxnId = Guid.NewGuid().ToString(),
            },
            new ProtocolAction(ProtocolSupport.ReaderVersion, ProtocolSupport.WriterVersion),
            new MetadataAction(Guid.NewGuid().ToString(), FormatSpec.Parquet, schema.ToSchemaString(), [.. partitionColumns],
                new Dictionary<string, string>(StringComparer.Ordinal), now.ToUnixTimeMilliseconds()),
        };

        if (!await store.TryCommitAsync(0, DeltaActionCodec.Serialize(actions), cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var state = TableState.Apply(null, 0, actions, now, fullPath, store.Describe(0));
        return new DeltaTable(fullPath, new DeltaLogReader(store, fullPath, options.TimeProvider, options.LogCheckInterval), options, state);
    }

    private static void ValidateDefinition(string fullPath, DeltaSchema schema, IReadOnlyList<string> partitionColumns)
    {
        if (schema.Fields.Count == 0)
        {
            throw new ArgumentException($"Cannot create table '{fullPath}' without columns.", nameof(schema));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var column in partitionColumns)
        {
            var field = schema.Find(column)
                ?? throw new ArgumentException($"Partition column '{column}' of table '{fullPath}' is not in the schema ({schema}).", nameof(partitionColumns));
            if (field.IsList)
            {
                throw new ArgumentException($"Partition column '{column}' of table '{fullPath}' is a list; partition columns must be primitives.", nameof(partitionColumns));
            }

            if (!seen.Add(column))
            {
                throw new ArgumentException($"Partition column '{column}' of table '{fullPath}' is listed twice.", nameof(partitionColumns));
            }
        }

        if (seen.Count == schema.Fields.Count)
        {
            throw new ArgumentException($"Table '{fullPath}' needs at least one column that is not a partition column.", nameof(partitionColumns));
        }
    }

    /// <summary>
    /// The first entries of a folder a table is not to be created in, or null: a table is created only in
    /// a new or empty folder (hidden entries, '.' or '_' first, aside), since in one holding files, which
    /// no version of the new table would reference, a vacuum would delete them.
    /// </summary>
    private static string? HoldsFiles(string fullPath)
    {
        if (!Directory.Exists(fullPath))
        {
            return null;
        }

        var entries = Directory.EnumerateFileSystemEntries(fullPath).Select(System.IO.Path.GetFileName)
            .Where(name => name is { Length: > 0 } && name[0] != '.' && name[0] != '_').Take(3).ToList();
        return entries.Count == 0 ? null : string.Join(", ", entries) + (entries.Count == 3 ? ", …" : "");
    }

    private static IEnumerable<(string Relative, FileInfo Info)> EnumerateDataFiles(string root, IReadOnlyList<string> partitionColumns)
    {
        var pending = new Stack<(DirectoryInfo Directory, string Prefix)>();
        pending.Push((new DirectoryInfo(root), ""));
        while (pending.Count > 0)
        {
            var (directory, prefix) = pending.Pop();
            foreach (var entry in directory.EnumerateFileSystemInfos())
            {
                if (entry.Name == DeltaLogNaming.LogDirectoryName || DeltaPaths.IsHiddenName(entry.Name, partitionColumns))
                {
                    continue;
                }

                if (entry is DirectoryInfo subdirectory)
                {
                    // Another table nested inside this one is that table's to vacuum: its files are
                    // referenced by its own log, which this table's versions know nothing of.
                    if (subdirectory.LinkTarget is null && !Directory.Exists(System.IO.Path.Combine(subdirectory.FullName, DeltaLogNaming.LogDirectoryName)))
                    {
                        pending.Push((subdirectory, prefix + entry.Name + "/"));
                    }
                }
                else if (entry is FileInfo file)
                {
                    yield return (prefix + entry.Name, file);
                }
            }
        }
    }

    private static string Describe(IReadOnlyDictionary<string, string?> values, IReadOnlyList<string> partitionColumns) =>
        string.Join('/', partitionColumns.Select(c => c + "=" + (values.TryGetValue(c, out var v) ? v ?? "null" : "null")));

    private static string FirstDifferentColumn(DeltaSchema a, DeltaSchema b)
    {
        for (var i = 0; i < Math.Min(a.Fields.Count, b.Fields.Count); i++)
        {
            if (a.Fields[i] != b.Fields[i])
            {
                return a.Fields[i].Name;
            }
        }

        return a.Fields.Count > b.Fields.Count ? a.Fields[b.Fields.Count].Name : b.Fields[a.Fields.Count].Name;
    }

    private static string FullPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
    }

    /// <summary>The version a vacuum found current at its horizon, and the commit clock there.</summary>
    private sealed record VacuumBase(TableState State, DateTimeOffset Clock);

    /// <summary>Commit times made monotonic, as time travel by timestamp needs (clocks of different writers may disagree).</summary>
    private sealed class CommitClock(DateTimeOffset start)
    {
        private DateTimeOffset _last = start;

        public CommitClock()
            : this(DateTimeOffset.MinValue)
        {
        }

        public DateTimeOffset Next(DateTimeOffset timestamp)
        {
            _last = timestamp > _last ? timestamp : _last;
            return _last;
        }
    }
}
