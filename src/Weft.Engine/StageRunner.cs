namespace Weft.Engine;

/// <summary>Retry and isolation settings shared by both scheduling shapes.</summary>
public sealed record RecoveryOptions
{
    /// <summary>Attempts for a transient failure before the run fails (default 4).</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>First backoff; doubles on each retry (default 50 ms).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public static readonly RecoveryOptions Default = new();
}

/// <summary>Thrown when a transient failure outlasts its retries: the run stops (and can resume) rather than dead-letter good events.</summary>
public sealed class PipelineException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Runs one executor on one batch with the engine's recovery rules: transient failures are retried
/// with exponential backoff; a permanent failure is narrowed down by splitting the batch until the
/// events that cause it are found, and only those are dead-lettered — the rest go on.
/// </summary>
public static class StageRunner
{
    public static ValueTask<EventBatch> ExecuteAsync(IEventExecutor executor, EventBatch batch, ExecutorContext context, RecoveryOptions options, CancellationToken cancellationToken) =>
        ExecuteAsync(executor, executor.Name, batch, context, options, cancellationToken);

    /// <param name="stage">Where the executor sits (e.g. "event_types.click.steps[2]"), for dead letters and errors.</param>
    public static async ValueTask<EventBatch> ExecuteAsync(IEventExecutor executor, string stage, EventBatch batch, ExecutorContext context, RecoveryOptions options, CancellationToken cancellationToken)
    {
        if (batch.RowCount == 0)
        {
            // Still the executor's output schema: a later stage or a table write expects the columns it adds.
            return EventBatch.Empty([.. executor.OutputSchema(batch.Schema)]);
        }

        var backoff = options.InitialBackoff;
        for (int attempt = 1; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await executor.ExecuteAsync(batch, context, cancellationToken).ConfigureAwait(false);
            }
            catch (TransientExecutorException ex)
            {
                if (attempt >= options.MaxAttempts)
                {
                    throw new PipelineException($"executor '{executor.Name}' at {stage} failed transiently {attempt} times; last error: {ex.Message}", ex);
                }

                await Task.Delay(backoff, options.Time, cancellationToken).ConfigureAwait(false);
                backoff *= 2;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ex is not PipelineException)
            {
                return await IsolateAsync(executor, stage, batch, context, options, ex, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async ValueTask<EventBatch> IsolateAsync(IEventExecutor executor, string stage, EventBatch batch, ExecutorContext context, RecoveryOptions options, Exception error, CancellationToken cancellationToken)
    {
        if (batch.RowCount == 1)
        {
            context.Reject(batch, 0, stage, $"executor failed: {error.GetType().Name}: {error.Message}");
            return EventBatch.Empty([.. executor.OutputSchema(batch.Schema)]);
        }

        int half = batch.RowCount / 2;
        var left = await ExecuteAsync(executor, stage, batch.Slice(0, half), context, options, cancellationToken).ConfigureAwait(false);
        var right = await ExecuteAsync(executor, stage, batch.Slice(half, batch.RowCount - half), context, options, cancellationToken).ConfigureAwait(false);
        var schema = left.RowCount > 0 ? left.Schema : right.Schema;
        return EventBatch.Concat(schema, [left, right]);
    }
}
