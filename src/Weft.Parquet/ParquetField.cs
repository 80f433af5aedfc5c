namespace Weft.Parquet;

/// <summary>
/// One top-level column. <paramref name="Nullable"/> says whether a row may be null (for a list
/// column: whether the list itself may be null). A list column (<paramref name="IsList"/>) holds, per
/// row, a list of <paramref name="Type"/> elements, stored with the standard three-level LIST layout;
/// <paramref name="ElementNullable"/> says whether those elements may be null. A nested list column
/// (<see cref="ListDepth"/> = 2, with <paramref name="IsList"/> set) holds, per row, a list of lists of
/// <paramref name="Type"/> elements (<c>list&lt;list&lt;T&gt;&gt;</c>); <see cref="InnerListNullable"/>
/// says whether an inner list may be null.
/// </summary>
/// <param name="Name">Column name; unique within a schema, not empty.</param>
/// <param name="Type">Element type.</param>
/// <param name="Nullable">Whether rows may be null.</param>
/// <param name="IsList">Whether each row is a list (of <paramref name="Type"/> values, or of lists of them).</param>
/// <param name="ElementNullable">List columns only: whether the innermost elements may be null.</param>
/// <example>
/// <code>
/// new ParquetField("dwell_ms", ParquetType.Int64, Nullable: false, IsList: true, ElementNullable: true);    // list&lt;int64?&gt;
/// new ParquetField("embedding", ParquetType.Float, Nullable: false, IsList: true) { ListDepth = 2 };       // list&lt;list&lt;float&gt;&gt;
/// </code>
/// </example>
public sealed record ParquetField(string Name, ParquetType Type, bool Nullable, bool IsList = false, bool ElementNullable = false)
{
    /// <summary>The largest <see cref="ListDepth"/> supported.</summary>
    public const int MaxListDepth = 2;

    /// <summary>
    /// How many list levels wrap the values: 0 for a non-list column, 1 for <c>list&lt;T&gt;</c> (the
    /// default when <see cref="IsList"/> is set), 2 for <c>list&lt;list&lt;T&gt;&gt;</c>. A schema or column
    /// rejects a depth that disagrees with <see cref="IsList"/>.
    /// </summary>
    public int ListDepth { get; init; } = IsList ? 1 : 0;

    /// <summary><see cref="ListDepth"/> 2 only: whether an inner list may be null.</summary>
    public bool InnerListNullable { get; init; }

    /// <summary>
    /// On read: the field ids the file's writer gave the column and the structs around it, as a dotted
    /// path (<c>5</c>, or <c>4.7</c> for a struct's field); null when any is missing. Iceberg and Delta
    /// column mapping by id find columns by it.
    /// </summary>
    public string? FieldIdPath { get; init; }

    /// <summary>The CLR element type of <see cref="ParquetColumnData.Values"/> for this field.</summary>
    public Type ClrType => ClrTypeOf(Type);

    /// <summary>The field as a type, e.g. <c>list&lt;list&lt;Float&gt;?&gt;?</c> (<c>?</c> marks what may be null).</summary>
    public string TypeName => ListDepth switch
    {
        0 => $"{Type}{Q(Nullable)}",
        1 => $"list<{Type}{Q(ElementNullable)}>{Q(Nullable)}",
        _ => $"list<list<{Type}{Q(ElementNullable)}>{Q(InnerListNullable)}>{Q(Nullable)}",
    };

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

    /// <summary>Why the field's list settings are inconsistent, or null when they are fine.</summary>
    internal string? ShapeProblem()
    {
        if (ListDepth is < 0 or > MaxListDepth)
        {
            return $"Field '{Name}' has ListDepth {ListDepth}; supported depths are 0 (not a list), 1 and {MaxListDepth}.";
        }

        if (IsList != (ListDepth > 0))
        {
            return $"Field '{Name}' has IsList = {IsList} but ListDepth = {ListDepth}; a list field needs ListDepth 1 or 2, a non-list field 0.";
        }

        if (ElementNullable && !IsList)
        {
            return $"Field '{Name}' is not a list, so ElementNullable does not apply; use Nullable.";
        }

        if (InnerListNullable && ListDepth != 2)
        {
            return $"Field '{Name}' has InnerListNullable but ListDepth {ListDepth}; only nested lists (ListDepth 2) have inner lists.";
        }

        return null;
    }

    private static string Q(bool nullable) => nullable ? "?" : "";
}
