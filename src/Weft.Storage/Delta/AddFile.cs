using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Weft.Storage;

/// <summary>
/// A data file of the table: what a writer hands to a commit, and what a snapshot lists.
/// </summary>
/// <param name="Path">Relative to the table root, '/'-separated, not URI-encoded (the log encoding is applied on commit).</param>
/// <param name="PartitionValues">One entry per partition column; null (or empty) is the null partition value.</param>
/// <param name="Size">File size in bytes.</param>
/// <param name="ModificationTime">When the file was written (stored with millisecond precision).</param>
/// <param name="Stats">Per-file statistics JSON (<c>numRecords</c>, <c>minValues</c>, <c>maxValues</c>, <c>nullCount</c>); see <see cref="FileStatistics"/>.</param>
/// <param name="DataChange">False when the commit only rearranges existing rows (e.g. compaction).</param>
/// <param name="DeletionVector">
/// The rows of the file another engine deleted without rewriting it (a table with the
/// <c>deletionVectors</c> feature); readers skip them. Weft's own writes never carry one.
/// </param>
/// <param name="Tags">The <c>add</c> action's tags another engine set (e.g. an ingestion time); kept, so that a checkpoint or snapshot carries them on.</param>
public sealed record AddFile(
    string Path,
    IReadOnlyDictionary<string, string?> PartitionValues,
    long Size,
    DateTimeOffset ModificationTime,
    string? Stats = null,
    bool DataChange = true,
    DeletionVectorDescriptor? DeletionVector = null,
    IReadOnlyDictionary<string, string>? Tags = null)
{
    /// <summary>
    /// <c>numRecords</c> from <see cref="Stats"/>, when present and readable: the rows physically in the
    /// file, deleted ones included (see <see cref="LiveRecords"/>).
    /// </summary>
    public long? NumRecords => FileStatistics.TryParse(Stats, out var stats) ? stats.NumRecords : null;

    /// <summary>The rows a reader gets from the file: <see cref="NumRecords"/> less those its deletion vector removes.</summary>
    public long? LiveRecords => NumRecords - (DeletionVector?.Cardinality ?? 0);

    /// <summary>The partition values in the table's partition-column order, as <c>col=value</c> pairs joined by '/'.</summary>
    public string DescribePartition(IReadOnlyList<string> partitionColumns)
    {
        ArgumentNullException.ThrowIfNull(partitionColumns);
        return string.Join('/', partitionColumns.Select(c => c + "=" + (PartitionValues.TryGetValue(c, out var v) ? v ?? "null" : "null")));
    }
}

/// <summary>
/// The per-file statistics of the Delta protocol, built by data writers and serialised into <c>add.stats</c>.
/// Column values mirror the data schema: a timestamp as <see cref="FormatTimestamp"/>, numbers as JSON numbers,
/// strings as JSON strings.
/// </summary>
public sealed record FileStatistics(long NumRecords, JsonObject? MinValues = null, JsonObject? MaxValues = null, JsonObject? NullCount = null)
{
    /// <summary>The JSON string for <see cref="AddFile.Stats"/>.</summary>
    public string ToJson()
    {
        var root = new JsonObject { ["numRecords"] = NumRecords };
        if (MinValues is not null)
        {
            root["minValues"] = MinValues.DeepClone();
        }

        if (MaxValues is not null)
        {
            root["maxValues"] = MaxValues.DeepClone();
        }

        if (NullCount is not null)
        {
            root["nullCount"] = NullCount.DeepClone();
        }

        return root.ToJsonString();
    }

    /// <summary>Reads a stats JSON string; false when it is absent, malformed, or lacks <c>numRecords</c>.</summary>
    public static bool TryParse(string? json, [NotNullWhen(true)] out FileStatistics? statistics)
    {
        statistics = null;
        if (string.IsNullOrEmpty(json))
        {
            return false;
        }

        try
        {
            if (JsonNode.Parse(json) is not JsonObject root
                || root["numRecords"] is not JsonValue records
                || !records.TryGetValue(out long numRecords))
            {
                return false;
            }

            statistics = new FileStatistics(numRecords, root["minValues"] as JsonObject, root["maxValues"] as JsonObject, root["nullCount"] as JsonObject);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A timestamp the way Delta writers put it in stats: UTC, millisecond precision, ISO 8601.</summary>
    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
