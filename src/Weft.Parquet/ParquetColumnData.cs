using System.Diagnostics;

namespace Weft.Parquet;

/// <summary>
/// One column of one row group, in memory.
/// <list type="bullet">
/// <item>Non-list column: <see cref="Values"/> is a <c>bool[]</c>, <c>int[]</c>, <c>long[]</c>,
/// <c>float[]</c>, <c>double[]</c> or <c>string[]</c> of length <see cref="RowCount"/> (timestamps are
/// <c>long[]</c> microseconds since the Unix epoch). A null row holds the default value
/// (<c>false</c>, <c>0</c>, or <c>null</c> for strings).</item>
/// <item>List column (<see cref="ParquetField.ListDepth"/> 1): <see cref="Values"/> holds every element
/// of every row, flattened in row order; row <c>i</c>'s elements are <c>Values[Offsets[i] .. Offsets[i + 1]]</c>.
/// <see cref="Offsets"/> has <see cref="RowCount"/> + 1 entries starting at 0. A null list and an empty
/// list both have no elements; <see cref="Nulls"/> tells them apart.</item>
/// <item>Nested list column (<see cref="ParquetField.ListDepth"/> 2): the inner lists of every row are
/// numbered in row order; row <c>i</c> holds inner lists <c>Offsets[i] .. Offsets[i + 1]</c>, and inner
/// list <c>j</c> holds <c>Values[InnerOffsets[j] .. InnerOffsets[j + 1]]</c>. <see cref="InnerOffsets"/>
/// has one entry per inner list plus one, starting at 0; <see cref="InnerNulls"/> tells a null inner
/// list from an empty one.</item>
/// <item><see cref="Nulls"/>: <c>true</c> marks a null row; <c>null</c> means no row is null.
/// <see cref="ElementNulls"/> (list columns): <c>true</c> marks a null element, which still has its slot
/// in <see cref="Values"/> holding the default value; <c>null</c> means no element is null.</item>
/// </list>
/// The arrays are not copied: do not mutate them while a writer uses this instance.
/// </summary>
public sealed class ParquetColumnData
{
    private ParquetColumnData(
        ParquetField field, int rowCount, Array values, bool[]? nulls, int[]? offsets, bool[]? innerNulls, int[]? innerOffsets, bool[]? elementNulls)
    {
        Field = field;
        RowCount = rowCount;
        Values = values;
        Nulls = nulls;
        Offsets = offsets;
        InnerNulls = innerNulls;
        InnerOffsets = innerOffsets;
        ElementNulls = elementNulls;
    }

    /// <summary>The column's field.</summary>
    public ParquetField Field { get; }

    /// <summary>The number of rows.</summary>
    public int RowCount { get; }

    /// <summary>The values (non-list) or the flattened elements (list); see the type remarks.</summary>
    public Array Values { get; }

    /// <summary><c>true</c> marks a null row; <c>null</c> when no row is null.</summary>
    public bool[]? Nulls { get; }

    /// <summary>
    /// List columns only: <see cref="RowCount"/> + 1 offsets into <see cref="Values"/> (depth 1) or into
    /// the inner lists (depth 2).
    /// </summary>
    public int[]? Offsets { get; }

    /// <summary>Nested list columns only: one offset per inner list into <see cref="Values"/>, plus the end.</summary>
    public int[]? InnerOffsets { get; }

    /// <summary>Nested list columns only: <c>true</c> marks a null inner list; <c>null</c> when none is null.</summary>
    public bool[]? InnerNulls { get; }

    /// <summary>List columns only: one flag per entry of <see cref="Values"/>, <c>true</c> for a null element; <c>null</c> when none is null.</summary>
    public bool[]? ElementNulls { get; }

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

