using System.Buffers;
using System.Collections.ObjectModel;
using System.Text;
using System.Text.Json;

namespace Weft.Storage;

/// <summary>Primitive column types a Weft table can hold (a subset of Spark SQL's types).</summary>
public enum DeltaDataType
{
    Boolean,
    Integer,
    Long,
    Float,
    Double,
    String,
    Timestamp,
    Date,
    Binary,
}

/// <summary>
/// One column of a table: a primitive, or a list of a primitive when <see cref="IsList"/> is set
/// (then <see cref="Type"/> is the element type and <see cref="ContainsNull"/> the element nullability).
/// <see cref="PhysicalName"/> is the column's <c>delta.columnMapping.physicalName</c>, set by engines that
/// rename and drop columns (column mapping): the name in the data files, partition values and statistics.
/// </summary>
public sealed record DeltaField(string Name, DeltaDataType Type, bool Nullable = true, bool IsList = false, bool ContainsNull = true, string? PhysicalName = null)
{
    /// <summary>
    /// The column's <c>delta.columnMapping.id</c> (and, for a struct's field, those of the structs around
    /// it) as a dotted path: the Parquet field ids column mapping mode <c>id</c> finds it by.
    /// </summary>
    public string? FieldIdPath { get; init; }

    /// <summary>A list column, <c>array&lt;elementType&gt;</c> in Spark terms.</summary>
    public static DeltaField List(string name, DeltaDataType elementType, bool nullable = true, bool containsNull = true) =>
        new(name, elementType, nullable, IsList: true, containsNull);

    /// <summary>Spark SQL spelling of the type, e.g. <c>long</c> or <c>array&lt;float&gt;</c>.</summary>
    public string TypeName => IsList ? $"array<{DeltaSchema.SparkName(Type)}>" : DeltaSchema.SparkName(Type);

    /// <summary>Type and nullability in words, used in error messages.</summary>
    public string Describe() =>
        IsList
            ? $"{TypeName} ({(Nullable ? "nullable" : "not null")}, elements {(ContainsNull ? "nullable" : "not null")})"
            : $"{TypeName} ({(Nullable ? "nullable" : "not null")})";
}

/// <summary>
/// The column layout of a table, serialised in the Delta log as a Spark <c>StructType</c> JSON
/// string (<c>metaData.schemaString</c>). Immutable; equality is column by column.
/// </summary>
public sealed class DeltaSchema : IEquatable<DeltaSchema>
{
    private readonly DeltaField[] _fields;

    /// <summary>Builds a schema; column names must be non-empty and unique regardless of case.</summary>
    public DeltaSchema(IEnumerable<DeltaField> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        _fields = [.. fields];
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in _fields)
        {
            ArgumentNullException.ThrowIfNull(field, nameof(fields));
            if (string.IsNullOrEmpty(field.Name))
            {
                throw new ArgumentException("A column name must not be empty.", nameof(fields));
            }

            if (!Enum.IsDefined(field.Type))
            {
                throw new ArgumentException($"Column '{field.Name}' has an unknown type value {(int)field.Type}.", nameof(fields));
            }

            if (!seen.Add(field.Name))
            {
                throw new ArgumentException($"Column '{field.Name}' appears twice (column names are unique regardless of case).", nameof(fields));
            }
        }

