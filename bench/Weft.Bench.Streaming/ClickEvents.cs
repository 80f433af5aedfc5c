using System.Globalization;
using System.Text;

namespace Weft.Bench.Streaming;

/// <summary>
/// Realistic raw click events (~200 bytes of JSON each), generated from a seed: the same seed gives the
/// same events. Users are Zipf-ish (a few heavy users), items uniform over a large catalogue. Also
/// compiled into <c>bench/Weft.Benchmarks</c> (linked).
/// </summary>
internal static class ClickEvents
{
    private static readonly string[] Surfaces = ["home_feed", "search_results", "item_page", "notifications", "profile"];
    private static readonly string[] Devices = ["android", "ios", "web", "tablet"];
    private static readonly string[] Types = ["click", "click", "click", "save", "impression"];

    /// <summary>Generates <paramref name="count"/> events as (user id, UTF-8 JSON).</summary>
    public static IEnumerable<(long UserId, byte[] Utf8Json)> Generate(long count, int seed, int users = 100_000)
    {
        var random = new Random(seed);
        var start = new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);
        var builder = new StringBuilder(256);
        for (long i = 0; i < count; i++)
        {
            // Squaring a uniform draw skews towards low ids: heavy users, long tail.
            var u = random.NextDouble();
            var userId = 1_000_000L + (long)(u * u * users);
            var eventTime = start.AddTicks((i * TimeSpan.TicksPerMillisecond) + random.Next(0, 10_000));
            builder.Clear();
            builder.Append(CultureInfo.InvariantCulture, $$"""
                {"event_id":"{{seed:x4}}-{{i:x12}}","user_id":{{userId}},"event_type":"{{Types[random.Next(Types.Length)]}}","event_time":"{{eventTime:yyyy-MM-ddTHH:mm:ss.ffffffZ}}","item_id":{{random.Next(1, 5_000_000)}},"surface":"{{Surfaces[random.Next(Surfaces.Length)]}}","device":"{{Devices[random.Next(Devices.Length)]}}","position":{{random.Next(0, 50)}},"dwell_ms":{{random.Next(0, 60_000)}},"session_id":"s-{{random.Next():x8}}"}
                """);
            yield return (userId, Encoding.UTF8.GetBytes(builder.ToString()));
        }
    }
}
