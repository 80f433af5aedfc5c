using System.Collections.Concurrent;
using Weft.Definitions;

namespace Weft.Engine;

/// <summary>An event that could not be processed, with the reason; it goes to the dead-letter table.</summary>
/// <param name="Stage">Where it failed: "parse", "event_types.click.steps[1]", "hot_user_cap", …</param>
/// <param name="Source">Where it came from (file and line, topic/partition/offset), when known.</param>
public sealed record DeadLetter(string? EventId, long? UserId, string? EventType, string Stage, string Reason, string? Source = null, string? Payload = null);

/// <summary>
/// What an executor sees besides its batch: where rejected events go, the clock, and the signal. A
/// rejected row is reported here and must be absent from the executor's output.
/// </summary>
public sealed class ExecutorContext
{
    private readonly ConcurrentQueue<DeadLetter> _deadLetters = new();

    public ExecutorContext(SignalDefinition signal, TimeProvider? time = null)
    {
        Signal = signal;
        Time = time ?? TimeProvider.System;
    }

    public SignalDefinition Signal { get; }

    public TimeProvider Time { get; }

    public IReadOnlyCollection<DeadLetter> DeadLetters => _deadLetters;

    public void Report(DeadLetter deadLetter) => _deadLetters.Enqueue(deadLetter);

    /// <summary>
    /// Moves the dead letters reported so far into <paramref name="into"/> and forgets them, so a
    /// long-running stream takes each micro-batch's rejections without the context growing; returns how many.
    /// </summary>
    public int DrainDeadLetters(ICollection<DeadLetter> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        int n = 0;
        while (_deadLetters.TryDequeue(out var deadLetter))
        {
            into.Add(deadLetter);
            n++;
        }

        return n;
    }

    /// <summary>Reports row <paramref name="row"/> of <paramref name="batch"/> as rejected by <paramref name="stage"/>.</summary>
    public void Reject(EventBatch batch, int row, string stage, string reason)
    {
        string? id = batch.TryGetColumn(StandardColumns.EventId, out var ids) ? (string?)ids.GetValue(row) : null;
        long? user = batch.TryGetColumn(StandardColumns.UserId, out var users) ? (long?)users.GetValue(row) : null;
        string? type = batch.TryGetColumn(StandardColumns.EventType, out var types) ? (string?)types.GetValue(row) : null;
        _deadLetters.Enqueue(new DeadLetter(id, user, type, stage, reason));
    }

    /// <summary>Counts of dead letters by stage and reason, for reports.</summary>
    public IReadOnlyList<(string Stage, string Reason, int Count)> Summary() =>
        _deadLetters.GroupBy(d => (d.Stage, Reason: Generalise(d.Reason)))
            .Select(g => (g.Key.Stage, g.Key.Reason, g.Count()))
            .OrderByDescending(x => x.Item3).ThenBy(x => x.Stage, StringComparer.Ordinal).ToList();

    private static string Generalise(string reason)
    {
        // Group "cannot cast 'abc' …" and "cannot cast 'xyz' …" together in summaries.
        int quote = reason.IndexOf('\'', StringComparison.Ordinal);
        return quote > 0 ? reason[..quote].TrimEnd() : reason;
    }
}

/// <summary>
/// Per-event-type logic over columnar batches: filter, mapping, featurisation, enrichment. The
/// engine owns IO, concurrency, retries and backpressure; an executor only transforms a batch.
/// </summary>
/// <remarks>
/// Contract: rows an executor rejects are reported through <see cref="ExecutorContext.Reject"/>
/// and left out of the result. An executor that throws must leave its own state unchanged, so the
/// engine can retry it (for <see cref="TransientExecutorException"/>) or split the batch to isolate
/// the event that makes it fail.
/// </remarks>
public interface IEventExecutor
{
    string Name { get; }

    /// <summary>The schema of the batches this executor returns for input of <paramref name="input"/>.</summary>
    IReadOnlyList<FieldDefinition> OutputSchema(IReadOnlyList<FieldDefinition> input);

    ValueTask<EventBatch> ExecuteAsync(EventBatch batch, ExecutorContext context, CancellationToken cancellationToken);
}

/// <summary>A failure worth retrying (a lookup service timing out, a lock held); anything else is permanent.</summary>
public class TransientExecutorException : Exception
{
    public TransientExecutorException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>Custom executors by name; the JSON references them as <c>{"op": "custom", "executor": name}</c>.</summary>
public sealed class ExecutorRegistry
{
    private readonly Dictionary<string, Func<CustomStep, IEventExecutor>> _factories = new(StringComparer.Ordinal);

    /// <summary>A registry holding Weft's bundled custom executors.</summary>
    public static ExecutorRegistry CreateDefault()
    {
        var r = new ExecutorRegistry();
        r.Register(HashBucketExecutor.ExecutorName, step => new HashBucketExecutor(step));
        return r;
    }

    public void Register(string name, Func<CustomStep, IEventExecutor> factory)
    {
        if (!_factories.TryAdd(name, factory))
        {
            throw new ArgumentException($"an executor named '{name}' is already registered", nameof(name));
        }
    }

    public bool Contains(string name) => _factories.ContainsKey(name);

    public IEventExecutor Create(CustomStep step) =>
        _factories.TryGetValue(step.Executor, out var f)
            ? f(step)
            : throw new KeyNotFoundException($"no executor named '{step.Executor}' is registered; known: {string.Join(", ", _factories.Keys.Order(StringComparer.Ordinal))}");
}
