using System.Diagnostics;

namespace Weft.Parquet;

/// <summary>
/// One column of one row group, in memory.
/// <list type="bullet">
/// <item>Non-list column: <see cref="Values"/> is a <c>bool[]</c>, <c>int[]</c>, <c>long[]</c>,
/// <c>float[]</c>, <c>double[]</c> or <c>string[]</c> of length <see cref="RowCount"/> (timestamps are
/// <c>long[]</c> microseconds since the Unix epoch). A null row holds the default value
/// (<c>false</c>, <c>0</c>, or <c>null</c> for strings).</item>
/// <item>List column: <see cref="Values"/> holds every element of every row, flattened in row order;
/// row <c>i</c>'s elements are <c>Values[Offsets[i] .. Offsets[i + 1]]</c>. <see cref="Offsets"/> has
/// <see cref="RowCount"/> + 1 entries starting at 0. A null list and an empty list both have no
/// elements; <see cref="Nulls"/> tells them apart. Elements are never null.</item>
/// <item><see cref="Nulls"/>: <c>true</c> marks a null row; <c>null</c> means no row is null.</item>
/// </list>
/// The arrays are not copied: do not mutate them while a writer uses this instance.
/// </summary>
public sealed class ParquetColumnData
{
    private ParquetColumnData(ParquetField field, int rowCount, Array values, bool[]? nulls, int[]? offsets)
    {
        Field = field;
        RowCount = rowCount;
        Values = values;
        Nulls = nulls;
        Offsets = offsets;
    }

    /// <summary>The column's field.</summary>
    public ParquetField Field { get; }

    /// <summary>The number of rows.</summary>
    public int RowCount { get; }

    /// <summary>The values (non-list) or the flattened elements (list); see the type remarks.</summary>
    public Array Values { get; }

    /// <summary><c>true</c> marks a null row; <c>null</c> when no row is null.</summary>
    public bool[]? Nulls { get; }

    /// <summary>List columns only: <see cref="RowCount"/> + 1 offsets into <see cref="Values"/>.</summary>
    public int[]? Offsets { get; }

