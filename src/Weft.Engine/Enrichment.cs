using System.Collections.Immutable;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>
/// An enrichment source in memory: every version of every entity, so a lookup can ask for the latest
/// version, or the latest version known at a time (for "as served" training data). A correction is
/// simply a newer version.
/// </summary>
public sealed class EnrichmentTable
{
    private readonly Dictionary<long, int[]>? _byLong;
    private readonly Dictionary<string, int[]>? _byString;
    private readonly long[] _versions;

    private EnrichmentTable(EnrichmentSourceDefinition source, EventBatch rows, Dictionary<long, int[]>? byLong, Dictionary<string, int[]>? byString, long[] versions)
    {
        Source = source;
        Rows = rows;
        _byLong = byLong;
        _byString = byString;
        _versions = versions;
    }

    public EnrichmentSourceDefinition Source { get; }

    /// <summary>Every version row: key, version column, feature columns.</summary>
    public EventBatch Rows { get; }

    public int EntityCount => _byLong?.Count ?? _byString!.Count;

    /// <summary>Schema of the rows a source table must provide.</summary>
    public static ImmutableArray<FieldDefinition> RowSchema(EnrichmentSourceDefinition source) =>
        [source.Key with { Nullable = false }, new FieldDefinition(source.VersionColumn, WeftType.Timestamp, Nullable: false), .. source.Columns];

    /// <summary>Indexes <paramref name="rows"/> (schema <see cref="RowSchema"/>); versions of one key are ordered by version time.</summary>
    public static EnrichmentTable Build(EnrichmentSourceDefinition source, EventBatch rows)
    {
        var keyColumn = rows[source.Key.Name];
        var versions = ((PrimitiveColumn<long>)rows[source.VersionColumn]).Values;
        Dictionary<long, List<int>>? longs = null;
        Dictionary<string, List<int>>? strings = null;
        if (keyColumn is StringColumn s)
        {
            strings = new(StringComparer.Ordinal);
            for (int i = 0; i < rows.RowCount; i++)
            {
                if (s.Values[i] is { } k)
                {
                    (strings.TryGetValue(k, out var l) ? l : strings[k] = []).Add(i);
                }
            }
        }
        else
        {
            var keys = ExpressionCompiler.Longs(keyColumn);
            longs = [];
            for (int i = 0; i < rows.RowCount; i++)
            {
                if (!keyColumn.IsNull(i))
                {
                    (longs.TryGetValue(keys[i], out var l) ? l : longs[keys[i]] = []).Add(i);
                }
            }
        }

        int[] Sorted(List<int> list)
        {
            var a = list.ToArray();
            Array.Sort(a, (x, y) => versions[x] != versions[y] ? versions[x].CompareTo(versions[y]) : x.CompareTo(y));
            return a;
        }

        return new EnrichmentTable(source, rows,
            longs?.ToDictionary(kv => kv.Key, kv => Sorted(kv.Value)),
            strings?.ToDictionary(kv => kv.Key, kv => Sorted(kv.Value), StringComparer.Ordinal),
            versions);
    }

    /// <summary>The row of the latest version of <paramref name="key"/> with version time ≤ <paramref name="knownAtMicros"/>, or -1.</summary>
    public int Find(long key, long knownAtMicros = long.MaxValue) =>
        _byLong is not null && _byLong.TryGetValue(key, out var rows) ? Latest(rows, knownAtMicros) : -1;

    public int Find(string key, long knownAtMicros = long.MaxValue) =>
        _byString is not null && _byString.TryGetValue(key, out var rows) ? Latest(rows, knownAtMicros) : -1;

    private int Latest(int[] rows, long knownAt)
    {
        for (int i = rows.Length - 1; i >= 0; i--)
        {
            if (_versions[rows[i]] <= knownAt)
            {
                return rows[i];
            }
        }

        return -1;
    }
}

/// <summary>Attaches enrichment columns by key; a missing entity leaves the columns null (it is not an error).</summary>
public sealed class EnrichExecutor : IEventExecutor
{
    private readonly EnrichmentDefinition _enrichment;
    private readonly EnrichmentTable _table;
    private readonly HashSet<string>? _eventTypes;
    private readonly FieldDefinition[] _outputs;
    private readonly Column[] _sourceColumns;
    private readonly long _knownAt;

    /// <param name="knownAtMicros">Use versions known at this time; long.MaxValue for the latest (corrected) version.</param>
    public EnrichExecutor(EnrichmentDefinition enrichment, EnrichmentTable table, long knownAtMicros = long.MaxValue)
    {
        _enrichment = enrichment;
        _table = table;
        _knownAt = knownAtMicros;
        _eventTypes = enrichment.EventTypes.IsDefaultOrEmpty ? null : enrichment.EventTypes.ToHashSet(StringComparer.Ordinal);
        _outputs = new FieldDefinition[enrichment.Columns.Length];
        _sourceColumns = new Column[enrichment.Columns.Length];
        for (int c = 0; c < _outputs.Length; c++)
        {
            var def = table.Source.Columns.First(x => x.Name == enrichment.Columns[c]);
            _outputs[c] = def with { Nullable = true };
            // One extra null row at the end: rows without a match gather from it.
            var source = table.Rows[def.Name];
            _sourceColumns[c] = Column.Concat(source.Type, [source, Column.AllNull(source.Type, 1)]);
        }
    }

    public string Name => $"enrich:{_enrichment.Source}";

    /// <summary>How many lookups missed (no entity, or no version known yet).</summary>
    public long Misses { get; private set; }

    public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input)
    {
        var schema = input;
        foreach (var o in _outputs)
        {
            schema = Rows.With(schema, o);
        }

        return schema;
    }

    public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
    {
        int n = batch.RowCount;
        var sourceRows = new int[n];
        var keyColumn = batch[_enrichment.On];
        var types = _eventTypes is null ? null : (StringColumn)batch[StandardColumns.EventType];
        long[]? longKeys = keyColumn is StringColumn ? null : ExpressionCompiler.Longs(keyColumn);
        long misses = 0;
        for (int i = 0; i < n; i++)
        {
            if (keyColumn.IsNull(i) || (types is not null && !_eventTypes!.Contains(types.Values[i]!)))
            {
                sourceRows[i] = -1;
                continue;
            }

            sourceRows[i] = longKeys is not null ? _table.Find(longKeys[i], _knownAt) : _table.Find(((StringColumn)keyColumn).Values[i]!, _knownAt);
            misses += sourceRows[i] < 0 ? 1 : 0;
        }

        Misses += misses;
        var result = batch;
        var gather = new int[n];
        for (int c = 0; c < _outputs.Length; c++)
        {
            var source = _sourceColumns[c];
            for (int i = 0; i < n; i++)
            {
                gather[i] = sourceRows[i] >= 0 ? sourceRows[i] : source.Length - 1;
            }

            result = result.WithColumn(_outputs[c], source.Gather(gather));
        }

        return ValueTask.FromResult(result);
    }
}
