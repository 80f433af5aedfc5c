using System.Buffers;
using System.Buffers.Binary;
using Weft.Parquet.Columns;
using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet;

/// <summary>
/// Reads a Parquet file: the footer on open, then one column chunk per
/// <see cref="ReadColumnAsync"/>. Only the requested chunk's bytes are read, decompressed and
/// decoded (see <see cref="BytesRead"/>, <see cref="BytesDecompressed"/>, <see cref="PagesDecoded"/>).
/// The stream must be readable and seekable. One caller at a time: the reader is not thread-safe.
/// </summary>
public sealed class ParquetFileReader : IAsyncDisposable
{
    private const int FooterTailSize = 8;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly string? _path;
    private readonly FileMetaData _metadata;
    private readonly ColumnDescriptor[] _columns;
    private readonly long _dataEnd;
    private readonly ReadCounters _counters = new();
    private bool _disposed;

    private ParquetFileReader(
        Stream stream, bool ownsStream, string? path, FileMetaData metadata, ParquetSchema schema, ColumnDescriptor[] columns,
        IReadOnlyList<ParquetRowGroupInfo> rowGroups, IReadOnlyDictionary<string, string?> keyValues, long dataEnd, IReadOnlyDictionary<string, string> unsupported)
    {
        UnsupportedColumns = unsupported;
        _stream = stream;
        _ownsStream = ownsStream;
        _path = path;
        _metadata = metadata;
        _columns = columns;
        _dataEnd = dataEnd;
        Schema = schema;
        RowGroups = rowGroups;
        Metadata = keyValues;
    }

    /// <summary>
    /// The file's columns; the leaves of structs and the keys and values of maps appear as columns of
    /// their own, named by their dotted path (<c>s.b.c</c>, <c>m.key</c>, <c>m.value</c>).
    /// </summary>
    public ParquetSchema Schema { get; }

    /// <summary>
    /// Columns of the file outside Weft's subset (decimals, times, lists of structs…), left out of
    /// <see cref="Schema"/> so the others stay readable, each with why; reading one throws
    /// <see cref="NotSupportedException"/> with that reason. A field inside a struct or map is named by
    /// its dotted path (<c>s.price</c>, <c>m.value</c>); the struct's other fields stay in the schema.
    /// </summary>
    public IReadOnlyDictionary<string, string> UnsupportedColumns { get; }

    /// <summary>The row groups, with per-column statistics.</summary>
    public IReadOnlyList<ParquetRowGroupInfo> RowGroups { get; }

    /// <summary>Total rows, from the footer.</summary>
    public long RowCount => _metadata.NumRows;

    /// <summary>The footer's key/value metadata (a repeated key keeps its last value).</summary>
    public IReadOnlyDictionary<string, string?> Metadata { get; }

    /// <summary>The footer's created_by string, if any.</summary>
    public string? CreatedBy => _metadata.CreatedBy;

    /// <summary>The file path given on open, if any.</summary>
    public string? FilePath => _path;

    /// <summary>Column chunk bytes read from the stream (footer excluded).</summary>
    public long BytesRead => _counters.BytesRead;

    /// <summary>Uncompressed bytes of every page decoded (after decompression, if any).</summary>
    public long BytesDecompressed => _counters.BytesDecompressed;

    /// <summary>Dictionary and data pages decoded.</summary>
    public long PagesDecoded => _counters.PagesDecoded;

    /// <summary>The decoded footer (for tests and diagnostics).</summary>
    internal FileMetaData Footer => _metadata;

    /// <summary>DATA_PAGE_V2 pages decoded (for tests).</summary>
    internal long V2PagesDecoded => _counters.V2PagesDecoded;

