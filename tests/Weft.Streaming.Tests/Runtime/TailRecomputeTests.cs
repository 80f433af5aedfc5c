using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Storage;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// The tail recompute a changed definition calls for is recorded in the signal's table until it
/// completes: a process that stops before it does leaves it to the next start, which finds it even
/// though the stream has written under the new definition since (the change no longer shows in the lake).
/// </summary>
public sealed class TailRecomputeTests
{
    private static readonly long Recent = Timestamps.ToMicros(DateTimeOffset.UtcNow.AddHours(-3)); // inside the 7-day lookback; nothing sealed

    private static string RecordOf(StreamWorld world) => PendingTailFile.PathIn(Path.Combine(world.Root, "lake", "enriched", "engagement"));

    private static async Task DeployAsync(StreamWorld world, SignalDefinition definition) =>
        await File.WriteAllBytesAsync(Path.Combine(world.Root, "signals", "engagement.json"), SignalJsonWriter.Write(definition));

    /// <summary>Streams the events under the deployed definition, then stops without running the tail.</summary>
    private static async Task<IReadOnlyList<TailRecompute>> StreamAndStopAsync(StreamWorld world, IEnumerable<string> events)
    {
        await world.AppendAsync(events);
        await using var runtime = await world.RunAsync();
        return runtime.TailRecomputes;
    }

    [Fact]
    public async Task A_tail_recompute_a_stopped_process_left_is_run_by_the_next_start_and_cleared_once_complete()
    {
        using var world = new StreamWorld();
        (await StreamAndStopAsync(world, StreamWorld.Events(120, seed: 1, baseTime: Recent))).Should().BeEmpty("nothing was streamed before");
        var next = world.Signal with { Version = 2 };
        await DeployAsync(world, next);

        // The process that finds the change streams under the new definition, and stops before the tail ran.
        var found = (await StreamAndStopAsync(world, StreamWorld.Events(40, seed: 2, startIndex: 1000, baseTime: Recent + StreamWorld.Hour))).Should().ContainSingle().Which;
        found.Changed.Should().NotBeNull();
        found.Carried.Should().BeFalse();
        found.Definition.Should().Be(SignalJsonWriter.Fingerprint(next));
        File.Exists(RecordOf(world)).Should().BeTrue("the debt is recorded before the stream writes under the new definition");
        var lake = await EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        (await EnrichedLake.LastStreamedUnderAsync(lake, CancellationToken.None)).Should().Be(SignalJsonWriter.Fingerprint(next), "the lake no longer shows the change");

        await using (var restarted = await world.RunAsync())
        {
            restarted.DefinitionsChanged.Should().BeEmpty();
            var owed = restarted.TailRecomputes.Should().ContainSingle().Which;
            owed.Should().Be(found with { Changed = null, Carried = true }, "the same range, so the batch resumes the same run");
            owed.Describe("/srv/weft.json").Should().Contain("an earlier process started did not complete").And.Contain(SignalDefinitionChanged.BatchCommandFor("/srv/weft.json", found.Tail));

            var result = await restarted.RecomputeTailAsync(owed, CancellationToken.None);
            result.EventsOut.Should().BePositive();
            File.Exists(RecordOf(world)).Should().BeFalse("the run completed");
        }

        (await lake.Log.GetHistoryAsync()).Where(c => c.Parameters.ContainsKey(LakeParameters.Run)).Should().NotBeEmpty()
            .And.OnlyContain(c => c.Parameters[LakeParameters.Fingerprint] == SignalJsonWriter.Fingerprint(next));
        (await StreamAndStopAsync(world, [])).Should().BeEmpty("nothing is owed any more");
    }

