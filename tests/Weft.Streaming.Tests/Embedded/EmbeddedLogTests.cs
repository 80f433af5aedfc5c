using System.Text;
using FluentAssertions;
using Weft.Engine.Tests;
using Weft.Streaming.Embedded;
using Xunit;
using static Weft.Streaming.Tests.Embedded.LogTesting;

namespace Weft.Streaming.Tests.Embedded;

public sealed class EmbeddedLogTests : IDisposable
{
    private static readonly EmbeddedLogOptions SmallSegments = new() { SegmentBytes = 4096 };

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string LogPath => _directory.Combine("log");

    // ------------------------------------------------------------------ offsets and segments

    [Fact]
    public async Task Offsets_are_dense_and_increasing_across_segment_rolls_and_reopening()
    {
        var ranges = new List<OffsetRange>();
        var appended = new List<(byte[] Key, byte[] Payload)>();
        for (var round = 0; round < 3; round++)
        {
            await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
            log.EndOffset.Should().Be(appended.Count, "a reopened log continues where it ended");
            for (var call = 0; call < 5; call++)
            {
                var records = Records(7 + call, start: appended.Count, padding: 150);
                ranges.Add(await log.AppendAsync(records));
                appended.AddRange(records);
            }
        }

        ranges.Select(r => r.FirstOffset).Should().Equal(ranges.Select((_, i) => (long)ranges.Take(i).Sum(r => r.Count)));
        ranges.Should().OnlyContain(r => r.LastOffset == r.FirstOffset + r.Count - 1);
        Segments(LogPath).Length.Should().BeGreaterThan(5, "4 KiB segments roll many times");

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        reopened.Recovery.Should().BeNull("a cleanly closed log needs no repair");
        var read = await ReadAllAsync(reopened);
        read.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, appended.Count).Select(i => (long)i));
        read.Select(r => Text(r.Payload)).Should().Equal(appended.Select(a => Text(a.Payload)));
        read.Select(r => Text(r.Key)).Should().Equal(appended.Select(a => Text(a.Key)));
        read.Should().OnlyContain(r => r.Partition == EmbeddedLog.PartitionName);
        reopened.SegmentCount.Should().Be(Segments(LogPath).Length);
    }

    [Fact]
    public async Task Segment_files_are_named_by_the_offset_of_their_first_record()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        await log.AppendAsync(Records(60, padding: 100));

        var read = await ReadAllAsync(log);
        var names = Segments(LogPath).Select(Path.GetFileNameWithoutExtension).ToList();
        names[0].Should().Be("00000000000000000000");
        names.Should().OnlyContain(n => n!.Length == 20);
        var bases = names.Select(n => long.Parse(n!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        bases.Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        bases.Should().OnlyContain(b => b < read.Count);
    }

    [Fact]
    public async Task A_record_larger_than_a_segment_gets_a_segment_of_its_own_and_reads_back_through_a_small_buffer()
    {
        var options = new EmbeddedLogOptions { SegmentBytes = 4096, ReadBufferBytes = 4096 };
        var big = Record("k", new string('b', 50_000));
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync([Record("a", "small"), big, Record("c", "after")]);

        var read = await ReadAllAsync(log);

        read.Select(r => Text(r.Payload)).Should().Equal("small", Text(big.Payload), "after");
        Segments(LogPath).Should().HaveCount(3);
    }

    [Fact]
    public async Task Empty_keys_and_payloads_round_trip()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        var range = await log.AppendAsync([([], []), ([], "x"u8.ToArray()), ("k"u8.ToArray(), [])]);

        var read = await ReadAllAsync(log);

        range.Should().Be(new OffsetRange(0, 3));
        read.Select(r => (r.Key.Length, r.Payload.Length)).Should().Equal((0, 0), (0, 1), (1, 0));
    }

    [Fact]
    public async Task An_empty_append_returns_an_empty_range_at_the_end_offset()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        await log.AppendAsync(Records(3));

        var range = await log.AppendAsync([]);

        range.Should().Be(new OffsetRange(3, 0));
        log.EndOffset.Should().Be(3);
    }

    // ------------------------------------------------------------------ group commit

    [Fact]
    public async Task Concurrent_appenders_get_distinct_dense_offsets_and_every_record_is_readable()
    {
        const int appenders = 32;
        const int calls = 10;
        await using var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { SegmentBytes = 64 * 1024, MaxPendingAppends = 8 });

        var results = await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var mine = new List<(OffsetRange Range, List<(byte[] Key, byte[] Payload)> Records)>();
            for (var c = 0; c < calls; c++)
            {
                var records = Enumerable.Range(0, 1 + ((a + c) % 4)).Select(i => Record($"a{a}", $"a{a}-c{c}-i{i}")).ToList();
                mine.Add((await log.AppendAsync(records), records));
            }

            return mine;
        })));

        var all = results.SelectMany(r => r).ToList();
        var offsets = all.SelectMany(r => Enumerable.Range(0, r.Range.Count).Select(i => r.Range[i])).ToList();
        offsets.Should().OnlyHaveUniqueItems();
        offsets.Order().Should().Equal(Enumerable.Range(0, offsets.Count).Select(i => (long)i), "offsets are dense");
        log.EndOffset.Should().Be(offsets.Count);

        var read = await ReadAllAsync(log);
        var expected = all.SelectMany(r => r.Records.Select((rec, i) => (Offset: r.Range[i], Payload: Text(rec.Payload)))).OrderBy(x => x.Offset).ToList();
        read.Select(r => (r.Offset, Text(r.Payload))).Should().Equal(expected.Select(e => (e.Offset, e.Payload)));
        foreach (var result in results)
        {
            result.Select(r => r.Range.FirstOffset).Should().BeInAscendingOrder("one appender's calls are ordered");
        }
    }

    [Fact]
    public async Task Records_are_stamped_by_the_injected_clock_and_timestamps_never_go_back()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 10, 0, 0, TimeSpan.Zero));
        await using var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { TimeProvider = clock });
        await log.AppendAsync(Records(2));
        clock.Advance(TimeSpan.FromSeconds(5));
        await log.AppendAsync(Records(1));
        clock.Advance(TimeSpan.FromSeconds(-60));
        await log.AppendAsync(Records(1));

        var read = await ReadAllAsync(log);

        var t0 = new DateTimeOffset(2026, 11, 30, 10, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        read.Select(r => r.TimestampMicros).Should().Equal(t0, t0, t0 + 5_000_000, t0 + 5_000_001);
    }

    // ------------------------------------------------------------------ recovery

    [Fact]
    public async Task A_tail_cut_short_by_a_crash_is_cut_off_at_open_and_appends_continue_at_the_next_offset()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(10));
        }

        var segment = Segments(LogPath).Single();
        var whole = new FileInfo(segment).Length;
        using (var file = File.OpenWrite(segment))
        {
            file.SetLength(whole - 5);
        }

        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            log.EndOffset.Should().Be(9, "the last record lost its last bytes");
            log.Recovery.Should().NotBeNull();
            log.Recovery!.SegmentPath.Should().Be(segment);
            log.Recovery.BytesRemoved.Should().Be(whole - 5 - log.Recovery.TruncatedAtByte);
            new FileInfo(segment).Length.Should().Be(log.Recovery.TruncatedAtByte);

            var range = await log.AppendAsync(Records(2, start: 100));
            range.Should().Be(new OffsetRange(9, 2));
        }

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath);
        reopened.Recovery.Should().BeNull();
        var read = await ReadAllAsync(reopened);
        read.Select(r => Text(r.Payload)).Should().Equal(Records(9).Concat(Records(2, start: 100)).Select(r => Text(r.Payload)));
    }

    [Fact]
    public async Task Garbage_after_the_last_record_is_cut_off_at_open()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(4));
        }

        var segment = Segments(LogPath).Single();
        var whole = new FileInfo(segment).Length;
        await using (var file = new FileStream(segment, FileMode.Append))
        {
            var garbage = new byte[300];
            new Random(7).NextBytes(garbage);
            garbage[0] = 200; // A plausible length (200), then a CRC that does not match.
            garbage[1] = garbage[2] = garbage[3] = 0;
            await file.WriteAsync(garbage);
        }

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath);

        reopened.EndOffset.Should().Be(4);
        reopened.Recovery!.TruncatedAtByte.Should().Be(whole);
        reopened.Recovery.BytesRemoved.Should().Be(300);
        reopened.Recovery.Reason.Should().Contain("CRC-32C");
        (await reopened.AppendAsync(Records(1))).FirstOffset.Should().Be(4);
        (await ReadAllAsync(reopened)).Should().HaveCount(5);
    }

    /// <summary>
    /// A bad record in the last segment that whole records of later appends follow is damage (a disk, a
    /// hand), not a crash between a write and its fsync, since each append group is fsync'd before the
    /// next is written: cutting there lost every acknowledged record after it. The log refuses to open,
    /// naming the file and byte and how to cut it anyway, and cuts nothing.
    /// </summary>
    [Fact]
    public async Task Damage_that_later_appends_follow_is_reported_and_nothing_is_cut()
    {
        long firstEnd, secondEnd;
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(5));
            firstEnd = new FileInfo(Segments(LogPath).Single()).Length;
            await log.AppendAsync(Records(5, start: 5));
            secondEnd = new FileInfo(Segments(LogPath).Single()).Length;
            await log.AppendAsync(Records(5, start: 10));
            await log.AppendAsync(Records(5, start: 15));
        }

        var segment = Segments(LogPath).Single();
        var whole = new FileInfo(segment).Length;
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            file.Position = (firstEnd + secondEnd) / 2;
            await file.WriteAsync(new byte[8]);
        }

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segment);
        error.ByteOffset.Should().BeInRange(firstEnd, (firstEnd + secondEnd) / 2);
        error.Message.Should().Contain("intact records of later appends follow").And.Contain("nothing was cut").And.Contain($"truncate -s {error.ByteOffset}");
        new FileInfo(segment).Length.Should().Be(whole);
        Directory.GetFiles(LogPath, "*.cut-*").Should().BeEmpty();
    }

    /// <summary>
    /// A hole inside one append's bytes with whole records of that same append after it is what a power
    /// cut leaves of a write not yet fsync'd (pages reach the disk in any order): a torn tail, cut, and
    /// the cut bytes kept beside the segment so that a cut of damage instead can be undone by hand.
    /// </summary>
    [Fact]
    public async Task A_hole_inside_the_last_append_is_a_torn_tail_cut_with_its_bytes_kept()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(3));
            await log.AppendAsync(Records(40, start: 3, padding: 30));
        }

        var segment = Segments(LogPath).Single();
        var whole = new FileInfo(segment).Length;
        var original = await File.ReadAllBytesAsync(segment);
        long hole = whole - (whole / 4);
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            file.Position = hole;
            await file.WriteAsync(new byte[8]);
        }

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath);

        var cut = reopened.Recovery!;
        cut.TruncatedAtByte.Should().BeInRange(LogFormat.SegmentHeaderSize, hole);
        new FileInfo(segment).Length.Should().Be(cut.TruncatedAtByte);
        cut.KeptIn.Should().Be($"{segment}.cut-{cut.TruncatedAtByte}");
        var kept = await File.ReadAllBytesAsync(cut.KeptIn!);
        kept.Length.Should().Be((int)cut.BytesRemoved);
        int before = (int)(hole - cut.TruncatedAtByte);
        kept.AsSpan(0, before).SequenceEqual(original.AsSpan((int)cut.TruncatedAtByte, before)).Should().BeTrue("the bytes before the hole are kept as they were");
        reopened.EndOffset.Should().BeInRange(4, 42);
        Segments(LogPath).Should().ContainSingle("the kept bytes are no segment");
    }

    /// <summary>A bad last record a consumer group has read was durable: not a torn tail either.</summary>
    [Fact]
    public async Task A_bad_record_a_consumer_group_has_read_is_damage_and_nothing_is_cut()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(10));
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 9 }, CancellationToken.None);
        }

        var segment = Segments(LogPath).Single();
        var whole = new FileInfo(segment).Length;
        using (var file = File.OpenWrite(segment))
        {
            file.SetLength(whole - 5);
        }

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segment, "the damaged segment is named, not the group's offset file");
        error.Message.Should().Contain("consumer group 'g' has read up to offset 10").And.Contain("from offset 9 on were durable");
        new FileInfo(segment).Length.Should().Be(whole - 5);
    }

    /// <summary>
    /// A group whose unread records sat in a segment deleted by hand is reported when it opens a reader,
    /// not moved past them (retention deletes only what every group has read).
    /// </summary>
    [Fact]
    public async Task A_group_whose_unread_segment_was_deleted_is_reported_not_skipped()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(200, padding: 40));
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 1 }, CancellationToken.None);
        }

        File.Delete(Segments(LogPath)[0]);
        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        reopened.StartOffset.Should().BeGreaterThan(2);

        var read = async () => await reopened.OpenSourceAsync("g");

        var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(Path.Combine(LogPath, "groups", "g.offset"));
        error.Message.Should().Contain($"the segments holding offsets 2 to {reopened.StartOffset - 1} are missing");
        (await ReadAllAsync(reopened, "new-group")).Should().NotBeEmpty("a group that has read nothing starts at the log's start");
    }

    /// <summary>A failed write leaves the file in a state only recovery can judge: the log refuses appends, says why, until it is reopened.</summary>
    [Fact]
    public async Task A_failed_write_faults_the_log_until_it_is_reopened()
    {
        var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        // Every segment name the next roll could take is a directory: creating it fails.
        for (long offset = 1; offset <= 300; offset++)
        {
            Directory.CreateDirectory(Path.Combine(LogPath, LogFormat.SegmentFileName(offset)));
        }

        log.Fault.Should().BeNull();
        Exception? failure = null;
        for (int i = 0; i < 300 && failure is null; i++)
        {
            try
            {
                await log.AppendAsync(Records(1, start: i, padding: 40));
            }
            catch (IOException ex)
            {
                failure = ex;
            }
        }

        failure.Should().NotBeNull("a roll had to create a segment");
        log.Fault.Should().NotBeNull();
        var again = async () => await log.AppendAsync(Records(1));
        (await again.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("refuses appends until it is reopened");
        long end = log.EndOffset;
        await log.DisposeAsync();

        foreach (var directory in Directory.GetDirectories(LogPath, "*.seg"))
        {
            Directory.Delete(directory);
        }

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        reopened.Fault.Should().BeNull();
        reopened.EndOffset.Should().Be(end);
        (await reopened.AppendAsync(Records(1))).FirstOffset.Should().Be(end);
    }

    [Fact]
    public async Task A_segment_whose_header_a_crash_left_incomplete_is_rewritten_at_open()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(30, padding: 100));
        }

        // A roll that crashed after creating the next segment (at offset 30) but before its header reached the disk.
        var torn = Path.Combine(LogPath, "00000000000000000030.seg");
        await File.WriteAllBytesAsync(torn, [0x57, 0x45, 0x46]);

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        reopened.Recovery!.SegmentPath.Should().Be(torn);
        reopened.EndOffset.Should().Be(30);
        (await reopened.AppendAsync(Records(1, start: 30))).FirstOffset.Should().Be(30);
        (await ReadAllAsync(reopened)).Select(r => r.Offset).Should().Equal(Enumerable.Range(0, 31).Select(i => (long)i));
    }

    [Fact]
    public async Task A_bad_crc_in_a_sealed_segment_is_reported_naming_the_file_and_byte_offset()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(60, padding: 100));
        }

        var sealedSegment = Segments(LogPath)[1];
        var bytes = await File.ReadAllBytesAsync(sealedSegment);
        // The second record of the segment: skip the 32-byte header and the first frame.
        var secondRecord = 32 + 8 + BitConverter.ToInt32(bytes, 32);
        bytes[secondRecord + 40] ^= 0x5A; // A flipped byte in its payload.
        await File.WriteAllBytesAsync(sealedSegment, bytes);

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        reopened.Recovery.Should().BeNull("only the last segment is repaired; a sealed one is never cut");
        var read = async () => await ReadAllAsync(reopened);

        var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(sealedSegment);
        error.ByteOffset.Should().Be(secondRecord);
        error.Message.Should().Contain(sealedSegment).And.Contain($"byte {secondRecord}").And.Contain("CRC-32C");
    }

    [Fact]
    public async Task Records_before_a_corrupt_record_are_delivered_and_the_error_repeats_at_the_same_place()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(60, padding: 100));
        }

        var sealedSegment = Segments(LogPath)[1];
        var firstOffsetOfSegment = long.Parse(Path.GetFileNameWithoutExtension(sealedSegment), System.Globalization.CultureInfo.InvariantCulture);
        var bytes = await File.ReadAllBytesAsync(sealedSegment);
        bytes[32 + 30] ^= 0x01; // Inside the first record of the second segment.
        await File.WriteAllBytesAsync(sealedSegment, bytes);

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        await using var source = await reopened.OpenSourceAsync("g");
        var delivered = new List<SourceRecord>();
        for (var i = 0; i < (int)firstOffsetOfSegment; i++)
        {
            delivered.AddRange(await source.ReadBatchAsync(1, TimeSpan.Zero, CancellationToken.None));
        }

        delivered.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, (int)firstOffsetOfSegment).Select(i => (long)i));
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var read = async () => await source.ReadBatchAsync(10, TimeSpan.Zero, CancellationToken.None);
            (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which.ByteOffset.Should().Be(32);
            source.Position.Should().Be(firstOffsetOfSegment, "nothing past the damage is delivered");
        }
    }

    [Fact]
    public async Task A_sealed_segment_cut_short_is_reported_not_skipped()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(60, padding: 100));
        }

        var sealedSegment = Segments(LogPath)[0];
        var length = new FileInfo(sealedSegment).Length;
        using (var file = File.OpenWrite(sealedSegment))
        {
            file.SetLength(length - 3);
        }

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        var read = async () => await ReadAllAsync(reopened);

        var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(sealedSegment);
        error.Message.Should().Contain("cut short");
    }

    /// <summary>A sealed segment holds at least one record per offset up to the next segment's base: fewer bytes than that is a gap, seen at open from the file's length alone.</summary>
    [Fact]
    public async Task A_sealed_segment_emptied_of_its_records_is_reported_at_open_as_a_gap_in_the_offsets()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(80, padding: 100));
        }

        var emptied = Segments(LogPath)[1];
        var header = (await File.ReadAllBytesAsync(emptied))[..32];
        await File.WriteAllBytesAsync(emptied, header);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(emptied);
        error.Message.Should().Contain("records are missing").And.Contain(Path.GetFileName(Segments(LogPath)[2]));
        (await File.ReadAllBytesAsync(emptied)).Should().Equal(header, "nothing is rewritten");
    }

    [Fact]
    public async Task A_damaged_last_segment_header_is_reported_not_repaired()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(3));
        }

        var segment = Segments(LogPath).Single();
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[10] ^= 0xFF; // In the base offset field.
        await File.WriteAllBytesAsync(segment, bytes);

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segment);
        error.ByteOffset.Should().Be(0);
        error.Message.Should().Contain("header");
    }

    // ------------------------------------------------------------------ consumer groups

    [Fact]
    public async Task Committed_offsets_survive_reopening_the_log_and_give_the_lag()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(20));
            await using var source = await log.OpenSourceAsync("ranker");
            var batch = await source.ReadBatchAsync(15, TimeSpan.Zero, CancellationToken.None);
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = batch[^1].Offset }, CancellationToken.None);
            source.CommittedOffset.Should().Be(15);
            source.Lag.Should().Be(5);
        }

        (await File.ReadAllTextAsync(Path.Combine(LogPath, "groups", "ranker.offset"))).Should().Contain("\"next_offset\":15");
        await using var reopened = await EmbeddedLog.OpenAsync(LogPath);
        reopened.CommittedOffsets.Should().BeEquivalentTo(new Dictionary<string, long> { ["ranker"] = 15 });
        await using var again = await reopened.OpenSourceAsync("ranker");
        again.Position.Should().Be(15);
        var rest = await again.ReadBatchAsync(100, TimeSpan.Zero, CancellationToken.None);
        rest.Select(r => r.Offset).Should().Equal(15, 16, 17, 18, 19);
    }

    [Fact]
    public async Task A_commit_never_moves_a_group_backwards()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        await log.AppendAsync(Records(10));
        await using var source = await log.OpenSourceAsync("g");
        await source.CommitAsync(new Dictionary<string, long> { ["embedded"] = 7 }, CancellationToken.None);

        await source.CommitAsync(new Dictionary<string, long> { ["embedded"] = 2 }, CancellationToken.None);

        source.CommittedOffset.Should().Be(8);
        log.CommittedOffsets["g"].Should().Be(8);
    }

    /// <summary>
    /// A group's first commit writes its offset file, then records the group with the log. A reader disposed
    /// in between used to release the group first: the commit threw KeyNotFoundException and retention
    /// ignored the file until the next open. Dispose now waits for the commit, and a commit queued behind
    /// it sees the disposal and writes nothing.
    /// </summary>
    [Fact]
    public async Task A_first_commit_in_progress_when_its_reader_is_disposed_completes_and_is_tracked()
    {
        using var clock = new GatedClock();
        await using var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { TimeProvider = clock, RetentionCheckInterval = Timeout.InfiniteTimeSpan });
        await log.AppendAsync(Records(10));
        var source = await log.OpenSourceAsync("g");
        await source.ReadBatchAsync(10, TimeSpan.Zero, CancellationToken.None);
        var groupFile = Path.Combine(LogPath, "groups", "g.offset");

        // The commit stamps its file from the clock before writing it: held there, it is in progress.
        clock.HoldNextRead();
        var first = Task.Run(async () => await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 4 }, CancellationToken.None));
        (await clock.Held.WaitAsync(TimeSpan.FromSeconds(30))).Should().BeTrue("the commit reads the clock");
        var queued = source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 9 }, CancellationToken.None).AsTask();
        var disposing = source.DisposeAsync().AsTask();

        disposing.IsCompleted.Should().BeFalse("the reader's disposal waits for the commit in progress");
        clock.Release();
        await first;
        await disposing;

        var late = async () => await queued;
        await late.Should().ThrowAsync<ObjectDisposedException>("the commit was still waiting for its turn when the reader was disposed");
        log.CommittedOffsets.Should().BeEquivalentTo(new Dictionary<string, long> { ["g"] = 5 }, "a commit that completed is counted by retention");
        (await File.ReadAllTextAsync(groupFile)).Should().Contain("\"next_offset\":5,");
        await using var again = await log.OpenSourceAsync("g");
        again.Position.Should().Be(5);
    }

    [Fact]
    public async Task A_commit_after_its_reader_is_disposed_throws_and_writes_nothing()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        await log.AppendAsync(Records(3));
        var source = await log.OpenSourceAsync("g");
        await source.DisposeAsync();

        var commit = async () => await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 1 }, CancellationToken.None);

        await commit.Should().ThrowAsync<ObjectDisposedException>();
        File.Exists(Path.Combine(LogPath, "groups", "g.offset")).Should().BeFalse();
        log.CommittedOffsets.Should().BeEmpty();
    }

    /// <summary>
    /// A commit in progress when the log is disposed ends before the log releases its directory: its file
    /// never lands under a process that has opened the log since.
    /// </summary>
    [Fact]
    public async Task Disposing_the_log_waits_for_a_commit_in_progress()
    {
        using var clock = new GatedClock();
        var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { TimeProvider = clock, RetentionCheckInterval = Timeout.InfiniteTimeSpan });
        await log.AppendAsync(Records(3));
        var source = await log.OpenSourceAsync("g");
        clock.HoldNextRead();
        var commit = Task.Run(async () => await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 2 }, CancellationToken.None));
        (await clock.Held.WaitAsync(TimeSpan.FromSeconds(30))).Should().BeTrue("the commit reads the clock");

        var disposing = log.DisposeAsync().AsTask();
        while (!disposing.IsCompleted && !log.DisposeWaitsForCommits)
        {
            await Task.Yield(); // Until the disposal either ends or waits: no timing involved.
        }

        disposing.IsCompleted.Should().BeFalse("the log's disposal waits for the commit in progress");
        var secondOpen = async () => await EmbeddedLog.OpenAsync(LogPath);
        (await secondOpen.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("already open");
        clock.Release();
        await commit;
        await disposing;
        await source.DisposeAsync();
        await using var reopened = await EmbeddedLog.OpenAsync(LogPath);
        reopened.CommittedOffsets.Should().BeEquivalentTo(new Dictionary<string, long> { ["g"] = 3 });
    }

    [Fact]
    public async Task Commits_of_another_partition_or_of_offsets_not_in_the_log_are_rejected()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        await log.AppendAsync(Records(3));
        await using var source = await log.OpenSourceAsync("g");

        var otherPartition = async () => await source.CommitAsync(new Dictionary<string, long> { ["events/0"] = 1 }, CancellationToken.None);
        var beyondEnd = async () => await source.CommitAsync(new Dictionary<string, long> { ["embedded"] = 3 }, CancellationToken.None);

        (await otherPartition.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("events/0");
        (await beyondEnd.Should().ThrowAsync<ArgumentOutOfRangeException>()).Which.Message.Should().Contain("Offset 3");
        source.CommittedOffset.Should().Be(0);
    }

    [Fact]
    public async Task A_consumer_group_has_one_open_reader_at_a_time()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);
        var first = await log.OpenSourceAsync("g");

        var second = async () => await log.OpenSourceAsync("g");

        (await second.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("'g'");
        await first.DisposeAsync();
        await using var third = await log.OpenSourceAsync("g");
        third.Group.Should().Be("g");
    }

    [Theory]
    [InlineData("")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("spaces are out")]
    public async Task A_group_name_that_cannot_be_a_file_name_is_rejected(string group)
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);

        var open = async () => await log.OpenSourceAsync(group);

        await open.Should().ThrowAsync<ArgumentException>();
    }

    [Fact]
    public async Task A_group_offset_beyond_the_end_of_the_log_is_reported_at_open()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(3));
        }

        var groupFile = Path.Combine(LogPath, "groups", "g.offset");
        await File.WriteAllTextAsync(groupFile, "{\"group\":\"g\",\"next_offset\":9,\"committed_at_micros\":0}\n");

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(groupFile);
        error.Message.Should().Contain("offset 9").And.Contain("ends at offset 3");
    }

    /// <summary>
    /// The last segment deleted by hand: its records were acknowledged, and opening would give their offsets
    /// to new records. A group that had read into it shows they are missing.
    /// </summary>
    [Fact]
    public async Task A_deleted_last_segment_a_group_had_read_fails_open_naming_the_group_its_offset_and_the_log_end()
    {
        long end;
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(80, padding: 100));
            end = log.EndOffset;
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = end - 1 }, CancellationToken.None);
        }

        var segments = Segments(LogPath);
        long lastBase = long.Parse(Path.GetFileNameWithoutExtension(segments[^1]), System.Globalization.CultureInfo.InvariantCulture);
        lastBase.Should().BeLessThan(end, "the last segment holds records");
        File.Delete(segments[^1]);
        var kept = segments[..^1].Select(File.ReadAllBytes).ToList();

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(Path.Combine(LogPath, "groups", "g.offset"));
        error.Message.Should().Contain("consumer group 'g'").And.Contain($"offset {end}").And.Contain($"ends at offset {lastBase}")
            .And.Contain($"records from offset {lastBase} to {end - 1} were acknowledged and are missing");
        Segments(LogPath).Should().Equal(segments[..^1]);
        segments[..^1].Select(File.ReadAllBytes).Should().BeEquivalentTo(kept, o => o.WithStrictOrdering(), "nothing is cut or rewritten");
    }

    [Fact]
    public async Task A_log_whose_every_segment_was_deleted_fails_open_and_creates_no_segment_in_their_place()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(5));
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 4 }, CancellationToken.None);
        }

        File.Delete(Segments(LogPath).Single());

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(Path.Combine(LogPath, "groups", "g.offset"));
        error.Message.Should().Contain("offset 5").And.Contain("ends at offset 0");
        Segments(LogPath).Should().BeEmpty("a segment created now would take the name of the one to restore");
    }

    // ------------------------------------------------------------------ retention

    [Fact]
    public async Task Retention_deletes_only_segments_that_are_fully_committed_and_old()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(24), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(60, padding: 100)); // Old records, several segments.
        var oldSegments = Segments(LogPath);
        clock.Advance(TimeSpan.FromHours(20));
        await log.AppendAsync(Records(60, start: 60, padding: 100)); // Younger records, several more.
        var allSegments = Segments(LogPath);
        oldSegments.Length.Should().BeGreaterThan(2);
        await using var source = await log.OpenSourceAsync("g");
        await source.CommitAsync(new Dictionary<string, long> { ["embedded"] = 119 }, CancellationToken.None);

        (await log.EnforceRetentionAsync()).Should().Be(0, "nothing is older than 24 hours yet");

        clock.Advance(TimeSpan.FromHours(5)); // The first 60 records are now 25 hours old, the others 5.
        var deleted = await log.EnforceRetentionAsync();

        // The segment holding records 59 and 60 has a young record, so it stays.
        deleted.Should().Be(oldSegments.Length - 1);
        Segments(LogPath).Should().Equal(allSegments.Skip(oldSegments.Length - 1));
        log.StartOffset.Should().Be(long.Parse(Path.GetFileNameWithoutExtension(allSegments[oldSegments.Length - 1]), System.Globalization.CultureInfo.InvariantCulture));
        log.StartOffset.Should().BeLessThanOrEqualTo(60);

        await using var fresh = await log.OpenSourceAsync("fresh");
        var read = await fresh.ReadBatchAsync(1000, TimeSpan.Zero, CancellationToken.None);
        read[0].Offset.Should().Be(log.StartOffset, "a new group starts at the oldest record kept");
        read[^1].Offset.Should().Be(119);
    }

    [Fact]
    public async Task Retention_keeps_old_segments_that_a_consumer_group_has_not_committed()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(80, padding: 100));
        var segments = Segments(LogPath);
        var thirdBase = long.Parse(Path.GetFileNameWithoutExtension(segments[2]), System.Globalization.CultureInfo.InvariantCulture);
        await using (var fast = await log.OpenSourceAsync("fast"))
        {
            await fast.CommitAsync(new Dictionary<string, long> { ["embedded"] = 79 }, CancellationToken.None);
        }

        await using (var slow = await log.OpenSourceAsync("slow"))
        {
            await slow.CommitAsync(new Dictionary<string, long> { ["embedded"] = thirdBase - 1 }, CancellationToken.None);
        }

        clock.Advance(TimeSpan.FromHours(2));

        (await log.EnforceRetentionAsync()).Should().Be(2, "the slow group has committed the first two segments only");
        Segments(LogPath).Should().Equal(segments.Skip(2));
        log.StartOffset.Should().Be(thirdBase);
    }

    [Fact]
    public async Task A_first_commit_that_fails_after_its_file_is_in_place_keeps_the_group_counted_by_retention()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(80, padding: 100));
        Segments(LogPath).Length.Should().BeGreaterThan(3);
        await FailFirstCommitThenCommitAllAsync(log, "slow", fileWritten: true);

        File.Exists(Path.Combine(LogPath, "groups", "slow.offset")).Should().BeTrue("the write failed after its rename");

        clock.Advance(TimeSpan.FromHours(2));
        (await log.EnforceRetentionAsync()).Should().Be(0, "the slow group may have read only up to offset 5, in the first segment");
        log.CommittedOffsets.Should().NotContainKey("slow", "its commit is not known to be durable");
        await log.DisposeAsync();

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, options);
        await using var again = await reopened.OpenSourceAsync("slow");
        var batch = await again.ReadBatchAsync(1, TimeSpan.Zero, CancellationToken.None);
        batch.Should().ContainSingle().Which.Offset.Should().Be(5, "the file the failed commit left holds offset 5");
    }

    [Fact]
    public async Task A_first_commit_that_fails_before_its_file_is_written_does_not_hold_back_retention()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(80, padding: 100));
        var segments = Segments(LogPath);
        await FailFirstCommitThenCommitAllAsync(log, "gone", fileWritten: false);

        File.Exists(Path.Combine(LogPath, "groups", "gone.offset")).Should().BeFalse();

        clock.Advance(TimeSpan.FromHours(2));
        (await log.EnforceRetentionAsync()).Should().Be(segments.Length - 1, "a group with no file, and no reader, holds nothing back");
    }

    /// <summary>
    /// <paramref name="group"/>'s first commit (through offset 4) fails, its file written and renamed into
    /// place first or not at all; then another group commits every record.
    /// </summary>
    private static async Task FailFirstCommitThenCommitAllAsync(EmbeddedLog log, string group, bool fileWritten)
    {
        var write = log.WriteGroupFileAsync;
        log.WriteGroupFileAsync = async (name, next, micros, ct) =>
        {
            if (fileWritten)
            {
                await write(name, next, micros, ct);
            }

            throw new IOException(fileWritten ? "fsync(2) on the groups folder failed (injected)" : "no space left on device (injected)");
        };
        await using (var source = await log.OpenSourceAsync(group))
        {
            var commit = async () => await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 4 }, CancellationToken.None);
            await commit.Should().ThrowAsync<IOException>();
        }

        log.WriteGroupFileAsync = write;
        await using var all = await log.OpenSourceAsync("all");
        await all.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = log.EndOffset - 1 }, CancellationToken.None);
    }

    [Fact]
    public async Task Retention_deletes_nothing_while_no_consumer_group_exists_and_nothing_a_new_reader_has_yet_to_read()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(80, padding: 100));
        clock.Advance(TimeSpan.FromDays(30));

        (await log.EnforceRetentionAsync()).Should().Be(0, "no group has committed anything");

        await using var reader = await log.OpenSourceAsync("new-group");
        (await log.EnforceRetentionAsync()).Should().Be(0, "an open reader that has committed nothing still needs every record");
        (await reader.ReadBatchAsync(1000, TimeSpan.Zero, CancellationToken.None)).Should().HaveCount(80);
    }

    [Fact]
    public async Task Retention_runs_on_its_interval_by_the_injected_clock()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = TimeSpan.FromMinutes(5) };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        await log.AppendAsync(Records(80, padding: 100));
        await using (var source = await log.OpenSourceAsync("g"))
        {
            await source.CommitAsync(new Dictionary<string, long> { ["embedded"] = 79 }, CancellationToken.None);
        }

        var before = log.SegmentCount;
        clock.RequestedDelays.Should().Contain(TimeSpan.FromMinutes(5));

        clock.Advance(TimeSpan.FromHours(2));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (log.SegmentCount == before)
        {
            await Task.Delay(10, timeout.Token);
        }

        log.SegmentCount.Should().Be(1, "every sealed segment is committed and old");
        log.LastRetentionError.Should().BeNull();
    }

    // ------------------------------------------------------------------ misuse and limits

    [Fact]
    public async Task A_second_open_of_the_same_directory_fails_clearly()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath);

        var second = async () => await EmbeddedLog.OpenAsync(LogPath);

        (await second.Should().ThrowAsync<IOException>()).Which.Message.Should().Contain("already open");
    }

    [Fact]
    public async Task A_path_that_is_a_file_fails_saying_so()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(LogPath)!);
        await File.WriteAllTextAsync(LogPath, "{}");

        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        (await open.Should().ThrowAsync<IOException>()).Which.Message.Should().Be($"The embedded log at '{Path.GetFullPath(LogPath)}' is a file: the log is a directory of its own (a new one is created there when missing)");
        (await File.ReadAllTextAsync(LogPath)).Should().Be("{}");
    }

    [Fact]
    public async Task A_record_larger_than_the_limit_is_rejected_naming_the_option()
    {
        await using var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { MaxRecordBytes = 100 });

        var append = async () => await log.AppendAsync([Record("k", "ok"), Record("k", new string('x', 100))]);

        (await append.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("Record 1").And.Contain("MaxRecordBytes = 100");
        log.EndOffset.Should().Be(0, "a rejected call appends nothing");
    }

    [Theory]
    [InlineData(nameof(EmbeddedLogOptions.SegmentBytes))]
    [InlineData(nameof(EmbeddedLogOptions.MaxBatchBytes))]
    [InlineData(nameof(EmbeddedLogOptions.RetentionPeriod))]
    [InlineData(nameof(EmbeddedLogOptions.ReadBufferBytes))]
    public async Task Options_out_of_range_are_rejected_naming_the_option_and_value(string option)
    {
        var options = option switch
        {
            nameof(EmbeddedLogOptions.SegmentBytes) => new EmbeddedLogOptions { SegmentBytes = 100 },
            nameof(EmbeddedLogOptions.MaxBatchBytes) => new EmbeddedLogOptions { MaxBatchBytes = 0 },
            nameof(EmbeddedLogOptions.RetentionPeriod) => new EmbeddedLogOptions { RetentionPeriod = TimeSpan.FromSeconds(-1) },
            _ => new EmbeddedLogOptions { ReadBufferBytes = 16 },
        };

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, options);

        var error = (await open.Should().ThrowAsync<ArgumentOutOfRangeException>()).Which;
        error.ParamName.Should().Be(option);
        error.Message.Should().Contain($"EmbeddedLogOptions.{option}");
    }

    [Fact]
    public async Task A_disposed_log_refuses_appends_and_its_readers_say_so()
    {
        var log = await EmbeddedLog.OpenAsync(LogPath);
        var source = await log.OpenSourceAsync("g");
        await log.DisposeAsync();

        var append = async () => await log.AppendAsync(Records(1));
        var read = async () => await source.ReadBatchAsync(1, TimeSpan.Zero, CancellationToken.None);

        await append.Should().ThrowAsync<ObjectDisposedException>();
        await read.Should().ThrowAsync<ObjectDisposedException>();
        await source.DisposeAsync();
    }

    [Fact]
    public async Task A_reader_waiting_for_records_wakes_when_the_log_is_disposed()
    {
        var log = await EmbeddedLog.OpenAsync(LogPath);
        await using var source = await log.OpenSourceAsync("g");
        var waiting = source.ReadBatchAsync(1, Timeout.InfiniteTimeSpan, CancellationToken.None).AsTask();

        await log.DisposeAsync();

        var wait = async () => await waiting;
        await wait.Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public void Crc32C_gives_the_standard_check_value()
    {
        Crc32C.Compute("123456789"u8).Should().Be(0xE3069283u);
        Crc32C.Compute([]).Should().Be(0u);
        var data = Encoding.ASCII.GetBytes("The quick brown fox jumps over the lazy dog");
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, data.AsSpan(0, 13)), data.AsSpan(13))).Should().Be(Crc32C.Compute(data));
    }

    /// <summary>The system clock, but a read after <see cref="HoldNextRead"/> waits for <see cref="Release"/>: a point to hold a commit at.</summary>
    private sealed class GatedClock : TimeProvider, IDisposable
    {
        private readonly ManualResetEventSlim _released = new(false);
        private int _armed;

        public SemaphoreSlim Held { get; } = new(0, 1);

        public void HoldNextRead() => Volatile.Write(ref _armed, 1);

        public void Release() => _released.Set();

        public override DateTimeOffset GetUtcNow()
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1)
            {
                Held.Release();
                _released.Wait(TimeSpan.FromSeconds(30));
            }

            return base.GetUtcNow();
        }

        public void Dispose()
        {
            _released.Dispose();
            Held.Dispose();
        }
    }
}