    /// <summary>Opens the file at <paramref name="path"/>; the reader owns and closes it.</summary>
    public static async Task<ParquetFileReader> OpenAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.Asynchronous | FileOptions.RandomAccess);
        try
        {
            return await OpenCoreAsync(stream, ownsStream: true, path, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Opens a reader over <paramref name="stream"/> (readable, seekable; left open on dispose).
    /// <paramref name="path"/> only names the file in error messages.
    /// </summary>
    public static Task<ParquetFileReader> OpenAsync(Stream stream, string? path = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead || !stream.CanSeek)
        {
            throw new ArgumentException("The stream must be readable and seekable.", nameof(stream));
        }

        return OpenCoreAsync(stream, ownsStream: false, path, cancellationToken);
    }

    /// <summary>
    /// Reads one column of one row group. Throws <see cref="ParquetFormatException"/> when its bytes
    /// are corrupt, and <see cref="NotSupportedException"/> for valid data outside Weft's subset
    /// (other codecs or encodings, lists nested more than two deep).
    /// </summary>
    public Task<ParquetColumnData> ReadColumnAsync(int rowGroup, string column, CancellationToken cancellationToken = default) =>
        ReadChunkAsync(rowGroup, column, ColumnChunkReader.Read, cancellationToken);

    /// <summary>
    /// Reads one string column (not a list) of one row group as UTF-8 bytes and offsets, without a .NET
    /// string per value (<see cref="ParquetUtf8Column"/>). Throws <see cref="ArgumentException"/> for a
    /// column of another type, and what <see cref="ReadColumnAsync"/> throws for corrupt or unsupported data.
    /// </summary>
    public async Task<ParquetUtf8Column> ReadUtf8ColumnAsync(int rowGroup, string column, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (UnsupportedColumns.TryGetValue(column, out var reason))
        {
            throw new NotSupportedException($"{Describe()}{reason}");
        }

        var index = Schema.IndexOfOrThrow(column);
        var field = Schema.Fields[index];
        if (field.Type != ParquetType.String || field.IsList || _columns[index].MaxRepetitionLevel > 0)
        {
            throw new ArgumentException(
                $"{Describe()}column '{column}' is {field.TypeName}; only string columns that are not lists read as UTF-8 (read it with ReadColumnAsync).",
                nameof(column));
        }

        return await ReadChunkAsync(rowGroup, column, Utf8ChunkReader.Read, cancellationToken).ConfigureAwait(false);
    }

    private async Task<T> ReadChunkAsync<T>(
        int rowGroup, string column, Func<ColumnDescriptor, ColumnMetaData, long, byte[], int, ReadCounters, T> decode, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(rowGroup);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rowGroup, RowGroups.Count);
        if (UnsupportedColumns.TryGetValue(column, out var reason))
        {
            throw new NotSupportedException($"{Describe()}{reason}");
        }

        var index = Schema.IndexOfOrThrow(column);
        var group = _metadata.RowGroups[rowGroup];
        var descriptor = _columns[index];
        var meta = group.Columns[descriptor.ChunkIndex].MetaData;
        var where = $"column '{column}', row group {rowGroup}";

        var start = meta.DictionaryPageOffset is { } dict && dict > 0 && dict < meta.DataPageOffset ? dict : meta.DataPageOffset;
        var length = meta.TotalCompressedSize;
        if (start < ParquetFileWriter.Magic.Length || length <= 0 || length > _dataEnd - start || length > Array.MaxLength)
        {
            throw Error($"{where}: the chunk at bytes [{start}, {start + length}) lies outside the data section [4, {_dataEnd})");
        }

        var buffer = ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            await ReadAtAsync(start, buffer.AsMemory(0, (int)length), cancellationToken).ConfigureAwait(false);
            _counters.BytesRead += length;
            return decode(descriptor, meta, group.NumRows, buffer, (int)length, _counters);
        }
        catch (ParquetFormatException e) when (e.FilePath is null)
        {
            throw Error($"{where}: {e.Problem}", e);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"{Describe()}{where}: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The row groups whose statistics allow a value of <paramref name="column"/> in
    /// [<paramref name="min"/>, <paramref name="max"/>] (inclusive; null leaves that side open).
    /// Row groups without usable statistics are always included; a row group whose values are all
    /// null is excluded. Bounds must have the column's CLR type (timestamps: <see cref="long"/>
    /// microseconds or <see cref="DateTimeOffset"/>).
    /// </summary>
    public IReadOnlyList<int> FindRowGroups(string column, object? min, object? max)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var index = Schema.IndexOfOrThrow(column);
        var field = Schema.Fields[index];
        min = NormalizeBound(field, min, nameof(min));
        max = NormalizeBound(field, max, nameof(max));
        var result = new List<int>(RowGroups.Count);
        for (var g = 0; g < RowGroups.Count; g++)
        {
            var stats = RowGroups[g].Columns[index];
            if (stats.NullCount is { } nulls && nulls >= stats.ValueCount && stats.Min is null && stats.Max is null)
            {
                continue;
            }

            if (min is not null && stats.Max is not null && CompareStat(field.Type, stats.Max, min) < 0)
            {
                continue;
            }

            if (max is not null && stats.Min is not null && CompareStat(field.Type, stats.Min, max) > 0)
            {
                continue;
            }

            result.Add(g);
        }

        return result;
    }

    /// <summary>Closes the stream when the reader opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsStream)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<ParquetFileReader> OpenCoreAsync(Stream stream, bool ownsStream, string? path, CancellationToken cancellationToken)
    {
        var length = stream.Length;
        var minimum = ParquetFileWriter.Magic.Length + FooterTailSize;
        if (length < minimum)
        {
            throw new ParquetFormatException(path, $"the file is {length} bytes, shorter than the {minimum}-byte minimum (truncated?)");
        }

        var head = new byte[4];
        await ReadAtAsync(stream, path, 0, head, cancellationToken).ConfigureAwait(false);
        var tail = new byte[FooterTailSize];
        await ReadAtAsync(stream, path, length - FooterTailSize, tail, cancellationToken).ConfigureAwait(false);
        if (!head.AsSpan().SequenceEqual(ParquetFileWriter.Magic))
        {
            throw new ParquetFormatException(path, "bad magic at the start of the file (expected 'PAR1')");
        }

        if (tail.AsSpan(4).SequenceEqual("PARE"u8))
        {
            throw new NotSupportedException($"Parquet file '{path}' has an encrypted footer, which Weft does not read.");
        }

        if (!tail.AsSpan(4).SequenceEqual(ParquetFileWriter.Magic))
        {
            throw new ParquetFormatException(path, "bad magic at the end of the file (expected 'PAR1'; truncated or not Parquet?)");
        }

        var footerLength = BinaryPrimitives.ReadInt32LittleEndian(tail);
        if (footerLength <= 0 || footerLength > length - minimum)
        {
            throw new ParquetFormatException(path, $"footer length {footerLength} is out of range for a {length}-byte file");
        }

        var footer = new byte[footerLength];
        var footerStart = length - FooterTailSize - footerLength;
        await ReadAtAsync(stream, path, footerStart, footer, cancellationToken).ConfigureAwait(false);
        try
        {
            var reader = new ThriftCompactReader(footer);
            var metadata = FileMetaData.Read(ref reader);
            var (schema, columns, skipped, leaves) = SchemaMapping.FromElementsSkippingUnsupported(metadata.Schema);
            var unsupported = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, why) in skipped)
            {
                unsupported[name] = why;
            }

            var rowGroups = Describe(metadata, schema, columns, leaves);
            var keyValues = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var kv in metadata.KeyValueMetadata ?? [])
            {
                keyValues[kv.Key] = kv.Value;
            }

            return new ParquetFileReader(stream, ownsStream, path, metadata, schema, columns, rowGroups, keyValues, footerStart, unsupported);
        }
        catch (ParquetFormatException e) when (e.FilePath is null)
        {
            throw new ParquetFormatException(path, $"footer: {e.Problem}", e);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException(path is null ? e.Message : $"Parquet file '{path}': {e.Message}", e);
        }
    }

    private static List<ParquetRowGroupInfo> Describe(FileMetaData metadata, ParquetSchema schema, ColumnDescriptor[] columns, int leaves)
    {
        if (metadata.NumRows < 0)
        {
            ThrowHelper.Format($"num_rows is negative ({metadata.NumRows})");
        }

        var groups = new List<ParquetRowGroupInfo>(metadata.RowGroups.Count);
        for (var g = 0; g < metadata.RowGroups.Count; g++)
        {
            var group = metadata.RowGroups[g];
            if (group.NumRows < 0 || group.NumRows > int.MaxValue)
            {
                ThrowHelper.Format($"row group {g} has {group.NumRows} rows");
            }

            if (group.Columns.Count != leaves)
            {
                ThrowHelper.Format($"row group {g} has {group.Columns.Count} column chunks for {leaves} leaf columns");
            }

            var stats = new ParquetColumnStatistics[columns.Length];
            long compressed = 0, uncompressed = 0;
            for (var c = 0; c < columns.Length; c++)
            {
                var descriptor = columns[c];
                var meta = group.Columns[descriptor.ChunkIndex].MetaData;
                if (meta.Type != descriptor.Physical)
                {
                    ThrowHelper.Format($"row group {g}, column '{descriptor.Field.Name}': chunk type {meta.Type} does not match schema type {descriptor.Physical}");
                }

                if (!meta.PathInSchema.SequenceEqual(descriptor.Path, StringComparer.Ordinal))
                {
                    ThrowHelper.Format(
                        $"row group {g}, chunk {c}: path '{string.Join('.', meta.PathInSchema)}' does not match column '{string.Join('.', descriptor.Path)}'");
                }

                compressed += meta.TotalCompressedSize;
                uncompressed += meta.TotalUncompressedSize;
                stats[c] = Statistic(descriptor, meta);
            }

            groups.Add(new ParquetRowGroupInfo(g, group.NumRows, compressed, uncompressed, schema, stats));
        }

        return groups;
    }

    private static ParquetColumnStatistics Statistic(ColumnDescriptor descriptor, ColumnMetaData meta)
    {
        object? min = null, max = null;
        var s = meta.Statistics;
        if (s is not null)
        {
            // min_value / max_value follow the column order; the legacy min / max use signed order,
            // which is only right for the numeric and boolean types.
            // Unsigned columns are ordered unsigned, which the legacy fields are not. Byte-array decimals
            // are ordered signed, but writers before the column orders existed compared their bytes
            // unsigned, and a legacy field does not say which it holds.
            bool signedOrder = descriptor.Physical is not (PhysicalType.ByteArray or PhysicalType.FixedLenByteArray)
                && descriptor.Stored is not (StoredAs.UInt32 or StoredAs.UInt64);
            var minBytes = s.MinValue ?? (signedOrder ? s.Min : null);
            var maxBytes = s.MaxValue ?? (signedOrder ? s.Max : null);
            if (minBytes is not null && maxBytes is not null)
            {
                min = DecodeStatistic(descriptor, minBytes);
                max = DecodeStatistic(descriptor, maxBytes);
                if (min is null || max is null)
                {
                    min = max = null;
                }
            }
        }

        return new ParquetColumnStatistics(
            descriptor.Field.Name, meta.NumValues, s?.NullCount, min, max, meta.TotalCompressedSize, meta.TotalUncompressedSize);
    }

    /// <summary>A statistic in the field's terms (µs for every timestamp unit); null when it cannot be.</summary>
    private static object? DecodeStatistic(ColumnDescriptor descriptor, byte[] bytes) => descriptor.Stored switch
    {
        StoredAs.AsIs => DecodeStatistic(descriptor.Field.Type, bytes),
        // Within the width's range in either order, every value between them is too, so no upper bit was set.
        StoredAs.Int8 => Int32Codec.ReadStatistic(bytes) is int s8 and >= sbyte.MinValue and <= sbyte.MaxValue ? s8 : null,
        StoredAs.Int16 => Int32Codec.ReadStatistic(bytes) is int s16 and >= short.MinValue and <= short.MaxValue ? s16 : null,
        StoredAs.UInt8 => Int32Codec.ReadStatistic(bytes) is int b and >= 0 and <= 0xFF ? b : null,
        StoredAs.UInt16 => Int32Codec.ReadStatistic(bytes) is int h and >= 0 and <= 0xFFFF ? h : null,
        StoredAs.UInt32 => WidenedInt32Codec<UnsignedWidening>.ReadStatistic(bytes),
        StoredAs.DateDays => WidenedInt32Codec<DaysWidening>.ReadStatistic(bytes),
        StoredAs.UInt64 => bytes.Length == 8 && BinaryPrimitives.ReadUInt64LittleEndian(bytes) is var u && u <= long.MaxValue ? (long)u : null,
        StoredAs.TimestampMillis => Int64Codec.ReadStatistic(bytes) is long ms && TimeUnits.TryMillisToMicros(ms, out var us) ? us : null,
        StoredAs.TimestampNanos or StoredAs.TimeNanos => Int64Codec.ReadStatistic(bytes) is long ns ? TimeUnits.FloorNanosToMicros(ns) : null,
        StoredAs.TimeMillis => WidenedInt32Codec<MillisWidening>.ReadStatistic(bytes),

        // The nearest double never moves a value past another, so the bounds still hold every value.
        StoredAs.DecimalInt32 => Int32Codec.ReadStatistic(bytes) is int i ? DecimalDouble.FromUnscaled(i, descriptor.Scale) : null,
        StoredAs.DecimalInt64 => Int64Codec.ReadStatistic(bytes) is long l ? DecimalDouble.FromUnscaled(l, descriptor.Scale) : null,
        StoredAs.DecimalFixed => bytes.Length == descriptor.TypeLength && DecimalDouble.TryReadBigEndian(bytes, out var f) ? DecimalDouble.FromUnscaled(f, descriptor.Scale) : null,
        StoredAs.DecimalBytes => DecimalDouble.TryReadBigEndian(bytes, out var b) ? DecimalDouble.FromUnscaled(b, descriptor.Scale) : null,
        _ => null, // INT96: no defined order
    };

    private static object? DecodeStatistic(ParquetType type, byte[] bytes) => type switch
    {
        ParquetType.Boolean => BooleanCodec.ReadStatistic(bytes),
        ParquetType.Int32 => Int32Codec.ReadStatistic(bytes),
        ParquetType.Int64 or ParquetType.TimestampMicros => Int64Codec.ReadStatistic(bytes),
        ParquetType.Float => FloatCodec.ReadStatistic(bytes),
        ParquetType.Double => DoubleCodec.ReadStatistic(bytes),
        ParquetType.String => StringCodec.ReadStatistic(bytes),
        _ => null,
    };

    private static object? NormalizeBound(ParquetField field, object? bound, string name)
    {
        if (bound is null)
        {
            return null;
        }

        if (field.Type == ParquetType.TimestampMicros && bound is DateTimeOffset time)
        {
            return (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
        }

        if (bound.GetType() != field.ClrType)
        {
            throw new ArgumentException(
                $"Column '{field.Name}' ({field.Type}) needs a {field.ClrType.Name} bound, got {bound.GetType().Name}.", name);
        }

        if (bound is float f && float.IsNaN(f) || bound is double d && double.IsNaN(d))
        {
            throw new ArgumentException($"A NaN bound for column '{field.Name}' matches nothing and is not allowed.", name);
        }

        return bound;
    }

    private static int CompareStat(ParquetType type, object a, object b) => type switch
    {
        ParquetType.Boolean => ((bool)a).CompareTo((bool)b),
        ParquetType.Int32 => ((int)a).CompareTo((int)b),
        ParquetType.Int64 or ParquetType.TimestampMicros => ((long)a).CompareTo((long)b),
        ParquetType.Float => ((float)a).CompareTo((float)b),
        ParquetType.Double => ((double)a).CompareTo((double)b),
        ParquetType.String => Utf8Order.Compare((string)a, (string)b),
        _ => 0,
    };

    private static async ValueTask ReadAtAsync(Stream stream, string? path, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        stream.Seek(offset, SeekOrigin.Begin);
        try
        {
            await stream.ReadExactlyAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new ParquetFormatException(path, $"the file ends before byte {offset + destination.Length} (truncated?)", e);
        }
    }

    private ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken) =>
        ReadAtAsync(_stream, _path, offset, destination, cancellationToken);

    private ParquetFormatException Error(string problem, Exception? inner = null) => new(_path, problem, inner);

    private string Describe() => _path is null ? string.Empty : $"Parquet file '{_path}': ";
}
