using System.Runtime.CompilerServices;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// The central promise of "one engine, two scheduling shapes": the same chain fed record-at-a-time
/// or in micro-batches (streaming) and fed one bounded table (batch) gives identical enriched
/// events, sequences and dead letters, for any input.
/// </summary>
public class ShapeParityTests
{
    public sealed record RawEvent(int IdIndex, long User, string Type, int Minute, long Item, string? Dwell);

    public sealed record Scenario(IReadOnlyList<RawEvent> Events, IReadOnlyList<int> BatchSizes)
    {
        public override string ToString() => $"{Events.Count} events, batches [{string.Join(",", BatchSizes.Take(12))}…]: " +
            string.Join("; ", Events.Take(8).Select(e => $"{e.IdIndex}/{e.User}/{e.Type}/{e.Minute}/{e.Item}/{e.Dwell ?? "null"}"));
    }

    public static Arbitrary<Scenario> Scenarios()
    {
        var dwell = Gen.OneOf(
            Gen.Constant<string?>(null),
            Gen.Choose(0, 12_000).Select(i => (string?)i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            Gen.Elements<string?>("0", "abc", "99999999999", "150"));
        var ev = from id in Gen.Choose(0, 60)
                 from user in Gen.Choose(1, 4)
                 from type in Gen.Elements("click", "click", "save", "search")
                 from minute in Gen.Choose(0, 300)
                 from item in Gen.Choose(1, 7)
                 from d in dwell
                 select new RawEvent(id, user, type, minute, item, d);
        var scenario = from events in Gen.ListOf(ev)
                       from sizes in Gen.NonEmptyListOf(Gen.Choose(1, 7))
                       from recordAtATime in Gen.Elements(true, false)
                       select new Scenario(events, recordAtATime ? [1] : sizes);
        return Arb.From(scenario);
    }

    [Property(MaxTest = 150, Arbitrary = [typeof(ShapeParityTests)])]
    public async Task Streaming_and_batch_shapes_give_identical_output(Scenario scenario)
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        // A duplicate delivery repeats an earlier event exactly, as a retrying producer would.
        var first = new Dictionary<int, RawEvent>();
        var rows = scenario.Events.Select(e => first.TryGetValue(e.IdIndex, out var f) ? f : first[e.IdIndex] = e)
            .Select(e => TestSignals.Raw(signal, $"e{e.IdIndex:00}", e.User, e.Type, e.Minute, e.Item, e.Dwell)).ToList();
        var table = TestSignals.Batch(signal.RawSchema, rows);
        var options = new RunOptions { QueueCapacity = 2, Recovery = RecoveryOptions.Default with { InitialBackoff = TimeSpan.Zero } };

        var batchRun = signal.StartRun(new ExecutorContext(definition), options);
        var batchOut = await batchRun.ProcessTableAsync(table, CancellationToken.None);

        var streamRun = signal.StartRun(new ExecutorContext(definition), options);
        var streamed = new List<EventBatch>();
        await streamRun.ProcessStreamAsync(Slices(table, scenario.BatchSizes), (b, _) =>
        {
            streamed.Add(b);
            return ValueTask.CompletedTask;
        }, CancellationToken.None);

        SortedRows(batchOut).Should().Equal(SortedRows(streamed.Count == 0 ? EventBatch.Empty(signal.EnrichedSchema) : EventBatch.Concat(signal.EnrichedSchema, streamed)));
        long asOf = TestSignals.Minute(240);
        Sequences(batchRun.Assembler.Snapshot(asOf)).Should().Equal(Sequences(streamRun.Assembler.Snapshot(asOf)));
        DeadLetters(batchRun.Context).Should().Equal(DeadLetters(streamRun.Context));

        // The runs' counters agree with what they did: every row in, each row out once, and no more rows
        // out than distinct event ids (a repeat is dropped).
        batchRun.EventsIn.Should().Be(rows.Count);
        streamRun.EventsIn.Should().Be(rows.Count);
        batchRun.EventsOut.Should().Be(batchOut.RowCount);
        streamRun.EventsOut.Should().Be(batchOut.RowCount);
        batchRun.EventsOut.Should().BeLessThanOrEqualTo(first.Count);
    }

