using FluentAssertions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>
/// A batch run's first read of a table (its committed chunks, its dead letters' tags) starts at the
/// run's first commit, or where the table's run-starts fold ends, not at version 0.
/// </summary>
public sealed class RunStartsTests : IDisposable
{
    private const string Pad = "\"weft.note\":\"pad\"";

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static DeadLetter Letter(string id) => new(id, 7, "click", "parse", $"bad {id}", $"events.parquet#{id}", "{}");

    /// <summary>Commits that name no run (as the stream's do), each with a parameter a test can rewrite later.</summary>
    private static async Task CommitPlainAsync(DeltaTable log, int count)
    {
        for (int i = 0; i < count; i++)
        {
            await log.CommitAsync(DeltaTransaction.Create("WRITE").WithParameter("weft.note", "pad").Build());
        }
    }

    private static string CommitFile(string table, long version) => Path.Combine(table, "_delta_log", $"{version:D20}.json");

    /// <summary>Rewrites a commit's padding parameter as <paramref name="parameters"/> (JSON members).</summary>
    private static async Task InjectAsync(string table, long version, string parameters)
    {
        var file = CommitFile(table, version);
        var text = await File.ReadAllTextAsync(file);
        text.Should().Contain(Pad);
        await File.WriteAllTextAsync(file, text.Replace(Pad, parameters, StringComparison.Ordinal));
    }

    private static async Task<int> CountAsync(EventTable table, string reason)
    {
        int n = 0;
        await foreach (var batch in table.ReadAsync(["reason"]))
        {
            n += ((StringColumn)batch["reason"]).Values.Count(r => r == reason);
        }

        return n;
    }

    /// <summary>Each run's first version, straight from the history.</summary>
    private static async Task<Dictionary<string, long>> FirstVersionsAsync(DeltaTable log, Func<CommitSummary, string?> runOf)
    {
        var firsts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var commit in (await log.GetHistoryAsync()).OrderBy(c => c.Version))
        {
            if (runOf(commit) is { } run)
            {
                firsts.TryAdd(run, commit.Version);
            }
        }

