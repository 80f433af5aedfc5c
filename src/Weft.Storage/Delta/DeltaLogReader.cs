namespace Weft.Storage;

/// <summary>One parsed log entry.</summary>
internal sealed record CommitEntry(long Version, IReadOnlyList<DeltaAction> Actions, DateTimeOffset FileTime, string File);

/// <summary>
/// Reads and validates a table's log through an <see cref="IDeltaLogStore"/>: contiguous versions from 0,
/// or from a checkpoint when another engine's metadata cleanup deleted the entries before it; well-formed
/// entries; a protocol Weft implements. Every failure is a <see cref="DeltaLogException"/> naming the file
/// and the problem. Reading never writes.
/// </summary>
internal sealed class DeltaLogReader
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _checkInterval;
    private long _checkedAt; // when the log was last listed whole (TimeProvider timestamp); 0: never
    private volatile LogBase? _base; // set when the log's commits start after version 0: the checkpoints it starts from
    private volatile LoadedCheckpoint? _loaded; // the checkpoint state read last, reused by the next replay from it

    public DeltaLogReader(IDeltaLogStore store, string tablePath, TimeProvider? time = null, TimeSpan? checkInterval = null)
    {
        Store = store;
        TablePath = tablePath;
        _time = time ?? TimeProvider.System;
        _checkInterval = checkInterval ?? TimeSpan.Zero;
    }

    public IDeltaLogStore Store { get; }

    public string TablePath { get; }

    /// <summary>
    /// True when the log holds every commit from version 0 (Weft never deletes log entries; other engines'
    /// metadata cleanup does, behind a checkpoint). As of the last whole listing.
    /// </summary>
    public bool StartsAtZero => _base is null;

    /// <summary>The oldest commit entry the log still holds (0 unless cleaned up), as of the last whole listing.</summary>
    public long EarliestCommit => _base?.EarliestCommit ?? 0;

    /// <summary>The latest committed version, after checking versions run 0, 1, 2, … without a gap.</summary>
    public ValueTask<long> LatestVersionAsync(CancellationToken cancellationToken) => LatestVersionAsync(-1, cancellationToken);

    /// <summary>
    /// The latest committed version, given that <paramref name="knownVersion"/> was committed before
    /// (-1 when nothing is known). A listing can miss entries that a concurrent commit is publishing,
    /// so a listing that ends before the known version is confirmed by reading that entry: only an
    /// entry that really disappeared makes the log go backwards. Within the check interval since the
    /// last listing, a known version is not listed again: the entries after it are read until one is
    /// missing (a listing costs the log's length; see <see cref="DeltaTableOptions.LogCheckInterval"/>).
    /// </summary>
    public async ValueTask<long> LatestVersionAsync(long knownVersion, CancellationToken cancellationToken)
    {
        // Within the check interval, a known version that is still there is where the search starts:
        // the versions up to it were listed gap-free before. A known version gone is for the listing to report.
        long now = _time.GetTimestamp();
        long checkedAt = Volatile.Read(ref _checkedAt);
        if (knownVersion >= 0 && checkedAt != 0 && _time.GetElapsedTime(checkedAt, now) < _checkInterval
            && await Store.ReadAsync(knownVersion, cancellationToken).ConfigureAwait(false) is not null)
        {
            long next = knownVersion;
            while (await Store.ReadAsync(next + 1, cancellationToken).ConfigureAwait(false) is not null)
            {
                next++;
            }

            return next;
        }

        var listing = await Store.ListAsync(cancellationToken).ConfigureAwait(false);
        var versions = listing.Versions;
        if (versions.Count == 0 && !listing.HasCheckpoints)
        {
            throw new DeltaLogException(TablePath, null,
                File.Exists(TablePath) ? $"No Delta table at '{TablePath}': it is a file; a table is a folder holding _delta_log."
                : !Directory.Exists(TablePath) ? $"No Delta table at '{TablePath}': it does not exist."
                : $"No Delta table at '{TablePath}': '{Store.Location}' holds no commit files.");
        }

        long first = versions.Count > 0 ? versions[0] : long.MaxValue;
        LogBase? logBase = null;
        if (first != 0)
        {
            logBase = FindBase(listing, first);
        }

        for (var i = 1; i < versions.Count; i++)
        {
            // A directory listing taken while another writer publishes a commit may miss entries
            // (readdir is not atomic against concurrent link/unlink), so confirm a gap before calling it one.
            if (versions[i] != first + i && await Store.ReadAsync(first + i, cancellationToken).ConfigureAwait(false) is null)
            {
                throw new DeltaLogException(TablePath, Store.Describe(first + i),
                    $"The log of '{TablePath}' has a gap: log entry '{Store.Describe(first + i)}' is missing, but version {versions[i]} exists.");
            }
        }

        // For the same reason the newest entries may be missing from the listing: probe past its end.
        long latest = versions.Count > 0 ? versions[^1] : logBase!.Checkpoints[^1].Version;
        if (latest < knownVersion)
        {
            if (await Store.ReadAsync(knownVersion, cancellationToken).ConfigureAwait(false) is null)
            {
                throw new DeltaLogException(TablePath, Store.Describe(knownVersion),
                    $"The log of '{TablePath}' went backwards: version {knownVersion} was read before, but the latest entry is now version {latest}.");
            }

            latest = knownVersion;
        }

        while (await Store.ReadAsync(latest + 1, cancellationToken).ConfigureAwait(false) is not null)
        {
            latest++;
        }

        _base = logBase;
        Volatile.Write(ref _checkedAt, now == 0 ? 1 : now);
        return latest;
    }

    /// <summary>
    /// For a log whose commits start at <paramref name="first"/> &gt; 0: the complete classic checkpoints
    /// from which the commits that follow them are all present (version ≥ first − 1). Throws when there is none.
    /// </summary>
    private LogBase FindBase(LogListing listing, long first)
    {
        // A checkpoint before first - 1 is no use: the commits right after it are gone too.
        var usable = CheckpointAt.Complete(listing.Checkpoints.Where(c => first == long.MaxValue || c.Version >= first - 1), out bool incomplete);

        if (usable.Count == 0 && !listing.HasCheckpoints)
        {
            throw new DeltaLogException(TablePath, Store.Describe(0),
                $"The log of '{TablePath}' is missing its first entry '{Store.Describe(0)}' (the earliest present is version {first}) and has no checkpoint to start from.");
        }

        if (usable.Count == 0)
        {
            string why = incomplete ? "the only checkpoints covering them are multi-part checkpoints with parts missing" : "no checkpoint covers them";
            throw new DeltaLogException(TablePath, Store.Describe(0), first == long.MaxValue
                ? $"The log of '{TablePath}' holds no commit files and no checkpoint Weft can read ({why})."
                : $"The log of '{TablePath}' starts at version {first}: the entries before it were cleaned up, and {why} ('{Store.Describe(0)}' is missing).");
        }

        return new LogBase(first == long.MaxValue ? usable[^1].Version + 1 : first, usable);
    }

    /// <summary>Reads and parses one entry.</summary>
    public async ValueTask<CommitEntry> ReadAsync(long version, CancellationToken cancellationToken) =>
        await TryReadAsync(version, cancellationToken).ConfigureAwait(false)
            ?? throw new DeltaLogException(TablePath, Store.Describe(version), $"Log entry '{Store.Describe(version)}' is missing (the table has no version {version}).");

    /// <summary>Reads and parses one entry, or returns null when the log does not hold it.</summary>
    private async ValueTask<CommitEntry?> TryReadAsync(long version, CancellationToken cancellationToken)
    {
        var file = Store.Describe(version);
        if (await Store.ReadAsync(version, cancellationToken).ConfigureAwait(false) is not { } entry)
        {
            return null;
        }

        try
        {
            return new CommitEntry(version, DeltaActionCodec.Parse(entry.Content), entry.LastModified, file);
        }
        catch (FormatException e)
        {
            throw new DeltaLogException(TablePath, file, $"Malformed log entry '{file}', {e.Message}", e);
        }
    }

    /// <summary>
    /// Replays versions after <paramref name="from"/> (or from 0) up to <paramref name="toVersion"/>,
    /// calling <paramref name="observe"/> with each intermediate state, then checks Weft can read the result.
    /// </summary>
    public async ValueTask<TableState> ReplayAsync(
        TableState? from,
        long toVersion,
        Action<TableState, CommitEntry>? observe,
        CancellationToken cancellationToken)
    {
        var state = from;
        if (from is null && _base is { } logBase)
        {
            (state, var checkpointEntry) = await LoadCheckpointAsync(logBase, toVersion, cancellationToken).ConfigureAwait(false);
            observe?.Invoke(state, checkpointEntry);
        }

        for (var version = (state?.Version ?? -1) + 1; version <= toVersion; version++)
        {
            var entry = await ReadAsync(version, cancellationToken).ConfigureAwait(false);
            state = TableState.Apply(state, version, entry.Actions, entry.FileTime, TablePath, entry.File);
            observe?.Invoke(state, entry);
        }

        if (state is null)
        {
            throw new ArgumentOutOfRangeException(nameof(toVersion), toVersion, "A table has no version before 0.");
        }

        EnsureReadable(state);
        return state;
    }

    /// <summary>
    /// The state at the newest checkpoint not after <paramref name="toVersion"/> (the protocol: "for time
    /// travel, the checkpoint used must not be newer than the time travel version"), with a log entry made
    /// of its actions (and the commitInfo of its version's entry, when the log still holds it, to date it).
    /// </summary>
    private async ValueTask<(TableState State, CommitEntry Entry)> LoadCheckpointAsync(LogBase logBase, long toVersion, CancellationToken cancellationToken)
    {
        CheckpointAt? checkpoint = null;
        foreach (var candidate in logBase.Checkpoints)
        {
            checkpoint = candidate.Version <= toVersion ? candidate : checkpoint;
        }

        if (checkpoint is null)
        {
            var oldest = logBase.Checkpoints[0].Version;
            throw new DeltaLogException(TablePath, Store.Describe(toVersion),
                $"Version {toVersion} of '{TablePath}' can no longer be read: the log's entries before version {logBase.EarliestCommit} were cleaned up, and its oldest checkpoint is version {oldest}.");
        }

        if (_loaded is { } loaded && loaded.Version == checkpoint.Version)
        {
            return (loaded.State, loaded.Entry);
        }

        var (actions, lastModified) = await CheckpointReader.ReadAsync(Store, TablePath, checkpoint.Parts, cancellationToken).ConfigureAwait(false);
        var time = lastModified;
        if (checkpoint.Version >= logBase.EarliestCommit && await TryReadAsync(checkpoint.Version, cancellationToken).ConfigureAwait(false) is { } own)
        {
            actions.AddRange(own.Actions.OfType<CommitInfoAction>().Take(1));
            time = own.FileTime;
        }

        var file = Store.DescribeFile(checkpoint.Parts[0].FileName);
        var state = TableState.Apply(null, checkpoint.Version, actions, time, TablePath, file);
        var entry = new CommitEntry(checkpoint.Version, actions, time, file);
        _loaded = new LoadedCheckpoint(checkpoint.Version, state, entry);
        return (state, entry);
    }

    /// <summary>Throws when the state's protocol asks for a reader version or feature Weft lacks.</summary>
    public void EnsureReadable(TableState state)
    {
        if (ProtocolSupport.ReadProblem(state.Protocol) is { } problem)
        {
            var file = Store.Describe(state.ProtocolVersion);
            throw new DeltaLogException(TablePath, file, $"Cannot read table '{TablePath}': {problem} (protocol set in '{file}').");
        }

        if (state.ColumnMappingProblem is { } mappingProblem)
        {
            throw new DeltaLogException(TablePath, Store.Describe(state.Version), $"Cannot read table '{TablePath}' at version {state.Version}: {mappingProblem}.");
        }
    }
}