    /// <summary>
    /// A run that continues another (a stream reloading its enrichment tables) takes over its dedup
    /// memory and hot-user counts: the events of both runs come out as one run's would.
    /// </summary>
    [Property(MaxTest = 100, Arbitrary = [typeof(ShapeParityTests)])]
    public async Task A_continuing_run_gives_what_one_run_gives(Scenario scenario, PositiveInt cut)
    {
        var definition = TestSignals.Engagement(hotUserCap: 4);
        var (signal, head, tail, options, one, expected) = await CutAsync(definition, scenario.Events, cut);
        var first = signal.StartRun(new ExecutorContext(definition), options);
        var firstOut = await first.ProcessTableAsync(head, CancellationToken.None);
        var second = signal.StartRun(new ExecutorContext(definition), options, continuing: first);
        var actual = EventBatch.Concat(signal.EnrichedSchema, [firstOut, await second.ProcessTableAsync(tail, CancellationToken.None)]);

        SortedRows(actual).Should().Equal(SortedRows(expected), scenario.ToString());
        DeadLetters(first.Context).Concat(DeadLetters(second.Context)).Order(StringComparer.Ordinal)
            .Should().Equal(DeadLetters(one.Context).Order(StringComparer.Ordinal), scenario.ToString());
    }

    /// <summary>
    /// A run started after a restart and given back the earlier run's stored output (a stream recalling
    /// its lake) drops the redeliveries one run would have dropped. A redelivery carries what its first
    /// delivery carried, so an event a filter or a dead letter kept out of the output is kept out again.
    /// </summary>
    [Property(MaxTest = 100, Arbitrary = [typeof(ShapeParityTests)])]
    public async Task A_run_recalling_the_stored_output_of_an_earlier_run_gives_what_one_run_gives(Scenario scenario, PositiveInt cut)
    {
        var definition = TestSignals.Engagement(hotUserCap: 1_000);
        var firstDelivery = new Dictionary<int, RawEvent>();
        var redelivered = scenario.Events.Select(e => firstDelivery.TryAdd(e.IdIndex, e) ? e : firstDelivery[e.IdIndex]).ToList();
        var (signal, head, tail, options, _, expected) = await CutAsync(definition, redelivered, cut);
        var stored = await signal.StartRun(new ExecutorContext(definition), options).ProcessTableAsync(head, CancellationToken.None);
        var restarted = signal.StartRun(new ExecutorContext(definition), options);
        restarted.Recall(stored);
        var actual = EventBatch.Concat(signal.EnrichedSchema, [stored, await restarted.ProcessTableAsync(tail, CancellationToken.None)]);

        SortedRows(actual).Should().Equal(SortedRows(expected), scenario.ToString());
    }

    /// <summary>A recalled hour's events count towards the cap; an hour not recalled starts from nothing.</summary>
    [Fact]
    public async Task A_run_recalling_stored_events_caps_a_hot_user_where_the_earlier_run_left_off()
    {
        var definition = TestSignals.Engagement(hotUserCap: 2);
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var before = TestSignals.Batch(signal.RawSchema, [TestSignals.Raw(signal, "a", 1, "save", 10, 1), TestSignals.Raw(signal, "b", 1, "save", 20, 2)]);
        var after = TestSignals.Batch(signal.RawSchema, [TestSignals.Raw(signal, "c", 1, "save", 30, 3), TestSignals.Raw(signal, "d", 1, "save", 70, 3), TestSignals.Raw(signal, "e", 2, "save", 31, 3)]);
        var stored = await signal.StartRun(new ExecutorContext(definition)).ProcessTableAsync(before, CancellationToken.None);
        stored.RowCount.Should().Be(2);

        var restarted = signal.StartRun(new ExecutorContext(definition));
        restarted.Recall(stored);
        var output = await restarted.ProcessTableAsync(after, CancellationToken.None);

        Enumerable.Range(0, output.RowCount).Select(i => (string)output[StandardColumns.EventId].GetValue(i)!).Should().BeEquivalentTo(["d", "e"],
            "c is user 1's third event of its hour, d falls in the next hour, and user 2 had none");
        DeadLetters(restarted.Context).Should().ContainSingle().Which.Should().StartWith("c @ hot_user_cap:");
    }

