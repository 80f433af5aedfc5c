using System.Globalization;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// One column of a batch: a typed value array plus an optional null mask (true = null). Values at
/// null positions are defaults and never read. Columns are immutable once built; operations return
/// new columns (list and string values are shared by reference, not copied).
/// </summary>
public abstract class Column
{
    private protected Column(WeftType type, int length, bool[]? nulls)
    {
        Type = type;
        Length = length;
        Nulls = nulls;
    }

    public WeftType Type { get; }

    public int Length { get; }

    /// <summary>Null mask, or null when the column has no nulls.</summary>
    /// <remarks>String and list columns derive it from null references, so it cannot disagree with the values.</remarks>
    public virtual bool[]? Nulls { get; }

    public bool IsNull(int row) => Nulls is not null && Nulls[row];

    public int NullCount
    {
        get
        {
            if (Nulls is null)
            {
                return 0;
            }

            int n = 0;
            for (int i = 0; i < Length; i++)
            {
                n += Nulls[i] ? 1 : 0;
            }

            return n;
        }
    }

    /// <summary>Rows <paramref name="rows"/> of this column, in that order.</summary>
    public abstract Column Gather(ReadOnlySpan<int> rows);

    /// <summary>
    /// The rows <see cref="RowMap.Rows"/> of this column as a view: values are gathered on first read,
    /// and a view of a view maps straight onto the column it was made from. Executors that drop rows
    /// (dedup, caps, filters, the event-type split) each gathered every column, though most read only
    /// a few; now a column is copied when it is read, or once by the concatenation that ends the chain.
    /// </summary>
    internal abstract Column View(RowMap map);

    /// <summary>The value at <paramref name="row"/> boxed (long for int64/timestamp, arrays for lists); for output and tests, not hot paths.</summary>
    public abstract object? GetValue(int row);

    /// <summary>Approximate bytes of one value, for byte budgets.</summary>
    public abstract int ValueBytes(int row);

    public static Column AllNull(WeftType type, int length)
    {
        var mask = new bool[length];
        Array.Fill(mask, true);
        return Empty(type, length, mask);
    }

    internal static Column Empty(WeftType type, int length, bool[]? nulls)
    {
        if (type.IsList)
        {
            return type.Kind switch
            {
                ScalarKind.Bool => new ListColumn<bool>(type, new bool[]?[length], nulls),
                ScalarKind.Int32 => new ListColumn<int>(type, new int[]?[length], nulls),
                ScalarKind.Int64 or ScalarKind.Timestamp => new ListColumn<long>(type, new long[]?[length], nulls),
                ScalarKind.Float32 => new ListColumn<float>(type, new float[]?[length], nulls),
                ScalarKind.Float64 => new ListColumn<double>(type, new double[]?[length], nulls),
                _ => new ListColumn<string>(type, new string[]?[length], nulls),
            };
        }

        return type.Kind switch
        {
            ScalarKind.Bool => new PrimitiveColumn<bool>(type, new bool[length], nulls),
            ScalarKind.Int32 => new PrimitiveColumn<int>(type, new int[length], nulls),
            ScalarKind.Int64 or ScalarKind.Timestamp => new PrimitiveColumn<long>(type, new long[length], nulls),
            ScalarKind.Float32 => new PrimitiveColumn<float>(type, new float[length], nulls),
            ScalarKind.Float64 => new PrimitiveColumn<double>(type, new double[length], nulls),
            _ => new StringColumn(new string?[length], nulls),
        };
    }

    /// <summary>Concatenates columns of one type.</summary>
    public static Column Concat(WeftType type, IReadOnlyList<Column> parts)
    {
        int total = 0;
        bool anyNulls = false;
        foreach (var p in parts)
        {
            if (p.Type != type)
            {
                throw new ArgumentException($"cannot concatenate a {p.Type} column into a {type} column", nameof(parts));
            }

            total += p.Length;
            anyNulls |= p.Nulls is not null;
        }

        bool[]? nulls = anyNulls ? new bool[total] : null;
        var result = Empty(type, total, nulls);
        int offset = 0;
        foreach (var p in parts)
        {
            p.CopyValuesTo(result, offset);
            if (nulls is not null && p.Nulls is not null)
            {
                Array.Copy(p.Nulls, 0, nulls, offset, p.Length);
            }

            offset += p.Length;
        }

        return result;
    }

    internal abstract void CopyValuesTo(Column destination, int offset);

