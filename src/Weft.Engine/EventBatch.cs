using System.Collections.Immutable;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// A columnar batch of events: a schema and one column per field, all of <see cref="RowCount"/> rows.
/// The record-at-a-time (streaming) shape is simply a batch of one row; the bounded-table (batch)
/// shape is one large batch. Executors see only this type, so both shapes run the same code.
/// </summary>
public sealed class EventBatch
{
    private readonly Dictionary<string, int> _index;

    public EventBatch(ImmutableArray<FieldDefinition> schema, Column[] columns)
    {
        if (schema.Length != columns.Length)
        {
            throw new ArgumentException($"schema has {schema.Length} fields but {columns.Length} columns were given", nameof(columns));
        }

        RowCount = columns.Length == 0 ? 0 : columns[0].Length;
        _index = new Dictionary<string, int>(schema.Length, StringComparer.Ordinal);
        for (int i = 0; i < schema.Length; i++)
        {
            CheckColumn(schema[i], columns[i], RowCount);
            if (!_index.TryAdd(schema[i].Name, i))
            {
                throw new ArgumentException($"duplicate column '{schema[i].Name}'", nameof(schema));
            }
        }

        Schema = schema;
        Columns = columns;
    }

    private static void CheckColumn(FieldDefinition field, Column column, int rowCount)
    {
        if (column.Length != rowCount)
        {
            throw new ArgumentException($"column '{field.Name}' has {column.Length} rows, expected {rowCount}", "columns");
        }

        if (column.Type != field.Type)
        {
            throw new ArgumentException($"column '{field.Name}' is {column.Type}, schema says {field.Type}", "columns");
        }
    }

    /// <summary>Columns of the same names in the same order as a checked batch's: its name index is shared.</summary>
    private EventBatch(ImmutableArray<FieldDefinition> schema, Column[] columns, Dictionary<string, int> index, int rowCount)
    {
        (Schema, Columns, _index, RowCount) = (schema, columns, index, rowCount);
    }

    public ImmutableArray<FieldDefinition> Schema { get; }

    public IReadOnlyList<Column> Columns { get; }

    public int RowCount { get; }

    public Column this[string name] => Columns[_index.TryGetValue(name, out int i) ? i : throw new KeyNotFoundException($"no column '{name}' in batch")];

    public bool TryGetColumn(string name, out Column column)
    {
        if (_index.TryGetValue(name, out int i))
        {
            column = Columns[i];
            return true;
        }

        column = null!;
        return false;
    }

    public bool HasColumn(string name) => _index.ContainsKey(name);

    public static EventBatch Empty(ImmutableArray<FieldDefinition> schema)
    {
        var columns = new Column[schema.Length];
        for (int i = 0; i < schema.Length; i++)
        {
            columns[i] = Column.Empty(schema[i].Type, 0, null);
        }

        return new EventBatch(schema, columns);
    }

    /// <summary>Rows <paramref name="rows"/>, in that order, copied.</summary>
    public EventBatch Gather(ReadOnlySpan<int> rows)
    {
        var columns = new Column[Columns.Count];
        for (int i = 0; i < columns.Length; i++)
        {
            columns[i] = Columns[i].Gather(rows);
        }

        return new EventBatch(Schema, columns, _index, rows.Length);
    }

    /// <summary>
    /// Rows <paramref name="rows"/> (handed over: never written again) as views, each column copied when
    /// first read (<see cref="Column.View"/>). For the executors' chain, where a batch lives for one
    /// micro-batch: a view keeps the whole of the batch it came from alive, so anything kept longer
    /// gathers with <see cref="Gather(ReadOnlySpan{int})"/>.
    /// </summary>
    internal EventBatch GatherView(int[] rows)
    {
        var map = new RowMap(rows);
        var columns = new Column[Columns.Count];
        for (int i = 0; i < columns.Length; i++)
        {
            columns[i] = Columns[i].View(map);
        }

        return new EventBatch(Schema, columns, _index, rows.Length);
    }

    public EventBatch Slice(int start, int count)
    {
        var rows = new int[count];
        for (int i = 0; i < count; i++)
        {
            rows[i] = start + i;
        }

        return Gather(rows);
    }

    /// <summary>Adds a column, or replaces the one of the same name.</summary>
    public EventBatch WithColumn(FieldDefinition field, Column column)
    {
        if (_index.TryGetValue(field.Name, out int i))
        {
            CheckColumn(field, column, RowCount);
            var columns = Columns.ToArray();
            columns[i] = column;
            return new EventBatch(Schema.SetItem(i, field), columns, _index, RowCount);
        }

        return new EventBatch(Schema.Add(field), [.. Columns, column]);
    }

    /// <summary>The columns of <paramref name="schema"/>, in its order; missing ones are all-null.</summary>
    public EventBatch Project(ImmutableArray<FieldDefinition> schema)
    {
        var columns = new Column[schema.Length];
        for (int i = 0; i < schema.Length; i++)
        {
            columns[i] = TryGetColumn(schema[i].Name, out var c) ? c : Column.AllNull(schema[i].Type, RowCount);
            if (columns[i].Type != schema[i].Type)
            {
                throw new InvalidOperationException($"column '{schema[i].Name}' is {columns[i].Type}, expected {schema[i].Type}");
            }
        }

        return new EventBatch(schema, columns);
    }

    /// <summary>Concatenates batches projected onto <paramref name="schema"/>.</summary>
    public static EventBatch Concat(ImmutableArray<FieldDefinition> schema, IReadOnlyList<EventBatch> parts)
    {
        if (parts.Count == 1)
        {
            return parts[0].Project(schema);
        }

        var projected = new EventBatch[parts.Count];
        for (int i = 0; i < parts.Count; i++)
        {
            projected[i] = parts[i].Project(schema);
        }

        var columns = new Column[schema.Length];
        var slices = new Column[parts.Count];
        for (int c = 0; c < schema.Length; c++)
        {
            for (int p = 0; p < projected.Length; p++)
            {
                slices[p] = projected[p].Columns[c];
            }

            columns[c] = Column.Concat(schema[c].Type, slices);
        }

        return new EventBatch(schema, columns);
    }

    /// <summary>Row <paramref name="row"/> as name → boxed value; for output and tests, not hot paths.</summary>
    public IReadOnlyDictionary<string, object?> Row(int row)
    {
        var result = new Dictionary<string, object?>(Schema.Length, StringComparer.Ordinal);
        for (int i = 0; i < Schema.Length; i++)
        {
            result[Schema[i].Name] = Columns[i].GetValue(row);
        }

        return result;
    }
}
