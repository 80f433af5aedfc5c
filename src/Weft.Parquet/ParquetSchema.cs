namespace Weft.Parquet;

/// <summary>An ordered list of uniquely named top-level columns.</summary>
public sealed class ParquetSchema : IEquatable<ParquetSchema>
{
    private readonly ParquetField[] _fields;
    private readonly Dictionary<string, int> _byName;

    /// <summary>Creates a schema; throws when a name is empty or repeated, or there are no fields.</summary>
    public ParquetSchema(IReadOnlyList<ParquetField> fields)
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
    }

    /// <summary>The fields in column order.</summary>
    public IReadOnlyList<ParquetField> Fields => _fields;

    /// <summary>The field with this name; throws <see cref="KeyNotFoundException"/> when absent.</summary>
    public ParquetField this[string name] => _fields[IndexOfOrThrow(name)];

    /// <summary>The index of the field with this name, or -1.</summary>
    public int IndexOf(string name) => _byName.TryGetValue(name, out var i) ? i : -1;

    internal int IndexOfOrThrow(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out var i)
            ? i
            : throw new KeyNotFoundException($"The schema has no column '{name}'. Columns: {string.Join(", ", _byName.Keys)}.");
    }

    /// <inheritdoc/>
    public bool Equals(ParquetSchema? other) =>
        other is not null && _fields.AsSpan().SequenceEqual(other._fields);

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

        return hash.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", _fields.Select(f => $"{f.Name}: {f.TypeName}"));
}
