using System.Diagnostics;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Configuration;
using Weft.Online;
using Weft.Storage;
using Weft.Streaming.Embedded;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary>The streaming path as a user runs it: weft stream over the embedded log, killed and restarted.</summary>
[Collection(Weft.Online.Tests.PostgresCollection.Name)]
public sealed class StreamCommandTests(Weft.Online.Tests.PostgresServer postgres) : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Weft_stream_killed_with_SIGKILL_and_restarted_loses_no_event_and_duplicates_none(string storeKind)
    {
        // Enough events that the stream is still reading when it first reports (once a second): it
        // got through 30,000 within that first second on CI, so the kill no longer landed mid-stream.
        string? connection = storeKind == "postgres" ? await postgres.CreateSchemaAsync() : null;
        var (config, lines) = await EmbeddedStreamAsync(events: 100000, users: 200, items: 100, days: 2, postgres: connection);

        using (var child = StartStream(config, "--max-batch", "250", "--flush-interval", "300ms", "--exit-when-idle", "60s"))
        {
            string? line;
            long progressed = 0;
            while ((line = await child.StandardError.ReadLineAsync()) is not null)
            {
                if (line.StartsWith("stream: ", StringComparison.Ordinal) && long.TryParse(line.Split(' ')[1].Replace(",", "", StringComparison.Ordinal), out progressed) && progressed >= 8000)
                {
                    break;
                }
            }

            line.Should().NotBeNull("the stream must report progress before it is killed");
            child.Kill(entireProcessTree: true); // SIGKILL: no flush, no commit, no clean shutdown
            await child.WaitForExitAsync();
            progressed.Should().BeLessThan(lines.Count, "the kill must land mid-stream");
        }

        var restart = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "2s");
        restart.Exit.Should().Be(0, restart.Err);
        restart.Out.Should().MatchRegex(@"stream: recalled [1-9][\d,]* stored events into the dedup windows", "the killed stream had flushed to the lake: its rows' ids come back");

        File.Exists(_cli.PathOf("online.db")).Should().Be(connection is null, "the stream wrote to the store its weft.json names");
        await ShouldHoldEveryEventOnceAsync(config, connection, lines);
    }

    /// <summary>
    /// A definition deployed after the stream wrote the lake: a snapshot says its stream rows are the
    /// earlier definition's, and the restarted stream names the change, each with the batch run that
    /// recomputes them. A snapshot of a lake the current definition streamed says nothing.
    /// </summary>
    [Fact]
    public async Task A_definition_deployed_after_the_stream_wrote_is_named_by_the_stream_and_by_a_snapshot()
    {
        var (config, _) = await EmbeddedStreamAsync(events: 2000, users: 40, items: 30, days: 2);
        var first = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        first.Exit.Should().Be(0, first.Err);
        first.Err.Should().NotContain("keys otherwise", "every record is keyed by its user_id");
        string[] snapshot = ["snapshot", "--config", config, "--signal", "engagement", "--as-of", "2026-11-03"]; // weft gen's two days from 2026-11-01
        var same = await _cli.RunAsync([.. snapshot, "--out", _cli.PathOf("same.parquet")]);
        same.Exit.Should().Be(0, same.Err);
        same.Out.Should().NotContain(" 0 stream rows read");
        same.Err.Should().NotContain("note:");

        var source = await File.ReadAllTextAsync(Path.Combine(CliHarness.RepoRoot, "examples", "definitions", "catalog.cs"));
        Directory.CreateDirectory(_cli.PathOf("defs-v2"));
        await File.WriteAllTextAsync(_cli.PathOf("defs-v2/catalog.cs"), source.Replace(".MaxLength(500)", ".MaxLength(400)", StringComparison.Ordinal));
        var compile = await _cli.RunAsync("compile", _cli.PathOf("defs-v2"), "--out", _cli.PathOf("signals"));
        compile.Exit.Should().Be(0, compile.Err);

        var noted = await _cli.RunAsync([.. snapshot, "--out", _cli.PathOf("noted.parquet")]);
        noted.Exit.Should().Be(0, noted.Err);
        noted.Err.Should().Contain("note: the lake's newest stream rows were written by definition", noted.Out).And.Contain($"weft batch --config {config} --signal engagement --from ");

        var restart = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        restart.Exit.Should().Be(0, restart.Err);
        (restart.Out + restart.Err).Should().Contain("signal 'engagement' is now definition").And.Contain("but the stream last wrote it under").And.Contain("weft batch --config");
    }

    /// <summary>
    /// The stream runs that batch itself, beside the stream, over the lookback before now: the events it
    /// streamed under the earlier definition come back from the batch path, and an idle exit waits for it.
    /// </summary>
    [Fact]
    public async Task A_restarted_stream_recomputes_the_tail_a_changed_definition_left_unserved()
    {
        var start = DateTime.UtcNow.Date.AddDays(-2).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var (config, lines) = await StreamSetup.EmbeddedStreamAsync(_cli, events: 2000, users: 40, items: 30, days: 2, start: start);
        var first = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        first.Exit.Should().Be(0, first.Err);
        first.Err.Should().NotContain("the tail of", "the definition did not change");

        var source = await File.ReadAllTextAsync(Path.Combine(CliHarness.RepoRoot, "examples", "definitions", "catalog.cs"));
        Directory.CreateDirectory(_cli.PathOf("defs-v2"));
        await File.WriteAllTextAsync(_cli.PathOf("defs-v2/catalog.cs"), source.Replace(".MaxLength(500)", ".MaxLength(400)", StringComparison.Ordinal));
        (await _cli.RunAsync("compile", _cli.PathOf("defs-v2"), "--out", _cli.PathOf("signals"))).Exit.Should().Be(0);
        var definition = WeftConfig.Load(config).LoadSignals().Single(s => s.Name == "engagement");

        var restart = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        restart.Exit.Should().Be(0, restart.Err);
        var recomputed = System.Text.RegularExpressions.Regex.Match(restart.Err, $@"the tail of 'engagement' is recomputed under definition {SignalJsonWriter.Fingerprint(definition)[..12]}: ([\d,]+) events");
        recomputed.Success.Should().BeTrue(restart.Err);
        long.Parse(recomputed.Groups[1].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture).Should().BePositive();

        var lake = await EventTable.OpenAsync(_cli.PathOf("lake/enriched/engagement"));
        (await lake.Log.GetHistoryAsync()).Where(c => c.Parameters.ContainsKey(LakeParameters.Run)).Should().NotBeEmpty()
            .And.OnlyContain(c => c.Parameters[LakeParameters.Fingerprint] == SignalJsonWriter.Fingerprint(definition), "the batch rows are the new definition's");
        File.Exists(Weft.Streaming.Runtime.PendingTailFile.PathIn(_cli.PathOf("lake/enriched/engagement"))).Should().BeFalse("the recompute completed, so nothing is owed");

        var third = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        third.Exit.Should().Be(0, third.Err);
        third.Err.Should().NotContain("tail", "the tail was recomputed");
    }

    /// <summary>
    /// The command the stream prints for a tail it owes, run by hand, settles the debt: the stream does
    /// not run it again at its next start, and a snapshot stops saying its rows are an earlier
    /// definition's. A run over part of the range does not.
    /// </summary>
    [Fact]
    public async Task The_printed_tail_command_run_by_hand_clears_the_streams_record_and_a_narrower_run_does_not()
    {
        var start = DateTime.UtcNow.Date.AddDays(-2);
        var (config, _) = await StreamSetup.EmbeddedStreamAsync(_cli, events: 1500, users: 30, items: 20, days: 2, start: start.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        (await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s")).Exit.Should().Be(0);
        var table = _cli.PathOf("lake/enriched/engagement");
        var definition = WeftConfig.Load(config).LoadSignals().Single(s => s.Name == "engagement");
        var owed = new BatchRequest("engagement", Timestamps.ToMicros(new DateTimeOffset(start, TimeSpan.Zero)), Timestamps.ToMicros(DateTimeOffset.UtcNow));
        // As a stream that found a change and stopped before its recompute leaves it.
        await Weft.Streaming.Runtime.PendingTailFile.WriteAsync(table, SignalJsonWriter.Fingerprint(definition), owed, CancellationToken.None);
        string command = Weft.Streaming.Runtime.SignalDefinitionChanged.BatchCommandFor(config, owed);

        var snapshot = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", Timestamps.Format(owed.ToMicros), "--out", _cli.PathOf("s.parquet"));
        snapshot.Exit.Should().Be(0, snapshot.Err);
        snapshot.Err.Should().Contain("note: the stream's tail recompute of 'engagement'").And.Contain(command);
        var later = owed with { FromMicros = owed.ToMicros + 3_600_000_000L, ToMicros = owed.ToMicros + 7_200_000_000L };
        await Weft.Streaming.Runtime.PendingTailFile.WriteAsync(table, SignalJsonWriter.Fingerprint(definition), later, CancellationToken.None);
        var before = await _cli.RunAsync("snapshot", "--config", config, "--signal", "engagement", "--as-of", Timestamps.Format(owed.ToMicros), "--out", _cli.PathOf("before.parquet"));
        before.Exit.Should().Be(0, before.Err);
        before.Out.Should().NotContain(" 0 stream rows read");
        before.Err.Should().NotContain("tail recompute", "the snapshot's window ends before the owed range");
        await Weft.Streaming.Runtime.PendingTailFile.WriteAsync(table, SignalJsonWriter.Fingerprint(definition), owed, CancellationToken.None);

        var narrower = await _cli.RunAsync("batch", "--config", config, "--signal", "engagement", "--from", Timestamps.Format(owed.FromMicros + (24 * 3_600_000_000L)), "--to", Timestamps.Format(owed.ToMicros));
        narrower.Exit.Should().Be(0, narrower.Err);
        narrower.Out.Should().NotContain("its record is cleared");
        File.Exists(Weft.Streaming.Runtime.PendingTailFile.PathIn(table)).Should().BeTrue("the run left the tail's first day out");

        var byHand = await _cli.RunAsync([.. command.Split(' ').Skip(1)]);
        byHand.Exit.Should().Be(0, byHand.Err);
        byHand.Out.Should().Contain("the tail recompute the stream owed 'engagement'").And.Contain("its record is cleared");
        File.Exists(Weft.Streaming.Runtime.PendingTailFile.PathIn(table)).Should().BeFalse();

        var restart = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        restart.Exit.Should().Be(0, restart.Err);
        restart.Err.Should().NotContain("tail");

        // A record the stream did not write: a batch run is done and written, so it warns and succeeds; the stream's start names it.
        await File.WriteAllTextAsync(Weft.Streaming.Runtime.PendingTailFile.PathIn(table), "{ edited by hand");
        var warned = await _cli.RunAsync([.. command.Split(' ').Skip(1)]);
        warned.Exit.Should().Be(0, warned.Err);
        warned.Err.Should().Contain("batch: warning: ").And.Contain(Weft.Streaming.Runtime.PendingTailFile.PathIn(table));
        var refused = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "1s");
        refused.Exit.Should().Be(2);
        refused.Err.Should().Contain(Weft.Streaming.Runtime.PendingTailFile.PathIn(table)).And.Contain("then delete the file");
    }

    /// <summary>
    /// DESIGN.md's scale-out: two weft stream processes in one Kafka consumer group, sharing a PostgreSQL
    /// store and the lake. One is killed mid-stream; the group gives its partitions to the other, which
    /// reads them from the dead one's last commit and stores every event once.
    /// </summary>
    [Fact]
    public async Task Two_weft_stream_processes_in_one_Kafka_group_one_killed_with_SIGKILL_store_every_event_once()
    {
        string connection = await postgres.CreateSchemaAsync();
        // 50,000 events of ~230 bytes over 4 partitions: ~2.9 MB each, under the ~5 MB a mock partition
        // keeps (it drops older messages, which no consumer could read again).
        var lines = await GenerateAsync(events: 50000, users: 200, items: 100, days: 2);
        await using var kafka = Weft.Streaming.Kafka.KafkaMockCluster.Start(3);
        kafka.CreateTopic("events", 4);
        using (var producer = Weft.Streaming.Kafka.KafkaEventProducer.Open(kafka.BootstrapServers, "events", new Dictionary<string, string>(), null))
        {
            await producer.ProduceManyAsync(lines.Select(l => (UserOf(l) ?? 0, Encoding.UTF8.GetBytes(l))).ToList(), CancellationToken.None);
        }

        var config = await WriteConfigAsync(connection, $$"""
            { "kind": "kafka", "bootstrap_servers": "{{kafka.BootstrapServers}}", "topic": "events", "group_id": "weft-stream",
              "config": { "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 1000 } }
            """);

        // The survivor waits out the session timeout of the killed one (6 s) and the rebalance after it.
        using var doomed = StartStream(config, "--max-batch", "250", "--flush-interval", "300ms", "--exit-when-idle", "20s");
        using var survivor = StartStream(config, "--max-batch", "250", "--flush-interval", "300ms", "--exit-when-idle", "20s");
        try
        {
            var doomedProgress = Progress(doomed);
            var survivorProgress = Progress(survivor);
            using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            while (!(doomedProgress.Value >= 4000 && survivorProgress.Value >= 1))
            {
                guard.IsCancellationRequested.Should().BeFalse($"both processes were expected to report progress (killed-to-be: {doomedProgress.Value}, survivor: {survivorProgress.Value})");
                doomed.HasExited.Should().BeFalse("the process to kill must still be streaming");
                await Task.Delay(20);
            }

            doomed.Kill(entireProcessTree: true); // SIGKILL: no flush, no commit, no leaving the group
            await doomed.WaitForExitAsync();
            doomedProgress.Value.Should().BeLessThan(lines.Count, "the kill must land mid-stream");

            await survivor.WaitForExitAsync(guard.Token);
            var err = survivorProgress.Text;
            survivor.ExitCode.Should().Be(0, err);
            err.Split('\n').Should().Contain(l => l.Contains("partitions assigned:", StringComparison.Ordinal) && Enumerable.Range(0, 4).All(p => l.Contains($"events/{p}", StringComparison.Ordinal)),
                "the survivor took the killed process's partitions");
        }
        finally
        {
            foreach (var process in new[] { doomed, survivor })
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
        }

        await ShouldHoldEveryEventOnceAsync(config, connection, lines);
    }

    private Process StartStream(string config, params string[] options) => StreamSetup.StartWeft(_cli, ["stream", "--config", config, .. options]);

    /// <summary>Follows a weft stream process's progress lines (records read so far) and keeps its error output.</summary>
    private static StreamProgress Progress(Process process)
    {
        var progress = new StreamProgress();
        _ = process.StandardOutput.ReadToEndAsync();
        _ = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                lock (progress.Err)
                {
                    progress.Err.AppendLine(line);
                }

                if (line.StartsWith("stream: ", StringComparison.Ordinal) && long.TryParse(line.Split(' ')[1].Replace(",", "", StringComparison.Ordinal), out long read))
                {
                    Interlocked.Exchange(ref progress.Read, read);
                }
            }
        });
        return progress;
    }

    private sealed class StreamProgress
    {
        public long Read;

        public StringBuilder Err { get; } = new();

        public long Value => Interlocked.Read(ref Read);

        public string Text
        {
            get
            {
                lock (Err)
                {
                    return Err.ToString();
                }
            }
        }
    }

    [Fact]
    public async Task Weft_stream_serves_its_metrics_and_health_while_it_runs()
    {
        var (config, lines) = await EmbeddedStreamAsync(events: 3000, users: 50, items: 40, days: 1);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using var cts = new CancellationTokenSource();
        var run = WeftCli.RunAsync(["stream", "--config", config, "--metrics-urls", "http://127.0.0.1:0", "--flush-interval", "300ms"], TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), cts.Token);
        System.Text.RegularExpressions.Match served = System.Text.RegularExpressions.Match.Empty;
        for (int i = 0; i < 400 && !run.IsCompleted && !(served = System.Text.RegularExpressions.Regex.Match(stdout.ToString(), @"metrics on (http://127\.0\.0\.1:\d+)/metrics")).Success; i++)
        {
            await Task.Delay(50);
        }

        served.Success.Should().BeTrue($"stdout: {stdout}, stderr: {stderr}");
        string origin = served.Groups[1].Value;
        using var client = new HttpClient();
        Dictionary<string, double> metrics = [];
        double lastEvents = -1;
        int stable = 0; // scrapes in a row with every record read and the same events appended
        for (int i = 0; i < 300; i++)
        {
            var response = await client.GetAsync(origin + "/metrics");
            response.StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
            response.Content.Headers.ContentType!.ToString().Should().StartWith("text/plain; version=0.0.4");
            metrics = ParsePrometheus(await response.Content.ReadAsStringAsync());
            double events = metrics.GetValueOrDefault("weft_stream_events_total{signal=\"engagement\"}");
            stable = metrics.GetValueOrDefault("weft_stream_records_total") == lines.Count && events > 0 && events == lastEvents ? stable + 1 : 0;
            if (stable == 5)
            {
                break;
            }

            lastEvents = events;
            await Task.Delay(100);
        }

        metrics.GetValueOrDefault("weft_stream_records_total").Should().Be(lines.Count, "every record loaded was read");
        metrics.Should().ContainKey("weft_stream_lag_records").WhoseValue.Should().Be(0, "the log holds nothing the stream has not read");
        metrics.Should().ContainKey($"weft_stream_partition_lag_records{{partition=\"{Weft.Streaming.Embedded.EmbeddedLog.PartitionName}\"}}");
        (await client.GetStringAsync(origin + "/healthz")).Should().Be("ok");
        await cts.CancelAsync();
        (await run).Should().Be(0, stderr.ToString());
        var refused = async () => await client.GetAsync(origin + "/metrics");
        await refused.Should().ThrowAsync<HttpRequestException>("the endpoints stop with the stream");

        // What the metrics say, against what the store holds: every engagement event appended once, and a
        // freshness observation for each, by event type.
        await using var store = await OnlineStores.OpenSqliteAsync(_cli.PathOf("online.db"), CancellationToken.None);
        var users = lines.Select(UserOf).Where(u => u is not null).Select(u => u!.Value).Distinct().ToList();
        var online = await store.ReadManyAsync("engagement", users, new OnlineReadOptions { Limit = 1_000_000 }, CancellationToken.None);
        long stored = online.Sum(kv => kv.Value.Count);
        stored.Should().BeGreaterThan(0);
        metrics["weft_stream_events_total{signal=\"engagement\"}"].Should().Be(stored);
        var freshness = metrics.Where(kv => kv.Key.StartsWith("weft_freshness_seconds_count{signal=\"engagement\",event_type=", StringComparison.Ordinal)).ToList();
        freshness.Should().HaveCountGreaterThan(1, "one series per event type");
        freshness.Sum(kv => kv.Value).Should().Be(stored);
    }

    [Fact]
    public async Task A_metrics_address_that_is_not_an_http_url_is_refused_naming_the_option()
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--metrics-urls", "127.0.0.1:9464");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("--metrics-urls: '127.0.0.1:9464' is not an http:// address");
        var path = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--metrics-urls", "http://127.0.0.1:9464/metrics");
        path.Exit.Should().Be(2, "Kestrel cannot listen on a path: it threw from its start-up, exit 1 with the stack trace");
        path.Err.Trim().Should().Be("stream: --metrics-urls: 'http://127.0.0.1:9464/metrics' is not an http:// address to listen on: an IP address or localhost (another host name would listen on every interface; 0.0.0.0 does so on purpose), a port, no path (e.g. http://127.0.0.1:9464; /metrics and /healthz are served at its root)");
    }

    /// <summary>
    /// A Kafka producer that keys by something else than the user_id (here the next user's id): every
    /// event is stored, and the stream says so once, naming a record a signal took and its user.
    /// </summary>
    [Fact]
    public async Task Kafka_records_not_keyed_by_their_user_id_are_stored_and_named_once()
    {
        var lines = await GenerateAsync(events: 600, users: 20, items: 10, days: 1);
        await using var kafka = Weft.Streaming.Kafka.KafkaMockCluster.Start(1);
        kafka.CreateTopic("events", 2);
        await using (var producer = Weft.Streaming.Kafka.KafkaEventProducer.Open(kafka.BootstrapServers, "events"))
        {
            await producer.ProduceManyAsync(lines.Select(l => ((UserOf(l) ?? 0L) + 1, Encoding.UTF8.GetBytes(l))).ToList(), CancellationToken.None);
        }

        var config = await WriteConfigAsync(null, $$"""{ "kind": "kafka", "bootstrap_servers": "{{kafka.BootstrapServers}}", "topic": "events" }""");
        var run = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "2s");
        run.Exit.Should().Be(0, run.Err);

        var named = run.Err.Split('\n').Where(l => l.Contains("a producer keys otherwise than by user_id", StringComparison.Ordinal)).ToList();
        named.Should().ContainSingle("one line for the stream's life, not one a record");
        var match = System.Text.RegularExpressions.Regex.Match(named[0], @"^stream: events/\d+@\d+ is keyed '(\d+)', but its user_id is (\d+): ");
        match.Success.Should().BeTrue(named[0]);
        long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture).Should().Be(long.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) + 1, "the key the producer set");
        await ShouldHoldEveryEventOnceAsync(config, null, lines);
    }

    private Task<(string Config, List<string> Lines)> EmbeddedStreamAsync(int events, int users, int items, int days, string? postgres = null) =>
        StreamSetup.EmbeddedStreamAsync(_cli, events, users, items, days, postgres);

    private Task<List<string>> GenerateAsync(int events, int users, int items, int days) => StreamSetup.GenerateAsync(_cli, events, users, items, days);

    private Task<string> WriteConfigAsync(string? postgres, string source) => StreamSetup.WriteConfigAsync(_cli, postgres, source);

    private Task ShouldHoldEveryEventOnceAsync(string config, string? postgres, List<string> lines) => StreamSetup.ShouldHoldEveryEventOnceAsync(_cli, config, postgres, lines);

    private static long? UserOf(string line) => StreamSetup.UserOf(line);

    private static Dictionary<string, double> ParsePrometheus(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int space = line.LastIndexOf(' ');
            values[line[..space]] = double.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }

        return values;
    }

    [Fact]
    public async Task Exit_when_idle_from_a_Kafka_broker_never_reached_is_an_error_and_from_an_empty_topic_a_clean_stop()
    {
        await GenerateAsync(events: 100, users: 10, items: 10, days: 1);
        var unreachable = await WriteConfigAsync(null, """{ "kind": "kafka", "bootstrap_servers": "127.0.0.1:1", "topic": "events", "config": { "reconnect.backoff.max.ms": 200 } }""");
        var failed = await _cli.RunAsync("stream", "--config", unreachable, "--exit-when-idle", "2s");

        failed.Exit.Should().Be(2, failed.Out);
        failed.Err.Should().Contain("without reading anything: no partition of events has been assigned to consumer group").And.Contain("127.0.0.1:1");
        failed.Out.Should().NotContain("offsets committed");

        await using var kafka = Weft.Streaming.Kafka.KafkaMockCluster.Start(1);
        kafka.CreateTopic("events", 2);
        var empty = await WriteConfigAsync(null, $$"""{ "kind": "kafka", "bootstrap_servers": "{{kafka.BootstrapServers}}", "topic": "events" }""");
        var stopped = await _cli.RunAsync("stream", "--config", empty, "--exit-when-idle", "2s");

        stopped.Exit.Should().Be(0, stopped.Err);
        stopped.Out.Should().Contain("stopped after reading 0 records");
    }

    /// <summary>
    /// A --signal stream read as the config's group_id and committed every record as processed, its other
    /// signals' events among them: the stream of every signal then found nothing, and those events were lost.
    /// </summary>
    [Fact]
    public async Task A_Kafka_stream_of_some_signals_reads_as_a_group_of_its_own_so_the_stream_of_every_signal_still_gets_its_events()
    {
        var lines = await GenerateAsync(events: 600, users: 20, items: 20, days: 1);
        await using var kafka = Weft.Streaming.Kafka.KafkaMockCluster.Start(1);
        kafka.CreateTopic("events", 2);
        await using (var producer = Weft.Streaming.Kafka.KafkaEventProducer.Open(kafka.BootstrapServers, "events"))
        {
            await producer.ProduceManyAsync(lines.Select(l => (UserOf(l) ?? 0L, Encoding.UTF8.GetBytes(l))).ToList(), CancellationToken.None);
        }

        var config = await WriteConfigAsync(null, $$"""{ "kind": "kafka", "bootstrap_servers": "{{kafka.BootstrapServers}}", "topic": "events", "group_id": "ranking" }""");

        var some = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement", "--exit-when-idle", "3s");
        var every = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "3s");

        some.Exit.Should().Be(0, some.Err);
        some.Out.Should().Contain("as consumer weft-stream.engagement (Kafka group ranking.engagement)");
        every.Exit.Should().Be(0, every.Err);
        every.Out.Should().Contain("as consumer weft-stream (Kafka group ranking)");
        await ShouldHoldEveryEventOnceAsync(config, null, lines);
    }

    /// <summary>
    /// A lake written from one cluster's topic, then weft.json pointed at another cluster's topic of the
    /// same name, whose offsets start at 0 again: its records would have been taken for replays.
    /// </summary>
    [Fact]
    public async Task A_Kafka_topic_whose_offsets_started_over_stops_weft_stream_with_one_line_and_exit_2_and_changes_nothing_stored()
    {
        var lines = await GenerateAsync(events: 600, users: 20, items: 20, days: 1);
        string config;
        await using (var old = Weft.Streaming.Kafka.KafkaMockCluster.Start(1))
        {
            old.CreateTopic("events", 2);
            await ProduceAsync(old, lines);
            config = await WriteConfigAsync(null, $$"""{ "kind": "kafka", "bootstrap_servers": "{{old.BootstrapServers}}", "topic": "events" }""");
            var first = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "3s");
            first.Exit.Should().Be(0, first.Err);
        }

        var lakeBefore = Files(_cli.PathOf("lake"));
        await using var recreated = Weft.Streaming.Kafka.KafkaMockCluster.Start(1);
        recreated.CreateTopic("events", 2);
        await ProduceAsync(recreated, lines[..40]);
        config = await WriteConfigAsync(null, $$"""{ "kind": "kafka", "bootstrap_servers": "{{recreated.BootstrapServers}}", "topic": "events" }""");

        var refused = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "3s");

        refused.Exit.Should().Be(2, refused.Out + refused.Err);
        refused.Err.Should().MatchRegex(
            @"(?m)^stream: Kafka source kafka:events \(group weft-stream\) refused (1 partition|2 partitions) whose offsets started over: events/[01] ends at offset \d+ \(its high watermark\), but the stream's tables hold its records through offset \d+(; events/[01] ends at offset \d+ \(its high watermark\), but the stream's tables hold its records through offset \d+)?\. .*Give the new topic another name, or read it into a new lake\.\r?$");
        refused.Out.Should().NotContain("offsets committed");
        Files(_cli.PathOf("lake")).Should().Equal(lakeBefore, "no table was written");
        await ShouldHoldEveryEventOnceAsync(config, null, lines);
    }

    private static async Task ProduceAsync(Weft.Streaming.Kafka.KafkaMockCluster kafka, IEnumerable<string> lines)
    {
        await using var producer = Weft.Streaming.Kafka.KafkaEventProducer.Open(kafka.BootstrapServers, "events");
        await producer.ProduceManyAsync(lines.Select(l => (UserOf(l) ?? 0L, Encoding.UTF8.GetBytes(l))).ToList(), CancellationToken.None);
    }

    private static List<string> Files(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => $"{Path.GetRelativePath(folder, f)} {new FileInfo(f).Length}").Order(StringComparer.Ordinal)];

    [Fact]
    public async Task A_signal_enriching_from_a_table_the_config_does_not_name_is_refused_before_the_source_or_the_store_opens()
    {
        var (config, _) = await EmbeddedStreamAsync(events: 100, users: 10, items: 10, days: 1);
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace("\"items\": \"raw/items\"", "\"other\": \"raw/items\"", StringComparison.Ordinal));

        var result = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "1s");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("enriches from 'items', but $.enrichments has no table for it");
        File.Exists(_cli.PathOf("online.db")).Should().BeFalse("a config mistake must not create the online store");
    }

    [Fact]
    public async Task A_Kafka_source_whose_secret_variable_is_not_set_is_refused_naming_the_property_and_the_variable()
    {
        var variable = $"WEFT_TEST_{Guid.NewGuid():N}".ToUpperInvariant();
        var config = _cli.PathOf("kafka.json");
        await File.WriteAllTextAsync(config, $$"""
            { "signals": "signals", "online_store": { "kind": "sqlite", "path": "kafka-online.db" },
              "source": { "kind": "kafka", "bootstrap_servers": "127.0.0.1:9", "topic": "events", "config": { "security.protocol": "SASL_SSL", "sasl.password": "${{{variable}}}" } } }
            """);

        var result = await _cli.RunAsync("stream", "--config", config);

        result.Exit.Should().Be(2);
        result.Err.Should().Contain($"$.source.config[\"sasl.password\"]: environment variable {variable} is not set");
        File.Exists(_cli.PathOf("kafka-online.db")).Should().BeFalse("a config mistake must not create the online store");
    }

    [Fact]
    public void The_stream_s_log_lines_go_to_its_error_output_from_information_up_with_warnings_marked()
    {
        var err = new StringWriter();
        var logger = new TextWriterLogger(err, "stream: source: ");

        logger.LogDebug("fetch details");
        logger.LogInformation("partitions assigned: events/0");
        logger.LogWarning(new IOException("broker 2 down"), "reconnecting");

        err.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries).Should().Equal(
            "stream: source: partitions assigned: events/0",
            "stream: source: warning: reconnecting (IOException: broker 2 down)");
    }

    [Fact]
    public async Task A_compact_interval_that_is_not_a_duration_is_refused_naming_the_option()
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--compact-interval", "often");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("--compact-interval 'often' is not a duration");
    }

    [Fact]
    public async Task A_vacuum_retention_under_a_day_or_not_a_duration_is_refused_naming_the_option()
    {
        var shortRetention = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--vacuum-retention", "1h");
        var notDuration = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--vacuum-interval", "daily");

        shortRetention.Exit.Should().Be(2);
        shortRetention.Err.Should().Contain("--vacuum-retention 1h is shorter than 1d");
        notDuration.Exit.Should().Be(2);
        notDuration.Err.Should().Contain("--vacuum-interval 'daily' is not a duration");
    }

    [Fact]
    public async Task A_pending_row_cap_below_one_is_refused_naming_the_option()
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--max-pending-rows", "0");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("--max-pending-rows 0 must be at least 1");
    }

    /// <summary>
    /// A stream of one of the config's two signals reads as a consumer of its own: it skips the other
    /// signal's events (no dead letters), and the stream of every signal run after it still finds them.
    /// </summary>
    [Fact]
    public async Task A_stream_of_some_signals_leaves_the_other_signals_events_to_the_stream_of_all()
    {
        var (config, lines) = await EmbeddedStreamAsync(events: 3000, users: 50, items: 40, days: 1);

        // Named twice, it is still one signal (it ran twice, recalling its events twice over).
        var engagementOnly = await _cli.RunAsync("stream", "--config", config, "--signal", "engagement,engagement", "--exit-when-idle", "2s");
        engagementOnly.Exit.Should().Be(0, engagementOnly.Err);
        engagementOnly.Out.Should().Contain("stream: engagement from").And.Contain("as consumer weft-stream.engagement");
        var unrouted = await EventTable.OpenAsync(WeftConfig.Load(config).DeadLetterTable(Weft.Streaming.Runtime.StreamRuntime.UnroutedDeadLetters));
        var reasons = new List<string>();
        await foreach (var b in unrouted.ReadAsync(["reason"]))
        {
            reasons.AddRange(((StringColumn)b["reason"]).Values.Select(v => v!));
        }

        reasons.Should().NotContain(r => r.Contains("'search'", StringComparison.Ordinal), "searches are the other signal's, not dead letters");

        var all = await _cli.RunAsync("stream", "--config", config, "--exit-when-idle", "2s");
        all.Exit.Should().Be(0, all.Err);
        all.Out.Should().Contain("as consumer weft-stream into");
        await ShouldHoldEveryEventOnceAsync(config, null, lines);
    }

    [Theory]
    [InlineData("")]
    [InlineData(",")]
    [InlineData("engagement,nope")]
    public async Task A_signal_list_naming_no_signal_or_an_unknown_one_is_refused_and_reads_nothing(string list)
    {
        var (config, _) = await EmbeddedStreamAsync(events: 200, users: 10, items: 10, days: 1);

        var result = await _cli.RunAsync("stream", "--config", config, "--signal", list, "--exit-when-idle", "1s");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("--signal").And.Contain("known: engagement, searches");
        Directory.Exists(_cli.PathOf("lake")).Should().BeFalse("nothing was read, so nothing was written");
    }

    [Fact]
    public async Task An_unknown_option_is_a_usage_error_exit_2_naming_it_and_the_help_to_read()
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), "--bogus-flag");

        result.Exit.Should().Be(2);
        result.Err.Should().Contain("'--bogus-flag'").And.Contain("see 'weft stream --help'");
    }

    /// <summary>A value of the wrong kind is said in a user's words, not as a .NET type name.</summary>
    [Theory]
    [InlineData("--max-batch", "ten", "--max-batch 'ten' is not a whole number (at most 2,147,483,647)")]
    [InlineData("--max-pending-rows", "99999999999", "--max-pending-rows '99999999999' is not a whole number (at most 2,147,483,647)")]
    public async Task A_number_option_given_something_else_says_so_without_type_names(string option, string value, string message)
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), option, value);

        result.Exit.Should().Be(2);
        result.Err.Should().Contain(message).And.NotContain("System.");
    }

    [Theory]
    [InlineData("--max-batch", "0", "--max-batch 0 must be at least 1")]
    [InlineData("--flush-interval", "0s", "--flush-interval 0s must be positive")]
    public async Task A_micro_batch_cap_or_flush_interval_out_of_range_is_refused_naming_the_option(string option, string value, string message)
    {
        var result = await _cli.RunAsync("stream", "--config", _cli.PathOf("weft.json"), option, value);

        result.Exit.Should().Be(2);
        result.Err.Should().Contain(message);
    }
}