    /// <summary>Rows <paramref name="rows"/> of a column's values: of <paramref name="values"/>, or, for an unread view, of its source through its map (without the view's own copy).</summary>
    private protected static T[] GatherValues<T>(T[]? values, T[]? source, int[]? map, ReadOnlySpan<int> rows)
    {
        var result = new T[rows.Length];
        if (values is null)
        {
            for (int i = 0; i < rows.Length; i++)
            {
                result[i] = source![map![rows[i]]];
            }
        }
        else
        {
            for (int i = 0; i < rows.Length; i++)
            {
                result[i] = values[rows[i]];
            }
        }

        return result;
    }

    /// <summary>A column's values into <paramref name="destination"/>: copied, or gathered from a view's source.</summary>
    private protected static void CopyValues<T>(T[]? values, T[]? source, int[]? map, Span<T> destination)
    {
        if (values is not null)
        {
            values.CopyTo(destination);
            return;
        }

        for (int i = 0; i < map!.Length; i++)
        {
            destination[i] = source![map[i]];
        }
    }

    /// <summary>A view's values, made on its first read.</summary>
    private protected static T[] Materialize<T>(ref T[]? values, T[] source, int[] map)
    {
        var made = new T[map.Length];
        CopyValues(null, source, map, made);
        Volatile.Write(ref values, made);
        return made;
    }

    protected static bool[]? GatherNulls(bool[]? nulls, ReadOnlySpan<int> rows)
    {
        if (nulls is null)
        {
            return null;
        }

        var result = new bool[rows.Length];
        bool any = false;
        for (int i = 0; i < rows.Length; i++)
        {
            result[i] = nulls[rows[i]];
            any |= result[i];
        }

        return any ? result : null;
    }
}

/// <summary>bool, int32, int64, float32, float64 and timestamp (long µs) columns.</summary>
public sealed class PrimitiveColumn<T> : Column
    where T : unmanaged
{
    private T[]? _values;
    private readonly T[]? _base; // a view's source values (a column that is not a view)
    private readonly bool[]? _baseNulls;
    private readonly int[]? _rows; // a view's rows of _base
    private bool[]? _nulls;
    private bool _nullsKnown;

    public PrimitiveColumn(WeftType type, T[] values, bool[]? nulls = null)
        : base(type, values.Length, null)
    {
        _values = values;
        (_nulls, _nullsKnown) = (nulls, true);
    }

    private PrimitiveColumn(WeftType type, T[] source, bool[]? sourceNulls, int[] rows)
        : base(type, rows.Length, null)
    {
        (_base, _baseNulls, _rows) = (source, sourceNulls, rows);
    }

    /// <remarks>Written once, by whichever reader comes first: two racing readers make equal arrays.</remarks>
    public T[] Values => _values ?? Materialize(ref _values, _base!, _rows!);

    public override bool[]? Nulls
    {
        get
        {
            if (!Volatile.Read(ref _nullsKnown))
            {
                _nulls = GatherNulls(_baseNulls, _rows);
                Volatile.Write(ref _nullsKnown, true);
            }

            return _nulls;
        }
    }

    public override Column Gather(ReadOnlySpan<int> rows) =>
        new PrimitiveColumn<T>(Type, GatherValues(_values, _base, _rows, rows), GatherNulls(Nulls, rows));

    internal override Column View(RowMap map) => _values is null
        ? new PrimitiveColumn<T>(Type, _base!, _baseNulls, map.Compose(_rows!))
        : new PrimitiveColumn<T>(Type, _values, Nulls, map.Rows);

    public override object? GetValue(int row) => IsNull(row) ? null : Type.Kind == ScalarKind.Int32 ? (long)(int)(object)Values[row] : Type.Kind == ScalarKind.Float32 ? (double)(float)(object)Values[row] : Values[row];

    public override int ValueBytes(int row) => System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    internal override void CopyValuesTo(Column destination, int offset) =>
        CopyValues(_values, _base, _rows, ((PrimitiveColumn<T>)destination).Values.AsSpan(offset, Length));
}

public sealed class StringColumn : Column
{
    private string?[]? _values;
    private readonly string?[]? _base; // a view's source values (a column that is not a view)
    private readonly int[]? _rows; // a view's rows of _base
    private bool _nullsComputed;
    private bool[]? _nulls;

    /// <summary>A null reference is a null value; <paramref name="nulls"/> is accepted for symmetry and ignored.</summary>
    public StringColumn(string?[] values, bool[]? nulls = null)
        : base(WeftType.String, values.Length, null)
    {
        _ = nulls;
        _values = values;
    }

    private StringColumn(string?[] source, int[] rows)
        : base(WeftType.String, rows.Length, null)
    {
        (_base, _rows) = (source, rows);
    }

    /// <remarks>Written once, by whichever reader comes first: two racing readers make equal arrays.</remarks>
    public string?[] Values => _values ?? Materialize(ref _values, _base!, _rows!);

