using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Weft.Parquet;
using Weft.Storage;

namespace Weft.Bench.Checkpoint;

/// <summary>
/// <c>Weft.Bench.Checkpoint --dir D [--files N] [--runs K]</c>: builds in memory the state of a stream's
/// table with N live files (hourly buckets × stream/batch, Weft's per-file statistics) and N / 10 remove
/// tombstones, writes the same actions as D/actions.json (for DuckDB, bench/checkpoint/run.sh), then
/// times K checkpoint writes (D/_delta_log/N.checkpoint.parquet, as a table's handle writes it in the
/// background) and K reads of it (as a reader of a cleaned-up log opens it), and writes the figures to
/// D/weft.json.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            options[args[i].TrimStart('-')] = args[i + 1];
        }

        if (!options.TryGetValue("dir", out var dir))
        {
            await Console.Error.WriteLineAsync("usage: Weft.Bench.Checkpoint --dir D [--files N] [--runs K]").ConfigureAwait(false);
            return 2;
        }

        int files = int.Parse(options.GetValueOrDefault("files", "100000"), CultureInfo.InvariantCulture);
        int runs = int.Parse(options.GetValueOrDefault("runs", "5"), CultureInfo.InvariantCulture);
        var log = Path.Combine(dir, "_delta_log");
        Directory.CreateDirectory(log);

        var (actions, tombstones) = Actions(files);
        long version = files;
        var state = TableState.Apply(null, version, actions, DateTimeOffset.UnixEpoch, dir, "bench");
        await File.WriteAllBytesAsync(Path.Combine(dir, "actions.json"), DeltaActionCodec.Serialize(actions.Concat(tombstones))).ConfigureAwait(false);

        var writes = new List<double>();
        var reads = new List<double>();
        var columns = new List<double>();
        string checkpoint = "";
        for (int run = 0; run < runs + 1; run++)
        {
            foreach (var old in Directory.GetFiles(log))
            {
                File.Delete(old);
            }

            var watch = Stopwatch.StartNew();
            checkpoint = await CheckpointWriter.WriteAsync(log, state, tombstones, CancellationToken.None).ConfigureAwait(false);
            var written = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var (read, _) = await CheckpointReader.ReadAsync(new FileSystemLogStore(dir), dir, [new CheckpointFile(version, 1, 1, Path.GetFileName(checkpoint), false)], CancellationToken.None).ConfigureAwait(false);
            var readMs = watch.Elapsed.TotalMilliseconds;
            if (read.Count != actions.Count + tombstones.Count)
            {
                throw new InvalidOperationException($"read {read.Count} actions back, wrote {actions.Count + tombstones.Count}");
            }

            watch.Restart();
            await using (var reader = await ParquetFileReader.OpenAsync(checkpoint).ConfigureAwait(false))
            {
                // The columns alone, decoded as the checkpoint reader decodes them: the rest of its time is building actions.
                foreach (var field in reader.Schema.Fields)
                {
                    for (int group = 0; group < reader.RowGroups.Count; group++)
                    {
                        await reader.ReadColumnAsync(group, field.Name).ConfigureAwait(false);
                    }
                }
            }

            var columnsMs = watch.Elapsed.TotalMilliseconds;
            if (run > 0)
            {
                writes.Add(written); // the first run warms the JIT up
                reads.Add(readMs);
                columns.Add(columnsMs);
            }
        }

        writes.Sort();
        reads.Sort();
        columns.Sort();
        var result = new JsonObject
        {
            ["files"] = files,
            ["tombstones"] = tombstones.Count,
            ["checkpoint"] = checkpoint,
            ["bytes"] = new FileInfo(checkpoint).Length,
            ["write_ms"] = new JsonArray([.. writes.Select(w => JsonValue.Create(Math.Round(w, 1)))]),
            ["read_ms"] = new JsonArray([.. reads.Select(r => JsonValue.Create(Math.Round(r, 1)))]),
            ["columns_ms"] = new JsonArray([.. columns.Select(c => JsonValue.Create(Math.Round(c, 1)))]),
        };
        await File.WriteAllTextAsync(Path.Combine(dir, "weft.json"), result.ToJsonString()).ConfigureAwait(false);
        Console.WriteLine(result.ToJsonString());
        return 0;
    }

    /// <summary>A stream table's state: files spread over a month of hourly buckets, each with its statistics as Weft writes them.</summary>
    private static (List<DeltaAction> Actions, List<RemoveAction> Tombstones) Actions(int files)
    {
        var random = new Random(42);
        var schema = DeltaSchema.Of(
            new DeltaField("event_id", DeltaDataType.String, Nullable: false),
            new DeltaField("user_id", DeltaDataType.Long, Nullable: false),
            new DeltaField("event_time", DeltaDataType.Timestamp, Nullable: false),
            new DeltaField("item_id", DeltaDataType.Long),
            new DeltaField("bucket", DeltaDataType.String),
            new DeltaField("path", DeltaDataType.String));
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var actions = new List<DeltaAction>(files + 2)
        {
            new ProtocolAction(1, 2),
            new MetadataAction(Guid.NewGuid().ToString(), FormatSpec.Parquet, schema.ToSchemaString(), ["bucket", "path"], new Dictionary<string, string>(), start.ToUnixTimeMilliseconds()),
        };
        AddAction File(int i)
        {
            var hour = start.AddHours(random.Next(24 * 30));
            var bucket = hour.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);
            var path = random.Next(4) == 0 ? "batch" : "stream";
            var stats = new FileStatistics(
                random.Next(1_000, 200_000),
                new JsonObject { ["user_id"] = random.Next(1_000), ["event_time"] = FileStatistics.FormatTimestamp(hour), ["item_id"] = random.Next(500_000) },
                new JsonObject { ["user_id"] = random.Next(1_000, 2_000_000), ["event_time"] = FileStatistics.FormatTimestamp(hour.AddMinutes(59)), ["item_id"] = random.Next(500_000, 1_000_000) },
                new JsonObject { ["user_id"] = 0, ["event_time"] = 0, ["item_id"] = random.Next(100) });
            return new AddAction(
                $"bucket={bucket}/path={path}/part-{i:D6}-{Guid.NewGuid()}.c000.snappy.parquet",
                new Dictionary<string, string?> { ["bucket"] = bucket, ["path"] = path },
                random.Next(100_000, 20_000_000),
                hour.AddHours(1).ToUnixTimeMilliseconds(),
                false,
                stats.ToJson());
        }

        for (int i = 0; i < files; i++)
        {
            actions.Add(File(i));
        }

        var tombstones = new List<RemoveAction>(files / 10);
        for (int i = 0; i < files / 10; i++)
        {
            var gone = File(files + i);
            tombstones.Add(new RemoveAction(gone.Path, gone.ModificationTime + 3_600_000, true, true, gone.PartitionValues, gone.Size));
        }

        return (actions, tombstones);
    }
}
