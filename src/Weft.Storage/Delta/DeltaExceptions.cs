namespace Weft.Storage;

/// <summary>
/// Base of every failure the table layer reports on purpose. <see cref="IsTransient"/> tells a caller
/// whether running the same operation again may succeed without changing anything.
/// </summary>
public abstract class DeltaException : Exception
{
    private protected DeltaException(string tablePath, string message, Exception? inner = null)
        : base(message, inner)
    {
        TablePath = tablePath;
    }

    /// <summary>Root directory of the table concerned.</summary>
    public string TablePath { get; }

    /// <summary>True when retrying the operation unchanged may succeed.</summary>
    public abstract bool IsTransient { get; }
}

/// <summary>
/// The log cannot be read or written as asked: no table, a gap in versions, a malformed entry,
/// a protocol Weft does not implement. Permanent; nothing was modified.
/// </summary>
public sealed class DeltaLogException : DeltaException
{
    internal DeltaLogException(string tablePath, string? filePath, string message, Exception? inner = null)
        : base(tablePath, message, inner)
    {
        FilePath = filePath;
    }

    /// <summary>The log file at fault, when one is.</summary>
    public string? FilePath { get; }

    public override bool IsTransient => false;
}

/// <summary>
/// A concurrent commit made this transaction invalid (it touched the partitions or files this one
/// replaces, or changed the table's metadata), or the retry budget ran out. Nothing was committed.
/// </summary>
public sealed class ConcurrentModificationException : DeltaException
{
    internal ConcurrentModificationException(string tablePath, long? conflictingVersion, bool retriesExhausted, string message)
        : base(tablePath, message)
    {
        ConflictingVersion = conflictingVersion;
        RetriesExhausted = retriesExhausted;
    }

    /// <summary>The version whose commit conflicts with this transaction, if one does.</summary>
    public long? ConflictingVersion { get; }

    /// <summary>True when no logical conflict was found but every commit attempt lost its race.</summary>
    public bool RetriesExhausted { get; }

    /// <summary>Retrying helps only when the attempts ran out; a logical conflict needs the work redone.</summary>
    public override bool IsTransient => RetriesExhausted;
}

/// <summary>The writer's declared schema does not match the table's; nothing was committed.</summary>
public sealed class SchemaMismatchException : DeltaException
{
    internal SchemaMismatchException(string tablePath, string column, string message)
        : base(tablePath, message)
    {
        Column = column;
    }

    /// <summary>The first column whose declaration differs.</summary>
    public string Column { get; }

    /// <summary>
    /// When the writer asked to add columns and <see cref="Column"/> is one the table lacks, why the
    /// table takes none (another engine's layout); else null.
    /// </summary>
    public string? ColumnsNotAddedBecause { get; init; }

    public override bool IsTransient => false;
}
