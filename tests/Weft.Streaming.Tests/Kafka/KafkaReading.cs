using System.Text;
using FluentAssertions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>Reading helpers for Kafka tests; every wait is bounded by a guard timeout that fails the test.</summary>
internal static class KafkaReading
{
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    /// <summary>An event's <c>user_id</c> as the record key it is produced under.</summary>
    public static string UserIdOf(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("user_id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Click events e{start}… keyed and spread over 64 users.</summary>
    public static IReadOnlyList<(string Key, string Json)> Events(int count, int start = 0) =>
        Enumerable.Range(start, count)
            .Select(i => ((i % 64).ToString(System.Globalization.CultureInfo.InvariantCulture),
                $$"""{"event_id":"e{{i}}","user_id":{{i % 64}},"event_type":"click","event_time":"2026-11-30T10:00:00Z","item_id":{{i}}}"""))
            .ToList();

    public static string Payload(SourceRecord r) => Encoding.UTF8.GetString(r.Payload.Span);

    public static Dictionary<string, long> LastOffsets(IEnumerable<SourceRecord> records) =>
        records.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.Max(r => r.Offset));

    /// <summary>Reads from <paramref name="source"/> into <paramref name="into"/> until <paramref name="done"/> holds.</summary>
    public static async Task ReadUntilAsync(IEventSource source, List<SourceRecord> into, Func<bool> done, string what)
    {
        using var guard = new CancellationTokenSource(Guard);
        while (!done())
        {
            guard.IsCancellationRequested.Should().BeFalse($"{what} was expected within {Guard} ({into.Count} records read)");
            into.AddRange(await source.ReadBatchAsync(50, TimeSpan.FromMilliseconds(100), CancellationToken.None));
        }
    }

    /// <summary>Reads until the payloads read include every one of <paramref name="expected"/>.</summary>
    public static Task ReadAllOfAsync(IEventSource source, List<SourceRecord> into, IEnumerable<string> expected, string what)
    {
        var missing = new HashSet<string>(expected, StringComparer.Ordinal);
        var seen = 0;
        return ReadUntilAsync(source, into, () =>
        {
            for (; seen < into.Count; seen++)
            {
                missing.Remove(Payload(into[seen]));
            }

            return missing.Count == 0;
        }, what);
    }

    /// <summary>Reads from both sources in turn until together they have delivered every one of <paramref name="expected"/>.</summary>
    public static async Task ReadBothUntilAllOfAsync(
        IEventSource a, List<SourceRecord> intoA, IEventSource b, List<SourceRecord> intoB, IEnumerable<string> expected, string what)
    {
        var missing = new HashSet<string>(expected, StringComparer.Ordinal);
        using var guard = new CancellationTokenSource(Guard);
        while (missing.Count > 0)
        {
            guard.IsCancellationRequested.Should().BeFalse($"{what} was expected within {Guard} ({missing.Count} missing)");
            foreach (var (source, into) in new[] { (a, intoA), (b, intoB) })
            {
                var batch = await source.ReadBatchAsync(50, TimeSpan.FromMilliseconds(50), CancellationToken.None);
                into.AddRange(batch);
                foreach (var r in batch)
                {
                    missing.Remove(Payload(r));
                }
            }
        }
    }

    /// <summary>Waits (polling, guarded) until <paramref name="condition"/> holds.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        using var guard = new CancellationTokenSource(Guard);
        while (!condition())
        {
            guard.IsCancellationRequested.Should().BeFalse($"{what} was expected within {Guard}");
            await Task.Delay(50, CancellationToken.None);
        }
    }

    public static void ShouldBeInStrictOffsetOrderPerPartition(IEnumerable<SourceRecord> records, string because)
    {
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            partition.Select(r => r.Offset).Should().BeInAscendingOrder(because).And.OnlyHaveUniqueItems(because);
        }
    }
}
