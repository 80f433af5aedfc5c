using System.Buffers;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// Weft's columnar event batches stored as a time-partitioned Delta table of Parquet files
/// (DESIGN.md, "Tables"). Writes put one Parquet file per partition and commit them atomically;
/// reads decode only the projected columns of the files in the selected partitions, skipping files
/// and row groups whose statistics exclude a row filter.
/// </summary>
/// <remarks>
/// <para>Partition columns (e.g. <c>bucket</c>, <c>path</c>) are strings kept in the log, not in the
/// data files (Delta convention); reads add them back as string columns when projected. They are
/// not part of <see cref="Schema"/>.</para>
/// <para>A handle is safe to share between tasks, and many handles (in one or many processes) may
/// write one table: the log's optimistic concurrency keeps every commit. Data files are written
/// before the commit and stay invisible until it succeeds; when a write fails before or during a
/// commit that provably did not happen, its files are deleted (otherwise <see cref="DeltaTable.VacuumAsync"/>
/// removes them later).</para>
/// </remarks>
public sealed class EventTable
{
    private const string WriteOperation = "WRITE";

    private readonly DeltaTable _log;
    private readonly EventTableOptions _options;
    private readonly DeltaSchema _writerSchema;
    private readonly ParquetSchema _fileSchema;
    private readonly ReadCounters _counters = new();

    private EventTable(DeltaTable log, DeltaSnapshot snapshot, ImmutableArray<FieldDefinition> schema, EventTableOptions options)
    {
        _log = log;
        _options = options;
        _writerSchema = snapshot.Schema;
        _fileSchema = ColumnConversions.ToParquetSchema(schema);
        Schema = schema;
        PartitionColumns = [.. snapshot.PartitionColumns];
    }

    /// <summary>Full path of the table's root directory.</summary>
    public string Path => _log.Path;

    /// <summary>The data columns (stored in the Parquet files), in order; partition columns excluded.</summary>
    public ImmutableArray<FieldDefinition> Schema { get; }

    /// <summary>The partition columns, in the table's order (string values kept in the log).</summary>
    public IReadOnlyList<string> PartitionColumns { get; }

    /// <summary>
    /// The Delta type of a column another engine's table has but Weft does not read (binary, a struct, a
    /// map, …; not in <see cref="Schema"/>), or null.
    /// </summary>
    public string? TypeNotRead(string column) => ColumnConversions.NotRead(_writerSchema, column);

    /// <summary>The commit log: snapshots, history, time travel, vacuum.</summary>
    public DeltaTable Log => _log;

    /// <summary>Totals of the reads made through this handle (see <see cref="TableReadStatistics"/>).</summary>
    public TableReadStatistics ReadStatistics => _counters.Snapshot();

    /// <summary>
    /// Opens the event table at <paramref name="path"/>, creating it when absent, with data columns
    /// <paramref name="schema"/> and string partition columns <paramref name="partitionColumns"/> (which
    /// must not be in <paramref name="schema"/>). An existing table must have exactly this layout, else
    /// <see cref="SchemaMismatchException"/> (schema) or <see cref="ArgumentException"/> (partitioning);
    /// with <see cref="EventTableOptions.AddColumns"/>, one lacking some of the columns gains them.
    /// </summary>
    public static async Task<EventTable> OpenOrCreateAsync(
        string path,
        ImmutableArray<FieldDefinition> schema,
        IReadOnlyList<string> partitionColumns,
        EventTableOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(partitionColumns);
        options ??= EventTableOptions.Default;
        options.Validate();
        ValidateDefinition(path, schema, partitionColumns);
        var deltaSchema = ColumnConversions.ToDeltaSchema(schema, partitionColumns);
        var log = await DeltaTable.OpenOrCreateAsync(path, deltaSchema, partitionColumns, options.Delta, options.AddColumns, cancellationToken).ConfigureAwait(false);
        var snapshot = await log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        return Create(log, snapshot, options);
    }

    /// <summary>Opens an existing event table with default options; throws <see cref="DeltaLogException"/> when there is none.</summary>
    public static Task<EventTable> OpenAsync(string path, CancellationToken cancellationToken = default) =>
        OpenAsync(path, null, cancellationToken);

    /// <summary>
    /// Opens an existing event table; throws <see cref="DeltaLogException"/> when there is none, and
    /// <see cref="NotSupportedException"/> naming the column when a column type is outside Weft's.
    /// </summary>
    public static async Task<EventTable> OpenAsync(string path, EventTableOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= EventTableOptions.Default;
        options.Validate();
        var log = await DeltaTable.OpenAsync(path, options.Delta, cancellationToken).ConfigureAwait(false);
        var snapshot = await log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        return Create(log, snapshot, options);
    }

    /// <summary>Appends <paramref name="batch"/> to one partition, in one commit. An empty batch commits nothing.</summary>
    public Task<TableWriteResult> AppendAsync(
        EventBatch batch, IReadOnlyDictionary<string, string?> partitionValues, CancellationToken cancellationToken = default) =>
        AppendAsync(batch, EventPartitioner.Single(partitionValues), cancellationToken);

    /// <summary>
    /// Appends <paramref name="batch"/>: rows are grouped by the partition <paramref name="partitioner"/>
    /// assigns, one Parquet file per partition, all committed in one Delta commit. A batch whose schema
    /// differs from <see cref="Schema"/> fails with <see cref="SchemaMismatchException"/> naming the table
    /// and the column, before anything is written. On any failure nothing is committed. An empty batch
    /// commits nothing.
    /// </summary>
    public Task<TableWriteResult> AppendAsync(EventBatch batch, EventPartitioner partitioner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        return WriteAsync(batch, partitioner, replace: null, null, cancellationToken);
    }

