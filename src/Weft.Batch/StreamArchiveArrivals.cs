using System.Globalization;
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
    /// How far before a chunk's read a file may have arrived and still be missed by it: a flush names
    /// its file, then renames it into place, possibly after the read listed the folder. A file inside
    /// this margin may send the chunk round again: a false alarm, never a missed event.
    /// </summary>
    public static readonly TimeSpan Margin = TimeSpan.FromMinutes(2);

    private readonly Dictionary<string, long[]> _times = new(StringComparer.Ordinal);
    private List<(string File, DateTime Arrived)>? _files;

    /// <summary>
    /// True when a stream-archive file that arrived since <paramref name="readAtMicros"/> (less
    /// <see cref="Margin"/>; any file when null, for a chunk committed before chunks recorded their
    /// read) holds an event whose event_time is in [<paramref name="start"/>, <paramref name="end"/>).
    /// The archive is listed once a run: a file arriving later is for the next run to find.
    /// </summary>
    public bool ArrivedSince(long? readAtMicros, long start, long end)
    {
        var since = readAtMicros is { } readAt ? Timestamps.FromMicros(readAt).UtcDateTime - Margin : DateTime.MinValue;
        foreach (var (file, arrived) in _files ??= List())
        {
            if (arrived < since)
            {
                continue;
            }

            var times = EventTimes(file);
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

        return false;
    }

    private List<(string File, DateTime Arrived)> List()
    {
        var files = new List<(string, DateTime)>();
        foreach (var archive in archives)
        {
            if (Directory.Exists(archive.Path))
            {
                foreach (var file in Directory.EnumerateFiles(archive.Path, "*.jsonl", SearchOption.AllDirectories))
                {
                    files.Add((file, Arrival(archive.Path, file)));
                }
            }
        }

        return files;
    }

    /// <summary>
    /// When a file reached the archive: the time the stream put in its name
    /// (<c>date=YYYY-MM-DD/part-HHmmssffffff-….jsonl</c>), which a copy or a restore keeps; a file
    /// named otherwise (put there by hand), its modification time.
    /// </summary>
    internal static DateTime Arrival(string archive, string file)
    {
        if (TableInputs.TryArchiveDay(archive, file, out var day, out var name) && name.Length > 18 && name.StartsWith("part-", StringComparison.Ordinal) && name[17] == '-'
            && TimeSpan.TryParseExact(name[5..17], "hhmmssffffff", CultureInfo.InvariantCulture, out var time))
        {
            return day + time;
        }

        return File.GetLastWriteTimeUtc(file);
    }

    /// <summary>A file's event times, sorted; read once a run.</summary>
    private long[] EventTimes(string file)
    {
        if (_times.TryGetValue(file, out var known))
        {
            return known;
        }

        var events = parser().Parse(JsonRows.ReadLines(file)).Events;
        var times = events.RowCount == 0 ? [] : ((PrimitiveColumn<long>)events[StandardColumns.EventTime]).Values.AsSpan(0, events.RowCount).ToArray();
        Array.Sort(times);
        _times[file] = times;
        return times;
    }
}
