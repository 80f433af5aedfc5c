using System.Text.Json;
using Weft.Batch;
using Weft.Definitions;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.Runtime;

/// <summary>
/// A batch run the stream owes a signal (<see cref="StreamRuntime.TailRecomputes"/>): the events it
/// streamed under an earlier definition, recomputed under <paramref name="Definition"/> over
/// <paramref name="Tail"/>. <paramref name="Changed"/> is the change this process found; null when an
/// earlier process found it and stopped before the run completed (<paramref name="Carried"/> then, and
/// also when this process found another change on top of one left unfinished).
/// </summary>
/// <remarks>
/// The debt is recorded in the signal's table (<see cref="PendingTailFile"/>) when the runtime opens,
/// before the stream writes anything under the new definition, and cleared once the run completes.
/// Without the record a process that died mid-run left no trace: its successor found the stream's
/// newest commits under the new definition and took the tail for recomputed.
/// </remarks>
public sealed record TailRecompute(string Signal, string Definition, BatchRequest Tail, SignalDefinitionChanged? Changed, bool Carried)
{
    /// <summary>What an operator is told when the stream starts.</summary>
    public string Describe(string config)
    {
        var command = BatchCommand(config);
        if (Changed is null)
        {
            return $"the recompute of the tail of '{Signal}' under definition {SignalDefinitionChanged.Short(Definition)} that an earlier process started did not complete: " +
                $"it runs again now, in the background, resuming the chunks it committed ({command})";
        }

        return Changed.Describe(config, Tail) + (Carried ? " (it includes the tail an earlier process left unrecomputed)" : "") + "; it runs now, in the background";
    }

    /// <summary>The command that runs the same batch (the same range: it resumes this run's committed chunks).</summary>
    public string BatchCommand(string config) => SignalDefinitionChanged.BatchCommandFor(config, Tail);
}

/// <summary>
/// The record of a <see cref="TailRecompute"/> not completed yet: <c>_weft_tail_recompute.json</c> in the
/// signal's enriched table (a hidden name, which table readers and vacuum pass over), replaced atomically.
/// </summary>
public static class PendingTailFile
{
    /// <summary>The file's name in the table's folder.</summary>
    public const string Name = "_weft_tail_recompute.json";

    /// <summary>Where <paramref name="table"/>'s record is.</summary>
    public static string PathIn(string table) => Path.Combine(table, Name);

