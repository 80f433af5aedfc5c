namespace Weft.Parquet;

/// <summary>A row group as described by the footer.</summary>
public sealed class ParquetRowGroupInfo
{
    private readonly ParquetSchema _schema;

    internal ParquetRowGroupInfo(int index, long rowCount, long compressedSize, long uncompressedSize, ParquetSchema schema, IReadOnlyList<ParquetColumnStatistics> columns)
    {
        Index = index;
        RowCount = rowCount;
        CompressedSize = compressedSize;
        UncompressedSize = uncompressedSize;
        _schema = schema;
        Columns = columns;
    }

    /// <summary>The row group's position in the file.</summary>
    public int Index { get; }

    /// <summary>Rows in the row group.</summary>
    public long RowCount { get; }

    /// <summary>Bytes of its column chunks as stored (compressed, with page headers).</summary>
    public long CompressedSize { get; }

    /// <summary>Bytes of its column chunks uncompressed (with page headers).</summary>
    public long UncompressedSize { get; }

    /// <summary>Per-column statistics, in schema order.</summary>
    public IReadOnlyList<ParquetColumnStatistics> Columns { get; }

    /// <summary>The statistics of the named column.</summary>
    public ParquetColumnStatistics this[string column] => Columns[_schema.IndexOfOrThrow(column)];
}

/// <summary>
/// Column chunk metadata and statistics. <see cref="Min"/> and <see cref="Max"/> are boxed values of
/// the column's CLR type (timestamps: <see cref="long"/> microseconds), or null when the file has
/// none (or they are NaN or malformed). For list columns they bound the elements, and
/// <see cref="NullCount"/> counts rows that are null or empty lists. Strings compare by UTF-8 bytes.
/// </summary>
/// <param name="Column">Column name.</param>
/// <param name="ValueCount">Values in the chunk, including nulls (list columns: element slots).</param>
/// <param name="NullCount">Null values, when the file records it.</param>
/// <param name="Min">Lower bound of the non-null values.</param>
/// <param name="Max">Upper bound of the non-null values.</param>
/// <param name="CompressedSize">Stored bytes, with page headers.</param>
/// <param name="UncompressedSize">Uncompressed bytes, with page headers.</param>
public sealed record ParquetColumnStatistics(
    string Column, long ValueCount, long? NullCount, object? Min, object? Max, long CompressedSize, long UncompressedSize);
