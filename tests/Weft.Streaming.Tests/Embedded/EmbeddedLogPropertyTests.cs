using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Streaming.Embedded;
using Xunit;
using static Weft.Streaming.Tests.Embedded.LogTesting;

namespace Weft.Streaming.Tests.Embedded;

public sealed class EmbeddedLogPropertyTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>One step of a scenario: append a batch, then maybe consume (and commit) some records, then maybe reopen the log.</summary>
    public sealed record Step(IReadOnlyList<(int KeyLength, int PayloadLength)> Batch, int Consume, bool Reopen)
    {
        public override string ToString() => $"[{Batch.Count} records ({string.Join(",", Batch.Take(6).Select(b => $"{b.KeyLength}/{b.PayloadLength}"))}…), consume {Consume}{(Reopen ? ", reopen" : "")}]";
    }

    public sealed record Scenario(IReadOnlyList<Step> Steps, int SegmentKiB, int Seed)
    {
        public override string ToString() => $"segments {SegmentKiB} KiB, seed {Seed}: " + string.Join(" ", Steps);
    }

    private static readonly Gen<Scenario> Scenarios =
        from steps in (from batch in Gen.Choose(0, 3).SelectMany(kind => kind switch
                       {
                           0 => Gen.Constant<IReadOnlyList<(int, int)>>([]),
                           _ => (from key in Gen.Choose(0, 12)
                                 from payload in Gen.Frequency((4, Gen.Choose(0, 300)), (1, Gen.Choose(300, 9000)))
                                 select (key, payload)).ListOf().Select(l => (IReadOnlyList<(int, int)>)[.. l]),
                       })
                       from consume in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 60)))
                       from reopen in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
                       select new Step(batch, consume, reopen)).NonEmptyListOf()
        from segmentKiB in Gen.Elements(4, 8, 64)
        from seed in Gen.Choose(0, int.MaxValue)
        select new Scenario([.. steps], segmentKiB, seed);

    [Fact]
    public void Random_batches_read_back_in_order_unchanged_across_random_reopenings()
    {
        var property = Prop.ForAll(Scenarios.ToArbitrary(), async scenario =>
        {
            var path = _directory.Combine(Guid.NewGuid().ToString("N"));
            var options = new EmbeddedLogOptions { SegmentBytes = scenario.SegmentKiB * 1024L, ReadBufferBytes = 4096 };
            var random = new Random(scenario.Seed);
            var appended = new List<(byte[] Key, byte[] Payload)>();
            var consumed = new List<SourceRecord>();
            var log = await EmbeddedLog.OpenAsync(path, options);
            var consumer = await log.OpenSourceAsync("consumer");
            try
            {
                foreach (var step in scenario.Steps)
                {
                    var batch = step.Batch.Select(b => (Key: Bytes(random, b.KeyLength), Payload: Bytes(random, b.PayloadLength))).ToList();
                    var range = await log.AppendAsync(batch);
                    range.Should().Be(new OffsetRange(appended.Count, batch.Count));
                    appended.AddRange(batch);

                    if (step.Consume > 0)
                    {
                        var read = await consumer.ReadBatchAsync(step.Consume, TimeSpan.Zero, CancellationToken.None);
                        consumed.AddRange(read);
                        if (read.Count > 0)
                        {
                            await consumer.CommitAsync(new Dictionary<string, long> { [EmbeddedLog.PartitionName] = read[^1].Offset }, CancellationToken.None);
                        }
                    }

                    if (step.Reopen)
                    {
                        await consumer.DisposeAsync();
                        await log.DisposeAsync();
                        log = await EmbeddedLog.OpenAsync(path, options);
                        log.Recovery.Should().BeNull();
                        log.EndOffset.Should().Be(appended.Count);
                        consumer = await log.OpenSourceAsync("consumer");
                        consumer.Position.Should().Be(consumed.Count, "a reopened group resumes after its commit");
                    }
                }

                // The committed consumer reads on from where it stopped; a new group reads everything.
                while (true)
                {
                    var read = await consumer.ReadBatchAsync(97, TimeSpan.Zero, CancellationToken.None);
                    if (read.Count == 0)
                    {
                        break;
                    }

                    consumed.AddRange(read);
                }

                var all = await ReadAllAsync(log);
                foreach (var records in new[] { all, consumed })
                {
                    records.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, appended.Count).Select(i => (long)i));
                    records.Select(r => Convert.ToHexString(r.Key.Span)).Should().Equal(appended.Select(a => Convert.ToHexString(a.Key)));
                    records.Select(r => Convert.ToHexString(r.Payload.Span)).Should().Equal(appended.Select(a => Convert.ToHexString(a.Payload)));
                    records.Select(r => r.TimestampMicros).Should().BeInAscendingOrder();
                }
            }
            finally
            {
                await consumer.DisposeAsync();
                await log.DisposeAsync();
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithEndSize(30).WithReplay(0xE3B3D, 0x9E3779B97F4A7C15), property);
    }

    private static readonly Gen<(int Records, int Seed, double Cut)> TruncationCases =
        from records in Gen.Choose(1, 40)
        from seed in Gen.Choose(0, int.MaxValue)
        from cut in Gen.Choose(0, 10_000).Select(c => c / 10_000.0)
        select (records, seed, cut);

    [Fact]
    public void Cutting_the_last_segment_at_any_byte_keeps_exactly_the_whole_records_before_the_cut()
    {
        var property = Prop.ForAll(TruncationCases.ToArbitrary(), async c =>
        {
            var path = _directory.Combine(Guid.NewGuid().ToString("N"));
            var random = new Random(c.Seed);
            var records = Enumerable.Range(0, c.Records).Select(_ => (Key: Bytes(random, random.Next(0, 8)), Payload: Bytes(random, random.Next(0, 200)))).ToList();
            await using (var log = await EmbeddedLog.OpenAsync(path))
            {
                // One call per record, so each is its own group commit, as a crash would find them.
                foreach (var record in records)
                {
                    await log.AppendAsync([record]);
                }
            }

            var segment = Segments(path).Single();
            var length = new FileInfo(segment).Length;
            var cutAt = 32 + (long)Math.Floor((length - 32) * c.Cut);
            using (var file = File.OpenWrite(segment))
            {
                file.SetLength(cutAt);
            }

            var ends = new List<long>();
            var end = 32L;
            foreach (var record in records)
            {
                end += 28 + record.Key.Length + record.Payload.Length;
                ends.Add(end);
            }

            var whole = ends.Count(e => e <= cutAt);
            await using (var log = await EmbeddedLog.OpenAsync(path))
            {
                log.EndOffset.Should().Be(whole);
                if (cutAt == (whole == 0 ? 32 : ends[whole - 1]))
                {
                    log.Recovery.Should().BeNull("the cut fell between records");
                }
                else
                {
                    log.Recovery!.TruncatedAtByte.Should().Be(whole == 0 ? 32 : ends[whole - 1]);
                }

                (await log.AppendAsync([(Key: "k"u8.ToArray(), Payload: "after"u8.ToArray())])).FirstOffset.Should().Be(whole);
                var read = await ReadAllAsync(log);
                read.Select(r => Convert.ToHexString(r.Payload.Span)).Should().Equal(
                    records.Take(whole).Select(r => Convert.ToHexString(r.Payload)).Append(Convert.ToHexString("after"u8)));
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithReplay(0x7C0FFEE, 0x9E3779B97F4A7C15), property);
    }

    public enum TearKind
    {
        Truncated,
        ZeroFilledFrom,
        Hole,
    }

    public sealed record TornGroupCase(IReadOnlyList<IReadOnlyList<int>> Groups, TearKind Tear, double At, int HoleBytes, int Seed)
    {
        public override string ToString() => $"groups [{string.Join(" ", Groups.Select(g => g.Count))}], {Tear} at {At:F4} (hole {HoleBytes}), seed {Seed}";
    }

    private static readonly Gen<TornGroupCase> TornGroupCases =
        from groups in Gen.Choose(0, 300).ListOf().Where(g => g.Count is > 0 and <= 8).Select(g => (IReadOnlyList<int>)[.. g]).NonEmptyListOf().Where(l => l.Count <= 10)
        from tear in Gen.Elements(TearKind.Truncated, TearKind.ZeroFilledFrom, TearKind.Hole)
        from at in Gen.Choose(0, 9_999).Select(c => c / 10_000.0)
        from hole in Gen.Choose(1, 700)
        from seed in Gen.Choose(0, int.MaxValue)
        select new TornGroupCase([.. groups], tear, at, hole, seed);

    /// <summary>
    /// What a crash can leave: every append group before the last is fsync'd and acknowledged; the last
    /// group's bytes (in the last segment) are cut short, zero-filled from a byte on, or have a hole
    /// (pages reached the disk out of order). Whatever the case, the log opens (no false report of
    /// damage), keeps every acknowledged record and a prefix of the last group, and continues dense.
    /// The clock stands still, so the groups are told apart by the log's own stamps only.
    /// </summary>
    [Fact]
    public void A_torn_last_append_group_never_costs_an_acknowledged_record()
    {
        var property = Prop.ForAll(TornGroupCases.ToArbitrary(), async c =>
        {
            var path = _directory.Combine(Guid.NewGuid().ToString("N"));
            var random = new Random(c.Seed);
            var options = new EmbeddedLogOptions { SegmentBytes = 4096, TimeProvider = new Weft.Engine.Tests.FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero)) };
            var appended = new List<(byte[] Key, byte[] Payload)>();
            long groupStart = 0, acknowledged = 0;
            await using (var log = await EmbeddedLog.OpenAsync(path, options))
            {
                for (int g = 0; g < c.Groups.Count; g++)
                {
                    var batch = c.Groups[g].Select(size => (Key: Bytes(random, random.Next(0, 6)), Payload: Bytes(random, size))).ToList();
                    if (g == c.Groups.Count - 1)
                    {
                        var before = Segments(path);
                        groupStart = new FileInfo(before[^1]).Length;
                        acknowledged = appended.Count;
                        await log.AppendAsync(batch);
                        if (Segments(path).Length != before.Length)
                        {
                            groupStart = LogFormat.SegmentHeaderSize; // The group rolled: tear its part in the new last segment.
                        }
                    }
                    else
                    {
                        await log.AppendAsync(batch);
                    }

                    appended.AddRange(batch);
                }
            }

            var segment = Segments(path)[^1];
            var bytes = await File.ReadAllBytesAsync(segment);
            if (bytes.Length <= groupStart)
            {
                return; // The last group lies wholly in an earlier (sealed, fsync'd) segment: nothing of it to tear.
            }

            long firstInSegment = long.Parse(Path.GetFileNameWithoutExtension(segment), System.Globalization.CultureInfo.InvariantCulture);
            int at = (int)(groupStart + (long)Math.Floor((bytes.Length - groupStart) * c.At));
            switch (c.Tear)
            {
                case TearKind.Truncated:
                    bytes = bytes[..at];
                    break;
                case TearKind.ZeroFilledFrom:
                    bytes.AsSpan(at).Clear();
                    break;
                default:
                    bytes.AsSpan(at, Math.Min(c.HoleBytes, bytes.Length - at)).Clear();
                    break;
            }

            await File.WriteAllBytesAsync(segment, bytes);
            long wholeBefore = firstInSegment;
            for (int p = LogFormat.SegmentHeaderSize; p + LogFormat.RecordPrefixSize <= at;)
            {
                p += LogFormat.RecordPrefixSize + BitConverter.ToInt32(bytes, p);
                if (p <= at)
                {
                    wholeBefore++;
                }
            }

            await using (var log = await EmbeddedLog.OpenAsync(path, options))
            {
                log.EndOffset.Should().BeGreaterThanOrEqualTo(Math.Max(acknowledged, wholeBefore), "every acknowledged record and every whole record before the tear is kept");
                log.EndOffset.Should().BeLessThanOrEqualTo(appended.Count);
                if (c.Tear == TearKind.Truncated)
                {
                    log.EndOffset.Should().Be(wholeBefore);
                }

                long end = log.EndOffset;
                (await log.AppendAsync([(Key: "k"u8.ToArray(), Payload: "after"u8.ToArray())])).FirstOffset.Should().Be(end);
                var read = await ReadAllAsync(log);
                read.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, (int)end + 1).Select(i => (long)i));
                read.Select(r => Convert.ToHexString(r.Payload.Span)).Should().Equal(
                    appended.Take((int)end).Select(r => Convert.ToHexString(r.Payload)).Append(Convert.ToHexString("after"u8)));
            }
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(80).WithReplay(0x5EED, 0x9E3779B97F4A7C15), property);
    }

    private static byte[] Bytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