/// <summary>A log whose commits start at <see cref="EarliestCommit"/> &gt; 0, and its usable checkpoints, oldest first.</summary>
internal sealed record LogBase(long EarliestCommit, List<CheckpointAt> Checkpoints);

/// <summary>A complete checkpoint: its version and every part's file, in part order.</summary>
internal sealed record CheckpointAt(long Version, CheckpointFile[] Parts)
{
    /// <summary>
    /// The complete classic checkpoints among <paramref name="files"/>, oldest first: a multi-part one only
    /// with all its parts ("readers must ignore multi-part checkpoints with missing parts"). A version may
    /// have several (two writers raced); any complete one will do, the one with fewest parts is taken.
    /// </summary>
    public static List<CheckpointAt> Complete(IEnumerable<CheckpointFile> files, out bool incomplete)
    {
        var complete = new List<CheckpointAt>();
        incomplete = false;
        foreach (var version in files.GroupBy(c => c.Version).OrderBy(g => g.Key))
        {
            // A UUID-named (V2) checkpoint is one file, complete once it is there (its sidecars are read with it).
            CheckpointFile[]? chosen = version.Where(c => c.UuidNamed).OrderBy(c => c.FileName, StringComparer.Ordinal).Take(1).ToArray() is [var uuid] ? [uuid] : null;
            foreach (var kind in version.Where(c => !c.UuidNamed).GroupBy(c => c.Parts))
            {
                var parts = kind.DistinctBy(c => c.Part).OrderBy(c => c.Part).ToArray();
                if (parts.Length != kind.Key)
                {
                    incomplete = true;
                }
                else if (chosen is null || chosen.Length > parts.Length)
                {
                    chosen = parts;
                }
            }

            if (chosen is not null)
            {
                complete.Add(new CheckpointAt(version.Key, chosen));
            }
        }

        return complete;
    }
}

internal sealed record LoadedCheckpoint(long Version, TableState State, CommitEntry Entry);
