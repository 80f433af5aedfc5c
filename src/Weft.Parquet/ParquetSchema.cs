using Weft.Parquet.Columns;

namespace Weft.Parquet;

/// <summary>
/// An ordered list of uniquely named columns: top-level columns, and with <see cref="Groups"/> the
/// leaves of structs and maps, named by their dotted paths.
/// </summary>
public sealed class ParquetSchema : IEquatable<ParquetSchema>
{
    private readonly ParquetField[] _fields;
    private readonly Dictionary<string, int> _byName;

    /// <summary>
    /// Creates a schema of top-level columns (no groups: a dot in a name is part of the name); throws when
    /// a name is empty or repeated, or there are no fields.
    /// </summary>
    public ParquetSchema(IReadOnlyList<ParquetField> fields)
        : this(fields, [], grouped: false)
    {
    }

    /// <summary>
    /// Creates a schema whose fields may sit inside struct and map groups. A field's dotted name is its
    /// path (<c>add.path</c>, <c>metaData.format.provider</c>) and every dotted prefix of it must be a
    /// declared group; the fields of one group must be contiguous, so the tree is depth-first in field
    /// order. A field inside a nullable group must be <see cref="ParquetField.Nullable"/> (it is null
    /// wherever the group is). A map <c>m</c> has exactly the fields <c>m.key</c> (a list, elements not
    /// null) then <c>m.value</c> (a list; <see cref="ParquetField.ElementNullable"/> writes the value
    /// optional), both <see cref="ParquetField.ListDepth"/> 1 and <see cref="ParquetField.Nullable"/> when
    /// the map or a group around it is. Throws <see cref="ArgumentException"/> naming the field or group otherwise.
    /// </summary>
    public ParquetSchema(IReadOnlyList<ParquetField> fields, IReadOnlyList<ParquetGroup> groups)
        : this(fields, groups ?? throw new ArgumentNullException(nameof(groups)), grouped: true)
    {
    }

    private ParquetSchema(IReadOnlyList<ParquetField> fields, IReadOnlyList<ParquetGroup> groups, bool grouped)
    {
        ArgumentNullException.ThrowIfNull(fields);
        if (fields.Count == 0)
        {
            throw new ArgumentException("A Parquet schema needs at least one field.", nameof(fields));
        }

        _fields = new ParquetField[fields.Count];
        _byName = new Dictionary<string, int>(fields.Count, StringComparer.Ordinal);
        for (var i = 0; i < fields.Count; i++)
        {
            var field = fields[i] ?? throw new ArgumentException($"Field {i} is null.", nameof(fields));
            if (string.IsNullOrEmpty(field.Name))
            {
                throw new ArgumentException($"Field {i} has an empty name.", nameof(fields));
            }

            if (!Enum.IsDefined(field.Type))
            {
                throw new ArgumentException($"Field '{field.Name}' has unknown type {field.Type}.", nameof(fields));
            }

            if (field.ShapeProblem() is { } problem)
            {
                throw new ArgumentException(problem, nameof(fields));
            }

            if (!_byName.TryAdd(field.Name, i))
            {
                throw new ArgumentException($"Field name '{field.Name}' appears more than once.", nameof(fields));
            }

            _fields[i] = field;
        }

        Tree = !grouped ? GroupTree.Empty(_fields.Length) : GroupTree.Build(_fields, groups);
    }

    /// <summary>The fields in column order.</summary>
    public IReadOnlyList<ParquetField> Fields => _fields;

    /// <summary>The struct and map groups the fields sit in (empty for a schema of top-level columns).</summary>
    public IReadOnlyList<ParquetGroup> Groups => Tree.Groups;

    internal GroupTree Tree { get; }

    /// <summary>The field with this name; throws <see cref="KeyNotFoundException"/> when absent.</summary>
    public ParquetField this[string name] => _fields[IndexOfOrThrow(name)];

    /// <summary>The index of the field with this name, or -1.</summary>
    public int IndexOf(string name) => _byName.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The index of the column whose <see cref="ParquetField.FieldIdPath"/> is <paramref name="path"/>, or -1.</summary>
    public int IndexOfFieldIds(string path)
    {
        var byIds = _byFieldIds ??= BuildFieldIds();
        return byIds.TryGetValue(path, out var i) ? i : -1;
    }

    /// <summary>True when some column carries field ids (<see cref="ParquetField.FieldIdPath"/>).</summary>
    public bool HasFieldIds => (_byFieldIds ??= BuildFieldIds()).Count > 0;

    private Dictionary<string, int>? _byFieldIds;

    private Dictionary<string, int> BuildFieldIds()
    {
        var byIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _fields.Length; i++)
        {
            if (_fields[i].FieldIdPath is { } path)
            {
                byIds.TryAdd(path, i); // a file repeating an id keeps the first: ids are unique per writer's promise
            }
        }

        return byIds;
    }

    internal int IndexOfOrThrow(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out var i)
            ? i
            : throw new KeyNotFoundException($"The schema has no column '{name}'. Columns: {string.Join(", ", _byName.Keys)}.");
    }

    /// <inheritdoc/>
    public bool Equals(ParquetSchema? other) =>
        other is not null && _fields.AsSpan().SequenceEqual(other._fields) && Tree.Groups.AsSpan().SequenceEqual(other.Tree.Groups);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ParquetSchema);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        foreach (var f in _fields)
        {
            hash.Add(f);
        }

        foreach (var g in Tree.Groups)
        {
            hash.Add(g);
        }

        return hash.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Join(", ", _fields.Select(f => $"{f.Name}: {f.TypeName}").Concat(Tree.Groups.Select(g => $"{g.Path}: {g.Kind}{(g.Nullable ? "?" : "")}")));
}