    public override bool[]? Nulls
    {
        get
        {
            if (!Volatile.Read(ref _nullsComputed))
            {
                _nulls = NullsOf(Values);
                Volatile.Write(ref _nullsComputed, true);
            }

            return _nulls;
        }
    }

    public override Column Gather(ReadOnlySpan<int> rows) => new StringColumn(GatherValues(_values, _base, _rows, rows));

    internal override Column View(RowMap map) => _values is null
        ? new StringColumn(_base!, map.Compose(_rows!))
        : new StringColumn(_values, map.Rows);

    public override object? GetValue(int row) => IsNull(row) ? null : Values[row];

    public override int ValueBytes(int row) => IsNull(row) ? 0 : 4 + (Values[row]?.Length ?? 0);

    internal override void CopyValuesTo(Column destination, int offset) =>
        CopyValues(_values, _base, _rows, ((StringColumn)destination).Values.AsSpan(offset, Length));

    private static bool[]? NullsOf(string?[] values)
    {
        bool[]? nulls = null;
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] is null)
            {
                nulls ??= new bool[values.Length];
                nulls[i] = true;
            }
        }

        return nulls;
    }
}

/// <summary>A list per row (embeddings, sequence columns); list arrays are shared, never mutated.</summary>
public sealed class ListColumn<T> : Column
{
    private T[]?[]? _values;
    private readonly T[]?[]? _base; // a view's source values (a column that is not a view)
    private readonly int[]? _rows; // a view's rows of _base
    private bool _nullsComputed;
    private bool[]? _nulls;

    /// <summary>A null reference is a null list; <paramref name="nulls"/> is accepted for symmetry and ignored.</summary>
    public ListColumn(WeftType type, T[]?[] values, bool[]? nulls = null)
        : base(type, values.Length, null)
    {
        _ = nulls;
        _values = values;
    }

    private ListColumn(WeftType type, T[]?[] source, int[] rows)
        : base(type, rows.Length, null)
    {
        (_base, _rows) = (source, rows);
    }

    /// <remarks>Written once, by whichever reader comes first: two racing readers make equal arrays.</remarks>
    public T[]?[] Values => _values ?? Materialize(ref _values, _base!, _rows!);

    public override bool[]? Nulls
    {
        get
        {
            if (!Volatile.Read(ref _nullsComputed))
            {
                _nulls = NullsOf(Values);
                Volatile.Write(ref _nullsComputed, true);
            }

            return _nulls;
        }
    }

    public override Column Gather(ReadOnlySpan<int> rows) => new ListColumn<T>(Type, GatherValues(_values, _base, _rows, rows));

    internal override Column View(RowMap map) => _values is null
        ? new ListColumn<T>(Type, _base!, map.Compose(_rows!))
        : new ListColumn<T>(Type, _values, map.Rows);

    public override object? GetValue(int row) => IsNull(row) ? null : Values[row];

    private static readonly int ElementBytes = typeof(T) == typeof(string) ? 16 : System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    public override int ValueBytes(int row) => IsNull(row) ? 0 : 4 + (Values[row]!.Length * ElementBytes);

    internal override void CopyValuesTo(Column destination, int offset) =>
        CopyValues(_values, _base, _rows, ((ListColumn<T>)destination).Values.AsSpan(offset, Length));

    private static bool[]? NullsOf(T[]?[] values)
    {
        bool[]? nulls = null;
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] is null)
            {
                nulls ??= new bool[values.Length];
                nulls[i] = true;
            }
        }

        return nulls;
    }
}

/// <summary>Formats values for humans and JSON output (timestamps as ISO-8601).</summary>
public static class ValueFormat
{
    public static string Format(object? value, WeftType type) => value switch
    {
        null => "null",
        long l when type.Kind == ScalarKind.Timestamp && !type.IsList => Timestamps.Format(l),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        System.Collections.IEnumerable e and not string => "[" + string.Join(",", e.Cast<object?>().Select(x => Format(x, type.Element))) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}

/// <summary>
/// The rows a batch gather keeps (owned: never written after), and their composition onto the row map
/// of the views it is applied to. The columns of one batch share one map, so it is composed once.
/// </summary>
internal sealed class RowMap(int[] rows)
{
    private int[]? _inner;
    private int[]? _composed;

    public int[] Rows { get; } = rows;

    /// <summary>For each of <see cref="Rows"/>, the row of <paramref name="inner"/> it stands for.</summary>
    public int[] Compose(int[] inner)
    {
        if (ReferenceEquals(inner, _inner))
        {
            return _composed!;
        }

        var rows = Rows;
        var composed = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            composed[i] = inner[rows[i]];
        }

        (_inner, _composed) = (inner, composed);
        return composed;
    }
}
