using System.Buffers.Binary;
using System.Globalization;
using FluentAssertions;
using Weft.Streaming.Embedded;
using Xunit;
using static Weft.Streaming.Tests.Embedded.LogTesting;

namespace Weft.Streaming.Tests.Embedded;

/// <summary>
/// What open checks of the segment chain without scanning sealed segments: every <c>.seg</c> file is
/// named by a base offset, every sealed header matches its name, and every sealed segment is long enough
/// for the offsets up to the next one. A stray file fails open naming it, and nothing is rewritten.
/// </summary>
public sealed class EmbeddedLogSegmentChainTests : IDisposable
{
    private static readonly EmbeddedLogOptions SmallSegments = new() { SegmentBytes = 4096 };

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string LogPath => _directory.Combine("log");

    [Theory]
    [InlineData("5.seg")]
    [InlineData("00000000000000000000 (copy).seg")]
    [InlineData("000000000000000000000.seg")]
    [InlineData("backup.seg")]
    public async Task A_segment_file_not_named_by_a_base_offset_in_20_digits_fails_open_naming_it(string name)
    {
        await WriteLogAsync(10);
        var stray = Path.Combine(LogPath, name);
        await File.WriteAllBytesAsync(stray, await File.ReadAllBytesAsync(Segments(LogPath)[0]));
        var before = await File.ReadAllBytesAsync(stray);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(stray);
        error.Message.Should().Contain("20 digits").And.NotContain("corrupt at byte", "its name is the problem, not its bytes");
        (await File.ReadAllBytesAsync(stray)).Should().Equal(before, "a stray file is left as it was");
    }

