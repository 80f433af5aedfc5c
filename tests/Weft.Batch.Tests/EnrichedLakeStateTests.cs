using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;
using Xunit;

namespace Weft.Batch.Tests;

public sealed class EnrichedLakeStateTests
{
    [Fact]
    public async Task A_long_lived_lake_catches_up_on_new_commits_reading_only_those()
    {
        using var world = await BatchWorld.CreateAsync(seed: 11, events: 300);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);
        var lake = await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None);
        var first = await lake.GetStateAsync(CancellationToken.None);
        first.SealedBuckets.Should().NotBeEmpty();

        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start + BatchWorld.Day, BatchWorld.Start + 3 * BatchWorld.Day), null, CancellationToken.None);
        var fresh = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);

        // Damage an entry the first state already covered: a reader that re-read the whole history would fail on it.
        await File.WriteAllTextAsync(Path.Combine(path, "_delta_log", "00000000000000000001.json"), "{ damaged");
        var caughtUp = await lake.GetStateAsync(CancellationToken.None);

        caughtUp.Version.Should().BeGreaterThan(first.Version).And.Be(fresh.Version);
        caughtUp.SealedBuckets.Should().BeEquivalentTo(fresh.SealedBuckets);
        caughtUp.SealedBuckets.Should().Contain(first.SealedBuckets).And.HaveCountGreaterThan(first.SealedBuckets.Count);
        caughtUp.SealedThroughMicros.Should().Be(fresh.SealedThroughMicros).And.BeGreaterThan(first.SealedThroughMicros!.Value);
        (await lake.GetStateAsync(CancellationToken.None)).Should().BeSameAs(caughtUp);
    }

    [Fact]
    public async Task A_first_read_starts_from_the_sealed_buckets_a_previous_reader_kept()
    {
        using var world = await BatchWorld.CreateAsync(seed: 12, events: 100);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);

        // Many more commits, some sealing a bucket each: a history long enough to keep a fold of.
        var table = await Weft.Storage.DeltaTable.OpenAsync(path);
        var sealedByCommits = new List<string>();
        for (int i = 0; i < EnrichedLake.FoldKeepAfter + 20; i++)
        {
            var commit = Weft.Storage.DeltaTransaction.Create("WRITE");
            if (i % 10 == 0)
            {
                string bucket = TimeBuckets.Format(BatchWorld.Start + (5 * BatchWorld.Day) + (i * BatchWorld.Hour), Weft.Definitions.TimeBucket.Hour);
                commit.WithParameter(LakeParameters.Sealed, bucket);
                sealedByCommits.Add(bucket);
            }

            await table.CommitAsync(commit.Build());
        }

        var whole = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);
        whole.SealedBuckets.Should().Contain(sealedByCommits);
        var fold = await table.ReadFoldAsync(EnrichedLake.SealedFold);
        fold.Should().NotBeNull("the first read folded more than the threshold of commits, so it kept them");
        fold!.Value.Version.Should().Be(whole.Version);

        // An early commit's sealed bucket, rewritten: a reader of the whole history would now see it.
        // A first read from the fold reads only what came after, and a newer seal.
        var early = Path.Combine(path, "_delta_log", "00000000000000000001.json");
        var text = await File.ReadAllTextAsync(early);
        await File.WriteAllTextAsync(early, text.Replace("\"weft.sealed\":\"", "\"weft.sealed\":\"2031-01-01T00,", StringComparison.Ordinal));
        await table.CommitAsync(Weft.Storage.DeltaTransaction.Create("WRITE").WithParameter(LakeParameters.Sealed, "2030-06-01T00").Build());
        var fromFold = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);

        text.Should().Contain("\"weft.sealed\"", "the batch run's first commit seals buckets");
        fromFold.SealedBuckets.Should().BeEquivalentTo(whole.SealedBuckets.Add("2030-06-01T00"));
        fromFold.SealedThroughMicros.Should().Be(TimeBuckets.Parse("2030-06-01T00").EndMicros);
        whole.SealReadAt.Should().NotBeEmpty("the batch run's seals record when it read");
        fromFold.SealReadAt.Should().BeEquivalentTo(whole.SealReadAt, "the fold keeps each bucket's read time");
        whole.SealReadAtMicros(sealedByCommits[0]).Should().Be(long.MaxValue, "a seal whose commit records no read time has none");
    }

    /// <summary>
    /// Under batch seals, stream fills, a stream row of a sealed bucket that arrived after the sealing run
    /// began reading is an event that run could not see: it takes part (accepted late, amended online),
    /// where before it was hidden until the next run. One that arrived before it does not, and a copy of
    /// an event the run has collapses with the batch copy.
    /// </summary>
    [Fact]
    public async Task A_stream_row_of_a_sealed_bucket_takes_part_only_when_it_arrived_after_the_sealing_run_read()
    {
        using var world = await BatchWorld.CreateAsync(seed: 13, events: 300);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day), null, CancellationToken.None);
        var lake = await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None);
        var state = await lake.GetStateAsync(CancellationToken.None);
        var table = await EventTable.OpenAsync(path);
        var batchRows = new List<Weft.Engine.EventBatch>();
        await foreach (var part in table.ReadAsync(partitions: PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath)))
        {
            batchRows.Add(part);
        }

        var rows = Weft.Engine.EventBatch.Concat(env.Signal.EnrichedSchema, batchRows);
        // The newest event: copies of it are within its user's newest max_length (ties go by event_id, and these sort first).
        var times = ((Weft.Engine.PrimitiveColumn<long>)rows[StandardColumns.EventTime]).Values;
        int newest = Array.IndexOf(times, times.Max());
        string bucket = TimeBuckets.Format(times[newest], env.Definition.Bucket);
        state.SealedBuckets.Should().Contain(bucket);
        long readAt = state.SealReadAtMicros(bucket);
        var history = await table.Log.GetHistoryAsync();
        history.Should().Contain(c => c.Parameters.GetValueOrDefault(LakeParameters.ReadAt) == readAt.ToString(System.Globalization.CultureInfo.InvariantCulture), "the sealing commit's read time");
        string copied = (string)rows[StandardColumns.EventId].GetValue(newest)!;

        // Three stream rows of that bucket: one that arrived as the run read (not after it), one a microsecond
        // after, and a copy of a batch event after, with another category (a stale enrichment).
        var three = rows.Gather([newest, newest, newest]);
        var columns = three.Columns.ToArray();
        columns[three.Schema.IndexOf(three.Schema.Single(f => f.Name == StandardColumns.EventId))] = new Weft.Engine.StringColumn(["a-before-seal", "a-after-seal", copied]);
        columns[three.Schema.IndexOf(three.Schema.Single(f => f.Name == StandardColumns.IngestTime))] =
            new Weft.Engine.PrimitiveColumn<long>(Weft.Definitions.WeftType.Timestamp, [readAt, readAt + 1, readAt + 60_000_000L]);
        columns[three.Schema.IndexOf(three.Schema.Single(f => f.Name == "category"))] = new Weft.Engine.StringColumn(["c", "c", "stale"]);
        await table.AppendAsync(new Weft.Engine.EventBatch(three.Schema, columns), EventPartitioner.ByTimeBucket(env.Definition.Bucket, EventLayout.StreamPath));

        var read = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).ReadAsync(BatchWorld.Start, BatchWorld.Start + BatchWorld.Day, CancellationToken.None);
        var ids = (Weft.Engine.StringColumn)read.Rows[StandardColumns.EventId];
        bool Admitted(string id, bool fromBatch) => Enumerable.Range(0, read.Rows.RowCount).Single(i => ids.Values[i] == id && read.FromBatch[i] == fromBatch) is var i && read.Admitted[i];
        Admitted("a-before-seal", fromBatch: false).Should().BeFalse("the run that sealed the bucket had read it by then");
        Admitted("a-after-seal", fromBatch: false).Should().BeTrue("the run could not have seen it");
        Admitted(copied, fromBatch: false).Should().BeTrue();
        var user = (long)rows[StandardColumns.UserId].GetValue(newest)!;
        var snapshot = SequenceBuilder.Snapshot(read, env.Definition, Weft.Engine.Sequences.SequenceCut.For(env.Definition, BatchWorld.Start + BatchWorld.Day, long.MaxValue));
        int row = Enumerable.Range(0, snapshot.RowCount).Single(r => (long)snapshot.Keys[StandardColumns.UserId].GetValue(r)! == user);
        var elementIds = Enumerable.Range(snapshot.Offsets[row], snapshot.Length(row)).Select(k => (string)snapshot.Elements[StandardColumns.EventId].GetValue(k)!).ToList();
        elementIds.Should().Contain("a-after-seal").And.NotContain("a-before-seal");
        elementIds.Count(id => id == copied).Should().Be(1, "the stream copy collapses with the batch copy");
        int at = Enumerable.Range(snapshot.Offsets[row], snapshot.Length(row)).Single(k => (string)snapshot.Elements[StandardColumns.EventId].GetValue(k)! == copied);
        snapshot.Elements["category"].GetValue(at).Should().Be(rows["category"].GetValue(newest)).And.NotBe("stale", "the batch copy wins");
    }

    /// <summary>
    /// A run that recomputes a bucket an earlier run sealed, at a time the clock would leave it open (a raised
    /// late allowance), seals it again with its own read time: left at the earlier run's, stream rows this
    /// run read would be judged against a read that came before them.
    /// </summary>
    [Fact]
    public async Task A_run_that_recomputes_a_sealed_bucket_the_clock_leaves_open_seals_it_again_with_its_read_time()
    {
        using var world = await BatchWorld.CreateAsync(seed: 14, events: 200);
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var path = world.Config.EnrichedTable("engagement");
        var day = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day);
        await new BatchJob(env).RunAsync(day, null, CancellationToken.None);
        var first = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);
        string lastHour = TimeBuckets.Format(BatchWorld.Start + BatchWorld.Day - BatchWorld.Hour, env.Definition.Bucket);
        string firstHour = TimeBuckets.Format(BatchWorld.Start, env.Definition.Bucket);
        first.SealedBuckets.Should().Contain([lastHour, firstHour], "the whole day is past its late allowance today");

        // Two hours after the day ended, its last hours are within the 6-hour late allowance: by the clock
        // alone the run would not seal them. Another chunking, so it is another run, not a resumed one.
        var early = new ShiftedTime(Timestamps.FromMicros(BatchWorld.Start + BatchWorld.Day + 2 * BatchWorld.Hour) - DateTimeOffset.UtcNow);
        var again = await new BatchJob(env, early).RunAsync(day with { BucketsPerChunk = 12 }, null, CancellationToken.None);
        var second = await (await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None)).GetStateAsync(CancellationToken.None);

        again.SealedBuckets.Should().Contain([lastHour, firstHour]);
        second.SealReadAtMicros(lastHour).Should().BeLessThan(first.SealReadAtMicros(lastHour), "the second run read at its own (earlier) clock")
            .And.Be(second.SealReadAtMicros(TimeBuckets.Format(BatchWorld.Start + 12 * BatchWorld.Hour, env.Definition.Bucket)), "one chunk, one read time");
        second.SealReadAtMicros(firstHour).Should().NotBe(first.SealReadAtMicros(firstHour));
    }

    /// <summary>A compare against legacy reads one copy of each event, the one a sequence takes: both paths may hold one.</summary>
    [Theory]
    [InlineData(MergePolicyKind.BatchSealsStreamFills, "a:batch,b:stream@1,c:stream")]
    [InlineData(MergePolicyKind.LastWriteWins, "a:stream@9,b:stream@5,c:stream")]
    public void One_copy_of_each_admitted_event_is_the_one_the_merge_policy_prefers(MergePolicyKind policy, string expected)
    {
        // a: batch and stream copies; b: two stream copies (ingest 5 and 1); c: one kept, one not admitted; d: filtered out.
        string[] ids = ["a", "b", "a", "b", "c", "c", "d"];
        bool[] fromBatch = [false, false, true, false, false, false, false];
        long[] ingest = [9, 5, 2, 1, 3, 4, 1];
        bool[] admitted = [true, true, true, true, true, false, true];
        var rows = new Weft.Engine.EventBatch(
            [new FieldDefinition(StandardColumns.EventId, WeftType.String), new FieldDefinition(StandardColumns.UserId, WeftType.Int64), new FieldDefinition(StandardColumns.IngestTime, WeftType.Timestamp)],
            [new Weft.Engine.StringColumn(ids), new Weft.Engine.PrimitiveColumn<long>(WeftType.Int64, new long[ids.Length]), new Weft.Engine.PrimitiveColumn<long>(WeftType.Timestamp, ingest)]);
        var read = new EnrichedRows(rows, fromBatch, admitted, 1, 5);

        var kept = read.OneCopyEach(policy, i => ids[i] != "d");

        string.Join(',', kept.Select(i => $"{ids[i]}:{(fromBatch[i] ? "batch" : "stream")}{(ids[i] == "c" ? "" : fromBatch[i] ? "" : "@" + ingest[i])}"))
            .Should().Be(expected);
    }

    /// <summary>
    /// Copies neither preferred over the other (last-write-wins, one ingest time: the batch path reads the
    /// stream archive's stamp) keep the earlier row, as a sequence does; and users are apart.
    /// </summary>
    [Fact]
    public void A_tie_keeps_the_earlier_copy_and_one_event_id_of_two_users_is_two_events()
    {
        var rows = new Weft.Engine.EventBatch(
            [new FieldDefinition(StandardColumns.EventId, WeftType.String), new FieldDefinition(StandardColumns.UserId, WeftType.Int64), new FieldDefinition(StandardColumns.IngestTime, WeftType.Timestamp)],
            [new Weft.Engine.StringColumn(["x", "x", "x"]), new Weft.Engine.PrimitiveColumn<long>(WeftType.Int64, [1, 1, 2]), new Weft.Engine.PrimitiveColumn<long>(WeftType.Timestamp, [5, 5, 5])]);
        var read = new EnrichedRows(rows, [true, false, false], [true, true, true], 1, 2);

        read.OneCopyEach(MergePolicyKind.LastWriteWins, _ => true).Should().Equal(0, 2);
        read.OneCopyEach(MergePolicyKind.BatchSealsStreamFills, _ => true).Should().Equal(0, 2);
    }

    /// <summary>
    /// A reader that stays open (serving's batch history) while a writer adds a column the signal
    /// gained: its next read has the column's values, not the nulls of a table it saw without it.
    /// </summary>
    [Fact]
    public async Task A_long_lived_reader_reads_a_column_added_after_it_opened()
    {
        using var world = await BatchWorld.CreateAsync(seed: 13, events: 300);
        var signals = Path.Combine(world.Root, "signals", "engagement.json");
        var earlier = world.Signal with { Element = [.. world.Signal.Element.Where(f => f.Name != "dwell_ms")] };
        await File.WriteAllBytesAsync(signals, SignalJsonWriter.Write(earlier));
        var request = new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + BatchWorld.Day);
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(request, null, CancellationToken.None);

        var path = world.Config.EnrichedTable("engagement");
        var lake = await EnrichedLake.OpenAsync(path, world.Signal, CancellationToken.None);
        Dwell(await lake.ReadAsync(BatchWorld.Start, BatchWorld.Start + BatchWorld.Day, CancellationToken.None)).Should().OnlyContain(d => d == null, "the table has no dwell_ms yet");

        await File.WriteAllBytesAsync(signals, SignalJsonWriter.Write(world.Signal));
        await new BatchJob(await SignalEnvironment.LoadAsync(world.Config, "engagement")).RunAsync(request, null, CancellationToken.None);

        Dwell(await lake.ReadAsync(BatchWorld.Start, BatchWorld.Start + BatchWorld.Day, CancellationToken.None)).Should().Contain(d => d != null, "the batch run recomputed the day with dwell_ms");

        static List<object?> Dwell(EnrichedRows rows) => [.. Enumerable.Range(0, rows.Rows.RowCount).Select(i => rows.Rows["dwell_ms"].GetValue(i))];
    }
}