    [Fact]
    public async Task A_second_change_on_top_of_an_unfinished_recompute_recomputes_both_tails_in_one_range()
    {
        using var world = new StreamWorld();
        await StreamAndStopAsync(world, StreamWorld.Events(60, seed: 3, baseTime: Recent));
        await DeployAsync(world, world.Signal with { Version = 2 });
        var first = (await StreamAndStopAsync(world, StreamWorld.Events(20, seed: 4, startIndex: 1000, baseTime: Recent + StreamWorld.Hour))).Should().ContainSingle().Which;

        var third = world.Signal with { Version = 3 };
        await DeployAsync(world, third);
        var owed = (await StreamAndStopAsync(world, [])).Should().ContainSingle().Which;
        owed.Changed.Should().NotBeNull("the stream last wrote under version 2");
        owed.Carried.Should().BeTrue();
        owed.Definition.Should().Be(SignalJsonWriter.Fingerprint(third));
        owed.Tail.FromMicros.Should().Be(first.Tail.FromMicros, "the unfinished tail starts earlier than this change's (a lookback before a later now)");
        owed.Tail.ToMicros.Should().BeGreaterThanOrEqualTo(first.Tail.ToMicros);
        (await PendingTailFile.ReadAsync(Path.GetDirectoryName(RecordOf(world))!, "engagement", CancellationToken.None))
            .Should().Be((SignalJsonWriter.Fingerprint(third), owed.Tail), "the record is the widened run");
    }

    [Fact]
    public async Task A_change_found_once_is_not_found_again_when_no_event_arrived_before_the_next_start()
    {
        using var world = new StreamWorld();
        await StreamAndStopAsync(world, StreamWorld.Events(30, seed: 8, baseTime: Recent));
        await DeployAsync(world, world.Signal with { Version = 2 });
        var found = (await StreamAndStopAsync(world, [])).Should().ContainSingle().Which;
        found.Changed.Should().NotBeNull();

        await using var restarted = await world.RunAsync();
        restarted.DefinitionsChanged.Should().BeEmpty("the stream recorded the definition it runs when it found the change, before any event");
        restarted.TailRecomputes.Should().Equal(found with { Changed = null, Carried = true });
    }

    [Fact]
    public async Task A_record_naming_another_definition_is_run_under_the_one_running_and_then_cleared()
    {
        using var world = new StreamWorld();
        await StreamAndStopAsync(world, StreamWorld.Events(40, seed: 9, baseTime: Recent));
        var table = Path.GetDirectoryName(RecordOf(world))!;
        var tail = new BatchRequest("engagement", Recent - StreamWorld.Hour, Recent + (2 * StreamWorld.Hour));
        await PendingTailFile.WriteAsync(table, "an-older-definition", tail, CancellationToken.None);

        await using var runtime = await world.RunAsync();
        var owed = runtime.TailRecomputes.Should().ContainSingle().Which;
        owed.Should().Be(new TailRecompute("engagement", SignalJsonWriter.Fingerprint(world.Signal), tail, null, Carried: true));
        (await PendingTailFile.ReadAsync(table, "engagement", CancellationToken.None))!.Value.Definition.Should().Be(owed.Definition);
        (await runtime.RecomputeTailAsync(owed, CancellationToken.None)).EventsOut.Should().BePositive();
        File.Exists(RecordOf(world)).Should().BeFalse("the run it asked for ran");
    }

    [Fact]
    public async Task A_recompute_that_does_not_complete_keeps_its_record()
    {
        using var world = new StreamWorld();
        await StreamAndStopAsync(world, StreamWorld.Events(60, seed: 5, baseTime: Recent));
        await DeployAsync(world, world.Signal with { Version = 2 });
        await world.AppendAsync(StreamWorld.Events(10, seed: 6, startIndex: 1000, baseTime: Recent + StreamWorld.Hour));
        await using var runtime = await world.RunAsync();
        var owed = runtime.TailRecomputes.Should().ContainSingle().Which;

        using var stopped = new CancellationTokenSource();
        await stopped.CancelAsync();
        await FluentActions.Awaiting(() => runtime.RecomputeTailAsync(owed, stopped.Token)).Should().ThrowAsync<OperationCanceledException>();
        File.Exists(RecordOf(world)).Should().BeTrue();
    }

