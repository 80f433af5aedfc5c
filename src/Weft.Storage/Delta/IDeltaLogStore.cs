namespace Weft.Storage;

/// <summary>
/// The commit log of one table, reduced to the three operations the protocol needs: list, read,
/// and commit-if-absent. Implementations must make <see cref="TryCommitAsync"/> atomic and
/// exclusive: a version's content becomes visible all at once, and of two writers racing for the
/// same version exactly one wins.
/// </summary>
/// <remarks>
/// Buffer ownership: the <c>content</c> passed to <see cref="TryCommitAsync"/> is borrowed for the
/// duration of the call only; the store neither keeps nor mutates it. <see cref="LogEntry.Content"/>
/// returned by <see cref="ReadAsync"/> is a fresh array owned by the caller.
/// </remarks>
internal interface IDeltaLogStore
{
    /// <summary>Human-readable location of the log, for error messages.</summary>
    string Location { get; }

    /// <summary>Human-readable location of one version's entry, for error messages.</summary>
    string Describe(long version);

    /// <summary>All committed versions in ascending order, and the checkpoint files.</summary>
    ValueTask<LogListing> ListAsync(CancellationToken cancellationToken);

    /// <summary>Human-readable location of another file in the log directory (a checkpoint), for error messages.</summary>
    string DescribeFile(string fileName);

    /// <summary>Opens a checkpoint file for reading, or returns null when it does not exist. The caller disposes the stream.</summary>
    ValueTask<(Stream Content, DateTimeOffset LastModified)?> OpenFileAsync(string fileName, CancellationToken cancellationToken);

    /// <summary>The entry for <paramref name="version"/>, or null if it does not exist.</summary>
    ValueTask<LogEntry?> ReadAsync(long version, CancellationToken cancellationToken);

    /// <summary>
    /// Writes <paramref name="content"/> as <paramref name="version"/> if, and only if, no entry
    /// exists for it. Returns false (and changes nothing visible) when the version is taken.
    /// </summary>
    ValueTask<bool> TryCommitAsync(long version, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);
}

/// <summary>The result of listing a log: commit versions ascending, and checkpoint files in no particular order.</summary>
internal sealed record LogListing(IReadOnlyList<long> Versions, IReadOnlyList<CheckpointFile> Checkpoints)
{
    public bool HasCheckpoints => Checkpoints.Count > 0;
}

/// <summary>One committed log entry; <see cref="LastModified"/> dates commits without <c>commitInfo.timestamp</c>.</summary>
internal sealed record LogEntry(long Version, byte[] Content, DateTimeOffset LastModified);
