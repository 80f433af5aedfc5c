namespace Weft.Streaming.Tests.Runtime;

/// <summary>
/// A source that passes everything to another: tests derive from it to change its commits or its
/// rebalance handler (lose commits, note them, keep the handler). The host owns the inner source, so
/// disposing this one leaves it open.
/// </summary>
internal abstract class DelegatingSource(IEventSource inner) : IEventSource
{
    public string Name => inner.Name;

    public ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken) =>
        inner.ReadBatchAsync(maxRecords, maxWait, cancellationToken);

    public virtual ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken) =>
        inner.CommitAsync(processedOffsets, cancellationToken);

    public virtual void SetRebalanceHandler(Func<bool, Task>? handler) => inner.SetRebalanceHandler(handler);

    public void SetHeldOffsets(IReadOnlyDictionary<string, long> heldThrough) => inner.SetHeldOffsets(heldThrough);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
