using System.Text.Json.Nodes;

namespace Weft.Storage.Tests;

/// <summary>A unique directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "weft-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail a test.
        }
    }
}

/// <summary>A clock the test sets; timers (used only by retry back-off) still run on real time.</summary>
internal sealed class FakeTimeProvider : TimeProvider
{
    private DateTimeOffset _now;

    public FakeTimeProvider(DateTimeOffset start)
    {
        _now = start;
    }

    public override DateTimeOffset GetUtcNow() => _now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public void Advance(TimeSpan by) => _now += by;

    public void Set(DateTimeOffset now) => _now = now;
}

/// <summary>The event-like table most tests use, and a way to drop fake data files into it.</summary>
internal static class TestTables
{
    /// <summary>Writes log entry <paramref name="version"/> as another engine would: one JSON action a line, written by the test, not by Weft.</summary>
    public static async Task WriteRawLogAsync(string path, long version, params System.Text.Json.Nodes.JsonObject[] actions)
    {
        var log = System.IO.Path.Combine(path, "_delta_log");
        Directory.CreateDirectory(log);
        await File.WriteAllTextAsync(
            System.IO.Path.Combine(log, version.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".json"),
            string.Concat(actions.Select(a => a.ToJsonString() + "\n")),
            new System.Text.UTF8Encoding(false));
    }

    public static readonly DateTimeOffset Epoch = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    public static readonly string[] PartitionColumns = ["bucket", "path"];

    public static DeltaSchema Schema { get; } = DeltaSchema.Of(
        new DeltaField("event_id", DeltaDataType.String, Nullable: false),
        new DeltaField("user_id", DeltaDataType.Long, Nullable: false),
        new DeltaField("event_time", DeltaDataType.Timestamp),
        DeltaField.List("embedding", DeltaDataType.Float),
        new DeltaField("bucket", DeltaDataType.String),
        new DeltaField("path", DeltaDataType.String));

    /// <summary>Bucket values with characters a log path must encode (space, '+', '%', '/', non-ASCII).</summary>
    public static readonly string[] Buckets = ["2026-11-23T12", "2026-11-23T13", "a b+c%", "ü/x"];

    /// <summary>A file as the log states it (path, partition values, size, time, statistics), to compare two reads of a log.</summary>
    public static string Describe(AddFile file) =>
        $"{file.Path} [{string.Join(",", file.PartitionValues.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value ?? "<null>"}"))}] {file.Size} {file.ModificationTime.ToUnixTimeMilliseconds()} {file.Stats}";

    public static Dictionary<string, string?> Partition(string bucket, string path) =>
        new(StringComparer.Ordinal) { ["bucket"] = bucket, ["path"] = path };

    /// <summary>
    /// Writes a small stand-in data file (the table layer never opens it) in the partition's directory
    /// and returns its description. <paramref name="written"/> sets the file's time on disk and in the log.
    /// </summary>
    public static AddFile WriteFile(string tablePath, string bucket, string path, long rows = 10, DateTimeOffset? written = null)
    {
        var values = Partition(bucket, path);
        var relative = DeltaPaths.NewDataFilePath(PartitionColumns, values);
        var full = System.IO.Path.Combine(tablePath, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var bytes = new byte[16 + (rows % 7)];
        File.WriteAllBytes(full, bytes);
        var time = written ?? Epoch;
        File.SetLastWriteTimeUtc(full, time.UtcDateTime);
        var stats = new FileStatistics(
            rows,
            new JsonObject { ["user_id"] = 1, ["event_time"] = FileStatistics.FormatTimestamp(time) },
            new JsonObject { ["user_id"] = 99, ["event_time"] = FileStatistics.FormatTimestamp(time) },
            new JsonObject { ["user_id"] = 0, ["event_time"] = 0 });
        return new AddFile(relative, values, bytes.Length, time, stats.ToJson());
    }

    public static DeltaTransaction Append(params AddFile[] files) =>
        DeltaTransaction.Create("WRITE").WithWriterSchema(Schema).Add(files).Build();

    public static Task<DeltaTable> CreateAsync(string path, TimeProvider? time = null) =>
        DeltaTable.CreateAsync(path, Schema, PartitionColumns, Options(time));

    public static DeltaTableOptions Options(TimeProvider? time = null) =>
        time is null ? DeltaTableOptions.Default : new DeltaTableOptions { TimeProvider = time };

    public static string[] LogFiles(string tablePath) =>
        [.. Directory.GetFiles(System.IO.Path.Combine(tablePath, "_delta_log")).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal)!];
}
