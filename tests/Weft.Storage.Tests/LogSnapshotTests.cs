using FluentAssertions;
using Xunit;

namespace Weft.Storage.Tests;

/// <summary>
/// Log snapshots (<c>_delta_log/_weft_snapshots/</c>): a table opened from one is the table its log
/// replays to, with the same history; a snapshot that does not match its log is ignored.
/// </summary>
public sealed class LogSnapshotTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(TestTables.Epoch);

    public void Dispose() => _directory.Dispose();

    private string TablePath => _directory.Combine("events");

    private string SnapshotDirectory => Path.Combine(TablePath, "_delta_log", "_weft_snapshots");

    private DeltaTableOptions Snapshots(int interval) => new() { TimeProvider = _time, SnapshotInterval = interval };

    /// <summary>Random appends, removes and partition replaces, each with parameters, the clock moving on.</summary>
    private async Task CommitRandomlyAsync(int commits, int seed)
    {
        var random = new Random(seed);
        var table = await DeltaTable.OpenAsync(TablePath, Snapshots(0));
        for (int i = 0; i < commits; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(random.Next(1, 10)));
            var live = (await table.GetSnapshotAsync()).Files().ToList();
            string bucket = $"2026-11-23T{random.Next(0, 4):D2}";
            string path = random.Next(2) == 0 ? "stream" : "batch";
            var builder = DeltaTransaction.Create(random.Next(5) == 0 ? "OPTIMIZE" : "WRITE").WithWriterSchema(TestTables.Schema)
                .WithParameter("weft.offsets", $"p{random.Next(3)}={i}").WithParameter("n", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            switch (random.Next(4))
            {
                case 0 when live.Count > 0:
                    builder.Remove(live[random.Next(live.Count)].Path);
                    break;
                case 1:
                    builder.ReplacePartitions(PartitionFilter.All.Equal("bucket", bucket).Equal("path", path), [TestTables.WriteFile(TablePath, bucket, path, random.Next(1, 100), _time.GetUtcNow())]);
                    break;
                default:
                    builder.Add(TestTables.WriteFile(TablePath, bucket, path, random.Next(1, 100), _time.GetUtcNow()));
                    break;
            }

            await table.CommitAsync(builder.Build());
        }
    }

    private static async Task<object> DescribeAsync(DeltaTable table)
    {
        var s = await table.GetSnapshotAsync();
        return new
        {
            s.Version,
            s.Timestamp,
            s.TableId,
            Schema = s.Schema.ToString(),
            Partitions = string.Join(",", s.PartitionColumns),
            Files = s.Files().OrderBy(f => f.Path, StringComparer.Ordinal)
                .Select(f => $"{f.Path}|{string.Join(";", f.PartitionValues.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))}|{f.Size}|{f.ModificationTime.ToUnixTimeMilliseconds()}|{f.Stats}|{f.DataChange}")
                .ToList(),
        };
    }

    private static async Task<List<string>> CommitsAsync(DeltaTable table, long after) =>
        [.. (await table.GetCommitsAfterAsync(after)).Select(c =>
            $"{c.Version}|{c.Timestamp.ToUnixTimeMilliseconds()}|{c.Operation}|{string.Join(";", c.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))}|{c.FilesAdded}|{c.FilesRemoved}|{c.DataChange}")];

    [Fact]
    public async Task A_table_opened_from_a_snapshot_equals_its_replayed_log_and_has_the_same_history()
    {
        await TestTables.CreateAsync(TablePath, _time);
        await CommitRandomlyAsync(60, seed: 1);

        _ = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // replays 61 commits: writes a snapshot of version 60
        Directory.GetFiles(SnapshotDirectory).Select(Path.GetFileName).Should().BeEquivalentTo(
            "00000000000000000060.state.json", "00000000000000000060.commits.json");
        await CommitRandomlyAsync(25, seed: 2);

        var fromSnapshot = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // 60 from the snapshot, 25 replayed: a new snapshot at 85
        var replayed = await DeltaTable.OpenAsync(TablePath, Snapshots(0));

        (await DescribeAsync(fromSnapshot)).Should().BeEquivalentTo(await DescribeAsync(replayed));
        foreach (long after in new long[] { -1, 0, 30, 59, 60, 61, 84, 85 })
        {
            (await CommitsAsync(fromSnapshot, after)).Should().Equal(await CommitsAsync(replayed, after), $"commits after {after}");
        }

        (await fromSnapshot.GetSnapshotAsync(42)).Files().Select(f => f.Path).Should().BeEquivalentTo((await replayed.GetSnapshotAsync(42)).Files().Select(f => f.Path), "time travel still reads the log");
        Directory.GetFiles(SnapshotDirectory, "*.state.json").Select(Path.GetFileName).Should().BeEquivalentTo(
            "00000000000000000060.state.json", "00000000000000000085.state.json");

        // The newest snapshot is what the next open uses: an early commit the replay would need can no
        // longer break the open, though a handle without snapshots still finds it.
        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000003.json"), "{not json\n");
        var shortcut = await DeltaTable.OpenAsync(TablePath, Snapshots(10));
        (await DescribeAsync(shortcut)).Should().BeEquivalentTo(await DescribeAsync(replayed));
        var full = () => DeltaTable.OpenAsync(TablePath, Snapshots(0));
        await full.Should().ThrowAsync<DeltaLogException>().WithMessage("*00000000000000000003.json*");
    }

    /// <summary>A table whose version 1 holds another writer's txn (query-a, 7), then twelve commits of Weft's: versions 0 to 13.</summary>
    private async Task CreateWithTransactionAsync()
    {
        await TestTables.CreateAsync(TablePath, _time);
        await TestTables.WriteRawLogAsync(TablePath, 1,
            new System.Text.Json.Nodes.JsonObject { ["commitInfo"] = new System.Text.Json.Nodes.JsonObject { ["timestamp"] = _time.GetUtcNow().ToUnixTimeMilliseconds(), ["operation"] = "STREAMING UPDATE" } },
            new System.Text.Json.Nodes.JsonObject { ["txn"] = new System.Text.Json.Nodes.JsonObject { ["appId"] = "query-a", ["version"] = 7 } });
        await CommitRandomlyAsync(12, seed: 4);
    }

    /// <summary>Another writer's application transaction (txn) survives a snapshot: the state it holds carries it, as a checkpoint does.</summary>
    [Fact]
    public async Task A_snapshot_keeps_application_transactions()
    {
        await CreateWithTransactionAsync();

        _ = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // writes a snapshot of version 13

        var state = (await File.ReadAllLinesAsync(Path.Combine(SnapshotDirectory, "00000000000000000013.state.json"))).Skip(1); // after the header
        var actions = DeltaActionCodec.Parse(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", state)));
        actions.OfType<TxnAction>().Should().Equal([new TxnAction("query-a", 7)]);
    }

    /// <summary>A snapshot written before snapshots carried application transactions is not used: a checkpoint from it would drop them.</summary>
    [Fact]
    public async Task A_snapshot_of_an_older_format_is_passed_over_for_the_log()
    {
        await CreateWithTransactionAsync();
        _ = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // writes a snapshot of version 13

        // As an older Weft wrote it: no format in the header, no txn in the state.
        var statePath = Path.Combine(SnapshotDirectory, "00000000000000000013.state.json");
        var lines = (await File.ReadAllLinesAsync(statePath)).ToList();
        var header = System.Text.Json.Nodes.JsonNode.Parse(lines[0])!.AsObject();
        header.Remove(header.Select(p => p.Key).Single(k => k.Equals("format", StringComparison.OrdinalIgnoreCase))).Should().BeTrue();
        lines[0] = header.ToJsonString();
        lines.RemoveAll(l => l.StartsWith("{\"txn\"", StringComparison.Ordinal)).Should().Be(1);
        await File.WriteAllTextAsync(statePath, string.Join("\n", lines) + "\n");

        var table = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // reads snapshots, and would use this one if it trusted it
        var checkpoint = await table.WriteCheckpointAsync();

        var file = Weft.Parquet.Tests.DuckDb.Quote(checkpoint.Path);
        var rows = (await Weft.Parquet.Tests.DuckDb.RunAsync($"SELECT txn.appId FROM read_parquet({file}) WHERE txn IS NOT NULL"))[0].Rows;
        rows.Select(r => r[0].GetString()).Should().Equal(["query-a"], "the state came from the log, not the old snapshot");
    }

    [Fact]
    public async Task A_handle_that_stays_open_takes_a_new_snapshot_every_interval_in_the_background()
    {
        await TestTables.CreateAsync(TablePath, _time);
        var writer = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // one commit: no snapshot yet
        Directory.Exists(SnapshotDirectory).Should().BeFalse();
        for (int i = 0; i < 25; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await writer.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T00", "stream", 5, _time.GetUtcNow())));
            await writer.SnapshotWrite;
        }

        // Versions 0–25: a snapshot whenever ten commits were in none, at 9 and 19.
        Directory.GetFiles(SnapshotDirectory, "*.state.json").Select(Path.GetFileName).Should().BeEquivalentTo(
            "00000000000000000009.state.json", "00000000000000000019.state.json");
        var replayed = await DeltaTable.OpenAsync(TablePath, Snapshots(0));
        var expected = await DescribeAsync(replayed);
        var history = await CommitsAsync(replayed, -1);

        // An early commit the replay would need, damaged: only an open from the snapshot gets past it.
        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000002.json"), "{not json\n");
        var fromSnapshot = await DeltaTable.OpenAsync(TablePath, Snapshots(1_000));
        (await DescribeAsync(fromSnapshot)).Should().BeEquivalentTo(expected);
        (await CommitsAsync(fromSnapshot, -1)).Should().Equal(history);
    }

    [Fact]
    public async Task A_snapshot_that_does_not_match_its_log_or_is_damaged_is_ignored()
    {
        await TestTables.CreateAsync(TablePath, _time);
        await CommitRandomlyAsync(30, seed: 3);
        await DeltaTable.OpenAsync(TablePath, Snapshots(10));
        var state = Path.Combine(SnapshotDirectory, "00000000000000000030.state.json");
        File.Exists(state).Should().BeTrue();
        var expected = await DescribeAsync(await DeltaTable.OpenAsync(TablePath, Snapshots(0)));

        // The commit it was taken at was rewritten (a table deleted and made again in the same place):
        // its header no longer matches, so the log is replayed.
        var entry = Path.Combine(TablePath, "_delta_log", "00000000000000000030.json");
        var original = await File.ReadAllTextAsync(entry);
        await File.WriteAllTextAsync(entry, original.Replace("\"n\":\"29\"", "\"n\":\"twenty-nine\"", StringComparison.Ordinal));
        var rewritten = await DeltaTable.OpenAsync(TablePath, Snapshots(1_000));
        (await CommitsAsync(rewritten, 28)).Should().ContainSingle(c => c.Contains("n=twenty-nine", StringComparison.Ordinal), "the log, not the stale snapshot, was read");
        await File.WriteAllTextAsync(entry, original);

        // A truncated state file, or one whose commits file is missing, is passed over too.
        var bytes = await File.ReadAllBytesAsync(state);
        await File.WriteAllBytesAsync(state, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        (await DescribeAsync(await DeltaTable.OpenAsync(TablePath, Snapshots(1_000)))).Should().BeEquivalentTo(expected);
        await File.WriteAllBytesAsync(state, bytes);
        File.Delete(Path.Combine(SnapshotDirectory, "00000000000000000030.commits.json"));
        var noCommits = await DeltaTable.OpenAsync(TablePath, Snapshots(1_000));
        (await DescribeAsync(noCommits)).Should().BeEquivalentTo(expected);
        (await CommitsAsync(noCommits, -1)).Should().HaveCount(31);
    }

    [Fact]
    public async Task A_long_lived_handle_writes_each_commit_into_few_segments_which_read_back_as_the_log()
    {
        await TestTables.CreateAsync(TablePath, _time);
        var writer = await DeltaTable.OpenAsync(TablePath, Snapshots(10));
        const int Commits = 320;
        long linesWritten = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < Commits; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await writer.CommitAsync(DeltaTransaction.Create("WRITE").WithWriterSchema(TestTables.Schema)
                .Add(TestTables.WriteFile(TablePath, "2026-11-23T00", "stream", 5, _time.GetUtcNow()))
                .WithParameter("weft.offsets", $"0={i}").Build());
            await writer.SnapshotWrite;
            var states = Directory.Exists(SnapshotDirectory) ? Directory.GetFiles(SnapshotDirectory, "*.state.json") : [];
            foreach (var state in states.Where(seen.Add))
            {
                linesWritten += (await File.ReadAllLinesAsync(state.Replace(".state.json", ".commits.json", StringComparison.Ordinal))).Length;
            }
        }

        // 32 snapshots of 10 new commits each. Rewriting every commit at each would write
        // 10 + 20 + … + 320 = 5,280 lines; merged as a binary counter, each commit is written about
        // log2(32) + 1 times.
        seen.Should().HaveCount(32);
        linesWritten.Should().BeLessThanOrEqualTo((Commits + 1) * 7);
        Directory.GetFiles(SnapshotDirectory, "*.commits.json").Length.Should().BeLessThanOrEqualTo(2 * 6, "the two kept snapshots need at most log2(32) + 1 segments each");

        var replayed = await DeltaTable.OpenAsync(TablePath, Snapshots(0));
        var expected = await DescribeAsync(replayed);
        var history = new Dictionary<long, List<string>>();
        foreach (long after in new long[] { -1, 0, 9, 10, 150, 255, 256, 300, 319, 320 })
        {
            history[after] = await CommitsAsync(replayed, after);
        }

        // An early commit the replay would need, damaged: only the segments can answer.
        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000002.json"), "{not json\n");
        var fromSnapshot = await DeltaTable.OpenAsync(TablePath, Snapshots(1_000));
        (await DescribeAsync(fromSnapshot)).Should().BeEquivalentTo(expected);
        foreach (var (after, commits) in history)
        {
            (await CommitsAsync(fromSnapshot, after)).Should().Equal(commits, $"commits after {after}");
        }
    }

    [Fact]
    public async Task A_snapshot_missing_an_older_segment_is_passed_over_and_the_next_is_written_whole()
    {
        await TestTables.CreateAsync(TablePath, _time);
        var writer = await DeltaTable.OpenAsync(TablePath, Snapshots(10));
        for (int i = 0; i < 30; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await writer.CommitAsync(TestTables.Append(TestTables.WriteFile(TablePath, "2026-11-23T00", "stream", 5, _time.GetUtcNow())));
            await writer.SnapshotWrite;
        }

        // Snapshots at 9, 19 and 29: 19's segment holds commits 0–19 and 29's only 20–29.
        (await File.ReadAllLinesAsync(Path.Combine(SnapshotDirectory, "00000000000000000029.commits.json"))).Should().HaveCount(10);
        var replayed = await DeltaTable.OpenAsync(TablePath, Snapshots(0));
        var expected = await DescribeAsync(replayed);
        var history = await CommitsAsync(replayed, -1);
        File.Delete(Path.Combine(SnapshotDirectory, "00000000000000000019.commits.json"));

        var reopened = await DeltaTable.OpenAsync(TablePath, Snapshots(10)); // neither snapshot usable: replays 31 commits, writes 30 whole
        (await DescribeAsync(reopened)).Should().BeEquivalentTo(expected);
        (await CommitsAsync(reopened, -1)).Should().Equal(history);
        (await File.ReadAllLinesAsync(Path.Combine(SnapshotDirectory, "00000000000000000030.commits.json"))).Should().HaveCount(31);

        await File.WriteAllTextAsync(Path.Combine(TablePath, "_delta_log", "00000000000000000002.json"), "{not json\n");
        var fromSnapshot = await DeltaTable.OpenAsync(TablePath, Snapshots(1_000));
        (await CommitsAsync(fromSnapshot, -1)).Should().Equal(history);
    }

    [Fact]
    public async Task A_negative_snapshot_interval_is_refused()
    {
        await TestTables.CreateAsync(TablePath, _time);
        var act = () => DeltaTable.OpenAsync(TablePath, new DeltaTableOptions { SnapshotInterval = -1 });
        await act.Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*SnapshotInterval*");
    }
}
