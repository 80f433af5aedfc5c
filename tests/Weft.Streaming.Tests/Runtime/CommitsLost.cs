namespace Weft.Streaming.Tests.Runtime;

/// <summary>A source whose commits never reach it: what a crash right after the lake writes leaves.</summary>
internal sealed class CommitsLost(IEventSource inner) : IEventSource
{
    public string Name => inner.Name;

    public ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken) =>
        inner.ReadBatchAsync(maxRecords, maxWait, cancellationToken);

    public ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public void SetRebalanceHandler(Func<bool, Task>? handler) => inner.SetRebalanceHandler(handler);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask; // the host owns the source
}
