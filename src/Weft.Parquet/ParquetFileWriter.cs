using System.Buffers.Binary;
using System.Text;
using Weft.Parquet.Columns;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet;

/// <summary>
/// Writes a Parquet file: magic, one row group per <see cref="WriteRowGroupAsync"/>, then the footer
/// on <see cref="CompleteAsync"/> (or <see cref="DisposeAsync"/>). The stream only needs to be
/// writable. One caller at a time: the writer is not thread-safe.
/// </summary>
/// <example>
/// <code>
/// await using var writer = await ParquetFileWriter.CreateAsync(stream, schema, options, ct);
/// await writer.WriteRowGroupAsync(columns, ct);
/// await writer.CompleteAsync(ct);
/// </code>
/// </example>
public sealed class ParquetFileWriter : IAsyncDisposable
{
    internal static readonly byte[] Magic = "PAR1"u8.ToArray();

    private static readonly string CreatedBy =
        $"weft-parquet version {typeof(ParquetFileWriter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0"}";

    private static readonly Dictionary<string, bool[]> EmptyGroupNulls = [];

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly ColumnDescriptor[] _descriptors;
    private readonly List<RowGroup> _rowGroups = [];
    private readonly List<KeyValue> _metadata = [];
    private readonly PooledBuffer _chunk = new(1 << 16);
    private long _position;
    private long _rowCount;
    private State _state;

    private ParquetFileWriter(Stream stream, bool ownsStream, ParquetSchema schema, ParquetWriterOptions options)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        Schema = schema;
        Options = options;
        _descriptors = new ColumnDescriptor[schema.Fields.Count];
        for (var i = 0; i < _descriptors.Length; i++)
        {
            _descriptors[i] = ColumnDescriptor.ForWrite(schema, i);
        }
    }

    private enum State
    {
        Open,
        Faulted,
        Completed,
        Disposed,
    }

    /// <summary>The schema every row group must match.</summary>
    public ParquetSchema Schema { get; }

    /// <summary>The frozen options.</summary>
    public ParquetWriterOptions Options { get; }

    /// <summary>Rows written so far.</summary>
    public long RowCount => _rowCount;

    /// <summary>Row groups written so far.</summary>
    public int RowGroupCount => _rowGroups.Count;

    /// <summary>
    /// Creates a writer over <paramref name="stream"/> (left open on dispose) and writes the leading magic.
    /// </summary>
    public static async Task<ParquetFileWriter> CreateAsync(
        Stream stream, ParquetSchema schema, ParquetWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(schema);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream must be writable.", nameof(stream));
        }

        options ??= ParquetWriterOptions.Default;
        options.Validate();
        var writer = new ParquetFileWriter(stream, ownsStream: false, schema, options);
        await writer.WriteAsync(Magic, cancellationToken).ConfigureAwait(false);
        return writer;
    }

    /// <summary>Creates (or overwrites) the file at <paramref name="path"/>; the writer owns and closes it.</summary>
    public static async Task<ParquetFileWriter> CreateAsync(
        string path, ParquetSchema schema, ParquetWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(schema);
        options ??= ParquetWriterOptions.Default;
        options.Validate();
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        var writer = new ParquetFileWriter(stream, ownsStream: true, schema, options);
        try
        {
            await writer.WriteAsync(Magic, cancellationToken).ConfigureAwait(false);
            return writer;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Adds (or replaces) a key/value pair in the footer's metadata.</summary>
    public void SetMetadata(string key, string? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ThrowIfNotOpen();
        _metadata.RemoveAll(kv => kv.Key == key);
        _metadata.Add(new KeyValue { Key = key, Value = value });
    }

    /// <summary>
    /// Writes one row group. <paramref name="columns"/> must follow the schema: same count, same order,
    /// equal fields, equal row counts. A row group of zero rows is not written.
    /// Argument errors leave the writer usable; an IO failure faults it (no footer is written).
    /// </summary>
    public async Task WriteRowGroupAsync(IReadOnlyList<ParquetColumnData> columns, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ThrowIfNotOpen();
        using var encoded = EncodeRowGroup(columns);
        await WriteRowGroupAsync(encoded, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes one row group of a schema with struct groups, some of them null in some rows:
    /// <paramref name="groupNulls"/>[path] has one flag per row (<c>true</c> = that struct is null) for a
    /// nullable struct group; a group left out is null in no row (except where an enclosing one is). Every
    /// column inside a null struct must be null in that row (a list: a null list). A map is null where its
    /// key and value lists are null rows; the two must agree on nulls and on each row's length. Otherwise as
    /// <see cref="WriteRowGroupAsync(IReadOnlyList{ParquetColumnData}, CancellationToken)"/>.
    /// </summary>
    public async Task WriteRowGroupAsync(
        IReadOnlyList<ParquetColumnData> columns, IReadOnlyDictionary<string, bool[]> groupNulls, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(groupNulls);
        ThrowIfNotOpen();
        using var encoded = EncodeRowGroup(columns, groupNulls);
        await WriteRowGroupAsync(encoded, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Encodes (and compresses) one row group without writing it, for <see cref="WriteRowGroupAsync(ParquetEncodedRowGroup, CancellationToken)"/>.
    /// Unlike the other members, this one may be called from several threads at once, so row groups can be
    /// encoded in parallel and appended in order. Checks <paramref name="columns"/> as <see cref="WriteRowGroupAsync(IReadOnlyList{ParquetColumnData}, CancellationToken)"/> does.
    /// </summary>
    public ParquetEncodedRowGroup EncodeRowGroup(IReadOnlyList<ParquetColumnData> columns) =>
        EncodeRowGroup(columns, EmptyGroupNulls);

    /// <summary>
    /// As <see cref="EncodeRowGroup(IReadOnlyList{ParquetColumnData})"/>, with the struct null flags of
    /// <see cref="WriteRowGroupAsync(IReadOnlyList{ParquetColumnData}, IReadOnlyDictionary{string, bool[]}, CancellationToken)"/>.
    /// </summary>
    public ParquetEncodedRowGroup EncodeRowGroup(IReadOnlyList<ParquetColumnData> columns, IReadOnlyDictionary<string, bool[]> groupNulls)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(groupNulls);
        ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
        var rows = Validate(columns);

        // Top-level columns skip this: no group, nothing to check per row.
        var enclosing = Schema.Groups.Count > 0 || groupNulls.Count > 0 ? GroupNulls.Resolve(Schema, columns, groupNulls, rows) : null;
        var chunks = new PooledBuffer?[columns.Count];
        var metas = new ColumnMetaData[columns.Count];
        try
        {
            if (rows >= ParquetWriterOptions.ParallelMinRows && columns.Count > 1 && Options.MaxDegreeOfParallelism > 1)
            {
                EncodeColumnsInParallel(columns, enclosing, chunks, metas);
            }
            else if (rows > 0)
            {
                using var scratch = new WriteScratch();
                for (var i = 0; i < columns.Count; i++)
                {
                    var chunk = chunks[i] = new PooledBuffer(1 << 16);
                    metas[i] = ColumnChunkWriter.Write(columns[i], _descriptors[i], Options, 0, chunk, scratch, enclosing?[i]);
                }
            }
        }
        catch
        {
            foreach (var chunk in chunks)
            {
                chunk?.Dispose();
            }

            throw;
        }

        return new ParquetEncodedRowGroup(this, rows, chunks, metas);
    }

    /// <summary>
    /// Encodes the columns on up to <see cref="ParquetWriterOptions.MaxDegreeOfParallelism"/> threads, each
    /// with its own scratch buffers. Each column lands in its own slot, so the result is the sequential one.
    /// </summary>
    private void EncodeColumnsInParallel(IReadOnlyList<ParquetColumnData> columns, byte[]?[]? enclosing, PooledBuffer?[] chunks, ColumnMetaData[] metas)
    {
        try
        {
            Parallel.For(
                0,
                columns.Count,
                new ParallelOptions { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism },
                () => new WriteScratch(),
                (i, _, scratch) =>
                {
                    var chunk = chunks[i] = new PooledBuffer(1 << 16);
                    metas[i] = ColumnChunkWriter.Write(columns[i], _descriptors[i], Options, 0, chunk, scratch, enclosing?[i]);
                    return scratch;
                },
                scratch => scratch.Dispose());
        }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            // Callers see what the sequential path throws, not a wrapper.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
    }

    /// <summary>
    /// Appends a row group <see cref="EncodeRowGroup"/> encoded with this writer, then releases its buffers.
    /// Row groups appear in the file in the order they are appended. An IO failure faults the writer.
    /// </summary>
    public async Task WriteRowGroupAsync(ParquetEncodedRowGroup encoded, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        ThrowIfNotOpen();
        if (!ReferenceEquals(encoded.Writer, this))
        {
            throw new ArgumentException("The row group was encoded by another writer.", nameof(encoded));
        }

        var (rows, buffers, metas) = encoded.Take();
        try
        {
            if (rows == 0)
            {
                return;
            }

            cancellationToken.ThrowIfCancellationRequested();
            _state = State.Faulted;
            var start = _position;
            var chunks = new ColumnChunk[metas.Length];
            long uncompressed = 0;
            for (var i = 0; i < metas.Length; i++)
            {
                // Encoded at offset 0: the page offsets move to where the chunk lands.
                var meta = metas[i];
                meta.DataPageOffset += _position;
                if (meta.DictionaryPageOffset is { } dictionary)
                {
                    meta.DictionaryPageOffset = dictionary + _position;
                }

                chunks[i] = new ColumnChunk { FileOffset = 0, MetaData = meta };
                uncompressed += meta.TotalUncompressedSize;
                await WriteAsync(buffers[i]!.WrittenMemory, cancellationToken).ConfigureAwait(false);
            }

            _rowGroups.Add(new RowGroup
            {
                Columns = chunks,
                TotalByteSize = uncompressed,
                NumRows = rows,
                FileOffset = start,
                TotalCompressedSize = _position - start,
                Ordinal = _rowGroups.Count <= short.MaxValue ? (short)_rowGroups.Count : null,
            });
            _rowCount += rows;
            _state = State.Open;
        }
        finally
        {
            foreach (var buffer in buffers)
            {
                buffer?.Dispose();
            }
        }
    }

    /// <summary>Writes the footer and flushes. Idempotent; later writes throw.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (_state == State.Completed)
        {
            return;
        }

        ThrowIfNotOpen();
        _state = State.Faulted;
        var footer = new FileMetaData
        {
            Version = 1,
            Schema = SchemaMapping.ToElements(Schema),
            NumRows = _rowCount,
            RowGroups = _rowGroups,
            KeyValueMetadata = _metadata,
            CreatedBy = CreatedBy,
            ColumnOrderCount = _descriptors.Length,
        };
        _chunk.Clear();
        footer.Write(new ThriftCompactWriter(_chunk));
        var length = _chunk.Length;
        var tail = _chunk.GetSpan(8);
        BinaryPrimitives.WriteInt32LittleEndian(tail, length);
        Magic.CopyTo(tail[4..]);
        _chunk.Advance(8);
        await WriteAsync(_chunk.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _state = State.Completed;
    }

    /// <summary>Completes the file if it is still open (not after an IO failure), then releases buffers and an owned stream.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_state == State.Disposed)
        {
            return;
        }

        try
        {
            if (_state == State.Open)
            {
                await CompleteAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            _state = State.Disposed;
            _chunk.Dispose();
            if (_ownsStream)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private int Validate(IReadOnlyList<ParquetColumnData> columns)
    {
        if (columns.Count != Schema.Fields.Count)
        {
            throw new ArgumentException(
                $"The row group has {columns.Count} columns; the schema has {Schema.Fields.Count} ({Schema}).", nameof(columns));
        }

        var rows = -1;
        for (var i = 0; i < columns.Count; i++)
        {
            var column = columns[i] ?? throw new ArgumentException($"Column {i} is null.", nameof(columns));
            if (column.Field != Schema.Fields[i])
            {
                throw new ArgumentException(
                    $"Column {i} is {column.Field} but the schema expects {Schema.Fields[i]}.", nameof(columns));
            }

            if (column.Values is string?[] strings)
            {
                CheckUtf16(column.Field.Name, strings);
            }

            if (rows < 0)
            {
                rows = column.RowCount;
            }
            else if (column.RowCount != rows)
            {
                throw new ArgumentException(
                    $"Column '{column.Field.Name}' has {column.RowCount} rows; column '{columns[0].Field.Name}' has {rows}.", nameof(columns));
            }
        }

        return rows;
    }

    /// <summary>Strings must be valid UTF-16 to be written as UTF-8; checked before any byte is written.</summary>
    private static void CheckUtf16(string column, string?[] strings)
    {
        for (var i = 0; i < strings.Length; i++)
        {
            var s = strings[i];
            if (s is null || s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
            {
                continue;
            }

            try
            {
                _ = StrictUtf8.GetByteCount(s);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException(
                    $"Column '{column}': value {i} is not valid UTF-16 (an unpaired surrogate) and cannot be written as UTF-8.", nameof(strings), e);
            }
        }
    }

    private async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        _position += bytes.Length;
    }

    private void ThrowIfNotOpen()
    {
        switch (_state)
        {
            case State.Open:
                return;
            case State.Completed:
                throw new InvalidOperationException("The Parquet file is complete; nothing more can be written.");
            case State.Faulted:
                throw new InvalidOperationException("An earlier write failed; the Parquet file is incomplete and cannot be written further.");
            default:
                throw new ObjectDisposedException(nameof(ParquetFileWriter));
        }
    }
}
