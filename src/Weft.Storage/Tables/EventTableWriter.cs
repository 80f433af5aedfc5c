using System.Buffers;
using Weft.Engine;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// An append built up a batch at a time and committed once: what a stream gathers between two flushes.
/// <see cref="Add"/> checks a batch's schema and places its rows by partition at once; whenever a
/// partition has gathered a row group's worth of rows, that row group is encoded and written to the
/// partition's (uncommitted) data file in the background, so the rows are held as encoded bytes on disk
/// rather than as objects, and <see cref="CommitAsync"/> has only the remainder to encode before its
/// footers, fsyncs and one Delta commit. The commit holds the same rows, files and statistics as one
/// <see cref="EventTable.AppendAsync(EventBatch, EventPartitioner, IReadOnlyDictionary{string, string}?, CancellationToken)"/>
/// of all the batches, in the order added; only the row-group boundaries differ.
/// </summary>
/// <remarks>
/// Not thread-safe: one caller adds and then commits (the background encoding is internal). A writer
/// disposed without a commit deletes its files; files a crash leaves behind are unreferenced, and
/// <c>weft table vacuum</c> removes them once past the retention.
/// </remarks>
public sealed class EventTableWriter : IAsyncDisposable
{
    private readonly EventTable _table;
    private readonly EventPartitioner _partitioner;
    private readonly int _rowGroupSize;
    private readonly Dictionary<string, PartitionFile> _files = new(StringComparer.Ordinal);
    private readonly List<PartitionFile> _order = [];
    private Task _encoding = Task.CompletedTask;
    private long _rows;
    private bool _closed;
    private bool _committed;

    internal EventTableWriter(EventTable table, EventPartitioner partitioner, int rowGroupSize)
    {
        _table = table;
        _partitioner = partitioner;
        _rowGroupSize = rowGroupSize;
    }

    /// <summary>Rows added so far.</summary>
    public long RowCount => _rows;

    /// <summary>
    /// Adds <paramref name="batch"/>'s rows. A batch whose schema differs from the table's fails with
    /// <see cref="SchemaMismatchException"/> before anything is taken, as an append would. A failure of
    /// the background encoding surfaces at <see cref="CommitAsync"/>.
    /// </summary>
    public void Add(EventBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_closed, this);
        var columns = _table.ResolveColumns(batch);
        var rowCount = batch.RowCount;
        if (rowCount == 0)
        {
            return;
        }

        var (partitions, order, starts) = _table.GroupRows(batch, _partitioner, null);
        for (var p = 0; p < partitions.Count; p++)
        {
            var count = starts[p + 1] - starts[p];
            if (count == 0)
            {
                continue;
            }

            var file = FileFor(partitions[p]);
            // Rows in partition order, unless the partition holds the whole batch (the stream's usual case).
            var rows = count == rowCount ? null : order;
            var start = starts[p];
            while (count > 0)
            {
                var take = Math.Min(count, _rowGroupSize - file.PendingRows);
                file.Pending.Add(new Piece(columns, rows, start, take));
                file.PendingRows += take;
                (start, count) = (start + take, count - take);
                if (file.PendingRows == _rowGroupSize)
                {
                    Encode(file);
                }
            }
        }