        return firsts;
    }

    [Fact]
    public async Task Dead_letter_tags_are_read_from_the_run_s_first_commit_and_the_fold_a_previous_check_kept()
    {
        var path = _dir.File("dead_letters");
        var table = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await CommitPlainAsync(table.Log, 5);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "r1", "batch:r1:a", onlyOnce: true, [Letter("a")], 1, CancellationToken.None);
        await CommitPlainAsync(table.Log, DeltaTable.FoldWorthKeeping + 10);
        (await table.Log.ReadFoldAsync(RunStarts.Fold)).Should().BeNull("the first check read only a few commits");

        // A resumed run (a new handle) repeats its tag: found, so nothing is appended, and the check read
        // enough of the history to keep the fold of where each run starts.
        var resumed = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await DeadLetterTable.AppendAsync(resumed, EventLayout.BatchPath, "r1", "batch:r1:a", onlyOnce: true, [Letter("a")], 2, CancellationToken.None);
        (await CountAsync(resumed, "bad a")).Should().Be(1);
        var fold = await resumed.Log.ReadFoldAsync(RunStarts.Fold);
        fold.Should().NotBeNull();
        long latest = (await resumed.Log.GetSnapshotAsync()).Version;
        fold!.Value.Version.Should().Be(latest);
        RunStarts.TryParse(fold.Value.Value, out var kept).Should().BeTrue();
        kept.Should().Equal(await FirstVersionsAsync(resumed.Log, DeadLetterTable.RunOf));
        kept.Should().ContainKey("r1").WhoseValue.Should().Be(6);

        // An early commit rewritten to carry another run's tag (the old form, with no run named): a check
        // that read from version 0 would take r2's letters for recorded. From the fold, r2 (no commit up to
        // its version) is read from there on, and its letters are appended.
        await InjectAsync(path, 3, "\"weft.tag\":\"batch:r2:x\"");
        // After the fold: a commit in the old form for r3, which its check must still find.
        await resumed.Log.CommitAsync(DeltaTransaction.Create("WRITE").WithParameter("weft.tag", "batch:r3:y").Build());

        var later = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await DeadLetterTable.AppendAsync(later, EventLayout.BatchPath, "r2", "batch:r2:x", onlyOnce: true, [Letter("x")], 3, CancellationToken.None);
        await DeadLetterTable.AppendAsync(later, EventLayout.BatchPath, "r3", "batch:r3:y", onlyOnce: true, [Letter("y")], 4, CancellationToken.None);
        await DeadLetterTable.AppendAsync(later, EventLayout.BatchPath, "r1", "batch:r1:a", onlyOnce: true, [Letter("a")], 5, CancellationToken.None);

        (await CountAsync(later, "bad x")).Should().Be(1, "r2 has no commit up to the fold's version, so the check starts after it");
        (await CountAsync(later, "bad y")).Should().Be(0, "r3's tag, committed after the fold, is found");
        (await CountAsync(later, "bad a")).Should().Be(1, "r1 started before the fold's version, so its check reads from r1's first commit");
    }

    [Fact]
    public async Task A_fold_that_does_not_parse_is_read_as_none_and_a_run_that_cannot_be_kept_keeps_none()
    {
        RunStarts.TryParse("r1=4,r2=9", out var starts).Should().BeTrue();
        starts.Should().Equal(new Dictionary<string, long> { ["r1"] = 4, ["r2"] = 9 });
        RunStarts.TryParse(RunStarts.Format(starts), out var again).Should().BeTrue();
        again.Should().Equal(starts);
        RunStarts.TryParse("r1=4,r1=5", out _).Should().BeFalse("a run starts once");
        RunStarts.TryParse("r1=-4", out _).Should().BeFalse();
        RunStarts.TryParse("=4", out _).Should().BeFalse();

        var path = _dir.File("dead_letters");
        var table = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await DeadLetterTable.AppendAsync(table, EventLayout.BatchPath, "r1", "batch:r1:a", onlyOnce: true, [Letter("a")], 1, CancellationToken.None);
        await CommitPlainAsync(table.Log, DeltaTable.FoldWorthKeeping + 2);
        long latest = (await table.Log.GetSnapshotAsync()).Version;
        (await table.Log.WriteFoldAsync(RunStarts.Fold, latest, "r1=not-a-version")).Should().BeTrue();

        var resumed = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await DeadLetterTable.AppendAsync(resumed, EventLayout.BatchPath, "r1", "batch:r1:a", onlyOnce: true, [Letter("a")], 2, CancellationToken.None);
        (await CountAsync(resumed, "bad a")).Should().Be(1, "the damaged fold is read as none: the check reads from version 0 and finds the tag");
        (await resumed.Log.ReadFoldAsync(RunStarts.Fold))!.Value.Value.Should().Be($"r1=1", "that read kept a good fold in its place");

        // A run named with a character the fold cannot hold: the next full read keeps no fold over it.
        await table.Log.CommitAsync(DeltaTransaction.Create("WRITE").WithParameter(LakeParameters.Run, "odd,run").Build());
        await CommitPlainAsync(table.Log, DeltaTable.FoldWorthKeeping + 2);
        var kept = (await resumed.Log.ReadFoldAsync(RunStarts.Fold))!.Value;
        var third = await DeadLetterTable.OpenAsync(path, CancellationToken.None);
        await DeadLetterTable.AppendAsync(third, EventLayout.BatchPath, "odd,run", "batch:odd:z", onlyOnce: true, [Letter("z")], 3, CancellationToken.None);
        (await CountAsync(third, "bad z")).Should().Be(1);
        (await third.Log.ReadFoldAsync(RunStarts.Fold)).Should().Be(kept, "the fold stays where it was");
    }

    /// <summary>
    /// The stream's raw archive is read by every chunk, but a flush adding to it does not rename the run:
    /// the same request resumes (and the shards of one job agree on their run) while a stream runs. A
    /// committed chunk is computed again only when the archive got events for its buckets after it read
    /// them: before, such a late event was never picked up by the same request.
    /// </summary>
    [Fact]
    public async Task The_streams_archive_is_read_its_growth_does_not_rename_the_run_and_a_chunk_it_got_late_events_for_is_recomputed()
    {
        using var world = await BatchWorld.CreateAsync(seed: 44, events: 120);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var request = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + (2 * BatchWorld.Day));
        string day = Path.Combine(world.Root, "lake", "raw", "stream", "date=2026-11-01");
        Directory.CreateDirectory(day);
        string Line(string id, long time) =>
            $$"""{"ingest_time":{{BatchWorld.Num(time + 1)}},"event_id":"{{id}}","user_id":99,"event_type":"save","event_time":"{{BatchWorld.Iso(time)}}","item_id":1}""";
        await File.WriteAllTextAsync(Path.Combine(day, "part-1.jsonl"), Line("streamed-1", BatchWorld.Start + BatchWorld.Hour) + "\n");
        // Named by hand, so its modification time says when it arrived: well before the first run.
        File.SetLastWriteTimeUtc(Path.Combine(day, "part-1.jsonl"), DateTime.UtcNow.AddMinutes(-10));

        var first = await new BatchJob(env).RunAsync(request, null, CancellationToken.None);
        var rows = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        rows.Should().ContainSingle(r => r.StartsWith("event_id=streamed-1 ", StringComparison.Ordinal), "the stream's archive is a raw archive");
        first.Chunks.Should().Be(2);

        // A flush after the run: a late event for the first day, in a file named as the stream names them.
        // The arrival in its name counts, not its modification time (a copy or a restore keeps the name).
        var flushed = DateTime.UtcNow;
        string today = Path.Combine(world.Root, "lake", "raw", "stream", "date=" + flushed.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(today);
        string late = Path.Combine(today, $"part-{flushed.ToString("HHmmssffffff", System.Globalization.CultureInfo.InvariantCulture)}-0.jsonl");
        await File.WriteAllTextAsync(late, Line("streamed-2", BatchWorld.Start + (2 * BatchWorld.Hour)) + "\n");
        File.SetLastWriteTimeUtc(late, flushed.AddDays(-1));
        var later = new ShiftedTime(TimeSpan.FromHours(1));
        var again = await new BatchJob(env, later).RunAsync(request, null, CancellationToken.None);

        again.RunId.Should().Be(first.RunId);
        again.ChunksResumed.Should().Be(1, "the second day got nothing new");
        again.ChunksRecomputed.Should().Be(1, "the first day's chunk was read before streamed-2 was archived");
        (await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"))).Should().ContainSingle(r => r.StartsWith("event_id=streamed-2 ", StringComparison.Ordinal));

        var third = await new BatchJob(env, later).RunAsync(request, null, CancellationToken.None);
        third.ChunksResumed.Should().Be(third.Chunks, "the recomputed chunk read streamed-2");
        third.ChunksRecomputed.Should().Be(0);

        await world.AppendEventsAsync([new RawEvent("archived-late", 98, "save", BatchWorld.Start + BatchWorld.Hour, BatchWorld.Start + BatchWorld.Day, 1, null)]);
        (await new BatchJob(env, later).RunAsync(request, null, CancellationToken.None)).RunId.Should().NotBe(first.RunId, "a changed listed archive is new input");
    }

    /// <summary>
    /// A sharded run resumes a committed chunk even when the stream archived events for it since (each
    /// shard deciding alone could leave a chunk staged by one and skipped by the others): it counts such
    /// chunks, so the CLI can say to run the range without --shard, where they were resumed silently.
    /// </summary>
    [Fact]
    public async Task A_sharded_run_counts_the_committed_chunks_the_stream_archived_events_for_since()
    {
        using var world = await BatchWorld.CreateAsync(seed: 45, events: 120);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var request = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + (2 * BatchWorld.Day));
        for (int i = 0; i < 2; i++)
        {
            (await new BatchJob(env).RunAsync(request with { Shard = new BatchShard(i, 2) }, null, CancellationToken.None)).ChunksStale.Should().Be(0);
        }

        var quiet = await new BatchJob(env).RunAsync(request with { Shard = new BatchShard(0, 2) }, null, CancellationToken.None);
        (quiet.ChunksResumed, quiet.ChunksStale).Should().Be((quiet.Chunks, 0), "nothing reached the archive since");

        var flushed = DateTime.UtcNow;
        string today = Path.Combine(world.Root, "lake", "raw", "stream", "date=" + flushed.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(today);
        await File.WriteAllTextAsync(
            Path.Combine(today, $"part-{flushed.ToString("HHmmssffffff", System.Globalization.CultureInfo.InvariantCulture)}-0.jsonl"),
            $$"""{"ingest_time":{{BatchWorld.Num(BatchWorld.Start + BatchWorld.Hour + 1)}},"event_id":"streamed-late","user_id":99,"event_type":"save","event_time":"{{BatchWorld.Iso(BatchWorld.Start + BatchWorld.Hour)}}","item_id":1}""" + "\n");
        var later = new ShiftedTime(TimeSpan.FromHours(1));
        foreach (int i in (int[])[0, 1])
        {
            var resumed = await new BatchJob(env, later).RunAsync(request with { Shard = new BatchShard(i, 2) }, null, CancellationToken.None);
            resumed.ChunksResumed.Should().Be(resumed.Chunks, "a shard does not compute a committed chunk again");
            resumed.ChunksStale.Should().Be(1, "the first day's chunk was read before streamed-late was archived");
            resumed.ChunksRecomputed.Should().Be(0);
        }

        (await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"))).Should().NotContain(r => r.StartsWith("event_id=streamed-late ", StringComparison.Ordinal));
        await new BatchJob(env, later).RunAsync(request, null, CancellationToken.None);
        (await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"))).Should().ContainSingle(r => r.StartsWith("event_id=streamed-late ", StringComparison.Ordinal), "the range run without --shard picks it up");
    }

    /// <summary>
    /// The stream's archive is filed by the day records were read, and a record's event time is at most a
    /// day ahead of that: a range skips the day folders that ended two days or more before it starts.
    /// </summary>
    [Fact]
    public async Task A_range_skips_the_streams_archive_days_read_before_its_events_could_have_happened()
    {
        using var world = await BatchWorld.CreateAsync(seed: 45, events: 60);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        string archive = Path.Combine(world.Root, "lake", "raw", "stream");
        async Task FileAsync(string day, string id)
        {
            Directory.CreateDirectory(Path.Combine(archive, $"date={day}"));
            long time = BatchWorld.Start + BatchWorld.Hour;
            await File.WriteAllTextAsync(Path.Combine(archive, $"date={day}", $"part-{id}.jsonl"),
                $$"""{"ingest_time":{{BatchWorld.Num(time)}},"event_id":"{{id}}","user_id":99,"event_type":"save","event_time":"{{BatchWorld.Iso(time)}}","item_id":1}""" + "\n");
        }

        await FileAsync("2026-10-29", "read-three-days-before"); // ends 2026-10-30T00:00, two days before the range
        await FileAsync("2026-10-30", "read-two-days-before");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);

        var rows = await BatchWorld.BatchRowsAsync(world.Config.EnrichedTable("engagement"));
        rows.Should().Contain(r => r.StartsWith("event_id=read-two-days-before ", StringComparison.Ordinal));
        rows.Should().NotContain(r => r.StartsWith("event_id=read-three-days-before ", StringComparison.Ordinal), "its day folder was not read");
    }

    [Fact]
    public async Task A_resumed_batch_run_reads_from_its_first_commit_and_a_new_run_from_where_the_fold_ends()
    {
        using var world = await BatchWorld.CreateAsync(seed: 41, events: 120);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        var dayOne = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day);
        var dayTwo = new BatchRequest("engagement", BatchWorld.Start + BatchWorld.Day, BatchWorld.Start + 2 * BatchWorld.Day);

        // Learn the second run's id (it depends on the inputs, not on the table), then start over.
        var second = await new BatchJob(env).RunAsync(dayTwo, null, CancellationToken.None);
        Directory.Delete(path, recursive: true);

        var table = await EventTable.OpenOrCreateAsync(path, env.Signal.EnrichedSchema, EventLayout.PartitionColumns);
        await CommitPlainAsync(table.Log, 5);
        var first = await new BatchJob(env).RunAsync(dayOne, null, CancellationToken.None);
        first.ChunksResumed.Should().Be(0);
        await CommitPlainAsync(table.Log, DeltaTable.FoldWorthKeeping + 10);

        var resumed = await new BatchJob(env).RunAsync(dayOne, null, CancellationToken.None);
        resumed.ChunksResumed.Should().Be(resumed.Chunks, "every chunk of the run was committed");
        var fold = await table.Log.ReadFoldAsync(RunStarts.Fold);
        fold.Should().NotBeNull("the resumed run read the whole history once and kept where runs start");
        RunStarts.TryParse(fold!.Value.Value, out var kept).Should().BeTrue();
        kept.Should().Equal(await FirstVersionsAsync(table.Log, BatchJob.RunOf));
        kept.Keys.Should().Equal(first.RunId);

        // An early commit rewritten to say the second run committed its chunk: a run reading from version 0
        // would skip it. The second run has no commit up to the fold's version, so it reads from there.
        var bucket = env.Definition.Bucket;
        string secondChunk = $"{TimeBuckets.Format(dayTwo.FromMicros, bucket)}..{TimeBuckets.Format(dayTwo.ToMicros - 1, bucket)}";
        (await table.Log.GetHistoryAsync()).Should().Contain(c => BatchJob.RunOf(c) == first.RunId && c.Parameters[LakeParameters.Chunk] == $"{TimeBuckets.Format(dayOne.FromMicros, bucket)}..{TimeBuckets.Format(dayOne.ToMicros - 1, bucket)}",
            "chunks are named as this test names the second run's");
        await InjectAsync(path, 2, $"\"{LakeParameters.Run}\":\"{second.RunId}\",\"{LakeParameters.Chunk}\":\"{secondChunk}\"");

        var again = await new BatchJob(env).RunAsync(dayTwo, null, CancellationToken.None);
        again.RunId.Should().Be(second.RunId);
        again.ChunksResumed.Should().Be(0, "the rewritten commit lies before the fold's version");
        again.EventsOut.Should().Be(second.EventsOut);

        // The first run, resumed once more: its chunk lies before the fold's version, and is still found.
        var third = await new BatchJob(env).RunAsync(dayOne, null, CancellationToken.None);
        third.ChunksResumed.Should().Be(third.Chunks);
    }
}