    /// <summary>Whether row <paramref name="row"/> is null.</summary>
    public bool IsNull(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, RowCount);
        return Nulls is { } n && n[row];
    }

    /// <summary>The values (non-list) or the flattened elements (list) as <typeparamref name="T"/>[].</summary>
    public T[] GetValues<T>() => Values as T[]
        ?? throw new InvalidOperationException(
            $"Column '{Field.Name}' holds {Values.GetType().Name}, not {typeof(T).Name}[].");

    /// <summary>The elements of row <paramref name="row"/> of a list column (empty for a null list).</summary>
    public ReadOnlySpan<T> GetList<T>(int row)
    {
        var offsets = Offsets ?? throw new InvalidOperationException($"Column '{Field.Name}' is not a list column.");
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, RowCount);
        return GetValues<T>().AsSpan(offsets[row], offsets[row + 1] - offsets[row]);
    }

    /// <summary>
    /// Creates a column after checking it against <paramref name="field"/>: the array's element type,
    /// the lengths, the offsets (list columns), that a non-nullable field has no null rows, that null
    /// list rows have no elements, and that no string value or element outside a null row is null.
    /// </summary>
    public static ParquetColumnData Create(ParquetField field, Array values, bool[]? nulls = null, int[]? offsets = null)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(values);
        var expected = field.ClrType;
        if (values.Rank != 1 || values.GetType().GetElementType() != expected)
        {
            throw new ArgumentException(
                $"Column '{field.Name}' ({field.Type}) needs {expected.Name}[] values, got {values.GetType().Name}.",
                nameof(values));
        }

        int rowCount;
        if (field.IsList)
        {
            if (offsets is null)
            {
                throw new ArgumentException($"List column '{field.Name}' needs offsets.", nameof(offsets));
            }

            if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != values.Length)
            {
                throw new ArgumentException(
                    $"List column '{field.Name}': offsets must start at 0 and end at the element count {values.Length}.",
                    nameof(offsets));
            }

            rowCount = offsets.Length - 1;
            for (var i = 0; i < rowCount; i++)
            {
                if (offsets[i + 1] < offsets[i])
                {
                    throw new ArgumentException(
                        $"List column '{field.Name}': offsets decrease at row {i}.", nameof(offsets));
                }
            }
        }
        else
        {
            if (offsets is not null)
            {
                throw new ArgumentException($"Column '{field.Name}' is not a list column but offsets were given.", nameof(offsets));
            }

            rowCount = values.Length;
        }

        if (nulls is not null)
        {
            if (nulls.Length != rowCount)
            {
                throw new ArgumentException(
                    $"Column '{field.Name}': {nulls.Length} null flags for {rowCount} rows.", nameof(nulls));
            }

            var firstNull = Array.IndexOf(nulls, true);
            if (firstNull >= 0)
            {
                if (!field.Nullable)
                {
                    throw new ArgumentException(
                        $"Column '{field.Name}' is not nullable but row {firstNull} is null.", nameof(nulls));
                }

                if (offsets is not null)
                {
                    for (var i = firstNull; i < rowCount; i++)
                    {
                        if (nulls[i] && offsets[i + 1] != offsets[i])
                        {
                            throw new ArgumentException(
                                $"List column '{field.Name}': null row {i} has elements.", nameof(nulls));
                        }
                    }
                }
            }
            else
            {
                nulls = null;
            }
        }

        if (values is string?[] strings)
        {
            CheckStrings(field, strings, nulls, offsets);
        }

        return new ParquetColumnData(field, rowCount, values, nulls, offsets);
    }

    /// <summary>
    /// For the reader, whose decoding already guarantees what <see cref="Create"/> checks (element type,
    /// lengths, offsets, nulls with at least one null row, no null strings outside null rows): no
    /// validation pass over the values. Debug builds still run every check.
    /// </summary>
    internal static ParquetColumnData CreateTrusted(ParquetField field, Array values, bool[]? nulls = null, int[]? offsets = null)
    {
        AssertValid(field, values, nulls, offsets);
        return new ParquetColumnData(field, offsets is null ? values.Length : offsets.Length - 1, values, nulls, offsets);
    }

    [Conditional("DEBUG")]
    private static void AssertValid(ParquetField field, Array values, bool[]? nulls, int[]? offsets)
    {
        var checkedColumn = Create(field, values, nulls, offsets);
        Debug.Assert(ReferenceEquals(checkedColumn.Nulls, nulls), "A trusted column's null flags must hold at least one null row, or be null.");
    }

    /// <summary>A non-list column from values and optional null flags.</summary>
    public static ParquetColumnData FromValues<T>(ParquetField field, T[] values, bool[]? nulls = null) =>
        Create(field, values, nulls);

    /// <summary>A nullable non-list column from nullable values.</summary>
    public static ParquetColumnData FromNullable<T>(ParquetField field, IReadOnlyList<T?> values)
        where T : struct
    {
        ArgumentNullException.ThrowIfNull(values);
        var data = new T[values.Count];
        bool[]? nulls = null;
        for (var i = 0; i < data.Length; i++)
        {
            if (values[i] is { } v)
            {
                data[i] = v;
            }
            else
            {
                nulls ??= new bool[data.Length];
                nulls[i] = true;
            }
        }

        return Create(field, data, nulls);
    }

    /// <summary>A string column; a null string is a null row.</summary>
    public static ParquetColumnData FromStrings(ParquetField field, IReadOnlyList<string?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var data = new string?[values.Count];
        bool[]? nulls = null;
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = values[i];
            if (data[i] is null)
            {
                nulls ??= new bool[data.Length];
                nulls[i] = true;
            }
        }

        return Create(field, data, nulls);
    }

    /// <summary>A list column from per-row lists; a null list is a null row.</summary>
    public static ParquetColumnData FromLists<T>(ParquetField field, IReadOnlyList<T[]?> lists)
    {
        ArgumentNullException.ThrowIfNull(lists);
        var offsets = new int[lists.Count + 1];
        bool[]? nulls = null;
        var total = 0;
        for (var i = 0; i < lists.Count; i++)
        {
            if (lists[i] is { } list)
            {
                total = checked(total + list.Length);
            }
            else
            {
                nulls ??= new bool[lists.Count];
                nulls[i] = true;
            }

            offsets[i + 1] = total;
        }

        var values = new T[total];
        for (var i = 0; i < lists.Count; i++)
        {
            lists[i]?.CopyTo(values, offsets[i]);
        }

        return Create(field, values, nulls, offsets);
    }

    private static void CheckStrings(ParquetField field, string?[] strings, bool[]? nulls, int[]? offsets)
    {
        if (offsets is null)
        {
            for (var i = 0; i < strings.Length; i++)
            {
                if (strings[i] is null && (nulls is null || !nulls[i]))
                {
                    throw new ArgumentException(
                        $"Column '{field.Name}': row {i} holds a null string but is not marked null.", nameof(nulls));
                }
            }
        }
        else
        {
            var at = Array.IndexOf(strings, null);
            if (at >= 0)
            {
                throw new ArgumentException(
                    $"List column '{field.Name}': element {at} is null; list elements cannot be null.", nameof(strings));
            }
        }
    }
}
