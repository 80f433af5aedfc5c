using Weft.Parquet.Format;

namespace Weft.Parquet.Columns;

/// <summary>
/// A column with its Parquet leaf: physical type, path and level structure. A column is a top-level
/// leaf or list, or one inside structs (named by its dotted path), or the keys or the values of a map
/// (read as a list each).
/// For a list column of depth <c>D</c> (<see cref="MaxRepetitionLevel"/>), list level <c>i</c> (0 = the
/// row's list, 1 = an inner list) has definition levels:
/// <c>def &lt; ListPresentLevels[i]</c> the list is null (or an enclosing one is);
/// <c>== ListPresentLevels[i]</c> the list is empty; <c>&gt; ListPresentLevels[i]</c> an entry of the list
/// exists. At the innermost level, <c>ListPresentLevels[D - 1] &lt; def &lt; MaxDefinitionLevel</c> is a
/// null element and <c>== MaxDefinitionLevel</c> a value. A repetition level <c>r &gt; 0</c> starts a new
/// entry of the list at level <c>r - 1</c>; <c>r == 0</c> starts a row.
/// For a non-list column: <c>def == MaxDefinitionLevel</c> is a value, anything lower is null.
/// </summary>
internal sealed class ColumnDescriptor
{
    public required ParquetField Field { get; set; } // set once more to attach the Parquet field ids


    public required PhysicalType Physical { get; init; }

    public required IReadOnlyList<string> Path { get; init; }

    public int MaxDefinitionLevel { get; init; }

    public int MaxRepetitionLevel { get; init; }

    /// <summary>The column's chunk in each row group (its leaf's position among all leaves, read or not).</summary>
    public int ChunkIndex { get; set; }

    /// <summary>How the stored values become the field's values: as they are, except for files from other writers.</summary>
    public StoredAs Stored { get; init; }

    /// <summary>Decimals: the digits after the point (value = unscaled / 10^Scale).</summary>
    public int Scale { get; init; }

    /// <summary>FIXED_LEN_BYTE_ARRAY leaves: the bytes of every value.</summary>
    public int TypeLength { get; init; }

    /// <summary>Per list level (outermost first): the definition level of an empty list there.</summary>
    public int[] ListPresentLevels { get; init; } = [];

    public static PhysicalType PhysicalOf(ParquetType type) => type switch
    {
        ParquetType.Boolean => PhysicalType.Boolean,
        ParquetType.Int32 => PhysicalType.Int32,
        ParquetType.Int64 or ParquetType.TimestampMicros => PhysicalType.Int64,
        ParquetType.Float => PhysicalType.Float,
        ParquetType.Double => PhysicalType.Double,
        ParquetType.String => PhysicalType.ByteArray,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown ParquetType."),
    };

    /// <summary>
    /// A list column's descriptor from its structure: whether each list level (outermost first) is
    /// optional, and whether the leaf element is. Each optional node and each repeated node adds one
    /// definition level; each list level adds one repetition level. <paramref name="enclosingDefinition"/>
    /// counts the optional groups around the list (a list in a struct): a definition level below it means
    /// an enclosing group is null, which reads as a null list.
    /// </summary>
    public static ColumnDescriptor ForList(
        ParquetField field, PhysicalType physical, IReadOnlyList<string> path, ReadOnlySpan<bool> listOptional, bool elementOptional, LeafStorage stored = default, int enclosingDefinition = 0)
    {
        var present = new int[listOptional.Length];
        var def = enclosingDefinition;
        for (var i = 0; i < listOptional.Length; i++)
        {
            def += listOptional[i] ? 1 : 0;
            present[i] = def;
            def++;
        }

        return new ColumnDescriptor
        {
            Field = field,
            Physical = physical,
            Stored = stored.Kind,
            Scale = stored.Scale,
            TypeLength = stored.TypeLength,
            Path = path,
            ListPresentLevels = present,
            MaxDefinitionLevel = def + (elementOptional ? 1 : 0),
            MaxRepetitionLevel = listOptional.Length,
        };
    }

    /// <summary>
    /// The layout Weft writes: flat columns; <c>LIST { repeated group list { element } }</c>; for nested
    /// lists <c>LIST { repeated group list { element (LIST) { repeated group list { element } } } }</c>.
    /// </summary>
    public static ColumnDescriptor ForWrite(ParquetField field) => ForWrite(field, [], field.Name, 0);

