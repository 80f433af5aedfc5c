namespace Weft.Parquet;

/// <summary>
/// One top-level column. <paramref name="Nullable"/> says whether a row may be null (for a list
/// column: whether the list itself may be null). A list column (<paramref name="IsList"/>) holds, per
/// row, a list of non-null <paramref name="Type"/> elements, stored with the standard three-level
/// LIST layout.
/// </summary>
/// <param name="Name">Column name; unique within a schema, not empty.</param>
/// <param name="Type">Element type.</param>
/// <param name="Nullable">Whether rows may be null.</param>
/// <param name="IsList">Whether each row is a list of <paramref name="Type"/> values.</param>
public sealed record ParquetField(string Name, ParquetType Type, bool Nullable, bool IsList = false)
{
    /// <summary>The CLR element type of <see cref="ParquetColumnData.Values"/> for this field.</summary>
    public Type ClrType => ClrTypeOf(Type);

    internal static Type ClrTypeOf(ParquetType type) => type switch
    {
        ParquetType.Boolean => typeof(bool),
        ParquetType.Int32 => typeof(int),
        ParquetType.Int64 or ParquetType.TimestampMicros => typeof(long),
        ParquetType.Float => typeof(float),
        ParquetType.Double => typeof(double),
        ParquetType.String => typeof(string),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown ParquetType."),
    };
}
