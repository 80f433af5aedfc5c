using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

public class RecoveryTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema = [.. StandardColumns.All];

    private static EventBatch Events(int n) => TestSignals.Batch(Schema,
        Enumerable.Range(0, n).Select(i => new object?[] { $"e{i}", (long)(i % 3), "click", TestSignals.Minute(i), TestSignals.Minute(i) }).ToList());

    private static ExecutorContext Context() => new(TestSignals.Engagement());

    private sealed class FlakyExecutor(int failures) : IEventExecutor
    {
        public int Calls { get; private set; }

        public string Name => "flaky";

        public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

        public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
        {
            Calls++;
            return Calls <= failures ? throw new TransientExecutorException("lookup timed out") : ValueTask.FromResult(batch);
        }
    }

    private sealed class PoisonIdExecutor(params string[] poison) : IEventExecutor
    {
        public string Name => "poison";

        public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

        public ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
        {
            var ids = ((StringColumn)batch[StandardColumns.EventId]).Values;
            return ids.Any(poison.Contains) ? throw new FormatException("cannot featurise") : ValueTask.FromResult(batch);
        }
    }

    [Fact]
    public async Task Transient_failures_are_retried_with_exponential_backoff()
    {
        var time = new FakeTimeProvider(TestSignals.Epoch);
        var flaky = new FlakyExecutor(failures: 2);
        var options = RecoveryOptions.Default with { Time = time, InitialBackoff = TimeSpan.FromMilliseconds(100) };
        var run = StageRunner.ExecuteAsync(flaky, Events(5), Context(), options, CancellationToken.None).AsTask();
        while (!run.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            await Task.Yield();
        }

        (await run).RowCount.Should().Be(5);
        flaky.Calls.Should().Be(3);
        time.RequestedDelays.Should().Equal(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task A_transient_failure_that_persists_stops_the_run_with_the_cause()
    {
        var options = RecoveryOptions.Default with { InitialBackoff = TimeSpan.Zero, MaxAttempts = 3 };
        var act = () => StageRunner.ExecuteAsync(new FlakyExecutor(int.MaxValue), Events(2), Context(), options, CancellationToken.None).AsTask();
        (await act.Should().ThrowAsync<PipelineException>()).Which.Message.Should().Contain("failed transiently 3 times").And.Contain("lookup timed out");
    }

    [Fact]
    public async Task A_permanent_failure_dead_letters_only_the_events_that_cause_it()
    {
        var context = Context();
        var result = await StageRunner.ExecuteAsync(new PoisonIdExecutor("e3", "e11"), Events(16), context, RecoveryOptions.Default, CancellationToken.None);
        result.RowCount.Should().Be(14);
        Enumerable.Range(0, result.RowCount).Select(r => (string)result[StandardColumns.EventId].GetValue(r)!).Should().NotContain(["e3", "e11"]);
        context.DeadLetters.Select(d => (d.EventId, d.Stage, d.Reason)).Should().BeEquivalentTo(new[]
        {
            ("e3", "poison", "executor failed: FormatException: cannot featurise"),
            ("e11", "poison", "executor failed: FormatException: cannot featurise"),
        });
    }

    private sealed class GateExecutor : IEventExecutor
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Name => "gate";

        public IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input) => input;

        public async ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken)
        {
            await Gate.Task.WaitAsync(cancellationToken);
            return batch;
        }
    }

    [Fact]
    public async Task A_slow_stage_holds_back_the_source_through_bounded_queues()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var run = signal.StartRun(new ExecutorContext(definition), new RunOptions { QueueCapacity = 2 });
        var gate = new GateExecutor();
        var pulled = 0;
        var sinkCalls = 0;

        async IAsyncEnumerable<EventBatch> Source([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (int i = 0; i < 1000; i++)
            {
                Interlocked.Increment(ref pulled);
                yield return TestSignals.Batch(signal.RawSchema, [TestSignals.Raw(signal, $"e{i}", i, "save", i % 50, 1)]);
                await Task.Yield();
            }
        }

        var task = run.ProcessStreamAsync(Source(), async (b, ct) =>
        {
            Interlocked.Increment(ref sinkCalls);
            await gate.ExecuteAsync(b, run.Context, ct);
        }, CancellationToken.None);

        // With the sink blocked, at most (stages + 1) queues × capacity 2, plus one batch in the
        // hands of each task, can be in flight: nowhere near 1000.
        int bound = ((run.Stages.Count + 1) * 2) + run.Stages.Count + 2;

        // Wait until the source stops being pulled (five reads 20 ms apart agree): held back, it stops
        // within the bound; unbounded, it runs on to all 1,000.
        int last = -1, stableReads = 0;
        for (int i = 0; i < 1000 && stableReads < 5; i++)
        {
            await Task.Delay(20);
            int now = Volatile.Read(ref pulled);
            stableReads = now == last ? stableReads + 1 : 0;
            last = now;
        }

        Volatile.Read(ref pulled).Should().BeInRange(1, bound);
        Volatile.Read(ref sinkCalls).Should().Be(1);
        gate.Gate.SetResult();
        await task.WaitAsync(TimeSpan.FromSeconds(60)); // a guard against a hang, not a timing assertion
        pulled.Should().Be(1000);
        run.EventsOut.Should().Be(1000);
    }

    [Fact]
    public async Task Cancellation_stops_a_stream_promptly()
    {
        var definition = TestSignals.Engagement();
        var signal = CompiledSignal.Compile(definition, TestSignals.Registry(), new Dictionary<string, EnrichmentTable> { ["items"] = TestSignals.Items(definition) });
        var run = signal.StartRun(new ExecutorContext(definition), new RunOptions { QueueCapacity = 2 });
        using var cts = new CancellationTokenSource();

        async IAsyncEnumerable<EventBatch> Endless([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (int i = 0; ; i++)
            {
                ct.ThrowIfCancellationRequested();
                yield return TestSignals.Batch(signal.RawSchema, [TestSignals.Raw(signal, $"e{i}", i, "save", i % 100, 1)]);
                await Task.Yield();
            }
        }

        int seen = 0;
        var task = run.ProcessStreamAsync(Endless(), async (_, _) =>
        {
            if (Interlocked.Increment(ref seen) == 100)
            {
                await cts.CancelAsync();
            }
        }, cts.Token);
        await FluentActions.Awaiting(() => task.WaitAsync(TimeSpan.FromSeconds(60))).Should().ThrowAsync<OperationCanceledException>();

        // Promptly: the sink sees at most the batches already in flight when the token fired (the
        // queues between the stages, capacity 2, and one in the hands of each task), not the endless rest.
        int inFlight = ((run.Stages.Count + 1) * 2) + run.Stages.Count + 2;
        seen.Should().BeInRange(100, 100 + inFlight);
    }
}
