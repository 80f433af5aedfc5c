namespace Weft.Storage;

/// <summary>Options of a <see cref="DeltaTable"/> handle. Defaults: system clock, 100 commit attempts, 1 ms retry jitter unit.</summary>
public sealed record DeltaTableOptions
{
    public static DeltaTableOptions Default { get; } = new();

    /// <summary>Clock for commit timestamps and the vacuum horizon. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How many times a commit may lose the race for a version before giving up. Default 100.</summary>
    public int MaxCommitAttempts { get; init; } = 100;

    /// <summary>
    /// After a lost race a writer waits a random 0…(attempt × this) (capped at 20 units), through
    /// <see cref="TimeProvider"/>, to spread out contending writers. Default 1 ms; zero disables.
    /// </summary>
    public TimeSpan CommitRetryDelay { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Opening a table that replays at least this many commits writes a snapshot of its log
    /// (<c>_delta_log/_weft_snapshots/</c>), so the next open reads it and only the commits after it.
    /// Default 1,000; zero neither writes nor reads snapshots.
    /// </summary>
    public int SnapshotInterval { get; init; } = 1_000;

    /// <summary>
    /// A handle that commits a version divisible by this writes a Delta checkpoint of it
    /// (<c>_delta_log/V.checkpoint.parquet</c> and <c>_last_checkpoint</c>) in the background, so that
    /// other engines (Spark, delta-rs, DuckDB) open the table from it instead of replaying every commit.
    /// The table property <c>delta.checkpointInterval</c> overrides it. Default 100; zero writes none.
    /// </summary>
    public int CheckpointInterval { get; init; } = 100;

    /// <summary>
    /// How often a handle lists the whole log to check it still runs 0, 1, 2, … without a gap (by
    /// <see cref="TimeProvider"/>). Between listings, a handle that knows version V finds newer ones by
    /// reading V + 1, V + 2, … until one is missing: a listing costs the log's length, ~200 ms for the
    /// 200,000 commits of a stream's twelve days, and a stream's handles refresh at every flush. Opening a
    /// table always lists it. Default 1 minute; zero lists at every refresh.
    /// </summary>
    public TimeSpan LogCheckInterval { get; init; } = TimeSpan.FromMinutes(1);

    internal void Validate()
    {
        if (TimeProvider is null)
        {
            throw new ArgumentException("DeltaTableOptions.TimeProvider must not be null.");
        }

        if (MaxCommitAttempts < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxCommitAttempts), MaxCommitAttempts, "DeltaTableOptions.MaxCommitAttempts must be at least 1.");
        }

        if (CommitRetryDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CommitRetryDelay), CommitRetryDelay, "DeltaTableOptions.CommitRetryDelay must not be negative.");
        }

        if (LogCheckInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LogCheckInterval), LogCheckInterval, "DeltaTableOptions.LogCheckInterval must not be negative (zero lists the log at every refresh).");
        }

        if (CheckpointInterval < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(CheckpointInterval), CheckpointInterval, "DeltaTableOptions.CheckpointInterval must not be negative (zero writes no checkpoints).");
        }

        if (SnapshotInterval < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(SnapshotInterval), SnapshotInterval, "DeltaTableOptions.SnapshotInterval must not be negative (zero turns snapshots off).");
        }
    }
}

/// <summary>The outcome of a successful commit.</summary>
/// <param name="Version">The version the commit became.</param>
/// <param name="Attempts">1 when the first attempt won; more when concurrent commits had to be checked.</param>
public sealed record CommitResult(long Version, int Attempts, int FilesAdded, int FilesRemoved);

/// <summary>A Delta checkpoint written: the version it holds, its file, the live files and remove tombstones in it, its size.</summary>
public sealed record CheckpointResult(long Version, string Path, int Files, int Tombstones, long Bytes);

/// <summary>One entry of a table's history.</summary>
/// <param name="DataChange">
/// False when the commit only rearranged rows: it adds or removes files, all marked
/// <c>dataChange: false</c> (a compaction). True for every other commit.
/// </param>
public sealed record CommitSummary(
    long Version,
    DateTimeOffset Timestamp,
    string Operation,
    IReadOnlyDictionary<string, string> Parameters,
    int FilesAdded,
    int FilesRemoved,
    bool DataChange = true);

/// <summary>A data file vacuum deleted, or would delete in a dry run.</summary>
public sealed record VacuumedFile(string Path, long Size);

/// <summary>The outcome of a vacuum.</summary>
/// <param name="Horizon">Files written before this instant and unreferenced since version <paramref name="OldestRetainedVersion"/> are deleted.</param>
public sealed record VacuumResult(
    bool DryRun,
    DateTimeOffset Horizon,
    long OldestRetainedVersion,
    long LatestVersion,
    IReadOnlyList<VacuumedFile> Files)
{
    /// <summary>The retention that applied: the one asked for, or the table's <c>delta.deletedFileRetentionDuration</c> when that is longer.</summary>
    public TimeSpan Retention { get; init; }

    public long TotalBytes => Files.Sum(f => f.Size);
}
