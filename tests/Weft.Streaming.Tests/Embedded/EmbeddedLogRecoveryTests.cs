using System.Buffers.Binary;
using FluentAssertions;
using Weft.Engine.Tests;
using Weft.Streaming.Embedded;
using Xunit;
using static Weft.Streaming.Tests.Embedded.LogTesting;

namespace Weft.Streaming.Tests.Embedded;

/// <summary>
/// Recovery at open against what a crash or a power cut can leave of the active segment (a tail cut
/// at any byte, a zero-filled tail, a segment created by a roll whose header never became durable),
/// and against damage to acknowledged records that recovery must not take for a torn tail.
/// </summary>
public sealed class EmbeddedLogRecoveryTests : IDisposable
{
    private static readonly EmbeddedLogOptions SmallSegments = new() { SegmentBytes = 4096 };

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private string LogPath => _directory.Combine("log");

    public enum Tear
    {
        /// <summary>The file ends at the byte (a kill or power cut before the rest of the write reached it).</summary>
        Truncated,

        /// <summary>The file keeps its length, but every byte from the cut on reads as zero (a power cut after the size was updated but before the data was written).</summary>
        ZeroFilled,
    }

    /// <summary>
    /// After a roll, the active segment is cut (or zero-filled) at every byte from its header's end to
    /// its end: the log opens, keeps exactly the whole records before the cut (those of the sealed
    /// segment included), continues at the next offset, and reads back dense and unchanged.
    /// </summary>
    [Theory]
    [InlineData(Tear.Truncated)]
    [InlineData(Tear.ZeroFilled)]
    public async Task A_torn_active_segment_after_a_roll_keeps_every_whole_record_before_the_tear_at_every_byte(Tear tear)
    {
        var pristine = _directory.Combine("pristine");
        var appended = new List<(byte[] Key, byte[] Payload)>();
        await using (var log = await EmbeddedLog.OpenAsync(pristine, SmallSegments))
        {
            while (Segments(pristine).Length < 2)
            {
                var record = Records(1, start: appended.Count, padding: 90);
                await log.AppendAsync(record);
                appended.AddRange(record);
            }

            // Three more appends, each its own group commit, as a crash would find them.
            for (int i = 0; i < 3; i++)
            {
                var record = Records(1, start: appended.Count, padding: 5 * i);
                await log.AppendAsync(record);
                appended.AddRange(record);
            }
        }

        var activeName = Path.GetFileName(Segments(pristine)[^1]);
        long baseOffset = long.Parse(Path.GetFileNameWithoutExtension(activeName), System.Globalization.CultureInfo.InvariantCulture);
        var original = await File.ReadAllBytesAsync(Path.Combine(pristine, activeName));
        var ends = new List<int>();
        for (int at = LogFormat.SegmentHeaderSize; at < original.Length;)
        {
            at += LogFormat.RecordPrefixSize + BinaryPrimitives.ReadInt32LittleEndian(original.AsSpan(at));
            ends.Add(at);
        }

        ends.Should().HaveCount((int)(appended.Count - baseOffset));
        int first = tear == Tear.Truncated ? 0 : LogFormat.SegmentHeaderSize;
        for (int cut = first; cut < original.Length; cut++)
        {
            var path = _directory.Combine($"cut-{cut}");
            Directory.CreateDirectory(Path.Combine(path, LogFormat.GroupsDirectoryName));
            foreach (var file in Directory.GetFiles(pristine, "*.seg"))
            {
                File.Copy(file, Path.Combine(path, Path.GetFileName(file)));
            }

            var torn = original.ToArray();
            torn.AsSpan(cut).Clear();
            await File.WriteAllBytesAsync(Path.Combine(path, activeName), tear == Tear.Truncated ? torn[..cut] : torn);

            long whole = baseOffset + ends.Count(e => e <= cut);
            await using (var log = await EmbeddedLog.OpenAsync(path, SmallSegments))
            {
                log.EndOffset.Should().Be(whole, "cut at byte {0}", cut);
                (await log.AppendAsync([Record("k", "after")])).FirstOffset.Should().Be(whole, "cut at byte {0}", cut);
                var read = await ReadAllAsync(log);
                read.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, (int)whole + 1).Select(i => (long)i), "cut at byte {0}", cut);
                read.Select(r => Text(r.Payload)).Should().Equal(appended.Take((int)whole).Select(a => Text(a.Payload)).Append("after"), "cut at byte {0}", cut);
            }

            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>
    /// A roll that a power cut interrupted after the new segment's size reached the disk but before its
    /// header did leaves a last segment of header size that reads as zeros. No record can be in it (records
    /// go in only after the header's fsync), so it is a crash during a roll, repaired like a header cut
    /// short: the log opens, nothing is lost, appends continue at the segment's base offset.
    /// </summary>
    [Fact]
    public async Task A_segment_a_roll_left_with_a_zero_filled_header_is_rewritten_at_open()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(30, padding: 100));
        }

        var torn = Path.Combine(LogPath, LogFormat.SegmentFileName(30));
        await File.WriteAllBytesAsync(torn, new byte[LogFormat.SegmentHeaderSize]);

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        reopened.Recovery!.SegmentPath.Should().Be(torn);
        reopened.EndOffset.Should().Be(30);
        (await reopened.AppendAsync(Records(1, start: 30))).FirstOffset.Should().Be(30);
        (await ReadAllAsync(reopened)).Select(r => r.Offset).Should().Equal(Enumerable.Range(0, 31).Select(i => (long)i));
    }

    /// <summary>
    /// Recovery tells a torn tail (one append group, the last, not yet fsync'd) from damage that later,
    /// acknowledged appends follow by the append timestamps of the records after the bad frame. A clock
    /// that stands still (or stepped back) must not make those later appends look like one group.
    /// </summary>
    [Fact]
    public async Task Damage_that_later_appends_follow_is_reported_even_when_the_clock_stood_still()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        var options = new EmbeddedLogOptions { TimeProvider = clock };
        long firstEnd, secondEnd;
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, options))
        {
            await log.AppendAsync(Records(5));
            firstEnd = new FileInfo(Segments(LogPath).Single()).Length;
            await log.AppendAsync(Records(5, start: 5));
            secondEnd = new FileInfo(Segments(LogPath).Single()).Length;
            clock.Advance(TimeSpan.FromMinutes(-10)); // A clock stepped back: the later appends cannot be stamped by it.
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

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, options);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(segment);
        error.Message.Should().Contain("intact records of later appends follow").And.Contain("nothing was cut");
        new FileInfo(segment).Length.Should().Be(whole, "acknowledged records are not cut");
    }

    /// <summary>
    /// Each append group gets a timestamp of its own, later than the previous group's, even when the
    /// clock stands still or steps back: recovery counts groups by their timestamps.
    /// </summary>
    [Fact]
    public async Task Each_append_group_is_stamped_later_than_the_previous_one_whatever_the_clock_does()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        await using var log = await EmbeddedLog.OpenAsync(LogPath, new EmbeddedLogOptions { TimeProvider = clock });
        await log.AppendAsync(Records(2));
        await log.AppendAsync(Records(2));
        clock.Advance(TimeSpan.FromSeconds(-30));
        await log.AppendAsync(Records(2));

        var stamps = (await ReadAllAsync(log)).Select(r => r.TimestampMicros).ToList();

        var t0 = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        stamps.Should().Equal(t0, t0, t0 + 1, t0 + 1, t0 + 2, t0 + 2);
    }

    /// <summary>
    /// A roll's segment whose header a crash left incomplete gets a new header; after a clock that stepped
    /// back, its roll timestamp and the records after it must still be no earlier than the records before.
    /// </summary>
    [Fact]
    public async Task Timestamps_do_not_go_back_across_a_segment_header_rewritten_at_open()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock };
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, options))
        {
            await log.AppendAsync(Records(30, padding: 100));
        }

        await File.WriteAllBytesAsync(Path.Combine(LogPath, LogFormat.SegmentFileName(30)), [0x57, 0x45]);
        clock.Advance(TimeSpan.FromHours(-1));

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, options);
        await reopened.AppendAsync(Records(1, start: 30));

        (await ReadAllAsync(reopened)).Select(r => r.TimestampMicros).Should().BeInAscendingOrder();
    }

    /// <summary>A header cut short on a last segment that a consumer group has read into held durable records: damage, not a roll's crash.</summary>
    [Fact]
    public async Task A_last_segment_header_cut_short_below_a_group_offset_is_reported_and_nothing_is_rewritten()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(40, padding: 100));
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 39 }, CancellationToken.None);
        }

        var last = Segments(LogPath)[^1];
        using (var file = File.OpenWrite(last))
        {
            file.SetLength(10);
        }

        var open = async () => await EmbeddedLog.OpenAsync(LogPath, SmallSegments);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(last);
        new FileInfo(last).Length.Should().Be(10, "nothing is rewritten");
    }

    /// <summary>
    /// Appenders roll 4 KiB segments while two groups tail the log and commit, and retention deletes what
    /// both have committed: each group receives every acknowledged record exactly once, dense and in
    /// offset order, with the payload its append was acknowledged at, and the log ends whole.
    /// </summary>
    [Fact]
    public async Task Readers_tailing_across_segment_rolls_and_retention_receive_every_acknowledged_record_in_order()
    {
        const int Appenders = 4, Calls = 60;
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        var options = SmallSegments with { TimeProvider = clock, RetentionPeriod = TimeSpan.FromHours(1), RetentionCheckInterval = Timeout.InfiniteTimeSpan };
        await using var log = await EmbeddedLog.OpenAsync(LogPath, options);
        var expected = new System.Collections.Concurrent.ConcurrentDictionary<long, string>();
        int total = 0;
        for (int a = 0; a < Appenders; a++)
        {
            for (int c = 0; c < Calls; c++)
            {
                total += 1 + ((a + c) % 4);
            }
        }

        using var hang = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // A guard against a hang, not a timing.
        var appenders = Enumerable.Range(0, Appenders).Select(a => Task.Run(async () =>
        {
            for (int c = 0; c < Calls; c++)
            {
                var batch = Enumerable.Range(0, 1 + ((a + c) % 4)).Select(i => Record($"u{a}", $"{{\"a\":{a},\"c\":{c},\"i\":{i},\"pad\":\"{new string('p', (c * 37) % 300)}\"}}")).ToList();
                var range = await log.AppendAsync(batch, hang.Token);
                for (int i = 0; i < batch.Count; i++)
                {
                    expected.TryAdd(range[i], Text(batch[i].Payload)).Should().BeTrue("offsets are never given twice");
                }
            }
        })).ToList();

        var readers = new[] { "g1", "g2" }.Select(group => Task.Run(async () =>
        {
            await using var source = await log.OpenSourceAsync(group, hang.Token);
            var received = new List<SourceRecord>();
            while (received.Count < total)
            {
                var batch = await source.ReadBatchAsync(group == "g1" ? 7 : 50, Timeout.InfiniteTimeSpan, hang.Token);
                received.AddRange(batch.Select(r => r with { Key = r.Key.ToArray(), Payload = r.Payload.ToArray() }));
                if (batch.Count > 0)
                {
                    await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = batch[^1].Offset }, hang.Token);
                    clock.Advance(TimeSpan.FromHours(2)); // What is committed is also past the retention period.
                    await log.EnforceRetentionAsync(hang.Token);
                }
            }

            return received;
        })).ToList();

        await Task.WhenAll(appenders);
        var results = await Task.WhenAll(readers);

        expected.Should().HaveCount(total);
        foreach (var received in results)
        {
            received.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, total).Select(i => (long)i));
            received.Select(r => Text(r.Payload)).Should().Equal(Enumerable.Range(0, total).Select(i => expected[i]));
        }

        log.EndOffset.Should().Be(total);
        log.StartOffset.Should().BeGreaterThan(0, "retention ran behind the readers");
    }

    /// <summary>
    /// A record of exactly <see cref="EmbeddedLogOptions.MaxRecordBytes"/> (larger than a segment, the
    /// batch limit, the writer's pending buffer and a reader's buffer) is appended, read back after
    /// reopening, and, torn by a crash at its last byte, cut off whole with the records before it kept.
    /// </summary>
    [Fact]
    public async Task A_record_of_the_maximum_size_round_trips_and_a_torn_one_is_cut_whole()
    {
        var options = new EmbeddedLogOptions { MaxRecordBytes = 4 * 1024 * 1024, SegmentBytes = 64 * 1024, MaxBatchBytes = 64 * 1024, ReadBufferBytes = 4096 };
        var key = "big-user"u8.ToArray();
        var payload = new byte[options.MaxRecordBytes - key.Length];
        new Random(11).NextBytes(payload);
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, options))
        {
            await log.AppendAsync(Records(3));
            (await log.AppendAsync([(key, payload)])).Should().Be(new OffsetRange(3, 1));
            (await log.AppendAsync(Records(1, start: 4))).Should().Be(new OffsetRange(4, 1));
            await log.AppendAsync([(key, payload)]);
        }

        await using (var log = await EmbeddedLog.OpenAsync(LogPath, options))
        {
            log.Recovery.Should().BeNull();
            var read = await ReadAllAsync(log);
            read.Select(r => r.Offset).Should().Equal(0, 1, 2, 3, 4, 5);
            read[3].Payload.ToArray().Should().Equal(payload);
            read[5].Key.ToArray().Should().Equal(key);
            read[5].Payload.ToArray().Should().Equal(payload);
        }

        var last = Segments(LogPath)[^1];
        var length = new FileInfo(last).Length;
        using (var file = File.OpenWrite(last))
        {
            file.SetLength(length - 1);
        }

        await using (var log = await EmbeddedLog.OpenAsync(LogPath, options))
        {
            log.EndOffset.Should().Be(5);
            log.Recovery!.BytesRemoved.Should().Be(LogFormat.RecordSize(key.Length, payload.Length) - 1);
            (await log.AppendAsync(Records(1, start: 9))).FirstOffset.Should().Be(5);
            (await ReadAllAsync(log)).Select(r => r.Offset).Should().Equal(0, 1, 2, 3, 4, 5);
        }
    }

    /// <summary>
    /// A commit replaces the group's offset file by a rename: a crash mid-commit leaves the old file and a
    /// temp file, and the old offset holds. A torn offset file (only damage makes one) fails the open
    /// naming it, rather than moving the group.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("{\"group\":\"g\",\"next_of")]
    [InlineData("\0\0\0\0\0\0\0\0")]
    public async Task A_torn_group_offset_file_is_reported_and_a_commit_a_crash_interrupted_keeps_the_old_offset(string torn)
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(10));
            await using var source = await log.OpenSourceAsync("g");
            await source.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = 4 }, CancellationToken.None);
        }

        var groupFile = Path.Combine(LogPath, LogFormat.GroupsDirectoryName, "g.offset");
        await File.WriteAllTextAsync(groupFile + ".tmp", torn);
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            log.CommittedOffsets.Should().BeEquivalentTo(new Dictionary<string, long> { ["g"] = 5 });
            File.Exists(groupFile + ".tmp").Should().BeFalse();
            await using var source = await log.OpenSourceAsync("g");
            source.Position.Should().Be(5);
        }

        await File.WriteAllTextAsync(groupFile, torn);
        var open = async () => await EmbeddedLog.OpenAsync(LogPath);

        var error = (await open.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
        error.FilePath.Should().Be(groupFile);
        error.Message.Should().Contain(groupFile);
    }

    /// <summary>
    /// A batch read that reaches damage delivers the whole records before it (they are durable and
    /// checked) and stops there; the next read throws, naming the file and byte, and keeps throwing at
    /// the same place. A consumer reading large batches is not held back before records it could process.
    /// </summary>
    [Fact]
    public async Task A_batch_read_that_reaches_damage_delivers_the_records_before_it_then_throws_at_the_damage()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath, SmallSegments))
        {
            await log.AppendAsync(Records(60, padding: 100));
        }

        var damaged = Segments(LogPath)[1];
        var firstOffsetOfSegment = long.Parse(Path.GetFileNameWithoutExtension(damaged), System.Globalization.CultureInfo.InvariantCulture);
        var bytes = await File.ReadAllBytesAsync(damaged);
        var secondRecord = 32 + 8 + BitConverter.ToInt32(bytes, 32);
        bytes[secondRecord + 40] ^= 0x5A;
        await File.WriteAllBytesAsync(damaged, bytes);

        await using var reopened = await EmbeddedLog.OpenAsync(LogPath, SmallSegments);
        await using var source = await reopened.OpenSourceAsync("g");

        var batch = await source.ReadBatchAsync(500, TimeSpan.Zero, CancellationToken.None);

        batch.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, (int)firstOffsetOfSegment + 1).Select(i => (long)i));
        source.Position.Should().Be(firstOffsetOfSegment + 1);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var read = async () => await source.ReadBatchAsync(500, TimeSpan.Zero, CancellationToken.None);
            var error = (await read.Should().ThrowAsync<EmbeddedLogCorruptionException>()).Which;
            error.FilePath.Should().Be(damaged);
            error.ByteOffset.Should().Be(secondRecord);
            source.Position.Should().Be(firstOffsetOfSegment + 1, "nothing past the damage is delivered");
        }
    }

    /// <summary>
    /// The bytes a cut removes are kept beside the segment so that a cut of damage can be undone by hand.
    /// A second cut at the same byte (the first append after a recovery torn again) keeps its bytes in a
    /// file of its own: the first cut's bytes, not yet looked at, are not overwritten.
    /// </summary>
    [Fact]
    public async Task A_second_cut_at_the_same_byte_keeps_its_bytes_without_overwriting_the_first()
    {
        await using (var log = await EmbeddedLog.OpenAsync(LogPath))
        {
            await log.AppendAsync(Records(3));
        }

        var segment = Segments(LogPath).Single();
        var end = new FileInfo(segment).Length;
        var first = Enumerable.Repeat((byte)0xA1, 100).ToArray();
        var second = Enumerable.Repeat((byte)0xB2, 60).ToArray();
        var kept = new List<string>();
        foreach (var garbage in new[] { first, second })
        {
            await using (var file = new FileStream(segment, FileMode.Append))
            {
                await file.WriteAsync(garbage);
            }

            await using var log = await EmbeddedLog.OpenAsync(LogPath);
            log.Recovery!.TruncatedAtByte.Should().Be(end);
            kept.Add(log.Recovery.KeptIn!);
        }

        kept.Should().OnlyHaveUniqueItems();
        (await File.ReadAllBytesAsync(kept[0])).Should().Equal(first);
        (await File.ReadAllBytesAsync(kept[1])).Should().Equal(second);
        kept.Should().OnlyContain(k => k.StartsWith($"{segment}.cut-{end}", StringComparison.Ordinal));
        Segments(LogPath).Should().ContainSingle("kept bytes are no segment");
    }
}
