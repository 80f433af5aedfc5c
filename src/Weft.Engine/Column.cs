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
    public PrimitiveColumn(WeftType type, T[] values, bool[]? nulls = null)
        : base(type, values.Length, nulls)
    {
        Values = values;
    }

    public T[] Values { get; }

    public override Column Gather(ReadOnlySpan<int> rows)
    {
        var values = new T[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            values[i] = Values[rows[i]];
        }

        return new PrimitiveColumn<T>(Type, values, GatherNulls(Nulls, rows));
    }

    public override object? GetValue(int row) => IsNull(row) ? null : Type.Kind == ScalarKind.Int32 ? (long)(int)(object)Values[row] : Type.Kind == ScalarKind.Float32 ? (double)(float)(object)Values[row] : Values[row];

    public override int ValueBytes(int row) => System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    internal override void CopyValuesTo(Column destination, int offset) => Array.Copy(Values, 0, ((PrimitiveColumn<T>)destination).Values, offset, Length);
}

public sealed class StringColumn : Column
{
    private bool _nullsComputed;
    private bool[]? _nulls;

    /// <summary>A null reference is a null value; <paramref name="nulls"/> is accepted for symmetry and ignored.</summary>
    public StringColumn(string?[] values, bool[]? nulls = null)
        : base(WeftType.String, values.Length, null)
    {
        _ = nulls;
        Values = values;
    }

    public string?[] Values { get; }

    public override bool[]? Nulls
    {
        get
        {
            if (!_nullsComputed)
            {
                _nulls = NullsOf(Values);
                _nullsComputed = true;
            }

            return _nulls;
        }
    }

    public override Column Gather(ReadOnlySpan<int> rows)
    {
        var values = new string?[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            values[i] = Values[rows[i]];
        }

        return new StringColumn(values, GatherNulls(Nulls, rows));
    }

    public override object? GetValue(int row) => IsNull(row) ? null : Values[row];

    public override int ValueBytes(int row) => IsNull(row) ? 0 : 4 + (Values[row]?.Length ?? 0);

    internal override void CopyValuesTo(Column destination, int offset) => Array.Copy(Values, 0, ((StringColumn)destination).Values, offset, Length);

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
    private bool _nullsComputed;
    private bool[]? _nulls;

    /// <summary>A null reference is a null list; <paramref name="nulls"/> is accepted for symmetry and ignored.</summary>
    public ListColumn(WeftType type, T[]?[] values, bool[]? nulls = null)
        : base(type, values.Length, null)
    {
        _ = nulls;
        Values = values;
    }

    public T[]?[] Values { get; }

    public override bool[]? Nulls
    {
        get
        {
            if (!_nullsComputed)
            {
                _nulls = NullsOf(Values);
                _nullsComputed = true;
            }

            return _nulls;
        }
    }

    public override Column Gather(ReadOnlySpan<int> rows)
    {
        var values = new T[]?[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            values[i] = Values[rows[i]];
        }

        return new ListColumn<T>(Type, values, GatherNulls(Nulls, rows));
    }

    public override object? GetValue(int row) => IsNull(row) ? null : Values[row];

    private static readonly int ElementBytes = typeof(T) == typeof(string) ? 16 : System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    public override int ValueBytes(int row) => IsNull(row) ? 0 : 4 + (Values[row]!.Length * ElementBytes);

    internal override void CopyValuesTo(Column destination, int offset) => Array.Copy(Values, 0, ((ListColumn<T>)destination).Values, offset, Length);

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
