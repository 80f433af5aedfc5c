using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Storage;

namespace Weft.Batch;

/// <summary>
/// Which event times reached the stream's archive after a batch chunk read it. The stream's archive is
/// left out of a run's identity (it grows every few seconds while a stream runs), so without this a
/// run started again over the same arguments resumed every chunk and never picked up a late event
/// that came in through <c>POST /v1/events</c> or Kafka after the chunk was computed.
/// </summary>
internal sealed class StreamArchiveArrivals(IReadOnlyList<TableLocation> archives, Func<RawEventParser> parser)
{
    /// <summary>
    /// How far before a chunk's read a file may have been written and still be missed by it: a flush
    /// writes its file, then renames it into place after the read listed the folder. A file inside
    /// this margin may send the chunk round again: a false alarm, never a missed event.
    /// </summary>
    public static readonly TimeSpan Margin = TimeSpan.FromMinutes(2);

    private readonly Dictionary<string, (DateTime Written, long[] Times)> _files = new(StringComparer.Ordinal);

    /// <summary>
    /// True when a stream-archive file written since <paramref name="readAtMicros"/> (less <see cref="Margin"/>)
    /// holds an event whose event_time is in [<paramref name="start"/>, <paramref name="end"/>).
    /// </summary>
    public bool ArrivedSince(long readAtMicros, long start, long end)
    {
        var since = Timestamps.FromMicros(readAtMicros).UtcDateTime - Margin;
        foreach (var archive in archives)
        {
            if (!Directory.Exists(archive.Path))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(archive.Path, "*.jsonl", SearchOption.AllDirectories))
            {
                var written = File.GetLastWriteTimeUtc(file);
                if (written < since)
                {
                    continue;
                }

                var times = EventTimes(file, written);
                int at = Array.BinarySearch(times, start);
                if (at < 0)
                {
                    at = ~at;
                }

                if (at < times.Length && times[at] < end)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>A file's event times, sorted; read once a run (again if the file changed).</summary>
    private long[] EventTimes(string file, DateTime written)
    {
        if (_files.TryGetValue(file, out var known) && known.Written == written)
        {
            return known.Times;
        }

        var events = parser().Parse(JsonRows.ReadLines(file)).Events;
        var times = events.RowCount == 0 ? [] : ((PrimitiveColumn<long>)events[StandardColumns.EventTime]).Values.AsSpan(0, events.RowCount).ToArray();
        Array.Sort(times);
        _files[file] = (written, times);
        return times;
    }
}
