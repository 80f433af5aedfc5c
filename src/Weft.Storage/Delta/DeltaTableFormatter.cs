using System.Globalization;
using System.Text;

namespace Weft.Storage;

/// <summary>
/// Plain-text views of a table for <c>weft table ls|history|vacuum PATH</c>: each method returns the
/// lines to print (no trailing newlines, invariant culture, UTC times), so the CLI only prints.
/// </summary>
public static class DeltaTableFormatter
{
    /// <summary>
    /// A DuckDB statement that reads exactly the snapshot's files (<c>weft table ls --duckdb</c>). A glob
    /// over the table's directory would also read files a later version removed (a compaction, a batch
    /// recompute) until a vacuum deletes them, and files staged for a commit not made yet. Throws
    /// <see cref="NotSupportedException"/> for a version whose files carry deletion vectors (read_parquet
    /// would return the rows another engine deleted) or whose columns are mapped to physical names.
    /// </summary>
    public static string DuckDbQuery(DeltaSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var files = snapshot.Files();
        if (snapshot.Mapping.IsActive)
        {
            throw new NotSupportedException(
                $"version {snapshot.Version} maps its columns to physical names (delta.columnMapping.mode = name): read_parquet over the files would show those names, not the table's. "
                + $"DuckDB's delta extension maps them: SELECT * FROM delta_scan('{snapshot.TablePath.Replace("'", "''", StringComparison.Ordinal)}')");
        }

        if (files.FirstOrDefault(f => f.DeletionVector is not null) is { } withVector)
        {
            throw new NotSupportedException(
                $"{files.Count(f => f.DeletionVector is not null):N0} of the {files.Count:N0} files of version {snapshot.Version} have deletion vectors "
                + $"(rows another engine deleted without rewriting the file, e.g. {withVector.DeletionVector!.Cardinality:N0} of {withVector.Path}); "
                + $"read_parquet over the files would return those rows. DuckDB's delta extension honours them: SELECT * FROM delta_scan('{snapshot.TablePath.Replace("'", "''", StringComparison.Ordinal)}')");
        }

        if (files.Count == 0)
        {
            // read_parquet refuses an empty list; an empty relation of the table's columns keeps a script working.
            var empty = new StringBuilder("SELECT ");
            var fields = snapshot.Schema.Fields;
            for (int i = 0; i < fields.Count; i++)
            {
                var type = DuckDbType(fields[i].Type);
                empty.Append(i == 0 ? "" : ", ").Append("CAST(NULL AS ").Append(fields[i].IsList ? type + "[]" : type).Append(") AS \"")
                    .Append(fields[i].Name.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
            }

            return empty.Append(" WHERE false; -- version ").Append(snapshot.Version).Append(" has no files").ToString();
        }

        var sql = new StringBuilder("SELECT * FROM read_parquet([");
        for (int i = 0; i < files.Count; i++)
        {
            sql.Append(i == 0 ? "" : ", ").Append('\'').Append(snapshot.FullPath(files[i]).Replace("'", "''", StringComparison.Ordinal)).Append('\'');
        }

        // By name: a file written before a column was added (a signal's additive change) lacks it, and
        // reads it as NULL, as Delta readers do.
        sql.Append("], hive_partitioning = ").Append(snapshot.PartitionColumns.Count > 0 ? "true" : "false").Append(", union_by_name = true);");
        return sql.ToString();
    }

    /// <summary>The DuckDB type a Parquet file of Weft's holds for a column of this type (timestamps are UTC instants).</summary>
    private static string DuckDbType(DeltaDataType type) => type switch
    {
        DeltaDataType.Boolean => "BOOLEAN",
        DeltaDataType.Integer => "INTEGER",
        DeltaDataType.Long => "BIGINT",
        DeltaDataType.Float => "FLOAT",
        DeltaDataType.Double => "DOUBLE",
        DeltaDataType.String => "VARCHAR",
        DeltaDataType.Timestamp => "TIMESTAMPTZ",
        DeltaDataType.Date => "DATE",
        _ => "BLOB",
    };

    /// <summary>Header (version, schema, partitioning, totals) then one line per active file.</summary>
    public static IReadOnlyList<string> Ls(DeltaSnapshot snapshot, PartitionFilter? filter = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var files = snapshot.Files(filter);
        long bytes = 0;
        long rows = 0;
        var rowsKnown = true;
        var table = new List<string[]> { new[] { "SIZE", "ROWS", "MODIFIED", "PARTITION", "PATH" } };
        foreach (var file in files)
        {
            bytes += file.Size;
            var records = file.LiveRecords; // less the rows a deletion vector removes
            rows += records ?? 0;
            rowsKnown &= records.HasValue;
            table.Add(
            [
                Number(file.Size),
                records is { } r ? Number(r) : "-",
                Time(file.ModificationTime),
                snapshot.PartitionColumns.Count == 0 ? "-" : (file with { PartitionValues = snapshot.Mapping.ByName(file.PartitionValues) }).DescribePartition(snapshot.PartitionColumns),
                file.Path,
            ]);
        }

        var lines = new List<string>
        {
            $"table {snapshot.TablePath}",
            $"version {Number(snapshot.Version)} committed {Time(snapshot.Timestamp)}",
            $"schema {snapshot.Schema}",
            $"partitioned by {(snapshot.PartitionColumns.Count == 0 ? "(none)" : string.Join(", ", snapshot.PartitionColumns))}",
            $"{Number(files.Count)} file{(files.Count == 1 ? "" : "s")}{(filter is null || filter.IsAll ? "" : $" matching {filter}")}, "
                + $"{Number(bytes)} bytes, {(rowsKnown ? Number(rows) : Number(rows) + "+")} rows",
        };
        if (files.Count > 0)
        {
            lines.AddRange(Align(table, rightAligned: [true, true, false, false, false]));
        }

        return lines;
    }

    /// <summary>One line per commit, in the order given (<see cref="DeltaTable.GetHistoryAsync"/> lists newest first).</summary>
    public static IReadOnlyList<string> History(IReadOnlyList<CommitSummary> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var table = new List<string[]> { new[] { "VERSION", "TIMESTAMP", "OPERATION", "ADDED", "REMOVED", "PARAMETERS" } };
        foreach (var commit in history)
        {
            table.Add(
            [
                Number(commit.Version),
                Time(commit.Timestamp),
                commit.Operation,
                Number(commit.FilesAdded),
                Number(commit.FilesRemoved),
                string.Join(", ", commit.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")),
            ]);
        }

        return Align(table, rightAligned: [true, false, false, true, true, false]);
    }

    /// <summary>A summary line, then the files deleted (or, in a dry run, that would be).</summary>
    public static IReadOnlyList<string> Vacuum(VacuumResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var verb = result.DryRun ? "would delete" : "deleted";
        var lines = new List<string>
        {
            $"vacuum{(result.DryRun ? " (dry run)" : "")} {verb} {Number(result.Files.Count)} file{(result.Files.Count == 1 ? "" : "s")}, "
                + $"{Number(result.TotalBytes)} bytes; horizon {Time(result.Horizon)} (retention {Span(result.Retention)}), retained versions {Number(result.OldestRetainedVersion)}..{Number(result.LatestVersion)}",
        };
        if (result.Files.Count > 0)
        {
            var table = new List<string[]> { new[] { "SIZE", "PATH" } };
            table.AddRange(result.Files.Select(f => new[] { Number(f.Size), f.Path }));
            lines.AddRange(Align(table, rightAligned: [true, false]));
        }

        return lines;
    }

    /// <summary>A retention in the largest unit that states it whole (7d, 36h, 90m, 45s).</summary>
    private static string Span(TimeSpan span) =>
        span.Ticks % TimeSpan.TicksPerDay == 0 ? $"{span.Ticks / TimeSpan.TicksPerDay}d"
        : span.Ticks % TimeSpan.TicksPerHour == 0 ? $"{span.Ticks / TimeSpan.TicksPerHour}h"
        : span.Ticks % TimeSpan.TicksPerMinute == 0 ? $"{span.Ticks / TimeSpan.TicksPerMinute}m"
        : $"{span.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}s";

    private static List<string> Align(List<string[]> rows, bool[] rightAligned)
    {
        var widths = new int[rows[0].Length];
        foreach (var row in rows)
        {
            for (var i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        var lines = new List<string>(rows.Count);
        var builder = new StringBuilder();
        foreach (var row in rows)
        {
            builder.Clear();
            for (var i = 0; i < row.Length; i++)
            {
                if (i > 0)
                {
                    builder.Append("  ");
                }

                var last = i == row.Length - 1;
                builder.Append(rightAligned[i] ? row[i].PadLeft(widths[i]) : last ? row[i] : row[i].PadRight(widths[i]));
            }

            lines.Add(builder.ToString().TrimEnd());
        }

        return lines;
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
