using FluentAssertions;
using Weft.Definitions;
using Weft.Streaming.Runtime;
using Weft.Streaming.Tests.Runtime;
using Xunit;
using Xunit.Abstractions;
using Weft.Testing;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The streaming runtime with <c>"source": {"kind": "kafka"}</c> in weft.json, against a mock cluster.</summary>
public sealed class KafkaStreamRuntimeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_weft_json_with_a_Kafka_source_streams_every_event_into_the_online_store()
    {
        using var world = new StreamWorld();
        await using var kafka = KafkaTestCluster.Start(output);
        var secret = $"WEFT_TEST_{Guid.NewGuid():N}".ToUpperInvariant();
        Environment.SetEnvironmentVariable(secret, "not-for-logs");
        await File.WriteAllTextAsync(Path.Combine(world.Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": {
                "kind": "kafka", "bootstrap_servers": "{{kafka.Cluster.BootstrapServers}}", "topic": "{{kafka.Topic}}", "group_id": "weft-stream", "client_id": "weft-test",
                "config": { "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "sasl.password": "${{{secret}}}" }
              }
            }
            """);
        var lines = StreamWorld.Events(600, seed: 7);
        await kafka.ProduceAsync(lines.Select(l => (KafkaReading.UserIdOf(l), l)).ToList());

        var config = world.Config;
        var logged = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using (var host = await StreamHost.OpenAsync(config, "weft-stream", new LinesLogger(logged), CancellationToken.None))
        {
            host.Source.Name.Should().Be($"kafka:{kafka.Topic}");
            var runtime = await StreamRuntime.CreateAsync(config, host.Source, host.Store, null, new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(100) });
            using var guard = new CancellationTokenSource(KafkaReading.Guard);
            while (runtime.RecordsIn < lines.Count)
            {
                guard.IsCancellationRequested.Should().BeFalse($"{lines.Count} records were expected within {KafkaReading.Guard}, {runtime.RecordsIn} arrived");
                await runtime.StepAsync(CancellationToken.None);
            }

            await runtime.FlushAsync(CancellationToken.None);
        }

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount)
            .Select(i => ((long)reference[StandardColumns.UserId].GetValue(i)!, (string)reference[StandardColumns.EventId].GetValue(i)!))
            .ToHashSet();
        expected.Should().NotBeEmpty();
        (await world.OnlineAsync()).Keys.Should().HaveSameItemsAs(expected);
        Environment.SetEnvironmentVariable(secret, null);

        // The settings of $.source reached the consumer (its opening line lists them), the secret redacted.
        logged.Should().Contain(l => l.Contains("ClientId=weft-test", StringComparison.Ordinal) && l.Contains("session.timeout.ms=6000", StringComparison.Ordinal)
            && l.Contains("heartbeat.interval.ms=500", StringComparison.Ordinal) && l.Contains("sasl.password=***", StringComparison.Ordinal));
        logged.Should().Contain(l => l.Contains("partitions assigned", StringComparison.Ordinal), "the host hands its logger to the source");
        logged.Should().NotContain(l => l.Contains("not-for-logs", StringComparison.Ordinal));
    }

    /// <summary>
    /// A producer that keys records otherwise than by their user_id as decimal text (no key, the id
    /// padded, another user's id) still has every event stored; the runtime counts each such record a
    /// signal takes once (an unrouted one is a dead letter, not checked) and names the first it read.
    /// </summary>
    [Fact]
    public async Task Records_keyed_otherwise_than_by_their_user_id_are_stored_counted_and_the_first_named()
    {
        using var world = new StreamWorld();
        await using var kafka = KafkaTestCluster.Start(output);
        await File.WriteAllTextAsync(Path.Combine(world.Root, "weft.json"), $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "enrichments": { "items": { "path": "items.jsonl", "format": "jsonl" } },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": { "kind": "kafka", "bootstrap_servers": "{{kafka.Cluster.BootstrapServers}}", "topic": "{{kafka.Topic}}", "group_id": "weft-stream" }
            }
            """);
        var lines = StreamWorld.Events(400, seed: 21);
        var records = new List<(string Key, string Json)>(lines.Count);
        var mismatched = new HashSet<(string Key, long User)>();
        int expected = 0;
        for (int i = 0; i < lines.Count; i++)
        {
            long user = long.Parse(KafkaReading.UserIdOf(lines[i]), System.Globalization.CultureInfo.InvariantCulture);
            string key = (i % 23) switch
            {
                5 => "",
                11 => "0" + StreamWorld.Num(user),
                17 => StreamWorld.Num(user + 1),
                19 => " " + StreamWorld.Num(user),
                _ => StreamWorld.Num(user),
            };
            records.Add((key, lines[i]));
            if (key != StreamWorld.Num(user) && !lines[i].Contains("\"search\"", StringComparison.Ordinal))
            {
                expected++;
                mismatched.Add((key, user));
            }
        }

        // Confluent's producer itself: Weft's keys every event by its user id.
        using (var producer = new Confluent.Kafka.ProducerBuilder<byte[], byte[]>(new Confluent.Kafka.ProducerConfig { BootstrapServers = kafka.Cluster.BootstrapServers }).Build())
        {
            foreach (var (key, json) in records)
            {
                await producer.ProduceAsync(kafka.Topic, new Confluent.Kafka.Message<byte[], byte[]> { Key = key.Length == 0 ? null! : System.Text.Encoding.UTF8.GetBytes(key), Value = System.Text.Encoding.UTF8.GetBytes(json) });
            }
        }

        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(100) });
            using var guard = new CancellationTokenSource(KafkaReading.Guard);
            while (runtime.RecordsIn < lines.Count)
            {
                guard.IsCancellationRequested.Should().BeFalse($"{lines.Count} records were expected within {KafkaReading.Guard}, {runtime.RecordsIn} arrived");
                await runtime.StepAsync(CancellationToken.None);
            }

            await runtime.FlushAsync(CancellationToken.None);
            expected.Should().BeGreaterThan(20);
            runtime.Metrics.Value("weft_stream_key_mismatch_total").Should().Be(expected);
            var first = runtime.FirstKeyMismatch!;
            first.Partition.Should().StartWith(kafka.Topic + "/");
            mismatched.Should().Contain((first.Key, first.UserId));
        }

        var reference = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(((Weft.Engine.StringColumn)reference[StandardColumns.EventId]).Values, "a key is checked, not obeyed: every event is stored");
    }

    /// <summary>Keeps every line logged, from any thread.</summary>
    private sealed class LinesLogger(System.Collections.Concurrent.ConcurrentQueue<string> lines) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue(formatter(state, exception));
    }
}
