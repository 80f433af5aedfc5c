using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using Weft.Definitions;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.Runtime;

/// <summary>
/// The stream's raw archive (<see cref="Weft.Engine.Configuration.SourceConfig.Archive"/>): every record
/// the stream reads, as one JSON line, written by each flush before its offsets are committed, into
/// <c>date=YYYY-MM-DD/part-&lt;time&gt;-&lt;flush&gt;.jsonl</c> (the day the flush ran). The batch path
/// reads the folder as a JSON-lines archive, so an event that arrived only through the stream is in
/// the history batch recomputes and seals.
/// </summary>
/// <remarks>
/// A line is the record as read with <c>"ingest_time":µs</c> (when the stream read it) put first in
/// the object: a producer's own ingest_time comes later and wins, as a repeated name's last value does.
/// Line breaks between tokens become spaces (inside a JSON string they are always escaped). Records
/// replayed after a crash are written again: the archive is at least once, and the batch path keeps
/// one delivery per event_id.
/// </remarks>
internal sealed class RawArchive
{
    private readonly string folder;
    private ArrayBufferWriter<byte> _pending = new(64 * 1024);

    /// <summary>Opens the archive at <paramref name="folder"/>, creating it, so a folder that cannot be written fails the start, not the first flush.</summary>
    public RawArchive(string folder)
    {
        this.folder = folder;
        Guard(() => Directory.CreateDirectory(folder));
    }

    /// <summary>Adds one record read at <paramref name="ingestMicros"/> to the next flush.</summary>
    public void Add(ReadOnlySpan<byte> record, long ingestMicros)
    {
        var rest = record.TrimStart(" \t\r\n"u8);
        var line = _pending.GetSpan(record.Length + 48);
        int n = 0;
        if (!rest.IsEmpty && rest[0] == (byte)'{')
        {
            "{\"ingest_time\":"u8.CopyTo(line);
            n = 15;
            Utf8Formatter.TryFormat(ingestMicros, line[n..], out int digits);
            n += digits;
            rest = rest[1..];
            line[n++] = rest.TrimStart(" \t\r\n"u8) is [(byte)'}', ..] ? (byte)' ' : (byte)',';
        }

        rest.CopyTo(line[n..]);
        var copied = line.Slice(n, rest.Length);
        copied.Replace((byte)'\n', (byte)' ');
        copied.Replace((byte)'\r', (byte)' ');
        n += rest.Length;
        line[n++] = (byte)'\n';
        _pending.Advance(n);
    }

    /// <summary>The lines added since the last take, for a flush to write.</summary>
    public ArrayBufferWriter<byte> Take()
    {
        var taken = _pending;
        _pending = new ArrayBufferWriter<byte>(Math.Max(64 * 1024, taken.WrittenCount));
        return taken;
    }

    /// <summary>
    /// Writes <paramref name="lines"/> as one file and makes it durable (file and folders fsync'd), so
    /// the offsets of its records may be committed; nothing when there are none.
    /// </summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> lines, string flushTag, long nowMicros, CancellationToken cancellationToken)
    {
        if (lines.IsEmpty)
        {
            return;
        }

        var now = Timestamps.FromMicros(nowMicros);
        string day = Path.Combine(folder, "date=" + now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        if (!Directory.Exists(day))
        {
            Guard(() =>
            {
                Directory.CreateDirectory(day);
                DurableFiles.FsyncDirectory(folder);
                DurableFiles.FsyncDirectory(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(folder))!);
            });
        }

        string tag = flushTag[(flushTag.IndexOf(':', StringComparison.Ordinal) + 1)..];
        string file = Path.Combine(day, $"part-{now.ToString("HHmmssffffff", CultureInfo.InvariantCulture)}-{tag}.jsonl");
        try
        {
            await DurableFiles.ReplaceAtomicallyAsync(file, lines, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failure(e);
        }
    }

    private void Guard(Action write)
    {
        try
        {
            write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failure(e);
        }
    }

    private IOException Failure(Exception e) =>
        new($"the stream's raw archive ($.source.archive) at '{folder}' cannot be written: {e.Message} (set another folder, or \"archive\": false)", e);
}