    /// <summary>The recorded run (signal, definition, range), or null when none is owed.</summary>
    public static async Task<(string Definition, BatchRequest Tail)?> ReadAsync(string table, string signal, CancellationToken cancellationToken)
    {
        var path = PathIn(table);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            var root = document.RootElement;
            string? recordedSignal = root.GetProperty("signal").GetString();
            string? definition = root.GetProperty("definition").GetString();
            if (recordedSignal != signal || string.IsNullOrEmpty(definition)
                || !Timestamps.TryParseInstant(root.GetProperty("from").GetString(), out long from)
                || !Timestamps.TryParseInstant(root.GetProperty("to").GetString(), out long to) || to <= from)
            {
                throw new FormatException($"expected signal '{signal}', a definition and a range from < to");
            }

            return (definition, new BatchRequest(signal, from, to));
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            // Written atomically by the stream alone: anything else is a hand edit.
            throw new InputException($"'{path}' (the record of a tail recompute the stream owes signal '{signal}') is not one the stream wrote: {ex.Message}. " +
                "Run the batch over the signal's streamed tail by hand (`weft batch --from <the last sealed bucket> --to <now>`), then delete the file");
        }
    }

    /// <summary>
    /// <see cref="ReadAsync"/> for a reader whose work does not hang on the record (a command that only
    /// notes it): a record the stream did not write is the problem said, not an exception. The stream's
    /// start, which acts on it, reads it with <see cref="ReadAsync"/> and stops there.
    /// </summary>
    public static async Task<((string Definition, BatchRequest Tail)? Owed, string? Problem)> PeekAsync(string table, string signal, CancellationToken cancellationToken)
    {
        try
        {
            return (await ReadAsync(table, signal, cancellationToken).ConfigureAwait(false), null);
        }
        catch (InputException ex)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>
    /// The run <paramref name="signal"/> is owed under <paramref name="definition"/>, recorded before it
    /// returns: the one recorded already (exactly its range, so the batch resumes the same run), widened
    /// to cover <paramref name="changed"/> when given (a change found now). Null when none is owed.
    /// Read and written under the record's lock: the processes of a group start together after a deployment.
    /// </summary>
    public static async Task<(BatchRequest Tail, bool Carried)?> OweAsync(string table, string signal, string definition, BatchRequest? changed, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(table, cancellationToken).ConfigureAwait(false);
        var recorded = await ReadAsync(table, signal, cancellationToken).ConfigureAwait(false);
        if (changed is null)
        {
            if (recorded is not { } earlier)
            {
                return null;
            }

            if (earlier.Definition != definition)
            {
                // Run under this definition, so recorded under it: a record naming another is never cleared by the run.
                await WriteLockedAsync(table, definition, earlier.Tail, cancellationToken).ConfigureAwait(false);
            }

            return (earlier.Tail, true);
        }

        var tail = recorded is { } unfinished
            ? changed with { FromMicros = Math.Min(changed.FromMicros, unfinished.Tail.FromMicros), ToMicros = Math.Max(changed.ToMicros, unfinished.Tail.ToMicros) }
            : changed;
        await WriteLockedAsync(table, definition, tail, cancellationToken).ConfigureAwait(false);
        return (tail, recorded is not null);
    }

    /// <summary>Records <paramref name="tail"/> as owed under <paramref name="definition"/>, replacing any record; durable when it returns.</summary>
    public static async Task WriteAsync(string table, string definition, BatchRequest tail, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(table, cancellationToken).ConfigureAwait(false);
        await WriteLockedAsync(table, definition, tail, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Removes the record once <paramref name="tail"/> ran under <paramref name="definition"/>, unless the
    /// record now asks for more: a wider range or another definition (a process of the group that found
    /// a further change since). True when no record is left; false too for a record the stream did not
    /// write, which is left for the next start to name.
    /// </summary>
    public static async Task<bool> ClearAsync(string table, string definition, BatchRequest tail, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tail);
        using var held = await LockAsync(table, cancellationToken).ConfigureAwait(false);
        var (recorded, problem) = await PeekAsync(table, tail.Signal, cancellationToken).ConfigureAwait(false);
        if (problem is not null // the work is done either way; the next start names the file
            || (recorded is { } r && (r.Definition != definition || r.Tail.FromMicros < tail.FromMicros || r.Tail.ToMicros > tail.ToMicros)))
        {
            return false;
        }

        File.Delete(PathIn(table));
        DurableFiles.FsyncDirectory(table);
        return true;
    }

    private static async Task WriteLockedAsync(string table, string definition, BatchRequest tail, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tail);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("signal", tail.Signal);
            json.WriteString("definition", definition);
            json.WriteString("from", Timestamps.Format(tail.FromMicros));
            json.WriteString("to", Timestamps.Format(tail.ToMicros));
            json.WriteEndObject();
        }

        await DurableFiles.ReplaceAtomicallyAsync(PathIn(table), buffer.ToArray(), cancellationToken, unique: true).ConfigureAwait(false);
    }

    /// <summary>How long a process waits for another to finish with the record before it gives up.</summary>
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The record's lock: <c>_weft_tail_recompute.lock</c> beside it, held open exclusively (an advisory
    /// lock the kernel lets go of when a process dies), so a read-merge-write or a read-delete is whole.
    /// </summary>
    private static async Task<FileStream> LockAsync(string table, CancellationToken cancellationToken)
    {
        var path = Path.Combine(table, "_weft_tail_recompute.lock");
        var deadline = TimeProvider.System.GetTimestamp() + (long)(LockWait.TotalSeconds * TimeProvider.System.TimestampFrequency);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
            }
            catch (IOException) when (File.Exists(path) && TimeProvider.System.GetTimestamp() < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