    /// <summary>
    /// As <see cref="ForWrite(ParquetField)"/> for field <paramref name="index"/> of a schema with groups:
    /// the path runs through its structs, and the optional ones add definition levels below the field's
    /// own. A map's keys and values are <c>m (MAP) { repeated group key_value { required key; value } }</c>:
    /// lists whose level is the map group.
    /// </summary>
    public static ColumnDescriptor ForWrite(ParquetSchema schema, int index)
    {
        var tree = schema.Tree;
        var field = schema.Fields[index];
        var enclosing = tree.EnclosingDefinition(index);
        var map = tree.MapOf(index);
        if (map < 0)
        {
            var groups = tree.Chain(tree.FieldGroup[index]).Select(tree.LocalName).ToArray();
            return ForWrite(field, groups, tree.LocalName(field, index), enclosing);
        }

        string[] path = [.. tree.Chain(map).Select(tree.LocalName), "key_value", tree.LocalName(field, index)];
        return ForList(field, PhysicalOf(field.Type), path, [tree.Groups[map].Nullable], field.ElementNullable, enclosingDefinition: enclosing);
    }

    private static ColumnDescriptor ForWrite(ParquetField field, string[] groups, string name, int enclosing) => field.ListDepth switch
    {
        0 => new ColumnDescriptor
        {
            Field = field,
            Physical = PhysicalOf(field.Type),
            Path = [.. groups, name],
            MaxDefinitionLevel = enclosing + (field.Nullable ? 1 : 0),
        },
        1 => ForList(field, PhysicalOf(field.Type), [.. groups, name, "list", "element"], [field.Nullable], field.ElementNullable, enclosingDefinition: enclosing),
        _ => ForList(
            field, PhysicalOf(field.Type), [.. groups, name, "list", "element", "list", "element"], [field.Nullable, field.InnerListNullable], field.ElementNullable, enclosingDefinition: enclosing),
    };
}

/// <summary>
/// Stored layouts Weft reads into another type (it writes none of them): timestamps in other units
/// (read as µs, TIMESTAMP(NANOS) rounded down to the µs), Spark's and Impala's legacy INT96
/// timestamps, DATEs (midnight UTC of the day), unsigned integers too wide for their signed
/// physical type, INT_8 / INT_16 / UINT_8 / UINT_16 (only their low 8 or 16 bits count, as in
/// arrow and DuckDB), TIMEs (µs since midnight, nanoseconds rounded down) and DECIMALs (doubles,
/// the nearest to the exact value).
/// </summary>
internal enum StoredAs
{
    AsIs,
    TimestampMillis,
    TimestampNanos,
    Int96Timestamp,
    DateDays,
    Int8,
    Int16,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    TimeMillis,
    TimeNanos,

    /// <summary>Unscaled in an INT32.</summary>
    DecimalInt32,

    /// <summary>Unscaled in an INT64.</summary>
    DecimalInt64,

    /// <summary>Unscaled, big-endian two's complement, in a FIXED_LEN_BYTE_ARRAY of at most 16 bytes.</summary>
    DecimalFixed,

    /// <summary>Unscaled, big-endian two's complement, in a BYTE_ARRAY (at most 16 significant bytes).</summary>
    DecimalBytes,
}

/// <summary>A leaf's <see cref="StoredAs"/> with what decimals need besides: their scale and FIXED_LEN_BYTE_ARRAY width.</summary>
internal readonly record struct LeafStorage(StoredAs Kind, int Scale = 0, int TypeLength = 0)
{
    public static implicit operator LeafStorage(StoredAs kind) => FromStoredAs(kind);

    public static LeafStorage FromStoredAs(StoredAs kind) => new(kind);
}

/// <summary>Timestamps in other units as µs since the epoch: for values and statistics alike.</summary>
internal static class TimeUnits
{
    /// <summary>Nanoseconds rounded down to µs, so an instant before the epoch stays before it.</summary>
    public static long FloorNanosToMicros(long nanos) => Math.DivRem(nanos, 1000, out var rest) - (rest < 0 ? 1 : 0);

    /// <summary>Milliseconds as µs; false when that leaves the range of a long.</summary>
    public static bool TryMillisToMicros(long millis, out long micros)
    {
        micros = millis * 1000;
        return millis is <= long.MaxValue / 1000 and >= long.MinValue / 1000;
    }
}
