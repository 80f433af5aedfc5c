using Weft.Parquet.Format;

namespace Weft.Parquet.Columns;

/// <summary>
/// A top-level column with its Parquet leaf: physical type, path and level structure.
/// Definition levels, for a list column (three-level layout):
/// <c>def &lt; ListPresentLevel</c> null list; <c>== ListPresentLevel</c> empty list;
/// <c>ElementSlotLevel &lt;= def &lt; MaxDefinitionLevel</c> null element; <c>== MaxDefinitionLevel</c> a value.
/// For a non-list column: <c>def == MaxDefinitionLevel</c> is a value, anything lower is null.
/// </summary>
internal sealed class ColumnDescriptor
{
    public required ParquetField Field { get; init; }

    public required PhysicalType Physical { get; init; }

    public required IReadOnlyList<string> Path { get; init; }

    public int MaxDefinitionLevel { get; init; }

    public int MaxRepetitionLevel { get; init; }

    public int ListPresentLevel { get; init; }

    public int ElementSlotLevel { get; init; }

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

    /// <summary>The layout Weft writes: flat columns, or LIST { repeated group list { required element } }.</summary>
    public static ColumnDescriptor ForWrite(ParquetField field)
    {
        var present = field.Nullable ? 1 : 0;
        return field.IsList
            ? new ColumnDescriptor
            {
                Field = field,
                Physical = PhysicalOf(field.Type),
                Path = [field.Name, "list", "element"],
                ListPresentLevel = present,
                ElementSlotLevel = present + 1,
                MaxDefinitionLevel = present + 1,
                MaxRepetitionLevel = 1,
            }
            : new ColumnDescriptor
            {
                Field = field,
                Physical = PhysicalOf(field.Type),
                Path = [field.Name],
                MaxDefinitionLevel = present,
            };
    }
}
