using System.Text;

namespace Weft.Parquet;

/// <summary>
/// One string column of one row group as UTF-8 bytes, without an object per value: every row's bytes
/// back to back in <see cref="Bytes"/>, row <c>i</c> at <c>Offsets[i] .. Offsets[i + 1]</c>. A null row
/// has no bytes and is flagged in <see cref="Nulls"/>; an empty string has no bytes and is not flagged.
/// The bytes are checked to be valid UTF-8, as <see cref="ParquetFileReader.ReadColumnAsync"/> checks
/// them. For scans that count, measure, hash, compare or pass strings on as bytes; read a column as
/// <see cref="ParquetColumnData"/> to get .NET strings.
/// </summary>
public sealed class ParquetUtf8Column
{
    private readonly byte[] _bytes;
    private readonly int[] _offsets;

    internal ParquetUtf8Column(ParquetField field, byte[] bytes, int[] offsets, bool[]? nulls)
    {
        Field = field;
        _bytes = bytes;
        _offsets = offsets;
        Nulls = nulls;
    }

    /// <summary>The bytes the column holds on to, used or not (for tests of how much a read keeps).</summary>
    internal int ByteCapacity => _bytes.Length;

    /// <summary>The column's field (a string field that is not a list).</summary>
    public ParquetField Field { get; }

    /// <summary>The number of rows.</summary>
    public int RowCount => _offsets.Length - 1;

    /// <summary>Every row's bytes, in row order.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes.AsSpan(0, _offsets[^1]);

    /// <summary><see cref="RowCount"/> + 1 offsets into <see cref="Bytes"/>, starting at 0.</summary>
    public ReadOnlySpan<int> Offsets => _offsets;

    /// <summary><c>true</c> marks a null row; <c>null</c> when no row is null.</summary>
    public bool[]? Nulls { get; }

    /// <summary>Whether row <paramref name="row"/> is null.</summary>
    public bool IsNull(int row)
    {
        CheckRow(row);
        return Nulls is { } n && n[row];
    }

    /// <summary>Row <paramref name="row"/>'s bytes (empty for a null row).</summary>
    public ReadOnlySpan<byte> this[int row]
    {
        get
        {
            CheckRow(row);
            return _bytes.AsSpan(_offsets[row], _offsets[row + 1] - _offsets[row]);
        }
    }

    /// <summary>Row <paramref name="row"/> as a .NET string, or <c>null</c> for a null row.</summary>
    public string? GetString(int row) => IsNull(row) ? null : Encoding.UTF8.GetString(this[row]);

    private void CheckRow(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, RowCount);
    }
}
