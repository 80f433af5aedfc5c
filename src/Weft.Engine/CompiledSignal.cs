using System.Buffers;
using System.Collections.Immutable;
using System.Threading.Channels;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>Options of a run: recovery, queue capacity (backpressure), enrichment time and dedup memory.</summary>
public sealed record RunOptions
{
    public RecoveryOptions Recovery { get; init; } = RecoveryOptions.Default;

    /// <summary>Batches buffered between two stages of the streaming shape before the producer waits (default 4).</summary>
    public int QueueCapacity { get; init; } = 4;

    /// <summary>Use enrichment versions known at this time (µs); long.MaxValue = latest corrected version.</summary>
    public long EnrichmentKnownAtMicros { get; init; } = long.MaxValue;

    /// <summary>Sequences are assembled as of this instant (µs); long.MaxValue = now, for streaming.</summary>
    public long AsOfMicros { get; init; } = long.MaxValue;

    /// <summary>Event ids remembered by the dedup stage (default 4M).</summary>
    public int DedupCapacity { get; init; } = 4_000_000;

    /// <summary>
    /// Whether the run also assembles sequences in memory (default true). The batch path writes
    /// enriched events and builds sequences from the table afterwards, so it turns this off.
    /// </summary>
    public bool Assemble { get; init; } = true;

    public static readonly RunOptions Default = new();
}

/// <summary>
/// A signal loaded for execution: expressions compiled, executors resolved, schemas fixed. One
/// compiled signal serves both scheduling shapes: <see cref="SignalRun.ProcessTableAsync"/> (a
/// bounded table) and <see cref="SignalRun.ProcessStreamAsync"/> (micro-batches through bounded queues).
/// </summary>
public sealed class CompiledSignal
{
    private readonly ExecutorRegistry _registry;
    private readonly IReadOnlyDictionary<string, EnrichmentTable> _enrichments;
    private readonly List<(string EventType, ImmutableArray<FieldDefinition> Input, (string Stage, Func<IEventExecutor> Create)[] Steps)> _chains = [];
    private readonly ImmutableArray<FieldDefinition> _routerOutput;

    private CompiledSignal(SignalDefinition definition, string fingerprint, ExecutorRegistry registry, IReadOnlyDictionary<string, EnrichmentTable> enrichments)
    {
        Definition = definition;
        Fingerprint = fingerprint;
        _registry = registry;
        _enrichments = enrichments;

        var raw = new List<FieldDefinition>(StandardColumns.All) { new(StandardColumns.Tenant, WeftType.String, true) };
        var routerColumns = new Dictionary<string, FieldDefinition>(StringComparer.Ordinal);
        var wanted = definition.Element.Select(f => f.Name).Concat(definition.Enrichments.Select(e => e.On)).ToHashSet(StringComparer.Ordinal);
        foreach (var et in definition.EventTypes)
        {
            foreach (var f in et.RawSchema)
            {
                if (raw.All(r => r.Name != f.Name))
                {
                    raw.Add(f with { Nullable = true });
                }
            }

            var input = ImmutableArray.CreateRange(StandardColumns.All.Append(new FieldDefinition(StandardColumns.Tenant, WeftType.String, true)).Concat(et.RawSchema));
            var (steps, output) = CompileChain(et, input);
            _chains.Add((et.Name, input, steps));
            foreach (var f in output)
            {
                // The router's output starts with StandardColumns.All; every other column the element or an
                // enrichment key wants follows, `tenant` included (an element may name it: it was null on every row).
                if (!StandardColumns.IsInAll(f.Name) && wanted.Contains(f.Name))
                {
                    routerColumns[f.Name] = routerColumns.TryGetValue(f.Name, out var existing) && existing.Type != f.Type
                        ? existing with { Type = ExprTyper.Promote(existing.Type, f.Type), Nullable = true }
                        : f with { Nullable = true };
                }
            }
        }

        RawSchema = [.. raw];
        _routerOutput = [.. StandardColumns.All, .. routerColumns.Values.OrderBy(f => f.Name, StringComparer.Ordinal)];
        EnrichedSchema = [.. StandardColumns.All, .. definition.Element];
    }

    public SignalDefinition Definition { get; }

    /// <summary>SHA-256 of the canonical JSON this was compiled from.</summary>
    public string Fingerprint { get; }

