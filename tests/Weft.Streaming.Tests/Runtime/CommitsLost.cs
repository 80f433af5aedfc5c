namespace Weft.Streaming.Tests.Runtime;

/// <summary>A source whose commits never reach it: what a crash right after the lake writes leaves.</summary>
internal sealed class CommitsLost(IEventSource inner) : DelegatingSource(inner)
{
    public override ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