        _rows += rowCount;
    }

    /// <summary>
    /// Encodes what is left, completes and forces every data file to disk, and commits them in one
    /// Delta commit recording <paramref name="commitParameters"/>. With no rows added, commits nothing
    /// (<see cref="TableWriteResult.Version"/> null). On a failure nothing is committed and the files
    /// are deleted, except when the commit's outcome is unknown (they stay for vacuum). Once only.
    /// <paramref name="commitAfter"/>, when given, is awaited once the files are complete and before
    /// the commit: work elsewhere that must be durable before readers see the rows (it runs alongside
    /// the encoding), whose failure fails this commit.
    /// </summary>
    public async Task<TableWriteResult> CommitAsync(IReadOnlyDictionary<string, string>? commitParameters, CancellationToken cancellationToken = default, Task? commitAfter = null)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        _closed = true;
        foreach (var file in _order)
        {
            if (file.PendingRows > 0)
            {
                Encode(file);
            }
        }

        var written = new List<AddFile>(_order.Count);
        try
        {
            await _encoding.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var file in _order)
            {
                await file.Writer!.CompleteAsync(cancellationToken).ConfigureAwait(false);
                await file.Writer.DisposeAsync().ConfigureAwait(false);
                written.Add(_table.SealDataFile(file.Target, file.Statistics.ToJson()));
            }

            if (commitAfter is not null)
            {
                await commitAfter.ConfigureAwait(false);
            }
        }
        catch
        {
            _committed = true; // nothing will be: the files go now, and disposing has nothing left to do
            await AbandonAsync().ConfigureAwait(false);
            throw;
        }

        _committed = true;
        if (written.Count == 0)
        {
            return new TableWriteResult(null, 0, [], 0);
        }

        return await _table.CommitWrittenAsync(written, _rows, null, commitParameters, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Without a commit: waits for the background encoding and deletes the files written.</summary>
    public async ValueTask DisposeAsync()
    {
        _closed = true;
        if (!_committed)
        {
            _committed = true;
            await AbandonAsync().ConfigureAwait(false);
        }
    }

    private async Task AbandonAsync()
    {
        await _encoding.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var file in _order)
        {
            if (file.Writer is { } writer)
            {
                try
                {
                    await writer.DisposeAsync().ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // The file goes anyway.
                }
            }

            EventTable.TryDelete(file.Target.FullPath);
        }
    }

    private PartitionFile FileFor(IReadOnlyDictionary<string, string?> partition)
    {
        var key = PartitionKey(partition);
        if (!_files.TryGetValue(key, out var file))
        {
            file = new PartitionFile(_table.NewDataFile(partition), new DataFileStatistics.Accumulator(_table.Schema));
            _files.Add(key, file);
            _order.Add(file);
        }

        return file;
    }

    private string PartitionKey(IReadOnlyDictionary<string, string?> partition)
    {
        if (_table.PartitionColumns.Count == 0)
        {
            return string.Empty;
        }

        var parts = new string[_table.PartitionColumns.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            // A null value and every string differ: nulls are marked, strings are prefixed.
            parts[i] = partition[_table.PartitionColumns[i]] is { } value ? "=" + value : "\0";
        }

        return string.Join('\u0001', parts);
    }

    /// <summary>Queues the partition's pending rows as its next row group, after the row groups queued before.</summary>
    private void Encode(PartitionFile file)
    {
        var pieces = file.Pending.ToArray();
        file.Pending.Clear();
        file.PendingRows = 0;
        var previous = _encoding;
        _encoding = Task.Run(async () =>
        {
            // A failed row group stops the chain: later ones would leave a gap in the file.
            await previous.ConfigureAwait(false);
            await WriteRowGroupAsync(file, pieces).ConfigureAwait(false);
        });
    }

    private async Task WriteRowGroupAsync(PartitionFile file, Piece[] pieces)
    {
        var columns = Gather(pieces, out var rowCount);
        var identity = ArrayPool<int>.Shared.Rent(rowCount);
        try
        {
            for (var i = 0; i < rowCount; i++)
            {
                identity[i] = i;
            }

            // As in a one-shot append: the statistics read the rows while the encoder does.
            var statistics = Task.Run(() => file.Statistics.Add(columns, identity.AsSpan(0, rowCount)));
            try
            {
                if (file.Writer is null)
                {
                    Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file.Target.FullPath)!);
                    file.Writer = await ParquetFileWriter.CreateAsync(file.Target.FullPath, _table.FileSchema, _table.ParquetOptions, CancellationToken.None).ConfigureAwait(false);
                }

                using var encoded = file.Writer.EncodeRowGroup(_table.ToParquet(columns));
                await file.Writer.WriteRowGroupAsync(encoded, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                await statistics.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await statistics.ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(identity);
        }
    }

    /// <summary>The pieces' rows as one set of columns in table order.</summary>
    private Column[] Gather(Piece[] pieces, out int rowCount)
    {
        var schema = _table.Schema;
        var columns = new Column[schema.Length];
        if (pieces.Length == 1 && pieces[0].IsWholeBatch)
        {
            rowCount = pieces[0].Count;
            return pieces[0].Columns;
        }

        rowCount = 0;
        var slices = new Column[pieces.Length];
        var rows = new ArraySegment<int>?[pieces.Length];
        for (var p = 0; p < pieces.Length; p++)
        {
            // A whole batch joins the concatenation as it is; only parts of batches are gathered first.
            rows[p] = pieces[p].IsWholeBatch ? (ArraySegment<int>?)null : pieces[p].RowIndices();
            rowCount += pieces[p].Count;
        }

        for (var c = 0; c < columns.Length; c++)
        {
            for (var p = 0; p < pieces.Length; p++)
            {
                slices[p] = rows[p] is { } indices ? pieces[p].Columns[c].Gather(indices.AsSpan()) : pieces[p].Columns[c];
            }

            columns[c] = pieces.Length == 1 ? slices[0] : Column.Concat(schema[c].Type, slices);
        }

        return columns;
    }

    /// <summary>Rows <c>Start..Start+Count</c> of a batch's columns (table order), or of its partition order <see cref="Rows"/>.</summary>
    private readonly record struct Piece(Column[] Columns, int[]? Rows, int Start, int Count)
    {
        public bool IsWholeBatch => Rows is null && Start == 0 && Count == Columns[0].Length;

        public ArraySegment<int> RowIndices()
        {
            if (Rows is not null)
            {
                return new ArraySegment<int>(Rows, Start, Count);
            }

            var indices = new int[Count];
            for (var i = 0; i < indices.Length; i++)
            {
                indices[i] = Start + i;
            }

            return indices;
        }
    }

    private sealed class PartitionFile(EventTable.NewFile target, DataFileStatistics.Accumulator statistics)
    {
        public EventTable.NewFile Target { get; } = target;

        public DataFileStatistics.Accumulator Statistics { get; } = statistics;

        public List<Piece> Pending { get; } = [];

        public int PendingRows { get; set; }

        public ParquetFileWriter? Writer { get; set; }
    }
}