    /// <summary>
    /// As <see cref="AppendAsync(EventBatch, EventPartitioner, CancellationToken)"/>, recording
    /// <paramref name="commitParameters"/> in the commit's <c>commitInfo.operationParameters</c>
    /// (provenance that commits atomically with the data, e.g. source offsets or a run id).
    /// </summary>
    public Task<TableWriteResult> AppendAsync(
        EventBatch batch, EventPartitioner partitioner, IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        return WriteAsync(batch, partitioner, replace: null, commitParameters, cancellationToken);
    }

    /// <summary>
    /// As <see cref="AppendAsync(EventBatch, EventPartitioner, IReadOnlyDictionary{string, string}?, CancellationToken)"/>,
    /// committed only if no commit after <see cref="CommitOnce.CheckedThrough"/> records <paramref name="once"/>'s
    /// parameter value: else <see cref="ConcurrentModificationException"/>, and nothing is committed.
    /// </summary>
    public Task<TableWriteResult> AppendAsync(
        EventBatch batch, EventPartitioner partitioner, IReadOnlyDictionary<string, string>? commitParameters, CommitOnce once, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        ArgumentNullException.ThrowIfNull(once);
        return WriteAsync(batch, partitioner, replace: null, commitParameters, cancellationToken, once);
    }

    /// <summary>
    /// A writer that takes batches one at a time, places their rows by <paramref name="partitioner"/>
    /// and encodes each partition's row groups of <paramref name="rowGroupSize"/> rows (default
    /// <see cref="EventTableOptions.RowGroupSize"/>) in the background as they fill, then commits them
    /// all as one append (see <see cref="EventTableWriter"/>).
    /// </summary>
    public EventTableWriter OpenWriter(EventPartitioner partitioner, int? rowGroupSize = null)
    {
        ArgumentNullException.ThrowIfNull(partitioner);
        if (rowGroupSize is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(rowGroupSize), rowGroupSize, "A row group holds at least one row.");
        }

