using System.Buffers;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet;

namespace Weft.Storage;

/// <summary>
/// Conversions between Weft's column model (<see cref="FieldDefinition"/>, <see cref="Column"/>) and
/// the Parquet codec (<see cref="ParquetField"/>, <see cref="ParquetColumnData"/>) and Delta schemas
/// (<see cref="DeltaField"/>).
/// </summary>
/// <remarks>
/// Type mapping: bool ⇄ BOOLEAN / <c>boolean</c>; int32 ⇄ INT32 / <c>integer</c>; int64 ⇄ INT64 /
/// <c>long</c>; float32 ⇄ FLOAT / <c>float</c>; float64 ⇄ DOUBLE / <c>double</c>; string ⇄ STRING /
/// <c>string</c>; timestamp (µs, UTC) ⇄ TIMESTAMP(MICROS, UTC) / <c>timestamp</c>; <c>list&lt;T&gt;</c> ⇄
/// three-level LIST / <c>array&lt;T&gt;</c> (elements are never null, so Weft declares
/// <c>containsNull = false</c>). A null list and an empty list stay distinct.
/// Values are copied once per conversion (gathered rows); primitive and string arrays of a whole
/// column are shared, not copied. Converted columns must not be mutated while in use.
/// </remarks>
public static class ColumnConversions
{
    /// <summary>The Parquet type that stores values of <paramref name="kind"/>.</summary>
    public static ParquetType ToParquetType(ScalarKind kind) => kind switch
    {
        ScalarKind.Bool => ParquetType.Boolean,
        ScalarKind.Int32 => ParquetType.Int32,
        ScalarKind.Int64 => ParquetType.Int64,
        ScalarKind.Float32 => ParquetType.Float,
        ScalarKind.Float64 => ParquetType.Double,
        ScalarKind.String => ParquetType.String,
        ScalarKind.Timestamp => ParquetType.TimestampMicros,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown Weft scalar kind."),
    };

    /// <summary>The Weft kind of values stored as <paramref name="type"/>.</summary>
    public static ScalarKind ToScalarKind(ParquetType type) => type switch
    {
        ParquetType.Boolean => ScalarKind.Bool,
        ParquetType.Int32 => ScalarKind.Int32,
        ParquetType.Int64 => ScalarKind.Int64,
        ParquetType.Float => ScalarKind.Float32,
        ParquetType.Double => ScalarKind.Float64,
        ParquetType.String => ScalarKind.String,
        ParquetType.TimestampMicros => ScalarKind.Timestamp,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown Parquet type."),
    };

    /// <summary>The Parquet column for a Weft field (same name, nullability and list-ness).</summary>
    public static ParquetField ToParquetField(FieldDefinition field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return new ParquetField(field.Name, ToParquetType(field.Type.Kind), field.Nullable, field.Type.IsList);
    }

    /// <summary>The Weft field for a Parquet column.</summary>
    public static FieldDefinition ToFieldDefinition(ParquetField field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return new FieldDefinition(field.Name, new WeftType(ToScalarKind(field.Type), field.IsList), field.Nullable);
    }

    /// <summary>The Parquet schema for Weft fields, in order.</summary>
    public static ParquetSchema ToParquetSchema(IReadOnlyList<FieldDefinition> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var result = new ParquetField[fields.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = ToParquetField(fields[i]);
        }

        return new ParquetSchema(result);
    }

