namespace Weft.Storage;

/// <summary>
/// A table's column mapping (PROTOCOL.md "Column Mapping"): engines that rename or drop columns without
/// rewriting data give each column a physical name, and the data files, partition values and statistics
/// use it while the schema shows the (changeable) display name. Active when the protocol asks for it
/// (reader version 2, or 3 with the <c>columnMapping</c> feature) and <c>delta.columnMapping.mode</c> is
/// <c>name</c> or <c>id</c>: in mode <c>id</c> the data files' columns are found by their Parquet field
/// ids (<see cref="DeltaField.FieldIdPath"/>), partition values and statistics still by physical names.
/// </summary>
internal sealed class ColumnMapping
{
    public const string ModeProperty = "delta.columnMapping.mode";
    public const string Feature = "columnMapping";

    public static readonly ColumnMapping None = new(null, null, null);

    private readonly Dictionary<string, string>? _physicalByName;
    private readonly Dictionary<string, string>? _nameByPhysical;
    private readonly Dictionary<string, string>? _idsByName;

    private ColumnMapping(Dictionary<string, string>? physicalByName, Dictionary<string, string>? nameByPhysical, Dictionary<string, string>? idsByName)
    {
        _physicalByName = physicalByName;
        _nameByPhysical = nameByPhysical;
        _idsByName = idsByName;
    }

    /// <summary>True in mode <c>id</c>: data files' columns are found by <see cref="FieldIds"/>.</summary>
    public bool ById => _idsByName is not null;

    /// <summary>Mode <c>id</c>: the Parquet field id path of <paramref name="column"/> (a schema name).</summary>
    public string FieldIds(string column) =>
        _idsByName is not null && _idsByName.TryGetValue(column, out var ids) ? ids : throw new InvalidOperationException($"Column '{column}' has no field id.");

    /// <summary>True when data files, partition values and statistics name columns by their physical names.</summary>
    public bool IsActive => _physicalByName is not null;

    /// <summary>The name <paramref name="column"/> (a schema name) has in data files, partition values and statistics.</summary>
    public string Physical(string column) => _physicalByName is not null && _physicalByName.TryGetValue(column, out var physical) ? physical : column;

    /// <summary>A file's partition values keyed by the schema's names (as given when no mapping is active).</summary>
    public IReadOnlyDictionary<string, string?> ByName(IReadOnlyDictionary<string, string?> partitionValues)
    {
        if (_nameByPhysical is null)
        {
            return partitionValues;
        }

        var byName = new Dictionary<string, string?>(partitionValues.Count, StringComparer.Ordinal);
        foreach (var (physical, value) in partitionValues)
        {
            if (_nameByPhysical.TryGetValue(physical, out var name))
            {
                byName[name] = value;
            }
        }

        return byName;
    }

    /// <summary>The table's mapping, or the reason Weft cannot read it (then <see cref="None"/> is returned with it).</summary>
    public static ColumnMapping Of(ProtocolAction protocol, MetadataAction metadata, DeltaSchema schema, out string? problem)
    {
        problem = null;
        bool enabled = protocol.MinReaderVersion == 2 || (protocol.MinReaderVersion == 3 && protocol.ReaderFeatures?.Contains(Feature) == true);
        if (!enabled || !metadata.Configuration.TryGetValue(ModeProperty, out var mode) || mode == "none")
        {
            return None; // a mode the protocol does not turn on is not in force: files use the schema's names
        }

        if (mode is not ("name" or "id"))
        {
            problem = $"its delta.columnMapping.mode is '{mode}'; the protocol defines none, name and id";
            return None;
        }

        Dictionary<string, string>? idsByName = null;
        if (mode == "id")
        {
            idsByName = new Dictionary<string, string>(schema.Fields.Count, StringComparer.Ordinal);
            foreach (var field in schema.Fields)
            {
                if (field.FieldIdPath is not { } ids)
                {
                    problem = $"its column '{field.Name}' has no delta.columnMapping.id, which column mapping mode 'id' finds it by";
                    return None;
                }

                idsByName[field.Name] = ids;
            }
        }

        var physicalByName = new Dictionary<string, string>(schema.Fields.Count, StringComparer.Ordinal);
        var nameByPhysical = new Dictionary<string, string>(schema.Fields.Count, StringComparer.Ordinal);
        foreach (var field in schema.Fields)
        {
            if (field.PhysicalName is not { } physical)
            {
                problem = $"its column '{field.Name}' has no delta.columnMapping.physicalName, which column mapping mode '{mode}' requires";
                return None;
            }

            if (!nameByPhysical.TryAdd(physical, field.Name))
            {
                problem = $"its columns '{nameByPhysical[physical]}' and '{field.Name}' have the same physical name '{physical}'";
                return None;
            }

            physicalByName[field.Name] = physical;
        }

        return new ColumnMapping(physicalByName, nameByPhysical, idsByName);
    }
}
