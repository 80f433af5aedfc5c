using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Weft.Online.Sqlite;
using Xunit;

namespace Weft.Online.Tests;

/// <summary>The SQLite store's block format and key filter, apart from SQLite.</summary>
public sealed class StoreBlockTests
{
    private static readonly Gen<(long User, long Time, long Ingest, string Id, byte[] Payload)> ElementGen =
        from user in Gen.OneOf(Gen.Choose(-5, 5).Select(u => (long)u), Gen.Elements(long.MinValue, long.MaxValue))
        from time in Gen.OneOf(Gen.Choose(-1000, 1000).Select(t => (long)t), Gen.Elements(long.MinValue, long.MaxValue))
        from ingest in Gen.OneOf(Gen.Choose(0, 1000).Select(t => (long)t), Gen.Elements(long.MinValue, long.MaxValue))
        from id in Gen.Elements("", "a", "é", "\U0001F600", "event-000000000017", new string('x', 300))
        from payload in Gen.Choose(0, 300).Select(n => Enumerable.Range(0, n).Select(i => (byte)(i * 7)).ToArray())
        select (user, time, ingest, id, payload);

    [Fact]
    public void A_block_reads_back_every_element_it_was_given_in_order()
    {
        Prop.ForAll(ElementGen.ListOf().ToArbitrary(), elements =>
        {
            using var writer = new BlockWriter();
            foreach (var (user, time, ingest, id, payload) in elements)
            {
                writer.Add(user, time, ingest, Encoding.UTF8.GetBytes(id), payload);
            }

            var bytes = writer.Encode().ToArray();
            var read = new List<(long, long, long, string, string)>();
            var reader = new BlockReader(bytes);
            while (reader.Next())
            {
                read.Add((reader.User, reader.EventTime, reader.IngestTime, reader.EventId, Convert.ToHexString(reader.Payload)));
            }

            reader.Count.Should().Be(elements.Count);
            read.Should().Equal(elements.Select(e => (e.User, e.Time, e.Ingest, e.Id, Convert.ToHexString(e.Payload))));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_cleared_writer_starts_a_new_block_and_fills_up_at_its_target_size()
    {
        using var writer = new BlockWriter();
        writer.Add(1, 2, 3, "old"u8, [1]);
        writer.Encode();
        writer.Clear();
        int added = 0;
        while (!writer.IsFull)
        {
            writer.Add(9, 100 - added, 5, "e"u8, new byte[100]);
            added++;
        }

        var reader = new BlockReader(writer.Encode());
        reader.Count.Should().Be(added);
        reader.Next().Should().BeTrue();
        (reader.User, reader.EventTime, reader.EventId).Should().Be((9L, 100L, "e"));
        added.Should().BeGreaterThan(StoreBlock.TargetBytes / 110).And.BeLessThan((StoreBlock.TargetBytes / 100) + 2);
        writer.LastUser.Should().Be(9);
    }

    [Theory]
    [InlineData(new byte[0], "empty")]
    [InlineData(new byte[] { 2, 0 }, "unknown format 2")]
    [InlineData(new byte[] { 1, 1, 2, 2, 2, 5, 97 }, "a length runs past the end")]
    [InlineData(new byte[] { 1, 2, 2, 2, 2, 0, 0 }, "truncated")]
    [InlineData(new byte[] { 1, 1, 2, 2, 2, 0, 0, 9 }, "bytes after the last element")]
    public void A_damaged_block_is_refused_saying_what_is_wrong(byte[] data, string why)
    {
        var read = () =>
        {
            var reader = new BlockReader(data);
            while (reader.Next())
            {
            }
        };

        read.Should().Throw<InvalidDataException>().WithMessage($"*corrupt ({why})*");
    }

    [Fact]
    public void The_key_filter_never_forgets_a_key_and_rarely_claims_one_it_was_not_given()
    {
        var filter = new KeyFilter(100_000);
        for (int i = 0; i < 100_000; i++)
        {
            filter.Add(KeyFilter.Hash(i % 1_000, i, Encoding.UTF8.GetBytes($"a-{i:x12}")));
        }

        int missed = 0, claimed = 0;
        for (int i = 0; i < 100_000; i++)
        {
            missed += filter.MayContain(KeyFilter.Hash(i % 1_000, i, Encoding.UTF8.GetBytes($"a-{i:x12}"))) ? 0 : 1;
            claimed += filter.MayContain(KeyFilter.Hash(i % 1_000, i, Encoding.UTF8.GetBytes($"b-{i:x12}"))) ? 1 : 0;
        }

        missed.Should().Be(0);
        filter.Count.Should().Be(100_000);
        claimed.Should().BeLessThan(2_000, "about 12 bits a key keeps false positives near 1 %");
    }

    [Fact]
    public void A_keys_hash_depends_on_every_part_of_the_key()
    {
        var hashes = new[]
        {
            KeyFilter.Hash(1, 2, "event-1"u8), KeyFilter.Hash(2, 2, "event-1"u8), KeyFilter.Hash(1, 3, "event-1"u8),
            KeyFilter.Hash(1, 2, "event-2"u8), KeyFilter.Hash(1, 2, "event-1\0"u8), KeyFilter.Hash(1, 2, "event-1-long-tail"u8),
        };

        hashes.Should().OnlyHaveUniqueItems();
    }
}
