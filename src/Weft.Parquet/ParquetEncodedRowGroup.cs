using Weft.Parquet.Encodings;
using Weft.Parquet.Format;

namespace Weft.Parquet;

/// <summary>
/// A row group encoded and compressed by <see cref="ParquetFileWriter.EncodeRowGroup"/>, not yet in the
/// file. It holds pooled buffers: append it with <see cref="ParquetFileWriter.WriteRowGroupAsync(ParquetEncodedRowGroup, CancellationToken)"/>
/// (which releases them) or dispose it. It can be appended once.
/// </summary>
public sealed class ParquetEncodedRowGroup : IDisposable
{
    private PooledBuffer?[]? _buffers;
    private ColumnMetaData[]? _metas;

    internal ParquetEncodedRowGroup(ParquetFileWriter writer, int rowCount, PooledBuffer?[] buffers, ColumnMetaData[] metas)
    {
        Writer = writer;
        RowCount = rowCount;
        _buffers = buffers;
        _metas = metas;
        foreach (var b in buffers)
        {
            CompressedBytes += b?.Length ?? 0;
        }
    }

    /// <summary>Rows in the row group.</summary>
    public int RowCount { get; }

    /// <summary>Bytes the row group takes in the file (pages and their headers).</summary>
    public long CompressedBytes { get; }

    internal ParquetFileWriter Writer { get; }

    public void Dispose()
    {
        var buffers = Interlocked.Exchange(ref _buffers, null);
        if (buffers is not null)
        {
            foreach (var b in buffers)
            {
                b?.Dispose();
            }
        }
    }

    /// <summary>Hands the buffers to the writer (once).</summary>
    internal (int Rows, PooledBuffer?[] Buffers, ColumnMetaData[] Metas) Take()
    {
        var buffers = Interlocked.Exchange(ref _buffers, null) ?? throw new InvalidOperationException("The encoded row group was already written or disposed.");
        return (RowCount, buffers, _metas!);
    }
}
