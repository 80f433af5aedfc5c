namespace Weft.Storage;

/// <summary>One parsed log entry.</summary>
internal sealed record CommitEntry(long Version, IReadOnlyList<DeltaAction> Actions, DateTimeOffset FileTime, string File);

/// <summary>
/// Reads and validates a table's log through an <see cref="IDeltaLogStore"/>: contiguous versions from 0,
/// well-formed entries, a protocol Weft implements. Every failure is a <see cref="DeltaLogException"/>
/// naming the file and the problem. Reading never writes.
/// </summary>
internal sealed class DeltaLogReader
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _checkInterval;
    private long _checkedAt; // when the log was last listed whole (TimeProvider timestamp); 0: never

    public DeltaLogReader(IDeltaLogStore store, string tablePath, TimeProvider? time = null, TimeSpan? checkInterval = null)
    {
        Store = store;
        TablePath = tablePath;
        _time = time ?? TimeProvider.System;
        _checkInterval = checkInterval ?? TimeSpan.Zero;
    }

    public IDeltaLogStore Store { get; }

    public string TablePath { get; }

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
        if (versions.Count == 0)
        {
            throw new DeltaLogException(TablePath, null,
                $"No Delta table at '{TablePath}': '{Store.Location}' holds no commit files.");
        }

        if (versions[0] != 0)
        {
            throw new DeltaLogException(TablePath, Store.Describe(0), listing.HasCheckpoints
                ? $"The log of '{TablePath}' starts at version {versions[0]}: earlier entries were cleaned up behind a checkpoint, and Weft reads only logs complete from version 0 ('{Store.Describe(0)}' is missing)."
                : $"The log of '{TablePath}' is missing its first entry '{Store.Describe(0)}' (the earliest present is version {versions[0]}).");
        }

        for (var i = 1; i < versions.Count; i++)
        {
            // A directory listing taken while another writer publishes a commit may miss entries
            // (readdir is not atomic against concurrent link/unlink), so confirm a gap before calling it one.
            if (versions[i] != i && await Store.ReadAsync(i, cancellationToken).ConfigureAwait(false) is null)
            {
                throw new DeltaLogException(TablePath, Store.Describe(i),
                    $"The log of '{TablePath}' has a gap: log entry '{Store.Describe(i)}' is missing, but version {versions[i]} exists.");
            }
        }

        // For the same reason the newest entries may be missing from the listing: probe past its end.
        long latest = versions[^1];
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

        Volatile.Write(ref _checkedAt, now == 0 ? 1 : now);
        return latest;
    }

    /// <summary>Reads and parses one entry.</summary>
    public async ValueTask<CommitEntry> ReadAsync(long version, CancellationToken cancellationToken)
    {
        var file = Store.Describe(version);
        var entry = await Store.ReadAsync(version, cancellationToken).ConfigureAwait(false)
            ?? throw new DeltaLogException(TablePath, file, $"Log entry '{file}' is missing (the table has no version {version}).");
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
        for (var version = (from?.Version ?? -1) + 1; version <= toVersion; version++)
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

    /// <summary>Throws when the state's protocol asks for a reader version or feature Weft lacks.</summary>
    public void EnsureReadable(TableState state)
    {
        if (ProtocolSupport.ReadProblem(state.Protocol) is { } problem)
        {
            var file = Store.Describe(state.ProtocolVersion);
            throw new DeltaLogException(TablePath, file, $"Cannot read table '{TablePath}': {problem} (protocol set in '{file}').");
        }
    }
}
