using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// The checkpoints Weft writes: DuckDB reads each as the protocol's checkpoint schema holding the table's
/// state at its version (compared with a reconciliation of the JSON log done here), and a table whose
/// entries before a Weft checkpoint are deleted reads as its complete log.
/// </summary>
public sealed class CheckpointWriteTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch);

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Every_interval_a_checkpoint_duckdb_reads_as_the_state_and_weft_opens_from(int seed)
    {
        var path = _directory.Combine($"t{seed}");
        var random = new Random(seed);
        var options = new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 4 };
        var table = await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, options);
        var live = new List<AddFile>();
        long latest = 0;
        for (int i = 0; i < 13; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(5));
            latest = (await table.CommitAsync(RandomCommit(path, random, live))).Version;
            await table.CheckpointWrite;
        }

        var log = Path.Combine(path, "_delta_log");
        Directory.GetFiles(log, "*.checkpoint.parquet").Select(Path.GetFileName).Order(StringComparer.Ordinal)
            .Should().Equal(DeltaLogNaming.CheckpointFileName(4), DeltaLogNaming.CheckpointFileName(8), DeltaLogNaming.CheckpointFileName(12));
        JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(log, "_last_checkpoint")))!["version"]!.GetValue<long>().Should().Be(12);

        foreach (long version in new long[] { 4, 8, 12 })
        {
            await AssertDuckDbReadsTheStateAsync(path, version);
        }

        var complete = await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync();
        for (long v = 0; v < 12; v++)
        {
            File.Delete(Path.Combine(log, DeltaLogNaming.CommitFileName(v)));
        }

        var fromCheckpoint = await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync();
        fromCheckpoint.Version.Should().Be(latest);
        fromCheckpoint.Files().Select(TestTables.Describe).Should().Equal(complete.Files().Select(TestTables.Describe));
        fromCheckpoint.Schema.Should().Be(complete.Schema);
        fromCheckpoint.TableId.Should().Be(complete.TableId);
    }

    /// <summary>
    /// A removed file stays a tombstone in later checkpoints (carried from the one before, whose commits
    /// the next does not read again) until the retention passes, and not once its path is live again.
    /// </summary>
    [Fact]
    public async Task Tombstones_are_carried_forward_until_they_expire()
    {
        var path = _directory.Combine("tombstones");
        var options = new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 3 };
        var table = await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, options);
        var a = TestTables.WriteFile(path, TestTables.Buckets[0], "stream");
        var b = TestTables.WriteFile(path, TestTables.Buckets[1], "stream");
        await table.CommitAsync(TestTables.Append(a, b)); // 1
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(a.Path).Build()); // 2: a removed now
        _time.Advance(TimeSpan.FromDays(3));
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(b.Path).Build()); // 3: b removed 3 days later
        await table.CheckpointWrite;
        (await TombstonesAsync(path, 3)).Should().BeEquivalentTo([a.Path, b.Path]);

        _time.Advance(TimeSpan.FromDays(5)); // a's removal is 8 days old, b's 5
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[2], "batch"))); // 4
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[2], "batch"))); // 5
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[2], "batch"))); // 6
        await table.CheckpointWrite;
        (await TombstonesAsync(path, 6)).Should().BeEquivalentTo([b.Path], "a's tombstone expired after 7 days, b's came from checkpoint 3");

        await table.CommitAsync(TestTables.Append(b with { ModificationTime = _time.GetUtcNow() })); // 7: b is live again
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[3], "batch"))); // 8
        await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[3], "batch"))); // 9
        await table.CheckpointWrite;
        (await TombstonesAsync(path, 9)).Should().BeEmpty();
    }

    [Fact]
    public async Task A_checkpoint_written_on_demand_holds_the_latest_version()
    {
        var path = _directory.Combine("demand");
        var table = await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 0 });
        var live = new List<AddFile>();
        var random = new Random(11);
        for (int i = 0; i < 6; i++)
        {
            await table.CommitAsync(RandomCommit(path, random, live));
        }

        var removed = live[0];
        await table.CommitAsync(DeltaTransaction.Create("DELETE").Remove(removed.Path).Build());

        var result = await table.WriteCheckpointAsync();

        result.Version.Should().Be(7);
        result.Path.Should().Be(Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(7)));
        result.Files.Should().Be(live.Count - 1);
        result.Tombstones.Should().BeGreaterThanOrEqualTo(1);
        result.Bytes.Should().Be(new FileInfo(result.Path).Length);
        (await TombstonesAsync(path, 7)).Should().Contain(removed.Path).And.HaveCount(result.Tombstones);
        await AssertDuckDbReadsTheStateAsync(path, 7);
    }

    [Fact]
    public async Task No_checkpoint_is_written_when_the_interval_is_zero_or_the_version_is_not_due()
    {
        var path = _directory.Combine("none");
        var table = await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 0 });
        for (int i = 0; i < 5; i++)
        {
            await table.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[0], "stream")));
            await table.CheckpointWrite;
        }

        var other = await DeltaTable.OpenAsync(path, new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 7 });
        await other.CommitAsync(TestTables.Append(TestTables.WriteFile(path, TestTables.Buckets[0], "stream"))); // 6: not due
        await other.CheckpointWrite;

        TestTables.LogFiles(path).Should().NotContain(f => f.Contains(".checkpoint", StringComparison.Ordinal) || f == "_last_checkpoint");
    }

    private static DeltaTransaction RandomCommit(string path, Random random, List<AddFile> live)
    {
        var choice = random.Next(10);
        if (choice < 6 || live.Count == 0)
        {
            var files = Enumerable.Range(0, random.Next(1, 4))
                .Select(_ => TestTables.WriteFile(path, TestTables.Buckets[random.Next(TestTables.Buckets.Length)], random.Next(2) == 0 ? "stream" : "batch", random.Next(1, 1000)))
                .ToArray();
            live.AddRange(files);
            return TestTables.Append(files);
        }

        var removed = live[random.Next(live.Count)];
        live.Remove(removed);
        return DeltaTransaction.Create("DELETE").Remove(removed.Path).Build();
    }

    /// <summary>
    /// DuckDB reads the checkpoint of <paramref name="version"/>: its column types are the protocol's, one
    /// protocol and one metaData row as the log's last ones, one add per file live at the version (as a
    /// reconciliation of the JSON entries finds them, dataChange false), and a tombstone per file removed
    /// and not live again (none expired here).
    /// </summary>
    private static async Task AssertDuckDbReadsTheStateAsync(string path, long version)
    {
        var log = Path.Combine(path, "_delta_log");
        JsonObject? protocol = null, metadata = null;
        var adds = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        var removes = new SortedSet<string>(StringComparer.Ordinal);
        for (long v = 0; v <= version; v++)
        {
            foreach (var line in await File.ReadAllLinesAsync(Path.Combine(log, DeltaLogNaming.CommitFileName(v))))
            {
                var action = JsonNode.Parse(line)!.AsObject();
                protocol = action["protocol"]?.AsObject() ?? protocol;
                metadata = action["metaData"]?.AsObject() ?? metadata;
                if (action["add"] is JsonObject add)
                {
                    adds[add["path"]!.GetValue<string>()] = add;
                    removes.Remove(add["path"]!.GetValue<string>());
                }
                else if (action["remove"] is JsonObject remove)
                {
                    adds.Remove(remove["path"]!.GetValue<string>());
                    removes.Add(remove["path"]!.GetValue<string>());
                }
            }
        }

        var file = DuckDb.Quote(Path.Combine(log, DeltaLogNaming.CheckpointFileName(version)));
        var results = await DuckDb.RunAsync(
            $"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet({file}))",
            $"SELECT add.path, add.size, add.modificationTime, add.dataChange, add.stats, map_keys(add.partitionValues), map_values(add.partitionValues) FROM read_parquet({file}) WHERE add IS NOT NULL ORDER BY add.path",
            $"SELECT protocol.minReaderVersion, protocol.minWriterVersion FROM read_parquet({file}) WHERE protocol IS NOT NULL",
            $"SELECT metaData.id, metaData.schemaString, metaData.partitionColumns, metaData.format.provider, metaData.createdTime FROM read_parquet({file}) WHERE metaData IS NOT NULL",
            $"SELECT remove.path FROM read_parquet({file}) WHERE remove IS NOT NULL ORDER BY remove.path",
            $"SELECT count(*) FROM read_parquet({file}) WHERE txn IS NOT NULL");

        var types = results[0].Rows.ToDictionary(r => r[0].GetString()!, r => r[1].GetString()!.Replace("\"", "", StringComparison.Ordinal));
        types["add"].Should().Be("STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR))");
        types["remove"].Should().Be("STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT)");
        types["protocol"].Should().Be("STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)");
        types["metaData"].Should().Be("STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)");

        var duckAdds = results[1].Rows;
        duckAdds.Select(r => r[0].GetString()).Should().Equal(adds.Keys, $"the live files at version {version}");
        foreach (var row in duckAdds)
        {
            var add = adds[row[0].GetString()!];
            row[1].GetString().Should().Be(add["size"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture));
            row[2].GetString().Should().Be(add["modificationTime"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture));
            row[3].GetBoolean().Should().BeFalse();
            row[4].GetString().Should().Be(add["stats"]?.GetValue<string>());
            var partition = add["partitionValues"]!.AsObject().OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
            row[5].EnumerateArray().Select(k => k.GetString()).Should().Equal(partition.Select(p => p.Key));
            row[6].EnumerateArray().Select(k => k.ValueKind == JsonValueKind.Null ? null : k.GetString()).Should().Equal(partition.Select(p => p.Value?.GetValue<string>()));
        }

        results[2].Rows.Should().ContainSingle().Which.Select(v => v.ToString()).Should().Equal(
            protocol!["minReaderVersion"]!.ToJsonString(), protocol["minWriterVersion"]!.ToJsonString());
        var meta = results[3].Rows.Should().ContainSingle().Which;
        meta[0].GetString().Should().Be(metadata!["id"]!.GetValue<string>());
        meta[1].GetString().Should().Be(metadata["schemaString"]!.GetValue<string>());
        meta[2].EnumerateArray().Select(c => c.GetString()).Should().Equal(metadata["partitionColumns"]!.AsArray().Select(c => c!.GetValue<string>()));
        meta[3].GetString().Should().Be(metadata["format"]!["provider"]!.GetValue<string>());
        results[4].Rows.Select(r => r[0].GetString()).Should().Equal(removes);
        results[5].Rows[0][0].GetString().Should().Be("0");
    }

    /// <summary>
    /// Idempotent writers (Spark streaming) record their last committed batch as <c>txn</c> actions; a
    /// checkpoint must carry the latest per application (PROTOCOL.md), or such a writer reading it would
    /// commit a batch again. They survive a checkpoint, the log before it being cleaned up, and the next one;
    /// so do the tags another engine set on an <c>add</c>.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_carries_each_applications_latest_transaction_forward()
    {
        var path = _directory.Combine("txn");
        var options = new DeltaTableOptions { TimeProvider = _time, CheckpointInterval = 0 };
        await DeltaTable.CreateAsync(path, TestTables.Schema, TestTables.PartitionColumns, options);
        JsonObject Txn(string app, long version, long? lastUpdated) =>
            new() { ["txn"] = new JsonObject { ["appId"] = app, ["version"] = version, ["lastUpdated"] = lastUpdated } };
        JsonObject Info(string operation) =>
            new() { ["commitInfo"] = new JsonObject { ["timestamp"] = _time.GetUtcNow().ToUnixTimeMilliseconds(), ["operation"] = operation } };
        var tagged = TestTables.WriteFile(path, "2026-11-23T10", "stream", written: _time.GetUtcNow());
        var add = new JsonObject
        {
            ["add"] = new JsonObject
            {
                ["path"] = tagged.Path,
                ["partitionValues"] = new JsonObject { ["bucket"] = tagged.PartitionValues["bucket"], ["path"] = tagged.PartitionValues["path"] },
                ["size"] = tagged.Size,
                ["modificationTime"] = tagged.ModificationTime.ToUnixTimeMilliseconds(),
                ["dataChange"] = true,
                ["tags"] = new JsonObject { ["INSERTION_TIME"] = "1700000000000000" },
            },
        };
        await TestTables.WriteRawLogAsync(path, 1, Info("STREAMING UPDATE"), Txn("query-a", 5, 1_700_000_000_000), add);
        await TestTables.WriteRawLogAsync(path, 2, Info("STREAMING UPDATE"), Txn("query-a", 6, 1_700_000_100_000), Txn("query-b", 1, null));
        var first = await (await DeltaTable.OpenAsync(path, options)).WriteCheckpointAsync();
        for (long v = 0; v < 2; v++)
        {
            File.Delete(Path.Combine(path, "_delta_log", v.ToString("D20", CultureInfo.InvariantCulture) + ".json"));
        }

        var reopened = await DeltaTable.OpenAsync(path, options);
        var live = new List<AddFile>();
        await reopened.CommitAsync(RandomCommit(path, new Random(3), live));                       // v3, Weft's own
        var second = await reopened.WriteCheckpointAsync();

        first.Version.Should().Be(2);
        second.Version.Should().Be(3);
        foreach (var version in new[] { 2L, 3L })
        {
            var file = DuckDb.Quote(Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(version)));
            var rows = (await DuckDb.RunAsync($"SELECT txn.appId, txn.version::VARCHAR, coalesce(txn.lastUpdated::VARCHAR, 'null') FROM read_parquet({file}) WHERE txn IS NOT NULL ORDER BY 1"))[0].Rows;
            rows.Select(r => $"{r[0].GetString()} {r[1].GetString()} {r[2].GetString()}").Should()
                .Equal(["query-a 6 1700000100000", "query-b 1 null"], $"the checkpoint at version {version}");
            var tags = (await DuckDb.RunAsync($"SELECT add.tags::VARCHAR FROM read_parquet({file}) WHERE add.path = {DuckDb.Quote(tagged.Path)}"))[0].Rows;
            tags.Should().ContainSingle().Which[0].GetString().Should().Contain("INSERTION_TIME=1700000000000000", "an add's tags are carried too");
        }
    }

    private static async Task<IReadOnlyList<string>> TombstonesAsync(string path, long version)
    {
        var file = DuckDb.Quote(Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(version)));
        var result = await DuckDb.RunAsync($"SELECT remove.path FROM read_parquet({file}) WHERE remove IS NOT NULL ORDER BY 1");
        return [.. result[0].Rows.Select(r => Uri.UnescapeDataString(r[0].GetString()!))];
    }
}
