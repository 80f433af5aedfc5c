using System.Collections.Concurrent;

namespace Weft.Storage;

/// <summary>
/// The log writes table handles start in the background after a commit (a Delta checkpoint every
/// <c>delta.checkpointInterval</c> commits, Weft's log snapshots). A process that exits right after
/// its last commit, as every CLI command does, killed them half-written: the checkpoint the interval
/// promises other engines was never there, and its temporary file stayed in <c>_delta_log</c>.
/// </summary>
public static class BackgroundLogWrites
{
    private static readonly ConcurrentDictionary<Task, byte> Pending = new();

    /// <summary>Runs <paramref name="write"/> on the thread pool and keeps it until it ends.</summary>
    internal static Task Start(Func<Task> write)
    {
        var task = Task.Run(write);
        Pending[task] = 0;
        // Removed when done, whatever the outcome (the writes handle their own failures).
        _ = task.ContinueWith(static (t, _) => Pending.TryRemove(t, out byte _), null, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    /// <summary>
    /// Waits for the writes running now (not those started meanwhile) to end, at most
    /// <paramref name="timeout"/>; false when some had not ended by then.
    /// </summary>
    public static async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var running = Pending.Keys.ToArray();
        if (running.Length == 0)
        {
            return true;
        }

        try
        {
            await Task.WhenAll(running).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (Exception) when (running.All(t => t.IsCompleted))
        {
            // A write that failed has ended: what it leaves is its own to report (they log and go on).
        }

        return true;
    }
}
