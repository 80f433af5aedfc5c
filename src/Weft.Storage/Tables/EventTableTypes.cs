using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// Frozen options of an <see cref="EventTable"/> handle. Defaults: <see cref="RowGroupSize"/> 65,536
/// rows; <see cref="Parquet"/> = <see cref="ParquetWriterOptions.Default"/> (SNAPPY, dictionary
/// encoding, 1 MiB pages); <see cref="Delta"/> = <see cref="DeltaTableOptions.Default"/> (system
/// clock, 100 commit attempts).
/// </summary>
public sealed record EventTableOptions
{
    /// <summary>The default for <see cref="RowGroupSize"/>.</summary>
    public const int DefaultRowGroupSize = 65_536;

    /// <summary>The options with every default.</summary>
    public static EventTableOptions Default { get; } = new();

    /// <summary>Rows per Parquet row group (the unit of row-group skipping and of one read batch). At least 1.</summary>
    public int RowGroupSize { get; init; } = DefaultRowGroupSize;

    /// <summary>How data files are encoded.</summary>
    public ParquetWriterOptions Parquet { get; init; } = ParquetWriterOptions.Default;

    /// <summary>Options of the commit log (clock, commit retries).</summary>
    public DeltaTableOptions Delta { get; init; } = DeltaTableOptions.Default;

    /// <summary>
    /// When opening with a schema: an existing table that lacks some of its columns gains them, nullable
    /// (files written before read them as nulls), in a commit of its own. A column removed or retyped
    /// still fails. A signal's enriched table, whose columns an additive change adds to.
    /// </summary>
    public bool AddColumns { get; init; }

    /// <summary>Throws when an option is out of range, naming the option and the value.</summary>
    public void Validate()
    {
        if (RowGroupSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(RowGroupSize), RowGroupSize, $"{nameof(EventTableOptions)}.{nameof(RowGroupSize)} = {RowGroupSize} must be at least 1.");
        }

        if (Parquet is null)
        {
            throw new ArgumentException($"{nameof(EventTableOptions)}.{nameof(Parquet)} must not be null.");
        }

        if (Delta is null)
        {
            throw new ArgumentException($"{nameof(EventTableOptions)}.{nameof(Delta)} must not be null.");
        }

        Parquet.Validate();
        Delta.Validate();
    }
}

/// <summary>
/// A row filter on an int64 or timestamp column: rows whose value lies in [<paramref name="Min"/>,
/// <paramref name="Max"/>] (inclusive; null leaves that side open; timestamps in µs since the epoch).
/// Rows where the column is null never match. Files and row groups whose statistics exclude the
/// range are skipped without decoding.
/// </summary>
public sealed record ColumnRange(string Column, long? Min, long? Max)
{
    /// <summary>Rows of the timestamp column <paramref name="column"/> in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public static ColumnRange TimeBetween(string column, DateTimeOffset from, DateTimeOffset to) =>
        new(column, Weft.Definitions.Timestamps.ToMicros(from), Weft.Definitions.Timestamps.ToMicros(to) - 1);

    internal bool Contains(long value) => (Min is not { } min || value >= min) && (Max is not { } max || value <= max);
}

/// <summary>The outcome of a write to an <see cref="EventTable"/>.</summary>
/// <param name="Version">The table version the commit became; null when nothing was committed (an empty append).</param>
/// <param name="RowsWritten">Rows in the added files.</param>
/// <param name="FilesAdded">The data files the commit added, one per partition.</param>
/// <param name="FilesRemoved">Data files the commit removed (replaced partitions).</param>
public sealed record TableWriteResult(long? Version, long RowsWritten, IReadOnlyList<AddFile> FilesAdded, int FilesRemoved);