    [Fact]
    public async Task A_record_is_cleared_only_by_a_run_that_covers_it()
    {
        var table = Path.Combine(Path.GetTempPath(), "weft-tail-record-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(table);
        try
        {
            var wide = new BatchRequest("engagement", 1_000, 9_000);
            await PendingTailFile.WriteAsync(table, "abc", wide, CancellationToken.None);
            (await PendingTailFile.ReadAsync(table, "engagement", CancellationToken.None)).Should().Be(("abc", wide));

            (await PendingTailFile.ClearAsync(table, "abc", wide with { FromMicros = 2_000 }, CancellationToken.None)).Should().BeFalse("another process recorded a wider run since");
            (await PendingTailFile.ClearAsync(table, "abc", wide with { ToMicros = 8_000 }, CancellationToken.None)).Should().BeFalse();
            (await PendingTailFile.ClearAsync(table, "older", wide, CancellationToken.None)).Should().BeFalse("the record asks for the run under another definition");
            File.Exists(PendingTailFile.PathIn(table)).Should().BeTrue();
            (await PendingTailFile.ClearAsync(table, "abc", wide, CancellationToken.None)).Should().BeTrue();
            (await PendingTailFile.ReadAsync(table, "engagement", CancellationToken.None)).Should().BeNull();
        }
        finally
        {
            Directory.Delete(table, recursive: true);
        }
    }

    /// <summary>
    /// The processes of a group start together after a deployment and each records the tail it found:
    /// under the record's lock none loses another's range, and no start fails on another's write.
    /// </summary>
    [Fact]
    public async Task Processes_recording_at_once_leave_one_record_covering_every_range()
    {
        var table = Path.Combine(Path.GetTempPath(), "weft-tail-record-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(table);
        try
        {
            var ranges = Enumerable.Range(0, 24).Select(i => new BatchRequest("engagement", 10_000 - (i * 97 % 1_000), 20_000 + (i * 131 % 1_000))).ToList();
            // Threads released together, as processes starting at once: each reads, then writes with an fsync.
            var owed = new (BatchRequest Tail, bool Carried)?[ranges.Count];
            using var start = new Barrier(ranges.Count);
            var threads = ranges.Select((r, i) => new Thread(() =>
            {
                start.SignalAndWait();
#pragma warning disable VSTHRD002 // a thread of its own stands for a process: it has nothing else to run while it waits
                owed[i] = PendingTailFile.OweAsync(table, "engagement", "abc", r, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            owed.Should().OnlyContain(o => o != null);

            var recorded = (await PendingTailFile.ReadAsync(table, "engagement", CancellationToken.None))!.Value;
            recorded.Tail.FromMicros.Should().Be(ranges.Min(r => r.FromMicros));
            recorded.Tail.ToMicros.Should().Be(ranges.Max(r => r.ToMicros));
            owed.Count(o => !o!.Value.Carried).Should().Be(1, "one found no record; each after it widened the one before");
            Directory.GetFiles(table, "*.tmp").Should().BeEmpty("every write renamed its own temp file into place");
        }
        finally
        {
            Directory.Delete(table, recursive: true);
        }
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("""{ "signal": "engagement", "definition": "abc", "from": "2026-12-01T00:00:00Z" }""")]
    [InlineData("""{ "signal": "other", "definition": "abc", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z" }""")]
    [InlineData("""{ "signal": "engagement", "definition": "abc", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z" }""")]
    public async Task A_record_not_written_by_the_stream_stops_the_start_with_its_path(string content)
    {
        using var world = new StreamWorld();
        await StreamAndStopAsync(world, StreamWorld.Events(10, seed: 7, baseTime: Recent));
        await File.WriteAllTextAsync(RecordOf(world), content);

        var start = () => world.RunAsync();
        (await start.Should().ThrowAsync<InputException>()).Which.Message.Should().Contain(RecordOf(world)).And.Contain("then delete the file");
    }
}