        return new EventTableWriter(this, partitioner, rowGroupSize ?? _options.RowGroupSize);
    }

    /// <summary>Replaces the partition <paramref name="partitionValues"/> with the rows of <paramref name="batch"/>, in one commit.</summary>
    public Task<TableWriteResult> ReplacePartitionsAsync(
        EventBatch batch, IReadOnlyDictionary<string, string?> partitionValues, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partitionValues);
        return ReplacePartitionsAsync(batch, EventPartitioner.Single(partitionValues), PartitionFilter.ForPartition(partitionValues), cancellationToken);
    }

    /// <summary>
    /// One atomic commit that removes every file in the partitions <paramref name="partitions"/> matches
    /// and adds <paramref name="batch"/>'s rows, placed by <paramref name="partitioner"/>; every row must
    /// fall in those partitions. Readers see the old files or the new ones, never both; time travel to
    /// the version before still reads the old rows. An empty batch empties the partitions. A concurrent
    /// commit adding or removing rows in those partitions fails this one with
    /// <see cref="ConcurrentModificationException"/>; one that only rearranged them (a compaction) does
    /// not: the commit then replaces the files they are in now.
    /// </summary>
    public Task<TableWriteResult> ReplacePartitionsAsync(
        EventBatch batch, EventPartitioner partitioner, PartitionFilter partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        ArgumentNullException.ThrowIfNull(partitions);
        return WriteAsync(batch, partitioner, partitions, null, cancellationToken);
    }

    /// <summary>
    /// As <see cref="ReplacePartitionsAsync(EventBatch, EventPartitioner, PartitionFilter, CancellationToken)"/>,
    /// recording <paramref name="commitParameters"/> in the same atomic commit.
    /// </summary>
    public Task<TableWriteResult> ReplacePartitionsAsync(
        EventBatch batch, EventPartitioner partitioner, PartitionFilter partitions, IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        ArgumentNullException.ThrowIfNull(partitions);
        return WriteAsync(batch, partitioner, partitions, commitParameters, cancellationToken);
    }

    /// <summary>
    /// Reads the table at its latest version (or at <paramref name="version"/>: time travel), one batch
    /// per row group of each data file, holding only <paramref name="columns"/> (default: every data
    /// column, then the partition columns) in the order given. Only files in the partitions
    /// <paramref name="partitions"/> matches are opened, and only the projected columns (plus the
    /// <paramref name="range"/> column) are decoded. With <paramref name="range"/>, files and row groups
    /// whose statistics exclude it are skipped and only matching rows are returned. A data file that
    /// cannot be read fails with <see cref="DataFileException"/> naming it.
    /// </summary>
    public IAsyncEnumerable<EventBatch> ReadAsync(
        IReadOnlyList<string>? columns = null,
        PartitionFilter? partitions = null,
        ColumnRange? range = null,
        long? version = null,
        CancellationToken cancellationToken = default)
    {
        if (version is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, "A table version is at least 0.");
        }

        if (columns is { Count: 0 })
        {
            throw new ArgumentException($"Reading table '{Path}' needs at least one column.", nameof(columns));
        }

        return ReadCoreAsync(columns, partitions, range, version, cancellationToken);
    }

    private static EventTable Create(DeltaTable log, DeltaSnapshot snapshot, EventTableOptions options)
    {
        var fields = ColumnConversions.ToDataFields(snapshot.Schema, snapshot.PartitionColumns);
        return new EventTable(log, snapshot, [.. fields], options);
    }

    private static void ValidateDefinition(string path, ImmutableArray<FieldDefinition> schema, IReadOnlyList<string> partitionColumns)
    {
        if (schema.IsDefaultOrEmpty)
        {
            throw new ArgumentException($"Event table '{path}' needs at least one data column.", nameof(schema));
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in schema)
        {
            ArgumentNullException.ThrowIfNull(field, nameof(schema));
            if (string.IsNullOrEmpty(field.Name) || !names.Add(field.Name))
            {
                throw new ArgumentException($"Event table '{path}': column name '{field.Name}' is empty or repeated.", nameof(schema));
            }
        }

        foreach (var column in partitionColumns)
        {
            if (string.IsNullOrEmpty(column))
            {
                throw new ArgumentException($"Event table '{path}': a partition column name is empty.", nameof(partitionColumns));
            }

            if (names.Contains(column))
            {
                throw new ArgumentException(
                    $"Event table '{path}': partition column '{column}' is also a data column. Partition columns are strings kept in the log; leave them out of the schema.",
                    nameof(partitionColumns));
            }
        }
    }

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// Writes <paramref name="batch"/>'s data files, placed by <paramref name="partitioner"/> (every row
    /// in the partitions <paramref name="partitions"/> matches), without committing them: readers do not
    /// see them until <see cref="CommitStagedAsync"/> commits them, possibly together with files other
    /// processes staged (a sharded job). A batch whose schema differs fails as in <see cref="AppendAsync(EventBatch, EventPartitioner, CancellationToken)"/>,
    /// with nothing written. Staged files never committed are unreferenced, and <c>weft table vacuum</c>
    /// removes them once past the retention.
    /// </summary>
    public async Task<IReadOnlyList<AddFile>> StageAsync(EventBatch batch, EventPartitioner partitioner, PartitionFilter partitions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(partitioner);
        ArgumentNullException.ThrowIfNull(partitions);
        return await WriteFilesAsync(batch, partitioner, partitions, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One atomic commit that removes every file in the partitions <paramref name="partitions"/> matches
    /// and adds <paramref name="files"/> (staged by <see cref="StageAsync"/>, in those partitions), recording
    /// <paramref name="commitParameters"/>. A concurrent commit adding or removing rows in those partitions
    /// fails it with <see cref="ConcurrentModificationException"/> (one that only rearranged them, a
    /// compaction, does not). The staged files are left in place when it fails:
    /// whoever staged them may commit them again.
    /// </summary>
    public async Task<TableWriteResult> CommitStagedAsync(
        IReadOnlyList<AddFile> files, PartitionFilter partitions, IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(partitions);
        long rows = 0;
        foreach (var file in files)
        {
            if (!partitions.Matches(file.PartitionValues))
            {
                throw new ArgumentException($"Staged file '{file.Path}' of table '{Path}' is in partition {file.DescribePartition(PartitionColumns)}, outside the partitions being replaced.", nameof(files));
            }

            rows += file.NumRecords ?? 0;
        }

        var result = await _log.CommitAsync(Transaction(rows, commitParameters).ReplacePartitions(partitions, files).Build(), cancellationToken).ConfigureAwait(false);
        return new TableWriteResult(result.Version, rows, files, result.FilesRemoved);
    }

    /// <summary>File size <see cref="CompactAsync(PartitionFilter?, int, long, CancellationToken)"/> aims at by default: 128 MiB.</summary>
    public const long DefaultCompactionTargetBytes = 128L << 20;

    /// <summary>
    /// Compacts with the default target file size (<see cref="DefaultCompactionTargetBytes"/>); see
    /// <see cref="CompactAsync(PartitionFilter?, int, long, CancellationToken)"/>.
    /// </summary>
    public Task<CompactionResult> CompactAsync(PartitionFilter? partitions, int minFiles, CancellationToken cancellationToken = default) =>
        CompactAsync(partitions, minFiles, DefaultCompactionTargetBytes, cancellationToken);

    /// <summary>
    /// Rewrites the small files of every partition (of those <paramref name="partitions"/> matches; all
    /// when null) that holds at least <paramref name="minFiles"/> files under <paramref name="targetFileBytes"/>:
    /// they are packed, in log order, into groups of at most that many bytes, and each group of two or more
    /// becomes one file. Each partition is one commit (<c>OPTIMIZE</c>, <c>dataChange: false</c>): the
    /// rows stay the same, readers open fewer files. A stream that flushes every few seconds leaves one
    /// small file per bucket per flush; this is what gathers them. Only one group's rows are in memory
    /// at a time. Only the files read are removed, so rows a writer appends meanwhile stay; a partition
    /// another writer replaced meanwhile is skipped (its new files deleted). Old files stay on disk for
    /// time travel until <c>weft table vacuum</c>.
    /// </summary>
    public async Task<CompactionResult> CompactAsync(PartitionFilter? partitions, int minFiles, long targetFileBytes, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minFiles, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(targetFileBytes, 1);
        var snapshot = await _log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        var groups = new Dictionary<string, List<AddFile>>(StringComparer.Ordinal);
        foreach (var file in snapshot.Files(partitions))
        {
            if (file.Size < targetFileBytes)
            {
                var key = file.DescribePartition(PartitionColumns);
                (groups.TryGetValue(key, out var list) ? list : groups[key] = []).Add(file);
            }
        }

        var plan = ReadPlan.Create(snapshot, [.. Schema.Select(f => f.Name)], null);
        int compacted = 0, skipped = 0, removed = 0, added = 0;
        foreach (var (_, files) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            if (files.Count < minFiles)
            {
                continue;
            }

            var values = files[0].PartitionValues;
            var partition = PartitionFilter.ForPartition(values);
            var written = new List<AddFile>();
            var read = new List<AddFile>();
            long rows = 0;
            try
            {
                foreach (var pack in Pack(files, targetFileBytes))
                {
                    var parts = new List<EventBatch>();
                    await foreach (var batch in ReadFilesAsync(snapshot, pack, plan, null, cancellationToken).ConfigureAwait(false))
                    {
                        parts.Add(batch);
                    }

                    var packed = parts.Count == 0 ? EventBatch.Empty(Schema) : EventBatch.Concat(Schema, parts);
                    if (packed.RowCount > 0)
                    {
                        written.AddRange(await WriteFilesAsync(packed, EventPartitioner.Single(values), partition, cancellationToken).ConfigureAwait(false));
                    }

                    read.AddRange(pack);
                    rows += packed.RowCount;
                }
            }
            catch
            {
                DeleteFiles(written);
                throw;
            }

            if (read.Count == 0)
            {
                continue;
            }

            var builder = Transaction(rows, new Dictionary<string, string> { ["weft.compacted_files"] = read.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) }, "OPTIMIZE")
                .WithoutDataChange();
            foreach (var file in read)
            {
                builder.Remove(file.Path);
            }

            builder.Add(written);
            try
            {
                await _log.CommitAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
            }
            catch (ConcurrentModificationException)
            {
                DeleteFiles(written); // another writer removed or replaced these files meanwhile: theirs stands
                skipped++;
                continue;
            }
            catch (Exception e) when (NothingCommitted(e))
            {
                DeleteFiles(written);
                throw;
            }

            compacted++;
            removed += read.Count;
            added += written.Count;
        }

        return new CompactionResult(compacted, removed, skipped) { FilesAdded = added };
    }

    /// <summary>Consecutive groups of at most <paramref name="targetBytes"/> (a file alone may exceed it); groups of one file are left out.</summary>
    private static IEnumerable<List<AddFile>> Pack(List<AddFile> files, long targetBytes)
    {
        var pack = new List<AddFile>();
        long bytes = 0;
        foreach (var file in files)
        {
            if (pack.Count > 0 && bytes + file.Size > targetBytes)
            {
                if (pack.Count > 1)
                {
                    yield return pack;
                }

                (pack, bytes) = ([], 0);
            }

            pack.Add(file);
            bytes += file.Size;
        }

        if (pack.Count > 1)
        {
            yield return pack;
        }
    }

    private async Task<TableWriteResult> WriteAsync(
        EventBatch batch, EventPartitioner partitioner, PartitionFilter? replace, IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken, CommitOnce? once = null)
    {
        var rowCount = batch.RowCount;
        if (rowCount == 0 && replace is null)
        {
            ResolveColumns(batch);
            return new TableWriteResult(null, 0, [], 0);
        }

        var written = await WriteFilesAsync(batch, partitioner, replace, cancellationToken).ConfigureAwait(false);
        return await CommitWrittenAsync(written, rowCount, replace, commitParameters, cancellationToken, once).ConfigureAwait(false);
    }

    /// <summary>Commits files this handle wrote (adding them, or replacing <paramref name="replace"/>'s); deletes them when the commit provably did not happen.</summary>
    internal async Task<TableWriteResult> CommitWrittenAsync(
        List<AddFile> written, long rowCount, PartitionFilter? replace, IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken, CommitOnce? once = null)
    {
        var builder = Transaction(rowCount, commitParameters);
        if (once is not null)
        {
            builder.Once(once);
        }

        if (replace is null)
        {
            builder.Add(written);
        }
        else
        {
            builder.ReplacePartitions(replace, written);
        }

        CommitResult result;
        try
        {
            result = await _log.CommitAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (NothingCommitted(e))
        {
            DeleteFiles(written);
            throw;
        }

        return new TableWriteResult(result.Version, rowCount, written, result.FilesRemoved);
    }

    /// <summary>One file per partition of the batch's rows; on failure, the files written so far are deleted.</summary>
    private async Task<List<AddFile>> WriteFilesAsync(EventBatch batch, EventPartitioner partitioner, PartitionFilter? replace, CancellationToken cancellationToken)
    {
        var columns = ResolveColumns(batch);
        var rowCount = batch.RowCount;
        var (partitions, order, starts) = GroupRows(batch, partitioner, replace);
        var written = new List<AddFile>(partitions.Count);
        try
        {
            for (var p = 0; p < partitions.Count; p++)
            {
                var count = starts[p + 1] - starts[p];
                if (count > 0)
                {
                    var wholeBatch = count == rowCount;
                    written.Add(await WriteFileAsync(columns, new ArraySegment<int>(order, starts[p], count), wholeBatch, partitions[p], cancellationToken).ConfigureAwait(false));
                }
            }
        }
        catch
        {
            DeleteFiles(written);
            throw;
        }

        return written;
    }

    private DeltaTransactionBuilder Transaction(long rows, IReadOnlyDictionary<string, string>? commitParameters, string operation = WriteOperation)
    {
        var builder = DeltaTransaction.Create(operation).WithWriterSchema(_writerSchema)
            .WithParameter("weft.rows", rows.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (commitParameters is not null)
        {
            foreach (var (name, value) in commitParameters)
            {
                builder.WithParameter(name, value);
            }
        }

        return builder;
    }

    /// <summary>The batch's columns in table order, after checking names, types and nullability.</summary>
    internal Column[] ResolveColumns(EventBatch batch)
    {
        var columns = new Column[Schema.Length];
        for (var i = 0; i < Schema.Length; i++)
        {
            var field = Schema[i];
            if (!batch.TryGetColumn(field.Name, out var column))
            {
                // A table that takes added columns holds some a writer of another definition does not
                // produce (a signal rolled back, or a column it removed): nulls, as its older files read.
                if (_options.AddColumns && field.Nullable)
                {
                    columns[i] = Column.AllNull(field.Type, batch.RowCount);
                    continue;
                }

                throw Mismatch(field.Name, $"the table has {field.Type} but the batch lacks the column");
            }

            if (column.Type != field.Type)
            {
                throw Mismatch(field.Name, $"the table has {field.Type} but the batch has {column.Type}");
            }

            if (!field.Nullable && column.Nulls is { } nulls && Array.IndexOf(nulls, true) is var row and >= 0)
            {
                throw Mismatch(field.Name, $"the column is not nullable but row {row} of the batch is null");
            }

            columns[i] = column;
        }

        if (batch.Schema.Length != Schema.Length || _options.AddColumns)
        {
            foreach (var field in batch.Schema)
            {
                if (!HasDataColumn(field.Name))
                {
                    throw Mismatch(field.Name, ColumnConversions.Contains(PartitionColumns, field.Name)
                        ? "it is a partition column, whose values come from the partition values (or partitioner), not from the batch; drop it from the batch"
                        : $"the batch has {field.Type} but the table has no such column");
                }
            }
        }

        return columns;
    }

    private SchemaMismatchException Mismatch(string column, string problem) =>
        new(Path, column, $"Schema mismatch writing to table '{Path}': column '{column}': {problem}. Nothing was committed.");

    private bool HasDataColumn(string name)
    {
        foreach (var field in Schema)
        {
            if (string.Equals(field.Name, name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Partitions the rows: returns the partition values, the row indices ordered by partition (stable,
    /// so each partition keeps the batch's order), and where each partition starts in that order.
    /// </summary>
    internal (IReadOnlyList<IReadOnlyDictionary<string, string?>> Partitions, int[] Order, int[] Starts) GroupRows(
        EventBatch batch, EventPartitioner partitioner, PartitionFilter? replace)
    {
        var rowCount = batch.RowCount;
        if (rowCount == 0)
        {
            return ([], [], [0]);
        }

        var partitionOfRow = ArrayPool<int>.Shared.Rent(rowCount);
        try
        {
            var partitions = partitioner.Assign(batch, partitionOfRow.AsSpan(0, rowCount))
                ?? throw new InvalidOperationException($"{partitioner.GetType().Name}.Assign returned null.");
            foreach (var values in partitions)
            {
                CheckPartition(values, replace);
            }

            var starts = new int[partitions.Count + 1];
            for (var row = 0; row < rowCount; row++)
            {
                var p = partitionOfRow[row];
                if ((uint)p >= (uint)partitions.Count)
                {
                    throw new InvalidOperationException(
                        $"{partitioner.GetType().Name} assigned row {row} to partition {p}, but returned {partitions.Count} partitions.");
                }

                starts[p + 1]++;
            }

            for (var p = 0; p < partitions.Count; p++)
            {
                starts[p + 1] += starts[p];
            }

            var order = new int[rowCount];
            var next = new int[partitions.Count];
            Array.Copy(starts, next, partitions.Count);
            for (var row = 0; row < rowCount; row++)
            {
                order[next[partitionOfRow[row]]++] = row;
            }

            return (partitions, order, starts);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(partitionOfRow);
        }
    }

    private void CheckPartition(IReadOnlyDictionary<string, string?> values, PartitionFilter? replace)
    {
        var known = 0;
        foreach (var column in PartitionColumns)
        {
            if (values.ContainsKey(column))
            {
                known++;
            }
        }

        if (known != PartitionColumns.Count || values.Count != PartitionColumns.Count)
        {
            throw new ArgumentException(
                $"Partition values [{string.Join(", ", values.Keys)}] do not name the partition columns [{string.Join(", ", PartitionColumns)}] of table '{Path}'.");
        }

        if (replace is not null && !replace.Matches(values))
        {
            throw new ArgumentException(
                $"Rows for partition {DescribePartition(values)} lie outside the partitions being replaced ({replace}) in table '{Path}'. Nothing was written.");
        }
    }

    private string DescribePartition(IReadOnlyDictionary<string, string?> values)
    {
        var parts = new string[PartitionColumns.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            parts[i] = PartitionColumns[i] + "=" + (values.TryGetValue(PartitionColumns[i], out var v) ? v ?? "null" : "null");
        }

        return string.Join('/', parts);
    }

    /// <summary>Writes the rows <paramref name="rows"/> to a new data file in the partition; deletes it on failure.</summary>
    private async Task<AddFile> WriteFileAsync(
        Column[] columns, ArraySegment<int> rows, bool wholeBatch, IReadOnlyDictionary<string, string?> partition, CancellationToken cancellationToken)
    {
        var file = NewDataFile(partition);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file.FullPath)!);

        // The log statistics read the same rows as the encoder but nothing it writes: computed alongside
        // the encoding (a second core is idle while a row group's longest column encodes) instead of after.
        var statistics = Task.Run(() => DataFileStatistics.Build(Schema, columns, rows.AsSpan()), CancellationToken.None);
        try
        {
            var groupSize = _options.RowGroupSize;
            await using (var writer = await ParquetFileWriter.CreateAsync(file.FullPath, _fileSchema, _options.Parquet, cancellationToken).ConfigureAwait(false))
            {
                for (var start = 0; start < rows.Count; start += groupSize)
                {
                    var count = Math.Min(groupSize, rows.Count - start);
                    var group = wholeBatch && count == rows.Count
                        ? ToParquet(columns)
                        : ToParquet(columns, rows.AsSpan(start, count));
                    await writer.WriteRowGroupAsync(group, cancellationToken).ConfigureAwait(false);
                }

                await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            return SealDataFile(file, await statistics.ConfigureAwait(false));
        }
        catch
        {
            await ((Task)statistics).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            TryDelete(file.FullPath);
            throw;
        }
    }

    /// <summary>Where a new data file of the partition goes (its directory is not created).</summary>
    internal NewFile NewDataFile(IReadOnlyDictionary<string, string?> partition)
    {
        var values = new Dictionary<string, string?>(PartitionColumns.Count, StringComparer.Ordinal);
        foreach (var column in PartitionColumns)
        {
            values[column] = partition[column];
        }

        var relative = DeltaPaths.NewDataFilePath(PartitionColumns, values);
        return new NewFile(relative, System.IO.Path.Combine(Path, relative), values);
    }

    /// <summary>The log entry of a complete data file, after forcing it to disk.</summary>
    internal AddFile SealDataFile(NewFile file, string statistics)
    {
        // On disk before any commit can name it: the commit entry is fsync'd, and a crash must not
        // leave it pointing at a file whose data never reached the disk.
        using (var handle = File.OpenHandle(file.FullPath, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.FlushToDisk(handle);
        }

        var size = new FileInfo(file.FullPath).Length;
        return new AddFile(file.RelativePath, file.PartitionValues, size, _options.Delta.TimeProvider.GetUtcNow(), statistics);
    }

    internal sealed record NewFile(string RelativePath, string FullPath, Dictionary<string, string?> PartitionValues);

    internal ParquetSchema FileSchema => _fileSchema;

    internal ParquetWriterOptions ParquetOptions => _options.Parquet;

    internal ParquetColumnData[] ToParquet(Column[] columns)
    {
        var result = new ParquetColumnData[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            result[i] = ColumnConversions.ToParquet(columns[i], _fileSchema.Fields[i]);
        }

        return result;
    }

    private ParquetColumnData[] ToParquet(Column[] columns, ReadOnlySpan<int> rows)
    {
        var result = new ParquetColumnData[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            result[i] = ColumnConversions.ToParquet(columns[i], _fileSchema.Fields[i], rows);
        }

        return result;
    }

    /// <summary>
    /// Failures after which the commit certainly did not happen, so the new files can go. An IO error
    /// or cancellation while publishing the log entry is ambiguous: those files stay (vacuum removes
    /// them if they turn out unreferenced).
    /// </summary>
    private static bool NothingCommitted(Exception e) =>
        e is SchemaMismatchException or ConcurrentModificationException or DeltaLogException or ArgumentException or InvalidOperationException;

    private void DeleteFiles(List<AddFile> files)
    {
        foreach (var file in files)
        {
            TryDelete(System.IO.Path.Combine(Path, file.Path));
        }
    }

    internal static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: an uncommitted file is invisible; vacuum removes it later.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }

    // ---------------------------------------------------------------- reading

    private async IAsyncEnumerable<EventBatch> ReadCoreAsync(
        IReadOnlyList<string>? columns,
        PartitionFilter? partitions,
        ColumnRange? range,
        long? version,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var snapshot = version is { } v
            ? await _log.GetSnapshotAsync(v, cancellationToken).ConfigureAwait(false)
            : await _log.GetSnapshotAsync(cancellationToken).ConfigureAwait(false);
        var plan = ReadPlan.Create(snapshot, columns, range);
        await foreach (var batch in ReadFilesAsync(snapshot, snapshot.Files(partitions), plan, range, cancellationToken).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    private async IAsyncEnumerable<EventBatch> ReadFilesAsync(
        DeltaSnapshot snapshot, IEnumerable<AddFile> files, ReadPlan plan, ColumnRange? range, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var file in files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (range is not null && !DataFileStatistics.MayContain(file, plan.Range!, plan.RangeKind))
            {
                _counters.FileSkipped();
                continue;
            }

            var reader = await OpenDataFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false);
            try
            {
                var cursor = new FileCursor(snapshot, file, reader, plan);
                await cursor.ReadDeletionVectorAsync(cancellationToken).ConfigureAwait(false);
                var groups = cursor.SelectRowGroups();
                _counters.RowGroupsSkipped(reader.RowGroups.Count - groups.Count);
                foreach (var group in groups)
                {
                    var batch = await ReadRowGroupAsync(cursor, group, cancellationToken).ConfigureAwait(false);
                    if (batch is not null)
                    {
                        yield return batch;
                    }
                }
            }
            finally
            {
                await reader.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<ParquetFileReader> OpenDataFileAsync(DeltaSnapshot snapshot, AddFile file, CancellationToken cancellationToken)
    {
        try
        {
            var reader = await ParquetFileReader.OpenAsync(snapshot.FullPath(file), cancellationToken).ConfigureAwait(false);
            _counters.FileOpened();
            return reader;
        }
        catch (Exception e) when (e is ParquetFormatException or NotSupportedException or FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFileException(Path, snapshot.Version, file.Path, e.Message, e);
        }
    }

    private async Task<EventBatch?> ReadRowGroupAsync(FileCursor cursor, int group, CancellationToken cancellationToken)
    {
        var reader = cursor.Reader;
        var plan = cursor.Plan;
        var (bytesRead, bytesDecompressed, pages) = (reader.BytesRead, reader.BytesDecompressed, reader.PagesDecoded);
        var rowCount = cursor.RowCount(group);
        int deletedHere = cursor.Deleted?.CountIn(cursor.FirstRow(group), rowCount) ?? 0;
        if (cursor.Deleted is not null && deletedHere == rowCount)
        {
            return null; // another engine deleted every row of the group: nothing to decode
        }

        var decoded = new Column[plan.Decode.Length];
        try
        {
            for (var k = 0; k < decoded.Length; k++)
            {
                var field = plan.Decode[k];
                if (cursor.FileColumn[k] < 0)
                {
                    decoded[k] = Column.AllNull(field.Type, rowCount);
                    continue;
                }

                var data = await reader.ReadColumnAsync(group, cursor.FileNames[k]!, cancellationToken).ConfigureAwait(false);
                if (data.RowCount != rowCount)
                {
                    throw cursor.Error($"column '{field.Name}' of row group {group} has {data.RowCount} rows, the row group {rowCount}");
                }

                decoded[k] = cursor.Widened[k]
                    ? ColumnConversions.Widen(ColumnConversions.FromParquet(data, new WeftType(ColumnConversions.ToScalarKind(data.Field.Type))), field.Type)!
                    : ColumnConversions.FromParquet(data, field.Type);
            }
        }
        catch (Exception e) when (e is ParquetFormatException or NotSupportedException or EndOfStreamException)
        {
            throw cursor.Error(e.Message, e);
        }

        var batch = plan.Assemble(decoded, rowCount, cursor.File, deletedHere > 0 ? cursor.Deleted : null, deletedHere > 0 ? cursor.FirstRow(group) : 0);
        _counters.RowGroupRead(
            batch?.RowCount ?? 0, reader.BytesRead - bytesRead, reader.BytesDecompressed - bytesDecompressed, reader.PagesDecoded - pages);
        return batch;
    }

    /// <summary>One data file being read: its column mapping onto the plan, and error reporting.</summary>
    private sealed class FileCursor
    {
        public FileCursor(DeltaSnapshot snapshot, AddFile file, ParquetFileReader reader, ReadPlan plan)
        {
            Snapshot = snapshot;
            File = file;
            Reader = reader;
            Plan = plan;
            FileColumn = new int[plan.Decode.Length];
            Widened = new bool[plan.Decode.Length];
            FileNames = plan.FileNames;
            var mapping = snapshot.Mapping;
            if (mapping.ById)
            {
                // Column mapping by id: each file names its columns as its writer did; their field ids say which is which.
                if (!reader.Schema.HasFieldIds)
                {
                    throw Error("its columns have no Parquet field ids, by which this table (delta.columnMapping.mode = id) finds them");
                }

                FileNames = new string?[plan.Decode.Length];
                for (var k = 0; k < plan.Decode.Length; k++)
                {
                    var at = reader.Schema.IndexOfFieldIds(mapping.FieldIds(plan.Decode[k].Name));
                    FileNames[k] = at >= 0 ? reader.Schema.Fields[at].Name : null; // null: an id the file lacks reads as nulls
                }
            }

            for (var k = 0; k < plan.Decode.Length; k++)
            {
                var field = plan.Decode[k];
                var index = FileNames[k] is { } fileName ? reader.Schema.IndexOf(fileName) : -1;
                if (index < 0 && FileNames[k] is { } missing && reader.UnsupportedColumns.TryGetValue(missing, out var why))
                {
                    throw Error($"column '{field.Name}' cannot be read: {why}"); // not the nulls of a file older than the column
                }

                if (index >= 0 && !ColumnConversions.Stores(reader.Schema.Fields[index], field.Type))
                {
                    // A file written before the column was widened (Delta type widening) reads as the wider type.
                    Widened[k] = ColumnConversions.Widens(reader.Schema.Fields[index], field.Type)
                        ? true
                        : throw Error($"column '{field.Name}' is stored as {ColumnConversions.Describe(reader.Schema.Fields[index])}, but the table declares {field.Type}");
                }

                FileColumn[k] = index; // -1: the file predates the column; it reads as nulls.
            }
        }

        public DeltaSnapshot Snapshot { get; }

        public AddFile File { get; }

        public ParquetFileReader Reader { get; }

        public ReadPlan Plan { get; }

        public int[] FileColumn { get; }

        /// <summary>The name each decoded column has in this file (by field id under column mapping mode id; null when no column has its ids).</summary>
        public string?[] FileNames { get; }

        /// <summary>Per decoded column: true when the file holds it in a narrower type that widens to the table's.</summary>
        public bool[] Widened { get; }

        /// <summary>The rows of the file its deletion vector removes; null when it has none.</summary>
        public DeletedRows? Deleted { get; private set; }

        /// <summary>Loads the file's deletion vector, if it has one: its rows are numbered across the file's row groups.</summary>
        public async Task ReadDeletionVectorAsync(CancellationToken cancellationToken)
        {
            if (File.DeletionVector is not { } vector)
            {
                return;
            }

            _firstRows = new long[Reader.RowGroups.Count + 1];
            for (var g = 0; g < Reader.RowGroups.Count; g++)
            {
                _firstRows[g + 1] = _firstRows[g] + Reader.RowGroups[g].RowCount;
            }

            try
            {
                Deleted = await DeletionVectorReader.ReadAsync(Snapshot.TablePath, vector, _firstRows[^1], cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
            {
                throw Error(e.Message, e);
            }
        }

        private long[]? _firstRows; // with a deletion vector: each group's first row in the file, then the file's rows

        /// <summary>With a deletion vector (<see cref="Deleted"/>): the file's row number of <paramref name="group"/>'s first row.</summary>
        public long FirstRow(int group) => _firstRows![group];

        public int RowCount(int group)
        {
            var rows = Reader.RowGroups[group].RowCount;
            return rows is >= 0 and <= int.MaxValue ? (int)rows : throw Error($"row group {group} claims {rows} rows");
        }

        public IReadOnlyList<int> SelectRowGroups()
        {
            var all = Reader.RowGroups.Count;
            if (Plan.Range is not null && FileColumn[Plan.RangeSlot] < 0)
            {
                return []; // The file lacks the range column: every row is null there, so none matches.
            }

            // A widened column's statistics are in the file's narrower type: read every group, and filter the rows.
            if (Plan.Range is null || Widened[Plan.RangeSlot])
            {
                var every = new int[all];
                for (var g = 0; g < all; g++)
                {
                    every[g] = g;
                }

                return every;
            }

            return Reader.FindRowGroups(FileNames[Plan.RangeSlot]!, Plan.Range.Min, Plan.Range.Max);
        }

        public DataFileException Error(string problem, Exception? inner = null) =>
            new(Snapshot.TablePath, Snapshot.Version, File.Path, problem, inner);
    }

    /// <summary>What one read decodes and returns, resolved against the snapshot's schema.</summary>
    private sealed class ReadPlan
    {
        private ReadPlan(
            ImmutableArray<FieldDefinition> output, FieldDefinition[] decode, string[] fileNames, int[] decodeToOutput, (string Column, int Output)[] partitionOutputs,
            ColumnRange? range, int rangeSlot, ScalarKind rangeKind)
        {
            Output = output;
            Decode = decode;
            FileNames = fileNames;
            DecodeToOutput = decodeToOutput;
            PartitionOutputs = partitionOutputs;
            Range = range;
            RangeSlot = rangeSlot;
            RangeKind = rangeKind;
        }

        public ImmutableArray<FieldDefinition> Output { get; }

        /// <summary>Data columns to decode: the projected ones, then the range column if not projected.</summary>
        public FieldDefinition[] Decode { get; }

        /// <summary>
        /// The name each <see cref="Decode"/> column has in the data files: its own, or its physical name
        /// when the table maps columns (<see cref="ColumnMapping"/>).
        /// </summary>
        public string[] FileNames { get; }

        /// <summary>Output position of each decoded column; -1 for the range column when not projected.</summary>
        public int[] DecodeToOutput { get; }

        /// <summary>Each projected partition column: the key of its value in a file's partition values, and its output position.</summary>
        public (string Column, int Output)[] PartitionOutputs { get; }

        /// <summary>The row filter, naming its column as data files and their statistics do.</summary>
        public ColumnRange? Range { get; }

        /// <summary>Index in <see cref="Decode"/> of the range column, or -1.</summary>
        public int RangeSlot { get; }

        public ScalarKind RangeKind { get; }

        public static ReadPlan Create(DeltaSnapshot snapshot, IReadOnlyList<string>? columns, ColumnRange? range)
        {
            var partitionColumns = snapshot.PartitionColumns;
            var dataFields = ColumnConversions.ToDataFields(snapshot.Schema, partitionColumns);
            var byName = new Dictionary<string, FieldDefinition>(dataFields.Count, StringComparer.Ordinal);
            foreach (var field in dataFields)
            {
                byName[field.Name] = field;
            }

            if (columns is null)
            {
                var all = new List<string>(dataFields.Count + partitionColumns.Count);
                foreach (var field in dataFields)
                {
                    all.Add(field.Name);
                }

                all.AddRange(partitionColumns);
                columns = all;
            }

            var output = ImmutableArray.CreateBuilder<FieldDefinition>(columns.Count);
            var decode = new List<FieldDefinition>(columns.Count + 1);
            var decodeToOutput = new List<int>(columns.Count + 1);
            var partitionOutputs = new List<(string, int)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < columns.Count; i++)
            {
                var name = columns[i];
                if (name is null || !seen.Add(name))
                {
                    throw new ArgumentException($"Reading table '{snapshot.TablePath}': column '{name}' is null or projected twice.", nameof(columns));
                }

                if (byName.TryGetValue(name, out var field))
                {
                    decode.Add(field);
                    decodeToOutput.Add(i);
                    output.Add(field);
                }
                else if (ColumnConversions.Contains(partitionColumns, name))
                {
                    partitionOutputs.Add((snapshot.Mapping.Physical(name), i));
                    output.Add(new FieldDefinition(name, WeftType.String, Nullable: true));
                }
                else if (ColumnConversions.NotRead(snapshot.Schema, name) is { } type)
                {
                    throw new NotSupportedException(
                        $"Reading table '{snapshot.TablePath}' (version {snapshot.Version}): column '{name}' is {type}, which Weft does not read. Columns it reads: {string.Join(", ", byName.Keys)}.");
                }
                else
                {
                    throw new ArgumentException(
                        $"Reading table '{snapshot.TablePath}' (version {snapshot.Version}): there is no column '{name}'. Columns: {string.Join(", ", byName.Keys)}; partition columns: {string.Join(", ", partitionColumns)}.",
                        nameof(columns));
                }
            }

            var rangeSlot = -1;
            var rangeKind = ScalarKind.Int64;
            if (range is not null)
            {
                if (!byName.TryGetValue(range.Column ?? "", out var rangeField) || rangeField.Type.IsList
                    || rangeField.Type.Kind is not (ScalarKind.Int64 or ScalarKind.Timestamp))
                {
                    throw new ArgumentException(
                        $"Reading table '{snapshot.TablePath}': the row filter needs an int64 or timestamp data column; '{range.Column}' is {(rangeField is null ? "not a data column" : rangeField.Type.ToString())}.",
                        nameof(range));
                }

                rangeKind = rangeField.Type.Kind;
                rangeSlot = decode.IndexOf(rangeField);
                if (rangeSlot < 0)
                {
                    rangeSlot = decode.Count;
                    decode.Add(rangeField);
                    decodeToOutput.Add(-1);
                }
            }

            var fileNames = decode.ConvertAll(f => snapshot.Mapping.Physical(f.Name)).ToArray();
            var fileRange = range is null ? null : range with { Column = snapshot.Mapping.Physical(range.Column ?? "") };
            return new ReadPlan(output.MoveToImmutable(), [.. decode], fileNames, [.. decodeToOutput], [.. partitionOutputs], fileRange, rangeSlot, rangeKind);
        }

        /// <summary>
        /// The output batch of one row group, without the rows <paramref name="deleted"/> removes (numbered
        /// from <paramref name="firstRow"/>, the group's first row in its file; null when it removes none of
        /// the group's) and filtered by the range; null when no row is left.
        /// </summary>
        public EventBatch? Assemble(Column[] decoded, int rowCount, AddFile file, DeletedRows? deleted, long firstRow)
        {
            int[]? selection = null;
            var selected = rowCount;
            try
            {
                if (Range is not null || deleted is not null)
                {
                    var column = Range is null ? null : (PrimitiveColumn<long>)decoded[RangeSlot];
                    selection = ArrayPool<int>.Shared.Rent(Math.Max(rowCount, 1));
                    selected = 0;
                    for (var row = 0; row < rowCount; row++)
                    {
                        if ((deleted is null || !deleted.Contains(firstRow + row))
                            && (column is null || ((column.Nulls is null || !column.Nulls[row]) && Range!.Contains(column.Values[row]))))
                        {
                            selection[selected++] = row;
                        }
                    }

                    if (selected == 0)
                    {
                        return null;
                    }
                }

                var result = new Column[Output.Length];
                for (var k = 0; k < decoded.Length; k++)
                {
                    var at = DecodeToOutput[k];
                    if (at >= 0)
                    {
                        result[at] = selected == rowCount ? decoded[k] : decoded[k].Gather(selection.AsSpan(0, selected));
                    }
                }

                foreach (var (column, at) in PartitionOutputs)
                {
                    var values = new string?[selected];
                    if (file.PartitionValues.TryGetValue(column, out var value) && !string.IsNullOrEmpty(value))
                    {
                        Array.Fill(values, value);
                    }

                    result[at] = new StringColumn(values);
                }

                return new EventBatch(Output, result);
            }
            finally
            {
                if (selection is not null)
                {
                    ArrayPool<int>.Shared.Return(selection);
                }
            }
        }
    }
}
