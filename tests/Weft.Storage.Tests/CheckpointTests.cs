using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using Weft.Definitions;
using Weft.Parquet.Tests;
using Weft.Storage.Tests.Tables;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// Tables whose log another engine cleaned up behind a checkpoint (Spark and delta-rs delete commit
/// entries older than 30 days, keeping a checkpoint for the oldest version they keep). The checkpoints
/// here are written by DuckDB in the protocol's checkpoint schema (struct columns protocol, metaData,
/// add, remove, txn; maps for partitionValues, configuration and tags), from a reconciliation of the JSON
/// log done by this test on its own. What Weft reads from the checkpoint and the commits after it must be
/// what it reads from the complete log.
/// </summary>
public sealed class CheckpointTests : IDisposable
{
    private const string AddType = "STRUCT(path VARCHAR, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags MAP(VARCHAR, VARCHAR), baseRowId BIGINT, defaultRowCommitVersion BIGINT)";
    private const string RemoveType = "STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues MAP(VARCHAR, VARCHAR), size BIGINT)";
    private const string MetadataType = "STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options MAP(VARCHAR, VARCHAR)), schemaString VARCHAR, partitionColumns VARCHAR[], configuration MAP(VARCHAR, VARCHAR), createdTime BIGINT)";
    private const string ProtocolType = "STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])";
    private const string TxnType = "STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)";
    private const string CheckpointMetadataType = "STRUCT(version BIGINT, tags MAP(VARCHAR, VARCHAR))";
    private const string SidecarType = "STRUCT(path VARCHAR, sizeInBytes BIGINT, modificationTime BIGINT, tags MAP(VARCHAR, VARCHAR))";

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 6)];

    /// <summary>
    /// A random history (appends, removes, partition replacements), a checkpoint at a random version in
    /// one to three parts, the entries before it deleted (and, half the time, its own): the latest state,
    /// every version from the checkpoint on, and the history Weft reads all match the complete log's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task A_table_cleaned_up_behind_a_checkpoint_reads_as_its_complete_log_did(int seed)
    {
        var random = new Random(seed);
        var path = _directory.Combine($"t{seed}");
        var latest = await RandomHistoryAsync(path, random, commits: random.Next(4, 14));
        long checkpoint = random.Next(1, (int)latest + 1);
        int parts = random.Next(1, 4);
        bool deleteOwnEntry = random.Next(2) == 0 && checkpoint < latest;

        var complete = await DeltaTable.OpenAsync(path);
        var expected = new Dictionary<long, DeltaSnapshot>();
        for (long v = 0; v <= latest; v++)
        {
            expected[v] = await complete.GetSnapshotAsync(v);
        }

        var history = await complete.GetHistoryAsync();

        await WriteCheckpointAsync(path, checkpoint, parts);
        if (checkpoint < latest && random.Next(2) == 0)
        {
            // A newer checkpoint too: the newest is read for the latest state, and time travel to a version
            // before it reads from the older one (the protocol: never a checkpoint newer than the version).
            await WriteCheckpointAsync(path, random.Next((int)checkpoint + 1, (int)latest + 1), random.Next(1, 3));
        }

        DeleteEntriesBefore(path, deleteOwnEntry ? checkpoint + 1 : checkpoint);

        var table = await DeltaTable.OpenAsync(path);
        var snapshot = await table.GetSnapshotAsync();
        snapshot.Version.Should().Be(latest);
        AssertSame(snapshot, expected[latest], $"seed {seed}, latest version {latest}, checkpoint {checkpoint} in {parts} parts");
        for (long v = checkpoint; v <= latest; v++)
        {
            // A checkpoint holds no commitInfo: without its version's entry, that version is dated by the checkpoint file.
            var atCheckpointWithoutEntry = v == checkpoint && deleteOwnEntry;
            var actual = await table.GetSnapshotAsync(v);
            AssertSame(actual, expected[v], $"seed {seed}, version {v}, checkpoint {checkpoint}", compareTimestamp: !atCheckpointWithoutEntry);
            if (atCheckpointWithoutEntry)
            {
                actual.Timestamp.Should().Be(new DateTimeOffset(File.GetLastWriteTimeUtc(Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(checkpoint, parts, parts))), TimeSpan.Zero));
            }
        }

        if (checkpoint > 0)
        {
            var before = () => table.GetSnapshotAsync(checkpoint - 1);
            (await before.Should().ThrowAsync<DeltaLogException>()).WithMessage($"*Version {checkpoint - 1} *can no longer be read*oldest checkpoint is version {checkpoint}*");
        }

        long firstKept = deleteOwnEntry ? checkpoint + 1 : checkpoint;
        (await table.GetHistoryAsync()).Select(c => (c.Version, c.Operation, c.Timestamp))
            .Should().Equal(history.Where(c => c.Version >= firstKept).Select(c => (c.Version, c.Operation, c.Timestamp)));

        // Weft appends to such a table as to any other, and a new handle reads the append.
        var added = TestTables.WriteFile(path, TestTables.Buckets[0], "batch", rows: 3);
        (await table.CommitAsync(TestTables.Append(added))).Version.Should().Be(latest + 1);
        (await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync()).Files().Select(f => f.Path)
            .Should().BeEquivalentTo(expected[latest].Files().Select(f => f.Path).Append(added.Path));
    }

    /// <summary>
    /// A raw archive (an event table) another engine keeps: after its log is cleaned up behind a
    /// checkpoint, Weft reads the same rows from it, with the schema the checkpoint's metadata declares.
    /// </summary>
    [Fact]
    public async Task An_event_table_read_from_a_checkpoint_gives_the_rows_of_its_complete_log()
    {
        var path = _directory.Combine("events");
        var table = await EventTable.OpenOrCreateAsync(path, EventData.TenColumns, EventLayout.PartitionColumns, new EventTableOptions { RowGroupSize = 50 });
        for (int i = 0; i < 4; i++)
        {
            await table.AppendAsync(EventData.Random(EventData.TenColumns, 120, 10 + i, $"r{i}"), EventPartitioner.ByTimeBucket(TimeBucket.Hour, i % 2 == 0 ? EventLayout.StreamPath : EventLayout.BatchPath));
        }

        var names = EventData.TenColumns.Select(f => f.Name).ToArray();
        var expected = EventData.Rows(await EventData.ReadAllAsync(table.ReadAsync()), names);
        await WriteCheckpointAsync(path, 3, parts: 2);
        DeleteEntriesBefore(path, 3);

        var reopened = await EventTable.OpenAsync(path);

        reopened.Schema.Should().Equal(EventData.TenColumns);
        EventData.Rows(await EventData.ReadAllAsync(reopened.ReadAsync()), names).Should().Equal(expected);
    }

    [Fact]
    public async Task A_multi_part_checkpoint_with_a_part_missing_is_passed_over_for_an_older_complete_one()
    {
        var path = _directory.Combine("parts");
        var latest = await RandomHistoryAsync(path, new Random(42), commits: 8);
        var expected = await (await DeltaTable.OpenAsync(path)).GetSnapshotAsync();
        await WriteCheckpointAsync(path, 3, parts: 1);
        await WriteCheckpointAsync(path, 6, parts: 3);
        File.Delete(Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(6, 2, 3)));
        DeleteEntriesBefore(path, 3);

        var table = await DeltaTable.OpenAsync(path);

        AssertSame(await table.GetSnapshotAsync(), expected, "from the checkpoint at 3");
        (await table.GetSnapshotAsync()).Version.Should().Be(latest);
    }

    public static TheoryData<V2Layout, int, int> V2Cases() => new()
    {
        { V2Layout.UuidJson, 0, 11 }, { V2Layout.UuidJson, 2, 12 }, { V2Layout.UuidJson, 3, 13 },
        { V2Layout.UuidParquet, 0, 14 }, { V2Layout.UuidParquet, 2, 15 },
        { V2Layout.Classic, 1, 16 }, { V2Layout.Classic, 0, 17 },
    };

    /// <summary>
    /// A table with the v2Checkpoint feature (Databricks gives it to liquid-clustered and Unity Catalog
    /// tables) cleaned up behind a V2-spec checkpoint: UUID-named in JSON or Parquet, or classic-named, its
    /// adds and removes inline or in sidecar files (named by file name or by absolute URI). The latest
    /// state and every version after the checkpoint read as from the complete log.
    /// </summary>
    [Theory]
    [MemberData(nameof(V2Cases))]
    public async Task A_table_cleaned_up_behind_a_v2_checkpoint_reads_as_its_complete_log_did(V2Layout layout, int sidecars, int seed)
    {
        var random = new Random(seed);
        var path = _directory.Combine($"v2-{layout}-{sidecars}");
        var latest = await RandomHistoryAsync(path, random, commits: random.Next(4, 10));
        var upgrade = new JsonObject { ["protocol"] = new JsonObject { ["minReaderVersion"] = 3, ["minWriterVersion"] = 7, ["readerFeatures"] = new JsonArray("v2Checkpoint"), ["writerFeatures"] = new JsonArray("v2Checkpoint") } };
        var log = Path.Combine(path, "_delta_log");
        await File.WriteAllTextAsync(Path.Combine(log, DeltaLogNaming.CommitFileName(++latest)), upgrade.ToJsonString() + "\n");
        long checkpoint = random.Next((int)latest - 2, (int)latest + 1);

        var complete = await DeltaTable.OpenAsync(path);
        var expected = new Dictionary<long, DeltaSnapshot>();
        for (long v = checkpoint; v <= latest; v++)
        {
            expected[v] = await complete.GetSnapshotAsync(v);
        }

        var name = await WriteV2CheckpointAsync(path, checkpoint, layout, sidecars);
        DeleteEntriesBefore(path, checkpoint);

        var table = await DeltaTable.OpenAsync(path);
        for (long v = checkpoint; v <= latest; v++)
        {
            AssertSame(await table.GetSnapshotAsync(v), expected[v], $"{name}, {sidecars} sidecars, version {v}");
        }

        AssertSame(await table.GetSnapshotAsync(), expected[latest], $"{name}, latest");
    }

    /// <summary>A checkpoint whose sidecar is gone fails naming the sidecar: a table read without it would lack its files.</summary>
    [Fact]
    public async Task A_v2_checkpoint_whose_sidecar_is_missing_fails_naming_it()
    {
        var path = _directory.Combine("v2-missing");
        var latest = await RandomHistoryAsync(path, new Random(5), commits: 6);
        await WriteV2CheckpointAsync(path, latest, V2Layout.UuidJson, sidecars: 2);
        var sidecar = Directory.GetFiles(Path.Combine(path, "_delta_log", "_sidecars"))[1];
        File.Delete(sidecar);
        DeleteEntriesBefore(path, latest);

        var act = () => DeltaTable.OpenAsync(path);

        (await act.Should().ThrowAsync<DeltaLogException>()).WithMessage($"*Sidecar file '{sidecar}'*is missing*");
    }

    [Fact]
    public async Task A_checkpoint_that_is_not_parquet_fails_naming_the_file_and_leaves_the_log_alone()
    {
        var path = _directory.Combine("broken");
        await RandomHistoryAsync(path, new Random(3), commits: 4);
        await WriteCheckpointAsync(path, 2, parts: 1);
        var file = Path.Combine(path, "_delta_log", DeltaLogNaming.CheckpointFileName(2));
        await File.WriteAllTextAsync(file, "not parquet");
        DeleteEntriesBefore(path, 2);
        var before = TestTables.LogFiles(path);

        var act = () => DeltaTable.OpenAsync(path);

        var error = (await act.Should().ThrowAsync<DeltaLogException>()).Which;
        error.FilePath.Should().Be(file);
        error.Message.Should().StartWith($"Cannot read checkpoint file '{file}':");
        TestTables.LogFiles(path).Should().Equal(before);
    }

    [Fact]
    public async Task Vacuum_and_listing_commits_from_before_the_checkpoint_are_refused_on_a_cleaned_up_log()
    {
        var path = _directory.Combine("vacuum");
        await RandomHistoryAsync(path, new Random(5), commits: 5);
        await WriteCheckpointAsync(path, 4, parts: 1);
        DeleteEntriesBefore(path, 4);
        var table = await DeltaTable.OpenAsync(path);

        var vacuum = () => table.VacuumAsync(TimeSpan.Zero, dryRun: true);
        var commits = () => table.GetCommitsAfterAsync(-1);

        (await vacuum.Should().ThrowAsync<DeltaLogException>()).WithMessage("*Cannot vacuum*starts at version 4*");
        (await commits.Should().ThrowAsync<DeltaLogException>()).WithMessage("*after version -1*before version 4 were cleaned up*");
        (await table.GetCommitsAfterAsync(3)).Select(c => c.Version).Should().Equal(4, 5);
    }

    [Fact]
    public void Checkpoint_file_names_parse_as_the_protocol_names_them()
    {
        DeltaLogNaming.TryParseCheckpointFileName("00000000000000000010.checkpoint.parquet", out var classic).Should().BeTrue();
        classic.Should().Be(new CheckpointFile(10, 1, 1, "00000000000000000010.checkpoint.parquet", UuidNamed: false));
        DeltaLogNaming.TryParseCheckpointFileName("00000000000000000010.checkpoint.0000000002.0000000003.parquet", out var part).Should().BeTrue();
        (part.Version, part.Part, part.Parts, part.UuidNamed).Should().Be((10L, 2, 3, false));
        DeltaLogNaming.TryParseCheckpointFileName($"00000000000000000010.checkpoint.{Guid.NewGuid()}.json", out var uuid).Should().BeTrue();
        uuid.UuidNamed.Should().BeTrue();
        DeltaLogNaming.CheckpointFileName(10, 2, 3).Should().Be("00000000000000000010.checkpoint.0000000002.0000000003.parquet");

        foreach (var name in new[]
        {
            "00000000000000000010.checkpoint.0000000004.0000000003.parquet", // part beyond the count
            "00000000000000000010.checkpoint.0000000000.0000000003.parquet",
            "00000000000000000010.checkpoint.000000001.0000000003.parquet",
            "00000000000000000010.checkpoint.json",
            "0000000000000000010.checkpoint.parquet",
            "00000000000000000010.checkpoint.not-a-uuid.parquet",
            "00000000000000000010.json",
        })
        {
            DeltaLogNaming.TryParseCheckpointFileName(name, out _).Should().BeFalse(name);
        }
    }

    private static void AssertSame(DeltaSnapshot actual, DeltaSnapshot expected, string because, bool compareTimestamp = true)
    {
        actual.Version.Should().Be(expected.Version, because);
        actual.TableId.Should().Be(expected.TableId, because);
        actual.Schema.Should().Be(expected.Schema, because);
        actual.PartitionColumns.Should().Equal(expected.PartitionColumns, because);
        actual.Configuration.Should().BeEquivalentTo(expected.Configuration, because);
        if (compareTimestamp)
        {
            actual.Timestamp.Should().Be(expected.Timestamp, because);
        }

        actual.Files().Select(TestTables.Describe).Should().Equal(expected.Files().Select(TestTables.Describe), because);
    }

    /// <summary>Version 0 plus <paramref name="commits"/> random commits; returns the latest version.</summary>
    private static async Task<long> RandomHistoryAsync(string path, Random random, int commits)
    {
        var table = await TestTables.CreateAsync(path);
        var live = new List<AddFile>();
        long version = 0;
        for (int i = 0; i < commits; i++)
        {
            var written = TestTables.Epoch.AddMinutes(i * 7 + random.Next(5));
            var choice = random.Next(10);
            DeltaTransaction transaction;
            if (choice < 6 || live.Count == 0)
            {
                var files = Enumerable.Range(0, random.Next(1, 4))
                    .Select(_ => TestTables.WriteFile(path, TestTables.Buckets[random.Next(TestTables.Buckets.Length)], random.Next(2) == 0 ? "stream" : "batch", random.Next(1, 1000), written))
                    .ToArray();
                live.AddRange(files);
                transaction = TestTables.Append(files);
            }
            else if (choice < 8)
            {
                var removed = live[random.Next(live.Count)];
                live.Remove(removed);
                transaction = DeltaTransaction.Create("DELETE").Remove(removed.Path).Build();
            }
            else
            {
                var bucket = TestTables.Buckets[random.Next(TestTables.Buckets.Length)];
                var replacement = TestTables.WriteFile(path, bucket, "batch", random.Next(1, 1000), written);
                live.RemoveAll(f => f.PartitionValues["bucket"] == bucket && f.PartitionValues["path"] == "batch");
                live.Add(replacement);
                transaction = DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
                    .ReplacePartitions(PartitionFilter.All.Equal("bucket", bucket).Equal("path", "batch"), [replacement]).Build();
            }

            version = (await table.CommitAsync(transaction)).Version;
        }

        return version;
    }

    /// <summary>
    /// Reconciles the JSON entries 0…<paramref name="version"/> (last protocol and metaData win; an add
    /// lives until a later remove of its path) and has DuckDB write the result as the checkpoint of that
    /// version, in the protocol's schema: one action per row, the live adds with dataChange false, the
    /// removes as tombstones, and a txn row as Spark keeps them. Also writes <c>_last_checkpoint</c>.
    /// </summary>
    private static async Task WriteCheckpointAsync(string path, long version, int parts)
    {
        var log = Path.Combine(path, "_delta_log");
        var (nonFile, files) = await ReconcileAsync(path, version);
        var rows = nonFile.Concat(files).ToList();

        // Multi-part checkpoints split the actions over the parts; each part is a checkpoint file of its own.
        var statements = new List<string>();
        using var temp = new TempDir();
        for (int part = 1; part <= parts; part++)
        {
            var input = temp.File($"part{part}.json");
            await File.WriteAllLinesAsync(input, rows.Where((_, i) => i % parts == part - 1), new UTF8Encoding(false));
            var output = Path.Combine(log, DeltaLogNaming.CheckpointFileName(version, part, parts));
            statements.Add(
                $"COPY (SELECT txn, add, remove, metaData, protocol FROM read_json({DuckDb.Quote(input)}, format = 'newline_delimited', columns = {{"
                + $"txn: '{TxnType}', add: '{AddType}', remove: '{RemoveType}', metaData: '{MetadataType}', protocol: '{ProtocolType}'}}))"
                + $" TO {DuckDb.Quote(output)} (FORMAT parquet)");
        }

        await DuckDb.RunAsync([.. statements]);
        var last = new JsonObject { ["version"] = version, ["size"] = rows.Count };
        if (parts > 1)
        {
            last["parts"] = parts;
        }

        await File.WriteAllTextAsync(Path.Combine(log, "_last_checkpoint"), last.ToJsonString());
    }

    /// <summary>How a V2-spec checkpoint (PROTOCOL.md "V2 Spec") is laid out.</summary>
    public enum V2Layout
    {
        /// <summary><c>n.checkpoint.&lt;uuid&gt;.json</c>: one action a line.</summary>
        UuidJson,

        /// <summary><c>n.checkpoint.&lt;uuid&gt;.parquet</c>.</summary>
        UuidParquet,

        /// <summary><c>n.checkpoint.parquet</c> with a checkpointMetadata row, as writers keep for older readers.</summary>
        Classic,
    }

    /// <summary>
    /// Writes the V2-spec checkpoint of <paramref name="version"/>: the non-file actions and a
    /// checkpointMetadata action in the checkpoint itself, and the adds and removes either there too
    /// (<paramref name="sidecars"/> 0) or spread over that many sidecar files in <c>_delta_log/_sidecars</c>
    /// (Parquet, written by DuckDB), each named by a sidecar action. Returns the checkpoint's file name.
    /// </summary>
    private static async Task<string> WriteV2CheckpointAsync(string path, long version, V2Layout layout, int sidecars)
    {
        var log = Path.Combine(path, "_delta_log");
        var (nonFile, files) = await ReconcileAsync(path, version);
        var rows = new List<string>(nonFile) { new JsonObject { ["checkpointMetadata"] = new JsonObject { ["version"] = version, ["tags"] = new JsonObject() } }.ToJsonString() };
        using var temp = new TempDir();
        var statements = new List<string>();
        if (sidecars == 0)
        {
            rows.AddRange(files);
        }
        else
        {
            Directory.CreateDirectory(Path.Combine(log, "_sidecars"));
            for (int s = 0; s < sidecars; s++)
            {
                var name = $"{Guid.NewGuid()}.parquet";
                var input = temp.File($"sidecar{s}.json");
                await File.WriteAllLinesAsync(input, files.Where((_, i) => i % sidecars == s), new UTF8Encoding(false));
                await DuckDb.RunAsync(
                    $"COPY (SELECT add, remove FROM read_json({DuckDb.Quote(input)}, format = 'newline_delimited', columns = {{add: '{AddType}', remove: '{RemoveType}'}}))"
                    + $" TO {DuckDb.Quote(Path.Combine(log, "_sidecars", name))} (FORMAT parquet)");
                var size = new FileInfo(Path.Combine(log, "_sidecars", name)).Length;
                // The first sidecar is named by an absolute file: URI, the rest by their file names; the protocol allows both.
                var reference = s == 0 ? new Uri(Path.Combine(log, "_sidecars", name)).AbsoluteUri : name;
                rows.Add(new JsonObject { ["sidecar"] = new JsonObject { ["path"] = reference, ["sizeInBytes"] = size, ["modificationTime"] = 1_764_000_000_000L, ["tags"] = new JsonObject() } }.ToJsonString());
            }
        }

        string fileName = layout switch
        {
            V2Layout.UuidJson => $"{version:D20}.checkpoint.{Guid.NewGuid()}.json",
            V2Layout.UuidParquet => $"{version:D20}.checkpoint.{Guid.NewGuid()}.parquet",
            _ => DeltaLogNaming.CheckpointFileName(version),
        };
        if (layout == V2Layout.UuidJson)
        {
            await File.WriteAllLinesAsync(Path.Combine(log, fileName), rows, new UTF8Encoding(false));
        }
        else
        {
            var input = temp.File("checkpoint.json");
            await File.WriteAllLinesAsync(input, rows, new UTF8Encoding(false));
            await DuckDb.RunAsync(
                $"COPY (SELECT checkpointMetadata, sidecar, txn, add, remove, metaData, protocol FROM read_json({DuckDb.Quote(input)}, format = 'newline_delimited', columns = {{"
                + $"checkpointMetadata: '{CheckpointMetadataType}', sidecar: '{SidecarType}', txn: '{TxnType}', add: '{AddType}', remove: '{RemoveType}', metaData: '{MetadataType}', protocol: '{ProtocolType}'}}))"
                + $" TO {DuckDb.Quote(Path.Combine(log, fileName))} (FORMAT parquet)");
        }

        return fileName;
    }

    /// <summary>
    /// The reconciled actions of the JSON entries 0…<paramref name="version"/>, one JSON line each: the
    /// non-file actions (protocol, metaData, a txn as Spark keeps them), and the file actions (live adds
    /// with dataChange false, removes as tombstones).
    /// </summary>
    private static async Task<(List<string> NonFile, List<string> Files)> ReconcileAsync(string path, long version)
    {
        var log = Path.Combine(path, "_delta_log");
        JsonNode? protocol = null, metadata = null;
        var adds = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var removes = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        for (long v = 0; v <= version; v++)
        {
            foreach (var line in await File.ReadAllLinesAsync(Path.Combine(log, DeltaLogNaming.CommitFileName(v))))
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                var action = JsonNode.Parse(line)!.AsObject();
                if (action["protocol"] is { } p)
                {
                    protocol = p.DeepClone();
                }
                else if (action["metaData"] is { } m)
                {
                    metadata = m.DeepClone();
                }
                else if (action["remove"] is JsonObject r)
                {
                    var key = Uri.UnescapeDataString(r["path"]!.GetValue<string>());
                    adds.Remove(key);
                    removes[key] = (JsonObject)r.DeepClone();
                }
                else if (action["add"] is JsonObject a)
                {
                    var key = Uri.UnescapeDataString(a["path"]!.GetValue<string>());
                    var add = (JsonObject)a.DeepClone();
                    add["dataChange"] = false;
                    adds[key] = add;
                    removes.Remove(key);
                }
            }
        }

        var nonFile = new List<string>
        {
            new JsonObject { ["protocol"] = protocol }.ToJsonString(),
            new JsonObject { ["metaData"] = metadata }.ToJsonString(),
            new JsonObject { ["txn"] = new JsonObject { ["appId"] = "weft-test", ["version"] = version } }.ToJsonString(),
        };
        var files = adds.Values.Select(a => new JsonObject { ["add"] = a }.ToJsonString())
            .Concat(removes.Values.Select(r => new JsonObject { ["remove"] = r }.ToJsonString())).ToList();
        return (nonFile, files);
    }

    /// <summary>Metadata cleanup as other engines do it: the commit entries before <paramref name="version"/> go.</summary>
    private static void DeleteEntriesBefore(string path, long version)
    {
        for (long v = 0; v < version; v++)
        {
            File.Delete(Path.Combine(path, "_delta_log", DeltaLogNaming.CommitFileName(v)));
        }
    }
}