    [Fact]
    public void A_run_continues_only_a_run_of_the_same_definition()
    {
        var items = (SignalDefinition d) => new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(d) };
        var definition = TestSignals.Engagement(hotUserCap: 4);
        var other = TestSignals.Engagement(hotUserCap: 5);
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), items(definition));
        var otherRun = CompiledSignal.Compile(other, TestSignals.Registry(), items(other)).StartRun(new ExecutorContext(other));

        var start = () => signal.StartRun(new ExecutorContext(definition), continuing: otherRun);

        start.Should().Throw<ArgumentException>().WithParameterName("continuing").WithMessage("*same definition*");
        var smallerWindow = () => signal.StartRun(new ExecutorContext(definition), new RunOptions { DedupCapacity = 10 }, signal.StartRun(new ExecutorContext(definition)));
        smallerWindow.Should().Throw<ArgumentException>().WithParameterName("continuing");
    }

    [Fact]
    public async Task Record_at_a_time_equals_one_table_on_a_fixed_tricky_input()
    {
        var definition = TestSignals.Engagement(maxLength: 3, hotUserCap: 6);
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var rows = new List<object?[]>
        {
            TestSignals.Raw(signal, "a", 1, "click", 10, 1, "500"),
            TestSignals.Raw(signal, "b", 1, "click", 11, 6, "700"),   // poison: dead-lettered by the custom step
            TestSignals.Raw(signal, "c", 1, "click", 12, 2, "abc"),   // cast failure: dead-lettered by the map step
            TestSignals.Raw(signal, "d", 1, "save", 13, 3),
            TestSignals.Raw(signal, "a", 1, "click", 10, 1, "500"),   // duplicate delivery
            TestSignals.Raw(signal, "e", 1, "click", 14, 4, "50"),    // filtered out (dwell < 100)
            TestSignals.Raw(signal, "f", 1, "save", 15, 5),
            TestSignals.Raw(signal, "g", 1, "save", 16, 5),           // 7th raw event of user 1 in the hour: over the cap of 6
        };
        var table = TestSignals.Batch(signal.RawSchema, rows);

        var batchRun = signal.StartRun(new ExecutorContext(definition));
        await batchRun.ProcessTableAsync(table, CancellationToken.None);
        var streamRun = signal.StartRun(new ExecutorContext(definition));
        await streamRun.ProcessStreamAsync(Slices(table, [1]), (_, _) => ValueTask.CompletedTask, CancellationToken.None);

        var seq = batchRun.Assembler.Sequence(1, TestSignals.Minute(60))!;
        seq.Elements[StandardColumns.EventId].GetValue(0).Should().Be("f");
        Enumerable.Range(0, seq.Elements.RowCount).Select(r => seq.Elements[StandardColumns.EventId].GetValue(r)).Should().Equal("f", "d", "a");
        Sequences(batchRun.Assembler.Snapshot(TestSignals.Minute(60))).Should().Equal(Sequences(streamRun.Assembler.Snapshot(TestSignals.Minute(60))));
        DeadLetters(batchRun.Context).Should().Equal(
            "b @ event_types.click.steps[3]: executor failed: InvalidOperationException: item 6 breaks this executor",
            "c @ event_types.click.steps[0]: cannot cast abc (string) to int32",
            "g @ hot_user_cap: hot user cap: more than 6 events in the hour starting 2026-01-01T00:00:00.000000Z");
        DeadLetters(streamRun.Context).Should().Equal(DeadLetters(batchRun.Context));
    }

    internal static async IAsyncEnumerable<EventBatch> Slices(EventBatch table, IReadOnlyList<int> sizes, [EnumeratorCancellation] CancellationToken ct = default)
    {
        int start = 0, i = 0;
        while (start < table.RowCount)
        {
            int n = Math.Min(sizes[i++ % sizes.Count], table.RowCount - start);
            yield return table.Slice(start, n);
            start += n;
            await Task.Yield();
        }
    }

    /// <summary>The scenario's events cut in two (at <paramref name="cut"/>), and what one run makes of both halves.</summary>
    private static async Task<(CompiledSignal Signal, EventBatch Head, EventBatch Tail, RunOptions Options, SignalRun OneRun, EventBatch OneRunOutput)> CutAsync(
        SignalDefinition definition, IReadOnlyList<RawEvent> events, PositiveInt cut)
    {
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var rows = events.Select(e => TestSignals.Raw(signal, $"e{e.IdIndex:00}", e.User, e.Type, e.Minute, e.Item, e.Dwell)).ToList();
        int split = rows.Count == 0 ? 0 : cut.Get % (rows.Count + 1);
        var head = TestSignals.Batch(signal.RawSchema, rows[..split]);
        var tail = TestSignals.Batch(signal.RawSchema, rows[split..]);
        var options = new RunOptions { Assemble = false, Recovery = RecoveryOptions.Default with { InitialBackoff = TimeSpan.Zero } };
        var one = signal.StartRun(new ExecutorContext(definition), options);
        var output = EventBatch.Concat(signal.EnrichedSchema, [await one.ProcessTableAsync(head, CancellationToken.None), await one.ProcessTableAsync(tail, CancellationToken.None)]);
        return (signal, head, tail, options, one, output);
    }

    internal static List<string> SortedRows(EventBatch batch) => JsonRows.Canonical(batch).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();

    internal static List<string> Sequences(IReadOnlyList<UserSequence> sequences) =>
        sequences.Select(s => $"user {s.UserId} truncated={s.Truncated}\n{JsonRows.Canonical(s.Elements)}").ToList();

    internal static List<string> DeadLetters(ExecutorContext context) =>
        context.DeadLetters.Select(d => $"{d.EventId} @ {d.Stage}: {d.Reason}").Order(StringComparer.Ordinal).ToList();
}