    /// <summary>True when a Parquet column holds values of the Weft type <paramref name="type"/>.</summary>
    public static bool Stores(ParquetField field, WeftType type)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field.IsList == type.IsList && field.ListDepth <= 1 && field.Type == ToParquetType(type.Kind);
    }

    /// <summary>
    /// Whether a file column of <paramref name="field"/> reads as <paramref name="type"/> by widening, as
    /// Delta's type widening leaves older files of a widened column: an integer as a long or a double, a
    /// long or a float as a double. (A date widened to a timestamp, or a decimal to a wider decimal, already
    /// reads as the same Weft type.)
    /// </summary>
    public static bool Widens(ParquetField field, WeftType type)
    {
        ArgumentNullException.ThrowIfNull(field);
        return !field.IsList && !type.IsList
            && (field.Type, type.Kind) is (ParquetType.Int32, ScalarKind.Int64) or (ParquetType.Int32, ScalarKind.Float64)
                or (ParquetType.Int64, ScalarKind.Float64) or (ParquetType.Float, ScalarKind.Float64);
    }

    /// <summary>
    /// <paramref name="column"/> as the wider <paramref name="type"/>: an int32 as an int64 or a float64, an
    /// int64 or a float32 as a float64; null for any other pair. What <see cref="Widens"/> allows of a file,
    /// and what a batch input conforms to the type a signal wants.
    /// </summary>
    public static Column? Widen(Column column, WeftType type)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (column.Type.IsList || type.IsList)
        {
            return null;
        }

        return (column, type.Kind) switch
        {
            (PrimitiveColumn<int> ints, ScalarKind.Int64) => new PrimitiveColumn<long>(type, Array.ConvertAll(ints.Values, i => (long)i), ints.Nulls),
            (PrimitiveColumn<int> ints, ScalarKind.Float64) => new PrimitiveColumn<double>(type, Array.ConvertAll(ints.Values, i => (double)i), ints.Nulls),
            (PrimitiveColumn<long> longs, ScalarKind.Float64) => new PrimitiveColumn<double>(type, Array.ConvertAll(longs.Values, l => (double)l), longs.Nulls),
            (PrimitiveColumn<float> floats, ScalarKind.Float64) => new PrimitiveColumn<double>(type, Array.ConvertAll(floats.Values, f => (double)f), floats.Nulls),
            _ => null,
        };
    }

    /// <summary>The Delta (Spark SQL) type of <paramref name="kind"/>.</summary>
    public static DeltaDataType ToDeltaType(ScalarKind kind) => kind switch
    {
        ScalarKind.Bool => DeltaDataType.Boolean,
        ScalarKind.Int32 => DeltaDataType.Integer,
        ScalarKind.Int64 => DeltaDataType.Long,
        ScalarKind.Float32 => DeltaDataType.Float,
        ScalarKind.Float64 => DeltaDataType.Double,
        ScalarKind.String => DeltaDataType.String,
        ScalarKind.Timestamp => DeltaDataType.Timestamp,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown Weft scalar kind."),
    };

    /// <summary>The Delta column for a Weft field; a list is <c>array&lt;T&gt;</c> with <c>containsNull = false</c>.</summary>
    public static DeltaField ToDeltaField(FieldDefinition field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var type = ToDeltaType(field.Type.Kind);
        return field.Type.IsList
            ? DeltaField.List(field.Name, type, field.Nullable, containsNull: false)
            : new DeltaField(field.Name, type, field.Nullable);
    }

    /// <summary>
    /// The Weft field for a Delta column. Element nullability of arrays is not kept (Weft list
    /// elements are never null). A <c>date</c> reads as a timestamp at midnight UTC (as Weft's Parquet
    /// reader gives it). Throws <see cref="NotSupportedException"/> naming the column for <c>binary</c>.
    /// </summary>
    public static FieldDefinition ToFieldDefinition(DeltaField field)
    {
        ArgumentNullException.ThrowIfNull(field);
        ScalarKind kind = field.Type switch
        {
            DeltaDataType.Boolean => ScalarKind.Bool,
            DeltaDataType.Integer => ScalarKind.Int32,
            DeltaDataType.Long => ScalarKind.Int64,
            DeltaDataType.Float => ScalarKind.Float32,
            DeltaDataType.Double => ScalarKind.Float64,
            DeltaDataType.String => ScalarKind.String,
            DeltaDataType.Timestamp or DeltaDataType.Date => ScalarKind.Timestamp,
            _ => throw new NotSupportedException(
                $"Column '{field.Name}' has Delta type {field.TypeName}, which Weft event tables do not support ({WeftType.AcceptedNames})."),
        };
        return new FieldDefinition(field.Name, new WeftType(kind, field.IsList), field.Nullable);
    }

    /// <summary>
    /// The Delta schema of an event table: the data fields, then one nullable <c>string</c> column per
    /// partition column (Delta lists partition columns in the schema; their values live in the log).
    /// </summary>
    public static DeltaSchema ToDeltaSchema(IReadOnlyList<FieldDefinition> fields, IReadOnlyList<string> partitionColumns)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(partitionColumns);
        var result = new DeltaField[fields.Count + partitionColumns.Count];
        for (var i = 0; i < fields.Count; i++)
        {
            result[i] = ToDeltaField(fields[i]);
        }

        for (var i = 0; i < partitionColumns.Count; i++)
        {
            result[fields.Count + i] = new DeltaField(partitionColumns[i], DeltaDataType.String, Nullable: true);
        }

        return new DeltaSchema(result);
    }

    /// <summary>
    /// The data fields of a Delta schema: every column except the partition columns and those Weft does
    /// not read (<see cref="NotRead"/>), in order.
    /// </summary>
    public static IReadOnlyList<FieldDefinition> ToDataFields(DeltaSchema schema, IReadOnlyList<string> partitionColumns)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(partitionColumns);
        var result = new List<FieldDefinition>(schema.Fields.Count);
        foreach (var field in schema.Fields)
        {
            if (!Contains(partitionColumns, field.Name) && field.Type != DeltaDataType.Binary)
            {
                result.Add(ToFieldDefinition(field));
            }
        }

        return result;
    }

    /// <summary>
    /// The Delta type of <paramref name="column"/> when the schema has it but Weft does not read it
    /// (binary, structs, maps, …), else null. Such columns are skipped unless a read asks for them.
    /// </summary>
    public static string? NotRead(DeltaSchema schema, string column)
    {
        ArgumentNullException.ThrowIfNull(schema);
        if (schema.UnreadableColumns.TryGetValue(column, out var type))
        {
            return type;
        }

        if (schema.StructColumns.Contains(column) && schema.Find(column) is null)
        {
            var prefix = column + ".";
            return $"a struct (its fields read as {string.Join(", ", schema.Fields.Where(f => f.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(f => f.Name))})";
        }

        return schema.Find(column) is { Type: DeltaDataType.Binary } binary ? binary.TypeName : null;
    }

    /// <summary>
    /// The whole of <paramref name="column"/> as Parquet data for <paramref name="field"/>. Primitive
    /// and string arrays are shared, not copied; lists are flattened.
    /// </summary>
    public static ParquetColumnData ToParquet(Column column, ParquetField field)
    {
        ArgumentNullException.ThrowIfNull(column);
        ArgumentNullException.ThrowIfNull(field);
        CheckType(column, field);
        switch (column)
        {
            case PrimitiveColumn<bool> c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
            case PrimitiveColumn<int> c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
            case PrimitiveColumn<long> c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
            case PrimitiveColumn<float> c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
            case PrimitiveColumn<double> c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
            case StringColumn c: return ParquetColumnData.Create(field, c.Values, c.Nulls);
        }

        var identity = ArrayPool<int>.Shared.Rent(Math.Max(column.Length, 1));
        try
        {
            for (var i = 0; i < column.Length; i++)
            {
                identity[i] = i;
            }

            return ToParquet(column, field, identity.AsSpan(0, column.Length));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(identity);
        }
    }

    /// <summary>Rows <paramref name="rows"/> of <paramref name="column"/>, in that order, as Parquet data for <paramref name="field"/>.</summary>
    public static ParquetColumnData ToParquet(Column column, ParquetField field, ReadOnlySpan<int> rows)
    {
        ArgumentNullException.ThrowIfNull(column);
        ArgumentNullException.ThrowIfNull(field);
        CheckType(column, field);
        return column switch
        {
            PrimitiveColumn<bool> c => GatherPrimitive(c, field, rows),
            PrimitiveColumn<int> c => GatherPrimitive(c, field, rows),
            PrimitiveColumn<long> c => GatherPrimitive(c, field, rows),
            PrimitiveColumn<float> c => GatherPrimitive(c, field, rows),
            PrimitiveColumn<double> c => GatherPrimitive(c, field, rows),
            StringColumn c => GatherStrings(c, field, rows),
            ListColumn<bool> c => GatherLists(c.Values, field, rows),
            ListColumn<int> c => GatherLists(c.Values, field, rows),
            ListColumn<long> c => GatherLists(c.Values, field, rows),
            ListColumn<float> c => GatherLists(c.Values, field, rows),
            ListColumn<double> c => GatherLists(c.Values, field, rows),
            ListColumn<string> c => GatherLists(c.Values, field, rows),
            _ => throw new NotSupportedException($"Column '{field.Name}': {column.GetType().Name} cannot be stored as Parquet."),
        };
    }

    /// <summary>
    /// A Weft column of <paramref name="type"/> from Parquet data. Primitive and string arrays are
    /// taken over, not copied (the caller must not reuse <paramref name="data"/>); each list row gets
    /// its own array (empty lists share <see cref="Array.Empty{T}"/>). Throws <see cref="NotSupportedException"/>
    /// naming the column when a list element is null (files from other writers may hold them).
    /// </summary>
    public static Column FromParquet(ParquetColumnData data, WeftType type)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!Stores(data.Field, type))
        {
            throw new ArgumentException(
                $"Column '{data.Field.Name}' holds Parquet {Describe(data.Field)}, which does not store Weft {type}.", nameof(data));
        }

        if (!type.IsList)
        {
            switch (data.Values)
            {
                case bool[] v: return new PrimitiveColumn<bool>(type, v, data.Nulls);
                case int[] v: return new PrimitiveColumn<int>(type, v, data.Nulls);
                case long[] v: return new PrimitiveColumn<long>(type, v, data.Nulls);
                case float[] v: return new PrimitiveColumn<float>(type, v, data.Nulls);
                case double[] v: return new PrimitiveColumn<double>(type, v, data.Nulls);
                case string[] strings:
                    string?[] nullable = strings;
                    if (data.Nulls is { } nulls)
                    {
                        // The codec leaves null rows null; make sure, since StringColumn reads nulls from references.
                        for (var i = 0; i < nulls.Length; i++)
                        {
                            if (nulls[i])
                            {
                                nullable[i] = null;
                            }
                        }
                    }

                    return new StringColumn(nullable);
            }
        }
        else
        {
            if (data.ElementNulls is { } elementNulls)
            {
                // Weft list elements are never null (a file written by another tool may hold them).
                var at = Array.IndexOf(elementNulls, true);
                throw new NotSupportedException(
                    $"List column '{data.Field.Name}' holds a null element (row {RowOfElement(data.Offsets!, at)} of the row group); Weft list elements cannot be null.");
            }

            switch (data.Values)
            {
                case bool[] v: return new ListColumn<bool>(type, SplitLists(v, data));
                case int[] v: return new ListColumn<int>(type, SplitLists(v, data));
                case long[] v: return new ListColumn<long>(type, SplitLists(v, data));
                case float[] v: return new ListColumn<float>(type, SplitLists(v, data));
                case double[] v: return new ListColumn<double>(type, SplitLists(v, data));
                case string[] v: return new ListColumn<string>(type, SplitLists(v, data));
            }
        }

        throw new NotSupportedException($"Column '{data.Field.Name}': values of type {data.Values.GetType().Name} are not supported.");
    }

    internal static string Describe(ParquetField field) =>
        (field.ListDepth switch { 0 => field.Type.ToString(), 1 => $"list<{field.Type}>", _ => $"list<list<{field.Type}>>" })
        + (field.Nullable ? " (nullable)" : " (required)");

    internal static bool Contains(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static void CheckType(Column column, ParquetField field)
    {
        if (!Stores(field, column.Type))
        {
            throw new ArgumentException(
                $"Column '{field.Name}' is Weft {column.Type}, which Parquet {Describe(field)} does not store.", nameof(column));
        }
    }

    private static ParquetColumnData GatherPrimitive<T>(PrimitiveColumn<T> column, ParquetField field, ReadOnlySpan<int> rows)
        where T : unmanaged
    {
        var source = column.Values;
        var sourceNulls = column.Nulls;
        var values = new T[rows.Length];
        bool[]? nulls = null;
        if (sourceNulls is null)
        {
            for (var i = 0; i < rows.Length; i++)
            {
                values[i] = source[rows[i]];
            }
        }
        else
        {
            for (var i = 0; i < rows.Length; i++)
            {
                var row = rows[i];
                if (sourceNulls[row])
                {
                    nulls ??= new bool[rows.Length];
                    nulls[i] = true;
                }
                else
                {
                    values[i] = source[row];
                }
            }
        }

        return ParquetColumnData.Create(field, values, nulls);
    }

    private static ParquetColumnData GatherStrings(StringColumn column, ParquetField field, ReadOnlySpan<int> rows)
    {
        var source = column.Values;
        var values = new string?[rows.Length];
        bool[]? nulls = null;
        for (var i = 0; i < rows.Length; i++)
        {
            var value = source[rows[i]];
            if (value is null)
            {
                nulls ??= new bool[rows.Length];
                nulls[i] = true;
            }

            values[i] = value;
        }

        return ParquetColumnData.Create(field, values, nulls);
    }

    private static ParquetColumnData GatherLists<T>(T[]?[] source, ParquetField field, ReadOnlySpan<int> rows)
    {
        var offsets = new int[rows.Length + 1];
        bool[]? nulls = null;
        var total = 0;
        for (var i = 0; i < rows.Length; i++)
        {
            if (source[rows[i]] is { } list)
            {
                total = checked(total + list.Length);
            }
            else
            {
                nulls ??= new bool[rows.Length];
                nulls[i] = true;
            }

            offsets[i + 1] = total;
        }

        var values = new T[total];
        for (var i = 0; i < rows.Length; i++)
        {
            if (source[rows[i]] is { Length: > 0 } list)
            {
                list.AsSpan().CopyTo(values.AsSpan(offsets[i]));
            }
        }

        if (typeof(T) == typeof(string))
        {
            var at = Array.IndexOf(values, null);
            if (at >= 0)
            {
                var row = RowOfElement(offsets, at);
                throw new ArgumentException(
                    $"List column '{field.Name}': row {rows[row]} holds a null element; list elements cannot be null.", nameof(source));
            }
        }

        return ParquetColumnData.Create(field, values, nulls, offsets);
    }

    private static int RowOfElement(int[] offsets, int element)
    {
        var row = Array.BinarySearch(offsets, element);
        if (row < 0)
        {
            return ~row - 1;
        }

        // Several rows may start at the same offset (empty lists before it): take the last.
        while (row + 1 < offsets.Length - 1 && offsets[row + 1] == element)
        {
            row++;
        }

        return row;
    }

    private static T[]?[] SplitLists<T>(T[] values, ParquetColumnData data)
    {
        var offsets = data.Offsets!;
        var nulls = data.Nulls;
        var rows = new T[]?[data.RowCount];
        for (var i = 0; i < rows.Length; i++)
        {
            if (nulls is not null && nulls[i])
            {
                continue;
            }

            var start = offsets[i];
            var length = offsets[i + 1] - start;
            rows[i] = length == 0 ? [] : values.AsSpan(start, length).ToArray();
        }

        return rows;
    }
}