    /// <summary>
    /// The elements of row <paramref name="row"/> of a (depth 1) list column: empty for a null list; a null
    /// element holds the default value (see <see cref="ElementNulls"/>).
    /// </summary>
    public ReadOnlySpan<T> GetList<T>(int row)
    {
        var offsets = Offsets ?? throw new InvalidOperationException($"Column '{Field.Name}' is not a list column.");
        if (InnerOffsets is not null)
        {
            throw new InvalidOperationException(
                $"Column '{Field.Name}' is a nested list ({Field.TypeName}); read it through Offsets, InnerOffsets and Values.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, RowCount);
        return GetValues<T>().AsSpan(offsets[row], offsets[row + 1] - offsets[row]);
    }

    /// <summary>
    /// Creates a non-list or (depth 1) list column after checking it against <paramref name="field"/>: the
    /// array's element type, the lengths, the offsets (list columns), that a non-nullable field has no null
    /// rows, that null list rows have no elements, and that no string value or element outside a null row
    /// is null.
    /// </summary>
    public static ParquetColumnData Create(ParquetField field, Array values, bool[]? nulls = null, int[]? offsets = null) =>
        Create(field, values, nulls, offsets, elementNulls: null);

    /// <summary>
    /// Creates a non-list or (depth 1) list column whose elements may be null: <paramref name="elementNulls"/>
    /// has one flag per entry of <paramref name="values"/> (<c>true</c> = null element; the value there is
    /// ignored), or is null when no element is null. Checks what <see cref="Create(ParquetField, Array, bool[], int[])"/>
    /// checks, and that null elements only appear in a field with <see cref="ParquetField.ElementNullable"/>.
    /// </summary>
    public static ParquetColumnData Create(ParquetField field, Array values, bool[]? nulls, int[]? offsets, bool[]? elementNulls)
    {
        ArgumentNullException.ThrowIfNull(field);
        if (field.ListDepth > 1)
        {
            throw new ArgumentException(
                $"Column '{field.Name}' is a nested list ({field.TypeName}); create it with {nameof(CreateNested)}.", nameof(field));
        }

        return Build(field, values, nulls, offsets, innerNulls: null, innerOffsets: null, elementNulls);
    }

    /// <summary>
    /// Creates a nested list column (<see cref="ParquetField.ListDepth"/> 2): row <c>i</c> holds inner lists
    /// <c>offsets[i] .. offsets[i + 1]</c>, inner list <c>j</c> holds <c>values[innerOffsets[j] .. innerOffsets[j + 1]]</c>.
    /// <paramref name="nulls"/> flags null rows, <paramref name="innerNulls"/> null inner lists and
    /// <paramref name="elementNulls"/> null elements (each may be null when nothing is null). Checks the
    /// types, lengths and offsets, that only nullable levels hold nulls, and that null lists are empty.
    /// </summary>
    public static ParquetColumnData CreateNested(
        ParquetField field, Array values, bool[]? nulls, int[] offsets, bool[]? innerNulls, int[] innerOffsets, bool[]? elementNulls = null)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(offsets);
        ArgumentNullException.ThrowIfNull(innerOffsets);
        if (field.ListDepth != 2)
        {
            throw new ArgumentException(
                $"Column '{field.Name}' is {field.TypeName}, not a nested list; create it with {nameof(Create)}.", nameof(field));
        }

        return Build(field, values, nulls, offsets, innerNulls, innerOffsets, elementNulls);
    }

    /// <summary>
    /// For the reader, whose decoding already guarantees what <see cref="Create(ParquetField, Array, bool[], int[], bool[])"/>
    /// checks (element type, lengths, offsets, flags with at least one <c>true</c>, no null strings outside
    /// null slots): no validation pass over the values. Debug builds still run every check.
    /// </summary>
    internal static ParquetColumnData CreateTrusted(
        ParquetField field, Array values, bool[]? nulls = null, int[]? offsets = null, bool[]? innerNulls = null, int[]? innerOffsets = null, bool[]? elementNulls = null)
    {
        AssertValid(field, values, nulls, offsets, innerNulls, innerOffsets, elementNulls);
        return new ParquetColumnData(
            field, offsets is null ? values.Length : offsets.Length - 1, values, nulls, offsets, innerNulls, innerOffsets, elementNulls);
    }

    [Conditional("DEBUG")]
    private static void AssertValid(ParquetField field, Array values, bool[]? nulls, int[]? offsets, bool[]? innerNulls, int[]? innerOffsets, bool[]? elementNulls)
    {
        var checkedColumn = Build(field, values, nulls, offsets, innerNulls, innerOffsets, elementNulls);
        Debug.Assert(
            ReferenceEquals(checkedColumn.Nulls, nulls) && ReferenceEquals(checkedColumn.InnerNulls, innerNulls) && ReferenceEquals(checkedColumn.ElementNulls, elementNulls),
            "A trusted column's null flags must each hold at least one null, or be null.");
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

    /// <summary>
    /// A list column from per-row lists; a null list is a null row. A null string element is a null
    /// element (allowed when the field is <see cref="ParquetField.ElementNullable"/>).
    /// </summary>
    public static ParquetColumnData FromLists<T>(ParquetField field, IReadOnlyList<T[]?> lists)
    {
        ArgumentNullException.ThrowIfNull(lists);
        var (offsets, nulls) = ListOffsets(lists);
        var values = new T[offsets[^1]];
        for (var i = 0; i < lists.Count; i++)
        {
            lists[i]?.CopyTo(values, offsets[i]);
        }

        return Create(field, values, nulls, offsets, NullReferences(values));
    }

    /// <summary>A list column whose elements may be null, from per-row lists; a null list is a null row.</summary>
    public static ParquetColumnData FromNullableLists<T>(ParquetField field, IReadOnlyList<T?[]?> lists)
        where T : struct
    {
        ArgumentNullException.ThrowIfNull(lists);
        var (offsets, nulls) = ListOffsets(lists);
        var values = new T[offsets[^1]];
        bool[]? elementNulls = null;
        for (var i = 0; i < lists.Count; i++)
        {
            if (lists[i] is not { } list)
            {
                continue;
            }

            var at = offsets[i];
            for (var k = 0; k < list.Length; k++)
            {
                if (list[k] is { } v)
                {
                    values[at + k] = v;
                }
                else
                {
                    elementNulls ??= new bool[values.Length];
                    elementNulls[at + k] = true;
                }
            }
        }

        return Create(field, values, nulls, offsets, elementNulls);
    }

    /// <summary>
    /// A nested list column (<see cref="ParquetField.ListDepth"/> 2) from per-row lists of inner lists: a
    /// null row is a null list, a null inner array a null inner list, and a null string element a null element.
    /// </summary>
    public static ParquetColumnData FromNestedLists<T>(ParquetField field, IReadOnlyList<T[]?[]?> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var (offsets, nulls) = ListOffsets(rows);
        var inner = new T[]?[offsets[^1]];
        for (var i = 0; i < rows.Count; i++)
        {
            rows[i]?.CopyTo(inner, offsets[i]);
        }

        var (innerOffsets, innerNulls) = ListOffsets(inner);
        var values = new T[innerOffsets[^1]];
        for (var j = 0; j < inner.Length; j++)
        {
            inner[j]?.CopyTo(values, innerOffsets[j]);
        }

        return CreateNested(field, values, nulls, offsets, innerNulls, innerOffsets, NullReferences(values));
    }

    private static (int[] Offsets, bool[]? Nulls) ListOffsets<TList>(IReadOnlyList<TList[]?> lists)
    {
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

        return (offsets, nulls);
    }

    private static bool[]? NullReferences<T>(T[] values)
    {
        if (typeof(T).IsValueType)
        {
            return null;
        }

        bool[]? flags = null;
        for (var k = 0; k < values.Length; k++)
        {
            if (values[k] is null)
            {
                flags ??= new bool[values.Length];
                flags[k] = true;
            }
        }

        return flags;
    }

    private static ParquetColumnData Build(
        ParquetField field, Array values, bool[]? nulls, int[]? offsets, bool[]? innerNulls, int[]? innerOffsets, bool[]? elementNulls)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(values);
        if (field.ShapeProblem() is { } problem)
        {
            throw new ArgumentException(problem, nameof(field));
        }

        var expected = field.ClrType;
        if (values.Rank != 1 || values.GetType().GetElementType() != expected)
        {
            throw new ArgumentException(
                $"Column '{field.Name}' ({field.Type}) needs {expected.Name}[] values, got {values.GetType().Name}.",
                nameof(values));
        }

        int rowCount;
        var innerCount = 0;
        switch (field.ListDepth)
        {
            case 0:
                if (offsets is not null)
                {
                    throw new ArgumentException($"Column '{field.Name}' is not a list column but offsets were given.", nameof(offsets));
                }

                if (elementNulls is not null)
                {
                    throw new ArgumentException(
                        $"Column '{field.Name}' is not a list column but element null flags were given; use the row null flags.", nameof(elementNulls));
                }

                rowCount = values.Length;
                break;
            case 1:
                if (offsets is null)
                {
                    throw new ArgumentException($"List column '{field.Name}' needs offsets.", nameof(offsets));
                }

                CheckOffsets(field, offsets, values.Length, "offsets", "element count", "row", nameof(offsets));
                rowCount = offsets.Length - 1;
                break;
            default:
                CheckOffsets(field, innerOffsets!, values.Length, "inner offsets", "element count", "inner list", nameof(innerOffsets));
                innerCount = innerOffsets!.Length - 1;
                CheckOffsets(field, offsets!, innerCount, "offsets", "inner list count", "row", nameof(offsets));
                rowCount = offsets!.Length - 1;
                break;
        }

        nulls = CheckFlags(
            field, nulls, rowCount, field.Nullable, offsets, "null", "row", nameof(nulls), $"Column '{field.Name}' is not nullable");
        innerNulls = CheckFlags(
            field, innerNulls, innerCount, field.InnerListNullable, innerOffsets, "inner null", "inner list", nameof(innerNulls),
            $"Column '{field.Name}' does not allow null inner lists ({nameof(ParquetField.InnerListNullable)} = false)");
        if (field.IsList)
        {
            elementNulls = CheckFlags(
                field, elementNulls, values.Length, field.ElementNullable, childOffsets: null, "element null", "element", nameof(elementNulls),
                $"Column '{field.Name}' does not allow null elements ({nameof(ParquetField.ElementNullable)} = false)");
        }

        if (values is string?[] strings)
        {
            CheckStrings(field, strings, nulls, elementNulls);
        }

        return new ParquetColumnData(field, rowCount, values, nulls, offsets, innerNulls, innerOffsets, elementNulls);
    }

    private static void CheckOffsets(ParquetField field, int[] offsets, int end, string what, string endName, string unit, string paramName)
    {
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != end)
        {
            throw new ArgumentException(
                $"List column '{field.Name}': {what} must start at 0 and end at the {endName} {end}.", paramName);
        }

        for (var i = 0; i < offsets.Length - 1; i++)
        {
            if (offsets[i + 1] < offsets[i])
            {
                throw new ArgumentException($"List column '{field.Name}': {what} decrease at {unit} {i}.", paramName);
            }
        }
    }

