namespace Weft.Parquet.Columns;

/// <summary>
/// The result of reading a flat (non-list) column chunk: one value per row, filled page by page in
/// row order, and null flags created at the first null row. The value array is sized to the row count
/// up front when that is at most <see cref="ColumnChunkReader.MaxValuesPerPage"/> (a corrupt count
/// cannot demand more than a page could), and grows page by page otherwise.
/// </summary>
internal sealed class FlatColumn<T>
{
    private readonly int _rows;
    private T[] _values;
    private bool[]? _nulls;
    private int _filled;
    private int _pageStart;

    public FlatColumn(int rows)
    {
        _rows = rows;

        // Not zeroed: every row is written, by a value or by the default of a null row.
        _values = GC.AllocateUninitializedArray<T>(Math.Min(rows, ColumnChunkReader.MaxValuesPerPage));
    }

    /// <summary>The values, once every row is filled (the reader checks that every row was).</summary>
    public T[] Values => _values.Length == _filled ? _values : _values[.._filled];

    /// <summary>Null flags, or null when no row is null.</summary>
    public bool[]? Nulls => _nulls is null || _nulls.Length == _filled ? _nulls : _nulls[.._filled];

    /// <summary>The next <paramref name="count"/> rows (at most the rows left), to be filled.</summary>
    public Span<T> Next(int count)
    {
        var needed = _filled + count;
        if (needed > _values.Length)
        {
            var size = (int)Math.Min(_rows, Math.Max(needed, (long)_values.Length * 2));
            Array.Resize(ref _values, size);
            if (_nulls is not null)
            {
                Array.Resize(ref _nulls, size);
            }
        }

        _pageStart = _filled;
        _filled = needed;
        return _values.AsSpan(_pageStart, count);
    }

    /// <summary>Marks row <paramref name="row"/> of the current page null.</summary>
    public void MarkNull(int row)
    {
        _nulls ??= new bool[_values.Length];
        _nulls[_pageStart + row] = true;
    }
}