        Fields = new ReadOnlyCollection<DeltaField>(_fields);
    }

    /// <summary>Shorthand for <c>new DeltaSchema(fields)</c>.</summary>
    public static DeltaSchema Of(params DeltaField[] fields) => new(fields);

    public IReadOnlyList<DeltaField> Fields { get; }

    /// <summary>
    /// True when a column carries <c>delta.invariants</c> metadata (written by other engines).
    /// Weft does not evaluate invariants, so it refuses to write such tables.
    /// </summary>
    internal bool HasInvariants { get; private init; }

    /// <summary>
    /// Columns of another engine's table whose type Weft does not read (structs, maps, arrays of those,
    /// and types it does not know), by name, with their type as the schema gives it. They are not in
    /// <see cref="Fields"/>: a read that does not ask for them skips them, one that does fails naming the type.
    /// </summary>
    internal IReadOnlyDictionary<string, string> UnreadableColumns { get; private init; } = new Dictionary<string, string>();

    /// <summary>
    /// Columns read through a conversion, by name, with their type as the schema gives it: <c>short</c>
    /// and <c>byte</c> as integer, <c>decimal(p,s)</c> as the nearest double, <c>timestamp_ntz</c> as if
    /// UTC, <c>date</c> as midnight UTC. Weft never writes a table that has any.
    /// </summary>
    internal IReadOnlyDictionary<string, string> ConvertedColumns { get; private init; } = new Dictionary<string, string>();

    /// <summary>
    /// Another engine's struct columns, and the fields of them that are in <see cref="Fields"/> by their
    /// dotted path (<c>ctx.device</c>). Weft never writes a table that has any.
    /// </summary>
    internal IReadOnlySet<string> StructColumns { get; private init; } = new HashSet<string>();

    /// <summary>The column with this exact name, or null.</summary>
    public DeltaField? Find(string name)
    {
        foreach (var field in _fields)
        {
            if (string.Equals(field.Name, name, StringComparison.Ordinal))
            {
                return field;
            }
        }

        return null;
    }

    /// <summary>The Spark <c>StructType</c> JSON stored in <c>metaData.schemaString</c>.</summary>
    public string ToSchemaString()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", "struct");
            writer.WriteStartArray("fields");
            foreach (var field in _fields)
            {
                writer.WriteStartObject();
                writer.WriteString("name", field.Name);
                if (field.IsList)
                {
                    writer.WriteStartObject("type");
                    writer.WriteString("type", "array");
                    writer.WriteString("elementType", SparkName(field.Type));
                    writer.WriteBoolean("containsNull", field.ContainsNull);
                    writer.WriteEndObject();
                }
                else
                {
                    writer.WriteString("type", SparkName(field.Type));
                }

                writer.WriteBoolean("nullable", field.Nullable);
                writer.WriteStartObject("metadata");
                writer.WriteEndObject();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Parses a Spark <c>StructType</c> JSON string; throws <see cref="FormatException"/> naming the problem.</summary>
    public static DeltaSchema Parse(string schemaString)
    {
        ArgumentNullException.ThrowIfNull(schemaString);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(schemaString);
        }
        catch (JsonException e)
        {
            throw new FormatException($"The schema string is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || GetString(root, "type") != "struct"
                || !root.TryGetProperty("fields", out var fieldsElement) || fieldsElement.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("The schema string must be a JSON object {\"type\":\"struct\",\"fields\":[...]}.");
            }

            var fields = new List<DeltaField>();
            var unreadable = new Dictionary<string, string>(StringComparer.Ordinal);
            var converted = new Dictionary<string, string>(StringComparer.Ordinal);
            var nested = new HashSet<string>(StringComparer.Ordinal);
            var hasInvariants = false;

            // A struct's primitive fields become columns named by their dotted path (ctx.device), as Weft's
            // Parquet reader names a struct's leaves; under column mapping the path of physical names.
            void AddFields(JsonElement list, string prefix, string? physicalPrefix, string? idPrefix, bool parentNullable)
            {
                foreach (var element in list.EnumerateArray())
                {
                    var name = GetString(element, "name") is { } own
                        ? prefix + own
                        : throw new FormatException($"Schema field #{fields.Count} has no \"name\".");
                    var nullable = parentNullable || !element.TryGetProperty("nullable", out var n) || n.ValueKind != JsonValueKind.False;
                    if (!element.TryGetProperty("type", out var type))
                    {
                        throw new FormatException($"Schema column '{name}' has no \"type\".");
                    }

                    string? physicalName = null, fieldId = null;
                    if (element.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object)
                    {
                        hasInvariants |= metadata.TryGetProperty("delta.invariants", out _);
                        if (metadata.TryGetProperty("delta.columnMapping.id", out var id))
                        {
                            fieldId = id.ValueKind == JsonValueKind.Number && id.TryGetInt32(out int value)
                                ? value.ToString(System.Globalization.CultureInfo.InvariantCulture)
                                : throw new FormatException($"Schema column '{name}' has a delta.columnMapping.id that is not a 32-bit integer.");
                        }

                        if (metadata.TryGetProperty("delta.columnMapping.physicalName", out var physical))
                        {
                            physicalName = physical.ValueKind == JsonValueKind.String && physical.GetString() is { Length: > 0 } text
                                ? text
                                : throw new FormatException($"Schema column '{name}' has a delta.columnMapping.physicalName that is not a non-empty string.");
                        }
                    }

                    // Under column mapping every level has a physical name; a path with one missing has none (and is refused with the mapping).
                    string? physicalPath = physicalName is null ? null : prefix.Length == 0 ? physicalName : physicalPrefix is null ? null : physicalPrefix + physicalName;
                    string? idPath = fieldId is null ? null : prefix.Length == 0 ? fieldId : idPrefix is null ? null : idPrefix + fieldId;
                    if (type.ValueKind == JsonValueKind.String && TryParseType(type.GetString()!, out var primitive, out bool conversion))
                    {
                        fields.Add(new DeltaField(name, primitive, nullable, PhysicalName: physicalPath) { FieldIdPath = idPath });
                        if (conversion)
                        {
                            converted[name] = type.GetString()!;
                        }
                    }
                    else if (type.ValueKind == JsonValueKind.Object && GetString(type, "type") == "array"
                             && type.TryGetProperty("elementType", out var elementType) && elementType.ValueKind == JsonValueKind.String
                             && TryParseType(elementType.GetString()!, out var elementKind, out bool elementConversion))
                    {
                        var containsNull = !type.TryGetProperty("containsNull", out var c) || c.ValueKind != JsonValueKind.False;
                        fields.Add(DeltaField.List(name, elementKind, nullable, containsNull) with { PhysicalName = physicalPath, FieldIdPath = idPath });
                        if (elementConversion)
                        {
                            converted[name] = $"array<{elementType.GetString()}>";
                        }
                    }
                    else if (type.ValueKind == JsonValueKind.Object && GetString(type, "type") == "struct"
                             && type.TryGetProperty("fields", out var structFields) && structFields.ValueKind == JsonValueKind.Array)
                    {
                        int before = fields.Count;
                        AddFields(structFields, name + ".", physicalPath is null ? null : physicalPath + ".", idPath is null ? null : idPath + ".", nullable);
                        nested.UnionWith(fields.Skip(before).Select(f => f.Name));
                        nested.Add(name);
                    }
                    else if (!unreadable.TryAdd(name, type.ValueKind == JsonValueKind.String ? type.GetString()! : Describe(type)))
                    {
                        throw new FormatException($"Column '{name}' appears twice.");
                    }
                }
            }

            AddFields(fieldsElement, "", null, null, parentNullable: false);

            try
            {
                foreach (var name in unreadable.Keys)
                {
                    if (fields.Exists(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)))
                    {
                        throw new FormatException($"Column '{name}' appears twice (column names are unique regardless of case).");
                    }
                }

                return new DeltaSchema(fields) { HasInvariants = hasInvariants, UnreadableColumns = unreadable, ConvertedColumns = converted, StructColumns = nested };
            }
            catch (ArgumentException e)
            {
                throw new FormatException(e.Message, e);
            }
        }
    }

    /// <summary>
    /// Compares a writer's schema with this (table) schema. Returns null when the writer may append,
    /// else a sentence naming the first mismatched column. Column order is irrelevant (files are read by name);
    /// a writer may declare a column stricter (not null) than the table, never looser.
    /// </summary>
    internal (string Column, string Problem)? FindMismatch(DeltaSchema writer, bool allowMissingNullable = false)
    {
        foreach (var tableField in _fields)
        {
            var writerField = writer.Find(tableField.Name);
            if (writerField is null && allowMissingNullable && tableField.Nullable)
            {
                continue; // a column added after the writer opened the table: its files read it as null
            }

            if (writerField is null)
            {
                return (tableField.Name, $"the table has {tableField.Describe()} but the writer's schema lacks the column");
            }

            var compatible = writerField.Type == tableField.Type
                && writerField.IsList == tableField.IsList
                && (tableField.Nullable || !writerField.Nullable)
                && (!tableField.IsList || tableField.ContainsNull || !writerField.ContainsNull);
            if (!compatible)
            {
                return (tableField.Name, $"the table has {tableField.Describe()} but the writer has {writerField.Describe()}");
            }
        }

        foreach (var writerField in writer._fields)
        {
            if (Find(writerField.Name) is null)
            {
                return (writerField.Name, $"the writer has {writerField.Describe()} but the table has no such column");
            }
        }

        return null;
    }

    /// <summary>
    /// This table schema with the columns of <paramref name="requested"/> it lacks added at its end, each
    /// nullable (the files written before hold none, and read as nulls), and a column the request allows
    /// nulls in made nullable. A nullable column the request lacks stays (its writer writes nulls there).
    /// Returns this schema when nothing is to be added, and null when columns cannot be added to reach
    /// the request: a non-null column of the table it lacks, or one it has with another type (the
    /// caller's <see cref="FindMismatch"/> then names it).
    /// </summary>
    internal DeltaSchema? WithColumnsOf(DeltaSchema requested)
    {
        var fields = new List<DeltaField>(Math.Max(_fields.Length, requested._fields.Length));
        bool changed = false;
        foreach (var field in _fields)
        {
            var wanted = requested.Find(field.Name);
            if (wanted is null && field.Nullable)
            {
                fields.Add(field);
                continue;
            }

            if (wanted is null || wanted.Type != field.Type || wanted.IsList != field.IsList)
            {
                return null;
            }

            var widened = field with { Nullable = field.Nullable || wanted.Nullable, ContainsNull = field.ContainsNull || (field.IsList && wanted.ContainsNull) };
            changed |= widened != field;
            fields.Add(widened);
        }

        foreach (var field in requested._fields)
        {
            if (Find(field.Name) is null)
            {
                fields.Add(field with { Nullable = true });
                changed = true;
            }
        }

        return changed ? new DeltaSchema(fields) : this;
    }

    public bool Equals(DeltaSchema? other) =>
        other is not null && _fields.AsSpan().SequenceEqual(other._fields);

    public override bool Equals(object? obj) => Equals(obj as DeltaSchema);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var field in _fields)
        {
            hash.Add(field);
        }

        return hash.ToHashCode();
    }

    public override string ToString() => string.Join(", ", _fields.Select(f => $"{f.Name}: {(ConvertedColumns.TryGetValue(f.Name, out var original) ? $"{original} (read as {f.TypeName})" : f.TypeName)}{(f.Nullable ? "" : " not null")}")
        .Concat(UnreadableColumns.Select(u => $"{u.Key}: {u.Value} (not read)")));

    internal static string SparkName(DeltaDataType type) => type switch
    {
        DeltaDataType.Boolean => "boolean",
        DeltaDataType.Integer => "integer",
        DeltaDataType.Long => "long",
        DeltaDataType.Float => "float",
        DeltaDataType.Double => "double",
        DeltaDataType.String => "string",
        DeltaDataType.Timestamp => "timestamp",
        DeltaDataType.Date => "date",
        DeltaDataType.Binary => "binary",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown Weft type."),
    };

    /// <summary>
    /// The type Weft reads a Spark primitive type name as; <paramref name="conversion"/> when it is read
    /// through one (<c>short</c>, <c>byte</c>, <c>decimal(p,s)</c>, <c>timestamp_ntz</c>, <c>date</c>).
    /// False for a type Weft does not read.
    /// </summary>
    private static bool TryParseType(string name, out DeltaDataType type, out bool conversion)
    {
        conversion = name is "short" or "byte" or "timestamp_ntz" or "date" || name.StartsWith("decimal", StringComparison.Ordinal);
        DeltaDataType? parsed = name switch
        {
            "boolean" => DeltaDataType.Boolean,
            "integer" or "short" or "byte" => DeltaDataType.Integer,
            "long" => DeltaDataType.Long,
            "float" => DeltaDataType.Float,
            "double" => DeltaDataType.Double,
            "string" => DeltaDataType.String,
            "timestamp" or "timestamp_ntz" => DeltaDataType.Timestamp,
            "date" => DeltaDataType.Date,
            "binary" => DeltaDataType.Binary,
            _ when IsDecimal(name) => DeltaDataType.Double,
            _ => null,
        };
        type = parsed ?? default;
        return parsed is not null;
    }

    /// <summary><c>decimal</c>, or <c>decimal(p,s)</c> with 1 ≤ p ≤ 38 and 0 ≤ s ≤ p.</summary>
    private static bool IsDecimal(string name)
    {
        if (name == "decimal")
        {
            return true;
        }

        if (!name.StartsWith("decimal(", StringComparison.Ordinal) || !name.EndsWith(')'))
        {
            return false;
        }

        var parts = name["decimal(".Length..^1].Split(',');
        return parts.Length == 2
            && int.TryParse(parts[0].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int precision)
            && int.TryParse(parts[1].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int scale)
            && precision is >= 1 and <= 38 && scale <= precision;
    }

    /// <summary>A complex type's kind for messages: <c>struct&lt;…&gt;</c>, <c>map&lt;…&gt;</c>, <c>array&lt;…&gt;</c>.</summary>
    private static string Describe(JsonElement type) => GetString(type, "type") switch
    {
        "struct" => "struct<…>",
        "map" => "map<…>",
        "array" => "array<…>",
        var other => other ?? type.GetRawText(),
    };

    private static string? GetString(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