    /// <summary>Checks one level's null flags; returns them, or null when none is set.</summary>
    private static bool[]? CheckFlags(
        ParquetField field, bool[]? flags, int count, bool allowed, int[]? childOffsets, string label, string unit, string paramName, string notAllowed)
    {
        if (flags is null)
        {
            return null;
        }

        if (flags.Length != count)
        {
            throw new ArgumentException($"Column '{field.Name}': {flags.Length} {label} flags for {count} {unit}s.", paramName);
        }

        var first = Array.IndexOf(flags, true);
        if (first < 0)
        {
            return null;
        }

        if (!allowed)
        {
            throw new ArgumentException($"{notAllowed} but {unit} {first} is null.", paramName);
        }

        if (childOffsets is not null)
        {
            for (var i = first; i < count; i++)
            {
                if (flags[i] && childOffsets[i + 1] != childOffsets[i])
                {
                    throw new ArgumentException($"List column '{field.Name}': null {unit} {i} has elements.", paramName);
                }
            }
        }

        return flags;
    }

    private static void CheckStrings(ParquetField field, string?[] strings, bool[]? nulls, bool[]? elementNulls)
    {
        if (!field.IsList)
        {
            for (var i = 0; i < strings.Length; i++)
            {
                if (strings[i] is null && (nulls is null || !nulls[i]))
                {
                    throw new ArgumentException(
                        $"Column '{field.Name}': row {i} holds a null string but is not marked null.", nameof(nulls));
                }
            }

            return;
        }

        for (var at = Array.IndexOf(strings, null); at >= 0; at = Array.IndexOf(strings, null, at + 1))
        {
            if (elementNulls is null || !elementNulls[at])
            {
                throw new ArgumentException(
                    field.ElementNullable
                        ? $"List column '{field.Name}': element {at} is null but its element null flag is not set."
                        : $"List column '{field.Name}': element {at} is null; its elements are not nullable ({nameof(ParquetField.ElementNullable)} = false).",
                    nameof(elementNulls));
            }
        }
    }
}
