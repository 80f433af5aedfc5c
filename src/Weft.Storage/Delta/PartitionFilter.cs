using System.Collections.Immutable;
using System.Text;

namespace Weft.Storage;

/// <summary>
/// A conjunction of conditions on partition values, used to prune files (<see cref="DeltaSnapshot.Files"/>)
/// and to name the partitions a replace commit rewrites. Immutable: each method returns a new filter.
/// Values are compared as strings (ordinal); time buckets sort correctly when formatted as ISO 8601,
/// e.g. <c>2026-11-23T10</c>.
/// </summary>
/// <example><c>PartitionFilter.All.Between("bucket", "2026-11-23T00", "2026-11-23T23").In("path", "stream", "batch")</c></example>
public sealed class PartitionFilter
{
    private readonly ImmutableArray<Condition> _conditions;

    private PartitionFilter(ImmutableArray<Condition> conditions)
    {
        _conditions = conditions;
    }

    /// <summary>The filter that matches every partition.</summary>
    public static PartitionFilter All { get; } = new([]);

    /// <summary>Exactly one partition: every given column equals the given value.</summary>
    public static PartitionFilter ForPartition(IReadOnlyDictionary<string, string?> partitionValues)
    {
        ArgumentNullException.ThrowIfNull(partitionValues);
        var filter = All;
        foreach (var (column, value) in partitionValues.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            filter = filter.Equal(column, value);
        }

        return filter;
    }

    /// <summary>The partition columns this filter constrains.</summary>
    public IEnumerable<string> Columns => _conditions.Select(c => c.Column).Distinct(StringComparer.Ordinal);

    /// <summary>True when the filter has no condition.</summary>
    public bool IsAll => _conditions.IsEmpty;

    /// <summary>Column equals value (null matches the null partition).</summary>
    public PartitionFilter Equal(string column, string? value) => In(column, value);

    /// <summary>Column equals one of the values.</summary>
    public PartitionFilter In(string column, params string?[] values)
    {
        ArgumentException.ThrowIfNullOrEmpty(column);
        ArgumentNullException.ThrowIfNull(values);
        var set = values.Select(Normalize).ToImmutableArray();
        return new(_conditions.Add(new Condition(column, set, null, null, IsRange: false)));
    }

    /// <summary>Column between two bounds, inclusive, ordinal string order; a null bound is open. Nulls never match.</summary>
    public PartitionFilter Between(string column, string? fromInclusive, string? toInclusive)
    {
        ArgumentException.ThrowIfNullOrEmpty(column);
        return new(_conditions.Add(new Condition(column, [], fromInclusive, toInclusive, IsRange: true)));
    }

    /// <summary>True when the partition values satisfy every condition (a missing column counts as null).</summary>
    public bool Matches(IReadOnlyDictionary<string, string?> partitionValues)
    {
        ArgumentNullException.ThrowIfNull(partitionValues);
        foreach (var condition in _conditions)
        {
            partitionValues.TryGetValue(condition.Column, out var value);
            if (!condition.Matches(Normalize(value)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Throws when the filter names a column that is not a partition column.</summary>
    internal void Validate(IReadOnlyList<string> partitionColumns, string tablePath)
    {
        foreach (var column in Columns)
        {
            if (!partitionColumns.Contains(column, StringComparer.Ordinal))
            {
                throw new ArgumentException(
                    $"Partition filter names column '{column}', which is not a partition column of table '{tablePath}' (partition columns: [{string.Join(", ", partitionColumns)}]).");
            }
        }
    }

    /// <summary>SQL-like text, e.g. <c>bucket BETWEEN '2026-11-23T00' AND '2026-11-23T23' AND path IN ('stream')</c>.</summary>
    public override string ToString()
    {
        if (_conditions.IsEmpty)
        {
            return "true";
        }

        var builder = new StringBuilder();
        foreach (var condition in _conditions)
        {
            if (builder.Length > 0)
            {
                builder.Append(" AND ");
            }

            builder.Append(condition);
        }

        return builder.ToString();
    }

    // The protocol treats an empty partition value as null.
    private static string? Normalize(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private sealed record Condition(string Column, ImmutableArray<string?> Values, string? From, string? To, bool IsRange)
    {
        public bool Matches(string? value)
        {
            if (!IsRange)
            {
                foreach (var candidate in Values)
                {
                    if (string.Equals(candidate, value, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }

                return false;
            }

            return value is not null
                && (From is null || string.CompareOrdinal(value, From) >= 0)
                && (To is null || string.CompareOrdinal(value, To) <= 0);
        }

        public override string ToString()
        {
            if (IsRange)
            {
                return (From, To) switch
                {
                    (null, null) => $"{Column} IS NOT NULL",
                    (_, null) => $"{Column} >= {Quote(From)}",
                    (null, _) => $"{Column} <= {Quote(To)}",
                    _ => $"{Column} BETWEEN {Quote(From)} AND {Quote(To)}",
                };
            }

            return Values.Length == 1
                ? Values[0] is null ? $"{Column} IS NULL" : $"{Column} = {Quote(Values[0])}"
                : $"{Column} IN ({string.Join(", ", Values.Select(Quote))})";
        }

        private static string Quote(string? value) => value is null ? "NULL" : "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
    }
}