    /// <summary>Standard columns plus every raw attribute of every included event type.</summary>
    public ImmutableArray<FieldDefinition> RawSchema { get; }

    /// <summary>Standard columns plus the element columns: one row per enriched event.</summary>
    public ImmutableArray<FieldDefinition> EnrichedSchema { get; }

    /// <summary>Compiles a signal; fails with every problem if an executor or enrichment table is missing.</summary>
    public static CompiledSignal Compile(SignalDefinition definition, ExecutorRegistry registry, IReadOnlyDictionary<string, EnrichmentTable> enrichments)
    {
        var problems = new List<DefinitionProblem>();
        for (int e = 0; e < definition.Enrichments.Length; e++)
        {
            if (!enrichments.ContainsKey(definition.Enrichments[e].Source))
            {
                problems.Add(new DefinitionProblem($"$.enrichments[{e}].source", $"no table loaded for enrichment source '{definition.Enrichments[e].Source}'", "configure it under enrichment tables in weft.json"));
            }
        }

        foreach (var et in definition.EventTypes)
        {
            for (int s = 0; s < et.Steps.Length; s++)
            {
                if (et.Steps[s] is CustomStep c && !registry.Contains(c.Executor))
                {
                    problems.Add(new DefinitionProblem($"$.event_types.{et.Name}.steps[{s}].executor", $"no executor named '{c.Executor}' is registered"));
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new DefinitionException($"signal '{definition.Name}'", problems);
        }

        return new CompiledSignal(definition, SignalJsonWriter.Fingerprint(definition), registry, enrichments);
    }

    private ((string Stage, Func<IEventExecutor> Create)[] Steps, IReadOnlyList<FieldDefinition> Output) CompileChain(EventTypeDefinition et, ImmutableArray<FieldDefinition> input)
    {
        var scope = input.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var steps = new List<(string Stage, Func<IEventExecutor> Create)>();
        for (int s = 0; s < et.Steps.Length; s++)
        {
            string stage = $"event_types.{et.Name}.steps[{s}]";
            switch (et.Steps[s])
            {
                case FilterStep f:
                {
                    var compiled = ExpressionCompiler.Compile(f.Where, scope);
                    steps.Add((stage, () => new FilterExecutor(stage, compiled)));
                    break;
                }

                case MapStep m:
                {
                    var columns = m.Columns.Select(c => (c, new FieldDefinition(c.Name, c.Cast ?? scope[c.From].Type, scope[c.From].Nullable))).ToList();
                    foreach (var (_, output) in columns)
                    {
                        scope[output.Name] = output;
                    }

                    steps.Add((stage, () => new MapExecutor(stage, columns)));
                    break;
                }

                case DeriveStep d:
                {
                    var compiled = ExpressionCompiler.Compile(d.Expr, scope);
                    var output = new FieldDefinition(d.Name, compiled.Type, true);
                    scope[d.Name] = output;
                    steps.Add((stage, () => new DeriveExecutor(stage, output, compiled)));
                    break;
                }

                case CustomStep c:
                {
                    // One instance made now, so that bad arguments, a column no step before it has, or
                    // an output other than the one declared stop the job at its start with the step's
                    // path, not once per event (a missing column dead-lettered every event).
                    string at = $"$.event_types.{et.Name}.steps[{s}]";
                    IReadOnlyList<FieldDefinition> produced;
                    try
                    {
                        produced = _registry.Create(c).OutputSchema([.. scope.Values]);
                    }
                    catch (ArgumentException ex)
                    {
                        string message = ex.ParamName is { } name ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;
                        throw new DefinitionException($"signal '{Definition.Name}'", [new DefinitionProblem(at + ".args", message)]);
                    }

                    for (int p = 0; p < c.Produces.Length; p++)
                    {
                        var f = c.Produces[p];
                        if (produced.FirstOrDefault(o => o.Name == f.Name) is not { } added)
                        {
                            throw new DefinitionException($"signal '{Definition.Name}'", [new DefinitionProblem(at + ".produces", $"'{f.Name}' is declared, but executor '{c.Executor}' adds no such column with these args")]);
                        }

                        if (added.Type != f.Type)
                        {
                            // Trusted as declared, every event failed to conform the executor's column at run time.
                            throw new DefinitionException($"signal '{Definition.Name}'", [new DefinitionProblem($"{at}.produces[{p}].type", $"'{f.Name}' is declared {f.Type}, but executor '{c.Executor}' adds it as {added.Type}", $"declare it {added.Type}")]);
                        }

                        scope[f.Name] = f;
                    }

                    steps.Add((stage, () => _registry.Create(c)));
                    break;
                }
            }
        }

        return ([.. steps], scope.Values.ToList());
    }

    /// <summary>
    /// Starts a run with fresh executor state (dedup memory, hot-user counters, assembled sequences), or,
    /// given <paramref name="continuing"/>, one that takes over that run's raw-event state: its dedup
    /// memory and hot-user counters, which depend on the events seen and not on enrichment tables. A
    /// stream that reloads its enrichment tables continues so; the earlier run must not be used after.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="continuing"/> is a run of another signal definition (fingerprint) or dedup capacity.</exception>
    public SignalRun StartRun(ExecutorContext context, RunOptions? options = null, SignalRun? continuing = null)
    {
        options ??= RunOptions.Default;
        if (continuing is not null && (continuing.Signal.Fingerprint != Fingerprint || continuing.Options.DedupCapacity != options.DedupCapacity))
        {
            throw new ArgumentException($"A run of signal '{Definition.Name}' can continue only a run of the same definition and dedup capacity.", nameof(continuing));
        }

        var chains = _chains.Select(c => new EventTypeRouter.Chain(c.EventType, c.Input, c.Steps.Select(f => (f.Stage, f.Create())).ToArray()));
        // Dedup and the hot-user cap run on raw events, before routing: they depend on arrival order,
        // which the router (grouping rows by event type) does not keep. Later stages are row-wise.
        var stages = new List<IEventExecutor>
        {
            continuing?.Dedup ?? new DedupExecutor(options.DedupCapacity),
            continuing?.HotUserCap ?? new HotUserCapExecutor(Definition.Budgets.HotUserMaxEventsPerHour),
            new EventTypeRouter(chains, _routerOutput, options.Recovery),
        };
        foreach (var e in Definition.Enrichments)
        {
            stages.Add(new EnrichExecutor(e, _enrichments[e.Source], options.EnrichmentKnownAtMicros));
        }

        stages.Add(new ProjectExecutor(EnrichedSchema));
        return new SignalRun(this, stages, new SequenceAssembler(Definition, options.AsOfMicros), context, options);
    }
}

/// <summary>One execution of a compiled signal, in either scheduling shape.</summary>
public sealed class SignalRun
{
    internal SignalRun(CompiledSignal signal, IReadOnlyList<IEventExecutor> stages, SequenceAssembler assembler, ExecutorContext context, RunOptions options)
    {
        Signal = signal;
        Stages = stages;
        Assembler = assembler;
        Context = context;
        Options = options;
    }

    public CompiledSignal Signal { get; }

    public IReadOnlyList<IEventExecutor> Stages { get; }

    /// <summary>The run's dedup stage (its first), which a continuing run takes over.</summary>
    internal DedupExecutor Dedup => (DedupExecutor)Stages[0];

    /// <summary>The run's hot-user cap (its second stage), which a continuing run takes over.</summary>
    internal HotUserCapExecutor HotUserCap => (HotUserCapExecutor)Stages[1];

    public SequenceAssembler Assembler { get; }

    public ExecutorContext Context { get; }

    public RunOptions Options { get; }

    public long EventsIn { get; private set; }

    public long EventsOut { get; private set; }

    /// <summary>
    /// Takes events this signal already let through and stored (a restarted stream's recent output,
    /// oldest first) into the run's raw-event memory: their ids into the dedup window, so a redelivery
    /// is dropped as it would have been before the restart, and their counts per user and hour into the
    /// hot-user cap. Produces no output. Events a later stage dropped were never stored, so the cap
    /// counts fewer than the earlier run did; such an event's redelivery is dropped again by its stage.
    /// An event whose id the window holds already is not counted again, so recalling rows twice (a
    /// stream reading the lake again after a rebalance, for what another runtime stored) counts them once.
    /// </summary>
    /// <param name="stored">Rows with at least <c>event_id</c>, <c>user_id</c> and <c>event_time</c>.</param>
    public void Recall(EventBatch stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        int n = stored.RowCount;
        if (n == 0)
        {
            return;
        }

        var added = ArrayPool<bool>.Shared.Rent(n);
        try
        {
            Dedup.Remember(((StringColumn)stored[StandardColumns.EventId]).Values, n, added);
            HotUserCap.Remember(((PrimitiveColumn<long>)stored[StandardColumns.UserId]).Values, ((PrimitiveColumn<long>)stored[StandardColumns.EventTime]).Values, n, added);
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(added);
        }
    }

    /// <summary>Whether the run's dedup holds <paramref name="eventId"/>: a delivery of it now is a repeat the run drops.</summary>
    public bool HasSeen(string eventId) => Dedup.Holds(eventId);

    /// <summary>
    /// Takes <paramref name="eventId"/> into the run's dedup without running any stage: for an event the
    /// caller leaves out (a late one its policy drops), so that its redeliveries are known as repeats.
    /// False when the dedup held it already.
    /// </summary>
    public bool MarkSeen(string eventId) => Dedup.Remember(eventId);

    /// <summary>Bounded-table shape: the whole table through every stage, then into the assembler.</summary>
    public async Task<EventBatch> ProcessTableAsync(EventBatch table, CancellationToken cancellationToken)
    {
        EventsIn += table.RowCount;
        var batch = table;
        foreach (var stage in Stages)
        {
            batch = await StageRunner.ExecuteAsync(stage, batch, Context, Options.Recovery, cancellationToken).ConfigureAwait(false);
        }

        if (Options.Assemble)
        {
            Assembler.Add(batch);
        }

        EventsOut += batch.RowCount;
        return batch;
    }

    /// <summary>
    /// Streaming shape: micro-batches flow through one task per stage connected by bounded channels,
    /// so a slow stage slows its producers instead of growing a queue. <paramref name="sink"/> sees
    /// each enriched batch after the assembler has taken it.
    /// </summary>
    public async Task ProcessStreamAsync(IAsyncEnumerable<EventBatch> source, Func<EventBatch, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        var channels = new Channel<EventBatch>[Stages.Count + 1];
        for (int i = 0; i < channels.Length; i++)
        {
            channels[i] = Channel.CreateBounded<EventBatch>(new BoundedChannelOptions(Options.QueueCapacity)
            {
                FullMode = BoundedChannelFullMode.Wait,
                SingleReader = true,
                SingleWriter = true,
            });
        }

        var tasks = new List<Task>(Stages.Count + 2)
        {
            Task.Run(
                async () =>
                {
                    try
                    {
                        await foreach (var batch in source.WithCancellation(token).ConfigureAwait(false))
                        {
                            EventsIn += batch.RowCount;
                            await channels[0].Writer.WriteAsync(batch, token).ConfigureAwait(false);
                        }

                        channels[0].Writer.Complete();
                    }
                    catch (Exception ex)
                    {
                        channels[0].Writer.Complete(ex);
                        throw;
                    }
                },
                token),
        };

        for (int s = 0; s < Stages.Count; s++)
        {
            var stage = Stages[s];
            var input = channels[s].Reader;
            var output = channels[s + 1].Writer;
            tasks.Add(Task.Run(
                async () =>
                {
                    try
                    {
                        await foreach (var batch in input.ReadAllAsync(token).ConfigureAwait(false))
                        {
                            var result = await StageRunner.ExecuteAsync(stage, batch, Context, Options.Recovery, token).ConfigureAwait(false);
                            if (result.RowCount > 0)
                            {
                                await output.WriteAsync(result, token).ConfigureAwait(false);
                            }
                        }

                        output.Complete();
                    }
                    catch (Exception ex)
                    {
                        output.Complete(ex);
                        throw;
                    }
                },
                token));
        }

        tasks.Add(Task.Run(
            async () =>
            {
                await foreach (var batch in channels[^1].Reader.ReadAllAsync(token).ConfigureAwait(false))
                {
                    if (Options.Assemble)
                    {
                        Assembler.Add(batch);
                    }

                    EventsOut += batch.RowCount;
                    await sink(batch, token).ConfigureAwait(false);
                }
            },
            token));

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            await cts.CancelAsync().ConfigureAwait(false);
            // Surface the root cause, not the cancellations it triggered in the other stages.
            var root = tasks.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.InnerExceptions).FirstOrDefault(e => e is not OperationCanceledException and not ChannelClosedException)
                ?? tasks.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.InnerExceptions).FirstOrDefault();
            if (root is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(root);
            }

            throw;
        }
    }
}
