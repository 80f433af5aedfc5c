using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Weft.Definitions;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.Runtime;

/// <summary>
/// The stream's raw archive (<see cref="Weft.Engine.Configuration.SourceConfig.Archive"/>): every record
/// the stream reads, as one JSON line, made durable by each flush before its offsets are committed, in
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
/// Lines go through a 1 MiB buffer into a temporary file as they come (the page cache takes them at
/// memory speed); a flush only fsyncs and renames it. Holding a flush interval's lines in memory until
/// the flush cost the runtime half its throughput at a million events a second, in fresh pages.
/// </remarks>
internal sealed class RawArchive : IDisposable
{
    private const int BufferBytes = 1 << 20;
    private const string TempExtension = ".jsonl.tmp";

    /// <summary>How long a temporary file goes unwritten before a starting runtime takes it for a crashed one's and deletes it.</summary>
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromHours(1);

    private readonly string _folder;
    private readonly byte[] _buffer = new byte[BufferBytes];
    private int _used;
    private SafeFileHandle? _file;
    private string? _tempPath;
    private long _fileLength;
    private long _records; // lines added since the last take

    private RawArchive(string folder) => _folder = folder;

    /// <summary>
    /// Opens the archive at <paramref name="folder"/>, creating it, so a folder that cannot be written fails
    /// the start, not the first flush; deletes the temporary files a crashed runtime left, judged stale
    /// against <paramref name="time"/>.
    /// </summary>
    public static RawArchive Open(string folder, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        var archive = new RawArchive(folder);
        archive.Guard(() =>
        {
            if (!Directory.Exists(folder))
            {
                Directory.CreateDirectory(folder);
                DurableFiles.FsyncDirectory(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(folder))!);
            }

            // Files a crashed runtime was filling: their records were not committed and are read again.
            // A live runtime's file (another consumer of the group may share the folder) was last
            // written within a flush, seconds; an hour leaves room for a flush held up by a slow lake.
            var staleBefore = time.GetUtcNow().UtcDateTime - StaleAfter;
            foreach (var stale in Directory.EnumerateFiles(folder, "*" + TempExtension))
            {
                if (File.GetLastWriteTimeUtc(stale) < staleBefore)
                {
                    File.Delete(stale);
                }
            }
        });
        return archive;
    }

    /// <summary>The folder the archive writes to.</summary>
    public string Folder => _folder;

    /// <summary>Adds one record read at <paramref name="ingestMicros"/> to the next flush.</summary>
    public void Add(ReadOnlySpan<byte> record, long ingestMicros)
    {
        _records++;
        int needed = record.Length + 48;
        if (_used + needed > _buffer.Length)
        {
            Spill();
        }

        if (needed <= _buffer.Length)
        {
            _used += Format(record, ingestMicros, _buffer.AsSpan(_used));
            return;
        }

        var large = ArrayPool<byte>.Shared.Rent(needed);
        try
        {
            Write(large.AsSpan(0, Format(record, ingestMicros, large)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(large);
        }
    }

    /// <summary>The file of the lines added since the last take (null when none were), for a flush to make durable.</summary>
    public PendingFile? Take()
    {
        Spill();
        if (_file is null)
        {
            return null;
        }

        var taken = new PendingFile(this, _file, _tempPath!, _records, _fileLength);
        (_file, _tempPath, _fileLength, _records) = (null, null, 0, 0);
        return taken;
    }

    /// <summary>Closes and deletes the file being filled: its records were not committed and will be read again.</summary>
    public void Dispose()
    {
        if (_file is not null)
        {
            _file.Dispose();
            File.Delete(_tempPath!);
            (_file, _tempPath) = (null, null);
        }
    }

    /// <summary>Writes one line for <paramref name="record"/> into <paramref name="line"/> (at least 48 bytes more than the record); returns its length.</summary>
    private static int Format(ReadOnlySpan<byte> record, long ingestMicros, Span<byte> line)
    {
        var rest = record.TrimStart(" \t\r\n"u8);
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

        var copied = line.Slice(n, rest.Length);
        rest.CopyTo(copied);
        copied.Replace((byte)'\n', (byte)' ');
        copied.Replace((byte)'\r', (byte)' ');
        n += rest.Length;
        line[n++] = (byte)'\n';
        return n;
    }

    private void Spill()
    {
        if (_used > 0)
        {
            Write(_buffer.AsSpan(0, _used));
            _used = 0;
        }
    }

    private void Write(ReadOnlySpan<byte> lines)
    {
        Guard(() =>
        {
            if (_file is null)
            {
                _tempPath = Path.Combine(_folder, $"part-{Guid.NewGuid():N}{TempExtension}");
                _file = File.OpenHandle(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
            }
        });
        try
        {
            RandomAccess.Write(_file!, lines, _fileLength);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failure(e);
        }

        _fileLength += lines.Length;
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
        new($"the stream's raw archive ($.source.archive) at '{_folder}' cannot be written: {e.Message} (set another folder, or \"archive\": false)", e);

    /// <summary>A flush's lines in their temporary file, written but not yet durable.</summary>
    internal sealed class PendingFile(RawArchive archive, SafeFileHandle file, string tempPath, long records, long bytes)
    {
        /// <summary>The records (lines) in the file.</summary>
        public long Records => records;

        /// <summary>The file's size in bytes.</summary>
        public long Bytes => bytes;

        /// <summary>
        /// Makes the file durable under its final name (file and folders fsync'd), so the offsets of its
        /// records may be committed.
        /// </summary>
        public void Commit(string flushTag, long nowMicros)
        {
            var now = Timestamps.FromMicros(nowMicros);
            string day = Path.Combine(archive._folder, "date=" + now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            string tag = flushTag[(flushTag.IndexOf(':', StringComparison.Ordinal) + 1)..];
            string final = Path.Combine(day, $"part-{now.ToString("HHmmssffffff", CultureInfo.InvariantCulture)}-{tag}.jsonl");
            archive.Guard(() =>
            {
                using (file)
                {
                    RandomAccess.FlushToDisk(file);
                }

                Directory.CreateDirectory(day);
                File.Move(tempPath, final);
                DurableFiles.FsyncDirectory(day);
                DurableFiles.FsyncDirectory(archive._folder); // a new day's folder, and the temporary name gone
            });
        }
    }
}
