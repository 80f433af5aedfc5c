using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Weft.Migration;
using Xunit;

namespace Weft.Migration.Tests;

public sealed class MigrationRoutingTests
{
    /// <summary>Text from a command line or a request is shown with what would act on a terminal escaped: controls, bidi overrides, line separators.</summary>
    [Theory]
    [InlineData("ranker v2", "ranker v2")]
    [InlineData("a\nb", "a\\u000ab")]
    [InlineData("a\u202eb", "a\\u202eb")]
    [InlineData("a\u2028b\u2029", "a\\u2028b\\u2029")]
    [InlineData("é😀", "é😀")]
    public void Printable_escapes_what_would_act_on_a_terminal(string text, string shown)
    {
        MigrationRouting.Printable(text).Should().Be(shown);
    }

    [Property(MaxTest = 300)]
    public bool Raising_the_percent_only_moves_users_to_Weft(long user, byte a, byte b)
    {
        double low = Math.Min(a, b) % 101, high = Math.Max(a, b) % 101;
        (low, high) = (Math.Min(low, high), Math.Max(low, high));
        return !MigrationRouting.ServedByWeft(low, "engagement", "click", user) || MigrationRouting.ServedByWeft(high, "engagement", "click", user);
    }

    [Theory]
    [InlineData("ranker")]
    [InlineData("home-feed")]
    [InlineData("ranker_v2.1")]
    [InlineData("team/ranker:canary")]
    [InlineData("svc@eu")]
    [InlineData("*")]
    public void A_consumer_name_passes(string consumer) => MigrationRouting.ConsumerProblem(consumer).Should().BeNull();

    [Theory]
    [InlineData(null, "empty")]
    [InlineData("", "empty")]
    [InlineData("ranker v2", "U+0020")]
    [InlineData("a\nb", "U+000A")]
    [InlineData("a\u0000b", "U+0000")]
    [InlineData("r\u00e9", "'\u00e9'")]
    [InlineData("**", "'*'")]
    [InlineData("<b>", "'<'")]
    public void What_is_not_a_consumer_name_is_refused_naming_why(string? consumer, string named) =>
        MigrationRouting.ConsumerProblem(consumer).Should().Contain(named);

    [Property(MaxTest = 200)]
    public bool A_name_longer_than_the_limit_is_refused_and_one_at_it_passes(PositiveInt extra) =>
        MigrationRouting.ConsumerProblem(new string('x', MigrationRouting.MaxConsumerLength)) is null
        && MigrationRouting.ConsumerProblem(new string('x', MigrationRouting.MaxConsumerLength + extra.Get)) is { } problem
        && problem.Contains($"at most {MigrationRouting.MaxConsumerLength}", StringComparison.Ordinal);

    [Property(MaxTest = 300)]
    public bool Nobody_at_0_and_everybody_at_100(long user, NonEmptyString eventType) =>
        !MigrationRouting.ServedByWeft(0, "s", eventType.Get, user) && MigrationRouting.ServedByWeft(100, "s", eventType.Get, user);

    [Theory]
    [InlineData(1.0)]
    [InlineData(10.0)]
    [InlineData(33.33)]
    [InlineData(50.0)]
    public void The_share_of_users_served_by_Weft_is_the_percent(double percent)
    {
        const int users = 200_000;
        int served = Enumerable.Range(0, users).Count(u => MigrationRouting.ServedByWeft(percent, "engagement", "click", 1_000_000 + u));
        // Binomial: 5 standard deviations around the expected count.
        double expected = users * percent / 100, sd = Math.Sqrt(users * (percent / 100) * (1 - (percent / 100)));
        ((double)served).Should().BeInRange(expected - (5 * sd), expected + (5 * sd));
    }

    [Fact]
    public void Event_types_split_users_independently()
    {
        // At 50 % each, about a quarter of users read both event types from Weft: the splits are not the same users.
        int both = Enumerable.Range(0, 100_000).Count(u =>
            MigrationRouting.ServedByWeft(50, "engagement", "click", u) && MigrationRouting.ServedByWeft(50, "engagement", "save", u));
        both.Should().BeInRange(23_500, 26_500);
    }

    [Fact]
    public void The_bucket_is_the_documented_FNV_1a_hash()
    {
        // Published FNV-1a 64 test vectors, then the documented byte layout computed independently here.
        Fnv(""u8).Should().Be(0xcbf29ce484222325UL);
        Fnv("a"u8).Should().Be(0xaf63dc4c8601ec8cUL);
        Fnv("foobar"u8).Should().Be(0x85944171f73967e8UL);

        foreach (long user in (long[])[0, 1, -1, 42, long.MaxValue, long.MinValue, 1_003_340])
        {
            var bytes = new List<byte>();
            bytes.AddRange(Encoding.UTF8.GetBytes("engagement"));
            bytes.Add(0);
            bytes.AddRange(Encoding.UTF8.GetBytes("click"));
            bytes.Add(0);
            bytes.AddRange(BitConverter.IsLittleEndian ? BitConverter.GetBytes(user) : [.. BitConverter.GetBytes(user).Reverse()]);
            MigrationRouting.Bucket("engagement", "click", user).Should().Be((int)(Fnv([.. bytes]) % 10_000));
        }
    }

    /// <summary>FNV-1a 64 written from its specification (offset basis 0xcbf29ce484222325, prime 0x100000001b3).</summary>
    private static ulong Fnv(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 0xcbf29ce484222325UL;
        foreach (byte b in bytes)
        {
            hash ^= b;
            hash *= 0x100000001b3UL;
        }

        return hash;
    }
}
