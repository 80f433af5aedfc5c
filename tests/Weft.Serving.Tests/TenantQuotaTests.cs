using System.Net;
using System.Text;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Tests;
using Weft.Engine.Configuration;
using Weft.Serving.Security;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// A tenant's rate limits (<c>tenants[].max_events_per_second</c>, <c>max_sequences_per_second</c>): a
/// request over them is refused with 429, a <c>Retry-After</c> and the limit's config path, stores
/// nothing, and leaves other tenants alone; the rate paid back, the tenant is served again.
/// </summary>
public sealed class TenantQuotaTests
{
    private static string Event(string id, long user, string type, long time) =>
        $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"{{type}}","event_time":"{{Timestamps.Format(time)}}","item_id":7}""";

    private static StringContent Events(string prefix, int count, string type = "click") =>
        new("[" + string.Join(",", Enumerable.Range(0, count).Select(i => Event($"{prefix}{i}", 100 + i, type, ServingWorld.Now - ServingWorld.Hour))) + "]", Encoding.UTF8, "application/json");

    private static async Task<ServingWorld> StartAsync()
    {
        var world = new ServingWorld();
        var path = Path.Combine(world.Root, "weft.json");
        var text = await File.ReadAllTextAsync(path);
        text.Should().Contain("\"name\": \"home-feed\",");
        await File.WriteAllTextAsync(path, text.Replace("\"name\": \"home-feed\",", "\"name\": \"home-feed\", \"max_events_per_second\": 10, \"max_sequences_per_second\": 3,", StringComparison.Ordinal));
        await world.StartAsync();
        return world;
    }

    private static async Task ExpectThrottledAsync(HttpResponseMessage response, string limit, int retryAfter)
    {
        response.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        response.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(retryAfter));
        var body = await ServingWorld.JsonAsync(response);
        body.GetProperty("limit").GetString().Should().Be($"tenants[0].{limit}");
        body.GetProperty("error").GetString().Should().StartWith($"tenant 'home-feed' is over its {limit}").And.EndWith($"retry after {retryAfter} s");
    }

    [Fact]
    public async Task Posts_over_a_tenants_event_rate_are_refused_until_it_is_paid_back_and_store_nothing()
    {
        await using var world = await StartAsync();
        using var home = world.Client();
        using var other = world.Client(ServingWorld.OtherKey);

        // A second's worth is 10: 6 leave 4, the next 6 are taken whole (a post is never split) and leave a debt of 2.
        (await home.PostAsync("v1/events", Events("a", 6))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        (await home.PostAsync("v1/events", Events("b", 6))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        await ExpectThrottledAsync(await home.PostAsync("v1/events", Events("c", 1)), "max_events_per_second", retryAfter: 1);
        (await other.PostAsync("v1/events", Events("o", 20, "like"))).StatusCode.Should().Be(HttpStatusCode.Accepted, "the other tenant has no limit");

        world.Clock.Advance(TimeSpan.FromMilliseconds(100)); // pays back 1 of the 2: still in debt
        await ExpectThrottledAsync(await home.PostAsync("v1/events", Events("d", 1)), "max_events_per_second", retryAfter: 1);
        world.Clock.Advance(TimeSpan.FromMilliseconds(250));
        (await home.PostAsync("v1/events", Events("e", 1))).StatusCode.Should().Be(HttpStatusCode.Accepted);

        // A post larger than a second's worth goes through while the bucket holds any, and its debt is the wait.
        world.Clock.Advance(TimeSpan.FromSeconds(5));
        (await home.PostAsync("v1/events", Events("f", 50))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        await ExpectThrottledAsync(await home.PostAsync("v1/events", Events("g", 1)), "max_events_per_second", retryAfter: 5);

        string metrics = await home.GetStringAsync("metrics");
        metrics.Should().Contain("weft_serving_events_accepted_total{tenant=\"home-feed\"} 63\n", "6 + 6 + 1 + 50: the refused posts stored nothing")
            .And.Contain("weft_serving_throttled_total{tenant=\"home-feed\",limit=\"max_events_per_second\"} 3\n")
            .And.NotContain("weft_serving_throttled_total{tenant=\"other\"");
    }

    [Fact]
    public async Task Reads_over_a_tenants_sequence_rate_are_refused_a_multi_get_counting_each_user()
    {
        await using var world = await StartAsync();
        using var home = world.Client();
        const string one = "v1/signals/engagement/users/1/sequence";

        for (int i = 0; i < 3; i++)
        {
            (await home.GetAsync(one)).StatusCode.Should().Be(HttpStatusCode.OK);
        }

        await ExpectThrottledAsync(await home.GetAsync(one), "max_sequences_per_second", retryAfter: 1);
        (await home.GetAsync("v1/signals/engagement/users/1/sequence?limit=0")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "a bad request is refused for what it is, not counted");
        (await home.GetAsync("v1/status")).StatusCode.Should().Be(HttpStatusCode.OK, "status reads no sequence");

        world.Clock.Advance(TimeSpan.FromSeconds(1));
        var many = await home.PostAsync("v1/signals/engagement/sequences", new StringContent("""{"user_ids": [1, 2, 3, 4, 5, 6]}""", Encoding.UTF8, "application/json"));
        many.StatusCode.Should().Be(HttpStatusCode.OK);
        await ExpectThrottledAsync(await home.GetAsync(one), "max_sequences_per_second", retryAfter: 2);
        world.Clock.Advance(TimeSpan.FromSeconds(1.5));
        (await home.GetAsync(one)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    /// <summary>
    /// Over any run of requests and pauses, what the bucket admits stays within the rate over the time
    /// passed plus a second's worth plus the one request that took it into debt; and it refuses only
    /// when in debt, never a request the rate had room for.
    /// </summary>
    [Fact]
    public void A_quota_admits_no_more_than_its_rate_and_refuses_only_in_debt()
    {
        var random = new Random(20261207);
        for (int round = 0; round < 200; round++)
        {
            var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
            long rate = random.Next(1, 1000);
            var quota = new RateQuota(rate, clock);
            double elapsed = 0, admitted = 0, balance = rate;
            long largest = 0;
            for (int i = 0; i < 300; i++)
            {
                long ticks = random.NextDouble() < 0.5 ? 0 : (long)(random.NextDouble() * 3 * TimeSpan.TicksPerSecond);
                clock.Advance(TimeSpan.FromTicks(ticks));
                double step = ticks / (double)TimeSpan.TicksPerSecond;
                elapsed += step;
                balance = Math.Min(rate, balance + (step * rate));
                long cost = random.Next(1, (int)(rate * 3) + 1);
                bool taken = quota.TryTake(cost, out var wait);
                if (Math.Abs(balance) > 1e-6)
                {
                    taken.Should().Be(balance > 0, $"round {round}, request {i}: the bucket held {balance}");
                }

                if (taken)
                {
                    admitted += cost;
                    largest = Math.Max(largest, cost);
                    balance -= cost;
                    wait.Should().Be(TimeSpan.Zero);
                }
                else
                {
                    // Retry-After is honest: waited out, the same request is taken.
                    wait.Should().BePositive();
                    clock.Advance(wait);
                    elapsed += wait.Ticks / (double)TimeSpan.TicksPerSecond;
                    balance = Math.Min(rate, balance + (wait.Ticks / (double)TimeSpan.TicksPerSecond * rate));
                    quota.TryTake(cost, out _).Should().BeTrue($"round {round}, request {i}: retried after the {wait} it was told to wait");
                    admitted += cost;
                    largest = Math.Max(largest, cost);
                    balance -= cost;
                }

                admitted.Should().BeLessThanOrEqualTo((elapsed * rate) + rate + largest + 1e-6);
            }
        }
    }

    [Fact]
    public void A_limit_must_be_a_whole_number_from_1()
    {
        foreach (var (value, shown) in new[] { ("0", "0"), ("2.5", "2.5"), ("\"10\"", "a string"), ("1e10", "1e10") })
        {
            var dir = Path.Combine(Path.GetTempPath(), "weft-quota-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                var path = Path.Combine(dir, "weft.json");
                File.WriteAllText(path, $$"""{"lake": "lake", "tenants": [{"name": "t", "api_keys_sha256": [], "max_sequences_per_second": {{value}}}]}""");
                var load = () => WeftConfig.Load(path);
                load.Should().Throw<ConfigException>().Which.Message.Should().Contain("$.tenants[0].max_sequences_per_second")
                    .And.Contain($"must be a whole number from 1 to 1000000000, not {shown}");
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}