/// <summary>
/// Totals of the reads made through one <see cref="EventTable"/> handle since it was opened. Take
/// one before and one after a read and subtract them to measure that read.
/// </summary>
/// <param name="FilesOpened">Data files opened (footer read).</param>
/// <param name="FilesSkipped">Files in the selected partitions skipped by their log statistics (row filter).</param>
/// <param name="RowGroupsRead">Row groups decoded.</param>
/// <param name="RowGroupsSkipped">Row groups of opened files skipped by their footer statistics (row filter).</param>
/// <param name="RowsRead">Rows returned.</param>
/// <param name="BytesRead">Column chunk bytes read from storage.</param>
/// <param name="BytesDecompressed">Page bytes after decompression, of every page decoded.</param>
/// <param name="PagesDecoded">Dictionary and data pages decoded.</param>
public readonly record struct TableReadStatistics(
    long FilesOpened,
    long FilesSkipped,
    long RowGroupsRead,
    long RowGroupsSkipped,
    long RowsRead,
    long BytesRead,
    long BytesDecompressed,
    long PagesDecoded)
{
    /// <summary>The difference of two totals: what happened between them.</summary>
    public static TableReadStatistics operator -(TableReadStatistics after, TableReadStatistics before) => new(
        after.FilesOpened - before.FilesOpened,
        after.FilesSkipped - before.FilesSkipped,
        after.RowGroupsRead - before.RowGroupsRead,
        after.RowGroupsSkipped - before.RowGroupsSkipped,
        after.RowsRead - before.RowsRead,
        after.BytesRead - before.BytesRead,
        after.BytesDecompressed - before.BytesDecompressed,
        after.PagesDecoded - before.PagesDecoded);

    /// <summary>Named alternative to the subtraction operator.</summary>
    public TableReadStatistics Subtract(TableReadStatistics before) => this - before;
}

/// <summary>
/// A data file the log references cannot be read: it is missing, corrupt or truncated, or its columns
/// do not match the table's schema. Permanent; the table and its log are unchanged. The message names
/// the table, the version read and the file.
/// </summary>
public sealed class DataFileException : DeltaException
{
    internal DataFileException(string tablePath, long version, string dataFile, string problem, Exception? inner = null)
        : base(tablePath, $"Cannot read table '{tablePath}' at version {version}: data file '{dataFile}': {problem}", inner)
    {
        Version = version;
        DataFile = dataFile;
    }

    /// <summary>The table version being read.</summary>
    public long Version { get; }

    /// <summary>The data file's path relative to the table root, as listed in the log.</summary>
    public string DataFile { get; }

    public override bool IsTransient => false;
}

/// <summary>Thread-safe running totals behind <see cref="TableReadStatistics"/>.</summary>
internal sealed class ReadCounters
{
    private long _filesOpened;
    private long _filesSkipped;
    private long _rowGroupsRead;
    private long _rowGroupsSkipped;
    private long _rowsRead;
    private long _bytesRead;
    private long _bytesDecompressed;
    private long _pagesDecoded;

    public void FileOpened() => Interlocked.Increment(ref _filesOpened);

    public void FileSkipped() => Interlocked.Increment(ref _filesSkipped);

    public void RowGroupsSkipped(int count) => Interlocked.Add(ref _rowGroupsSkipped, count);

    public void RowGroupRead(long rows, long bytesRead, long bytesDecompressed, long pagesDecoded)
    {
        Interlocked.Increment(ref _rowGroupsRead);
        Interlocked.Add(ref _rowsRead, rows);
        Interlocked.Add(ref _bytesRead, bytesRead);
        Interlocked.Add(ref _bytesDecompressed, bytesDecompressed);
        Interlocked.Add(ref _pagesDecoded, pagesDecoded);
    }

    public TableReadStatistics Snapshot() => new(
        Interlocked.Read(ref _filesOpened),
        Interlocked.Read(ref _filesSkipped),
        Interlocked.Read(ref _rowGroupsRead),
        Interlocked.Read(ref _rowGroupsSkipped),
        Interlocked.Read(ref _rowsRead),
        Interlocked.Read(ref _bytesRead),
        Interlocked.Read(ref _bytesDecompressed),
        Interlocked.Read(ref _pagesDecoded));
}

/// <summary>What <see cref="EventTable.CompactAsync(PartitionFilter?, int, long, CancellationToken)"/> did.</summary>
/// <param name="Partitions">Partitions whose small files were rewritten (one commit each).</param>
/// <param name="FilesRemoved">Small files those partitions held before.</param>
/// <param name="PartitionsSkipped">Partitions another writer changed during the compaction (left as that writer made them).</param>
public sealed record CompactionResult(int Partitions, int FilesRemoved, int PartitionsSkipped)
{
    /// <summary>The files written in place of the removed ones.</summary>
    public int FilesAdded { get; init; }
}