    [Theory]
    [InlineData(8, "header says base offset")] // The base offset field, CRC made to match: a file under another segment's name.
    [InlineData(0, "magic")]
    [InlineData(20, "CRC-32C")] // The roll timestamp: the header's CRC no longer matches.
    public async Task A_sealed_segment_with_a_bad_header_fails_open_naming_it(int field, string problem)
    {
        await WriteLogAsync(80);
        var segment = Segments(LogPath)[1];
        var bytes = await File.ReadAllBytesAsync(segment);
        if (field == 8)
        {
            LogFormat.WriteSegmentHeader(bytes, BaseOffsetOf(segment) + 1, BitConverter.ToInt64(bytes, 16));
        }
        else
        {
            bytes[field] ^= 0x5A;
        }

        await File.WriteAllBytesAsync(segment, bytes);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segment);
        error.ByteOffset.Should().Be(0);
        error.Message.Should().Contain(problem);
        (await File.ReadAllBytesAsync(segment)).Should().Equal(bytes);
    }

    /// <summary>
    /// A segment file with a valid header, far past the log's end (from another log, or made by hand): the
    /// active segment before it would become sealed with too few bytes for the offsets up to it.
    /// </summary>
    [Fact]
    public async Task A_stray_segment_past_the_end_of_the_log_fails_open_as_a_gap_and_is_not_taken_for_the_active_segment()
    {
        var end = await WriteLogAsync(10);
        var active = Segments(LogPath)[^1];
        var stray = Path.Combine(LogPath, LogFormat.SegmentFileName(end + 1000));
        var header = new byte[LogFormat.SegmentHeaderSize];
        LogFormat.WriteSegmentHeader(header, end + 1000, 0);
        await File.WriteAllBytesAsync(stray, header);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(active);
        error.Message.Should().Contain("records are missing").And.Contain(Path.GetFileName(stray));
        (await File.ReadAllBytesAsync(stray)).Should().Equal(header);
    }

    /// <summary>
    /// An empty segment file looks like a roll a crash cut short, whose header open writes again. A roll
    /// creates its segment only once the previous one ends just before it: one that does not is a stray
    /// file, not written to.
    /// </summary>
    [Theory]
    [InlineData(3)]
    [InlineData(-2)]
    public async Task An_empty_segment_file_that_does_not_follow_the_last_record_is_not_taken_for_a_crash_during_a_roll(int distance)
    {
        var end = await WriteLogAsync(10);
        var stray = Path.Combine(LogPath, LogFormat.SegmentFileName(end + distance));
        await File.WriteAllBytesAsync(stray, []);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(stray);
        error.Message.Should().Contain($"ends at offset {end}").And.Contain("nothing was rewritten");
        new FileInfo(stray).Length.Should().Be(0);
    }

    /// <summary>
    /// A crash during a roll after a segment that damage (bit rot) cut short: the scan of the segment before
    /// stops at the damage, short of the new segment's base offset. The empty file is still the roll, and the
    /// damage is the sealed segment's, for its readers to report, as for any sealed segment.
    /// </summary>
    [Fact]
    public async Task An_empty_segment_after_a_damaged_one_is_still_taken_for_a_crash_during_a_roll()
    {
        var end = await WriteLogAsync(10);
        var sealedSegment = Segments(LogPath).Single();
        var bytes = await File.ReadAllBytesAsync(sealedSegment);
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(sealedSegment, bytes);
        await File.WriteAllBytesAsync(Path.Combine(LogPath, LogFormat.SegmentFileName(end)), []);

        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        log.EndOffset.Should().Be(end);
        var read = async () => await ReadAllAsync(log);
        (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which.FilePath.Should().Be(sealedSegment);
        (await log.AppendAsync(Records(1, start: 10, padding: 100))).FirstOffset.Should().Be(end, "appends go on after the roll");
    }

    [Fact]
    public async Task An_empty_first_segment_above_offset_0_is_not_taken_for_a_crash_while_creating_the_log()
    {
        Directory.CreateDirectory(LogPath);
        var stray = Path.Combine(LogPath, LogFormat.SegmentFileName(700));
        await File.WriteAllBytesAsync(stray, []);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(stray);
        new FileInfo(stray).Length.Should().Be(0);
    }

    /// <summary>
    /// A segment deleted from the middle of a log of records much larger than 28 bytes: the segment before
    /// it has the bytes to cover the missing offsets, so open cannot tell. The reader reaching it names the gap.
    /// </summary>
    [Fact]
    public async Task A_gap_the_lengths_do_not_show_is_reported_by_the_reader_naming_the_missing_offsets()
    {
        await WriteLogAsync(120);
        var segments = Segments(LogPath);
        File.Delete(segments[1]);

        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        var read = async () => await ReadAllAsync(log);

        var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segments[0]);
        error.Message.Should().Contain($"the next segment, '{Path.GetFileName(segments[2])}', starts at offset {BaseOffsetOf(segments[2])}")
            .And.Contain($"the records of offsets {BaseOffsetOf(segments[1])} to {BaseOffsetOf(segments[2]) - 1} are missing");
    }

    /// <summary>
    /// A stray segment whose base offset falls inside the previous segment's records, holding enough bytes
    /// for its own offsets: only a scan would see the overlap. A reader crossing from the segment before
    /// into it names the stray file (a batch that reaches it after records returns those first).
    /// </summary>
    [Fact]
    public async Task An_overlapping_stray_segment_is_reported_by_the_reader_crossing_into_it_naming_it()
    {
        await WriteLogAsync(80);
        var first = Segments(LogPath)[0];
        var second = BaseOffsetOf(Segments(LogPath)[1]);
        var bytes = await File.ReadAllBytesAsync(first);
        // The stray copies the first segment's last 5 records under a header of its own.
        var frames = new List<int>();
        for (int p = LogFormat.SegmentHeaderSize; p < bytes.Length; p += LogFormat.RecordPrefixSize + BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p)))
        {
            frames.Add(p);
        }

        frames.Should().HaveCount((int)second);
        var strayBase = second - 5;
        var stray = Path.Combine(LogPath, LogFormat.SegmentFileName(strayBase));
        var content = new byte[LogFormat.SegmentHeaderSize + bytes.Length - frames[^5]];
        LogFormat.WriteSegmentHeader(content, strayBase, 0);
        bytes.AsSpan(frames[^5]).CopyTo(content.AsSpan(LogFormat.SegmentHeaderSize));
        await File.WriteAllBytesAsync(stray, content);

        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        await using var source = await log.OpenSourceAsync("g");
        (await source.ReadBatchAsync((int)second, TimeSpan.Zero, CancellationToken.None)).Should().HaveCount((int)second);
        var read = async () => await source.ReadBatchAsync(10, TimeSpan.Zero, CancellationToken.None);

        var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(first);
        error.Message.Should().Contain($"holds the records up to offset {second - 1}, but the next segment, '{Path.GetFileName(stray)}', starts at offset {strayBase}: they overlap");
    }

    /// <summary>The checks read sealed headers only: a whole chain opens, and damage inside a sealed segment is still the reader's to report.</summary>
    [Fact]
    public async Task A_whole_chain_of_segments_opens_and_reads_back()
    {
        var end = await WriteLogAsync(120);
        Segments(LogPath).Length.Should().BeGreaterThan(3);

        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        log.EndOffset.Should().Be(end);
        (await ReadAllAsync(log)).Select(r => r.Offset).Should().Equal(Enumerable.Range(0, (int)end).Select(i => (long)i));
    }

    private async Task<long> WriteLogAsync(int records)
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        for (int i = 0; i < records; i += 10)
        {
            await log.AppendAsync(Records(Math.Min(10, records - i), start: i, padding: 100));
        }

        return log.EndOffset;
    }

    private static long BaseOffsetOf(string segment) =>
        long.Parse(Path.GetFileNameWithoutExtension(segment), CultureInfo.InvariantCulture);
}
