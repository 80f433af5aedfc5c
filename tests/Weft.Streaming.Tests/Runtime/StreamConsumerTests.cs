using FluentAssertions;
using Weft.Streaming.Embedded;
using Weft.Streaming.Runtime;
using Xunit;

namespace Weft.Streaming.Tests.Runtime;

/// <summary>The consumer a stream of some of the config's signals reads as (<see cref="StreamOptions.ConsumerFor"/>).</summary>
public sealed class StreamConsumerTests
{
    [Fact]
    public void Every_signal_reads_as_the_default_consumer_whatever_the_order_or_repeats()
    {
        StreamOptions.ConsumerFor(["searches", "engagement", "searches"], ["engagement", "searches"]).Should().Be(StreamOptions.DefaultConsumer);
    }

    [Fact]
    public void Some_signals_read_as_a_consumer_named_by_their_sorted_names()
    {
        StreamOptions.ConsumerFor(["searches"], ["engagement", "searches"]).Should().Be("weft-stream.searches");
        StreamOptions.ConsumerFor(["c", "a"], ["a", "b", "c"]).Should().Be(StreamOptions.ConsumerFor(["a", "c"], ["a", "b", "c"])).And.Be("weft-stream.a.c");
    }

    [Theory]
    [InlineData("home feed")]
    [InlineData("ünïcode")]
    [InlineData("a-very-long-signal-name-that-goes-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on")]
    public void Names_that_make_no_valid_consumer_name_read_as_a_hash_of_them_that_the_embedded_log_accepts(string name)
    {
        string consumer = StreamOptions.ConsumerFor([name], [name, "other"]);

        LogFormat.IsValidGroupName(consumer).Should().BeTrue(consumer);
        consumer.Should().NotBe(StreamOptions.ConsumerFor([name + "2"], [name + "2", "other"]));

        // Committed offsets live under this name, so it must be the same in every process and release:
        // the first 8 bytes of the SHA-256 of the sorted names' UTF-8, joined by newlines (docs/stream-runtime.md).
        var sha = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name));
        consumer.Should().Be("weft-stream.h" + string.Concat(sha.Take(8).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Fact]
    public void A_hashed_consumer_name_is_the_one_written_down()
    {
        // Python: hashlib.sha256(b"a b\nhome feed").hexdigest()[:16]; a change here strands every hashed consumer's offsets.
        StreamOptions.ConsumerFor(["home feed", "a b"], ["home feed", "a b", "other"]).Should().Be("weft-stream.h86dfd42a2ee7c159");
    }
}
