using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Online;
using Weft.Online.Tests;
using Weft.Streaming.Runtime;
using Xunit;
using Weft.Testing;

namespace Weft.Streaming.Tests.Runtime;

[Collection(PostgresCollection.Name)]
public sealed class StreamRuntimeTests(PostgresServer postgres)
{
    /// <summary>A world on the embedded defaults, or with its online store in a fresh PostgreSQL schema.</summary>
    private async Task<StreamWorld> WorldAsync(string store) =>
        store == "postgres" ? new StreamWorld(postgres: await postgres.CreateSchemaAsync()) : new StreamWorld();

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Every_event_reaches_the_online_store_and_the_stream_partitions_exactly_once(string store)
    {
        using var world = await WorldAsync(store);
        var lines = StreamWorld.Events(1500, seed: 1);
        lines.InsertRange(100, lines.Take(30)); // duplicate deliveries
        var bad = new[] { "{not json", """{"event_id":"x1","event_type":"click","event_time":"2026-11-20T00:00:00Z"}""", """{"event_id":"x2","user_id":3,"event_type":"purchase","event_time":"2026-11-20T00:00:00Z"}""" };
        lines.InsertRange(700, bad);
        await world.AppendAsync(lines);

        var runtime = await world.RunAsync();

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => ((long)reference[StandardColumns.UserId].GetValue(i)!, (string)reference[StandardColumns.EventId].GetValue(i)!)).ToHashSet();
        expected.Should().HaveCountGreaterThan(500);
        var online = await world.OnlineAsync();
        online.Keys.Should().HaveSameItemsAs(expected);
        File.Exists(Path.Combine(world.Root, "online.db")).Should().Be(store == "sqlite", "the world's weft.json names the store the stream wrote to");
        var lake = await world.StreamLakeIdsAsync();
        lake.Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected.Select(e => e.Item2));

        // The payload decodes to exactly the reference row's element columns.
        var codec = new ElementCodec(world.Signal, SignalJsonWriter.Fingerprint(world.Signal));
        for (int i = 0; i < reference.RowCount; i += 97)
        {
            var key = ((long)reference[StandardColumns.UserId].GetValue(i)!, (string)reference[StandardColumns.EventId].GetValue(i)!);
            var decoded = codec.Decode([online[key]]);
            for (int c = 0; c < codec.Columns.Length; c++)
            {
                decoded[c].GetValue(0).Should().BeEquivalentTo(reference[codec.Columns[c].Name].GetValue(i), $"column {codec.Columns[c].Name} of {key}");
            }
        }

        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        // The three bad lines, plus every search: no signal here includes searches.
        int searches = lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal));
        unrouted.RowCount.Should().Be(3 + searches);
        var reasons = Enumerable.Range(0, unrouted.RowCount).Select(i => (string)unrouted["reason"].GetValue(i)!).ToList();
        reasons.Should().ContainSingle(r => r.StartsWith("malformed JSON", StringComparison.Ordinal));
        reasons.Should().ContainSingle(r => r == "missing user_id");
        reasons.Should().ContainSingle(r => r.Contains("unknown event_type 'purchase'", StringComparison.Ordinal));
        reasons.Count(r => r.Contains("unknown event_type 'search'", StringComparison.Ordinal)).Should().Be(searches);
        // Freshness is measured once for each click stored, never for a repeat or a dead letter.
        int clicks = Enumerable.Range(0, reference.RowCount).Count(i => (string)reference[StandardColumns.EventType].GetValue(i)! == "click");
        clicks.Should().BePositive();
        runtime.Metrics.Value("weft_freshness_seconds", ("signal", "engagement"), ("event_type", "click")).Should().Be(clicks);
    }

    /// <summary>
    /// The route judges only the records no signal's parser took. A second signal whose event type
    /// never occurs must change no verdict: both streams leave the same online elements, the same
    /// unrouted dead letters and the same dead letters of the signal, for any mix of good and broken
    /// lines; and each broken line is dead-lettered exactly once.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public async Task One_signal_routes_records_as_the_route_pass_of_several_signals_does(int seed)
    {
        var lines = StreamWorld.Events(400, seed);
        var rng = new Random(seed);
        string[] broken =
        [
            "{not json", "[1,2]", "42", "\"click\"", """{"event_id":"b","user_id":1,"event_type":"click","event_time":"2026-11-20T00:00:00Z","item_id":3} trailing""",
            """{"event_id":"b","event_type":"click","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":null,"event_type":"click","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":"seven","event_type":"click","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":7,"event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"purchase","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"click","event_time":"2026-11-20T00:00:00Z","item_id":"x"}""",
            """{"event_id":"b","user_id":2,"event_type":"save","event_time":"2026-11-20T00:00:00Z"}""",
            """{"user_id":2,"event_type":"save","event_time":"2026-11-20T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"save","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"save","event_time":"2999-01-01T00:00:00Z","item_id":3}""",
            """{"event_id":"b","user_id":2,"event_type":"click","user_id":null,"event_time":"2026-11-20T00:00:00Z","item_id":3}""",
        ];
        for (int i = 0; i < 60; i++)
        {
            lines.Insert(rng.Next(lines.Count + 1), broken[rng.Next(broken.Length)].Replace("\"b\"", $"\"b{i}\"", StringComparison.Ordinal));
        }

        using var one = new StreamWorld();
        using var two = new StreamWorld(refundSignal: true);
        await one.AppendAsync(lines);
        await two.AppendAsync(lines);
        await one.RunAsync();
        await two.RunAsync();

        var online = await one.OnlineAsync();
        online.Should().HaveCountGreaterThan(200);
        online.Keys.Should().HaveSameItemsAs((await two.OnlineAsync()).Keys);
        var unrouted = DeadLetters(await one.TableAsync("lake/dead_letters/_stream"));
        unrouted.Should().HaveCountGreaterThan(40).And.Equal(DeadLetters(await two.TableAsync("lake/dead_letters/_stream")));
        var dead = DeadLetters(await one.TableAsync("lake/dead_letters/engagement"));
        dead.Should().NotBeEmpty().And.Equal(DeadLetters(await two.TableAsync("lake/dead_letters/engagement")));
        (await two.TableAsync("lake/dead_letters/refunds")).RowCount.Should().Be(0, "the refunds signal includes none of these lines");
        int searches = lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal));
        (unrouted.Count + dead.Count).Should().Be(60 + searches, "every broken line and every search is dead-lettered once");

        static List<string> DeadLetters(EventBatch table) =>
            [.. Enumerable.Range(0, table.RowCount).Select(i => $"{table["stage"].GetValue(i)} | {table["reason"].GetValue(i)} | {table["source"].GetValue(i)} | {table["payload"].GetValue(i)}").Order(StringComparer.Ordinal)];
    }

    [Fact]
    public async Task A_record_whose_type_another_signal_reads_from_its_own_property_is_not_a_dead_letter_of_this_one()
    {
        using var world = new StreamWorld(refundSignal: true, refundKind: true);
        var lines = StreamWorld.Events(300, seed: 9);
        var refunds = Enumerable.Range(0, 40)
            .Select(i => $$"""{"event_id":"r{{i}}","user_id":{{i % 30 + 1}},"kind":"refund","event_time":"{{Timestamps.Format(StreamWorld.Start + (i * 60_000_000L))}}","amount":{{i}}}""")
            .ToList();
        var random = new Random(9);
        var mixed = lines.Concat(refunds).OrderBy(_ => random.Next()).ToList();
        await world.AppendAsync(mixed);

        await world.RunAsync();

        (await world.TableAsync("lake/enriched/refunds")).RowCount.Should().Be(refunds.Count, "the refunds signal reads each refund's type from its kind");
        var expected = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(((StringColumn)expected[StandardColumns.EventId]).Values);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        ((StringColumn)dead["payload"]).Values.Should().NotContain(p => p!.Contains("\"kind\":\"refund\"", StringComparison.Ordinal), "a refund is the refunds signal's, not a click or save missing its event_type");
        (await world.TableAsync("lake/dead_letters/_stream")).RowCount.Should().Be(lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal)), "only the searches are unrouted");
    }

    [Fact]
    public void A_key_mismatch_is_described_with_the_keys_control_characters_escaped_and_a_long_key_cut()
    {
        new KeyMismatch("events/2", 17, "\u001b[31m7\n", 7).Describe().Should().StartWith("events/2@17 is keyed '\\u001b[31m7\\u000a', but its user_id is 7: ");
        new KeyMismatch("events/0", 3, new string('9', 70), 9).Describe().Should().StartWith($"events/0@3 is keyed '{new string('9', 64)}…', but its user_id is 9: ");
        new KeyMismatch("embedded", 0, "", 5).Describe().Should().StartWith("embedded@0 is not keyed, but its user_id is 5: ");
        new KeyMismatch("events/1", 4, "7\u202e\u2028", 7).Describe().Should().StartWith("events/1@4 is keyed '7\\u202e\\u2028', but", "a bidi override or a line separator acts on the terminal");
        new KeyMismatch("events/1", 5, new string('x', 63) + "😀yz", 7).Describe().Should().StartWith($"events/1@5 is keyed '{new string('x', 63)}…', but", "the cut keeps whole characters");
    }

    /// <summary>
    /// The embedded log has one partition: its keys decide nothing, so records without one (appended
    /// by a library caller) are not counted as keyed otherwise. Kafka's are: KafkaStreamRuntimeTests.
    /// </summary>
    [Fact]
    public async Task An_embedded_logs_keys_are_not_checked()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(200, seed: 22);
        await world.AppendAsync(lines);
        await using var runtime = await world.RunAsync();

        runtime.RecordsIn.Should().Be(lines.Count);
        runtime.Metrics.Value("weft_stream_events_total", ("signal", "engagement")).Should().BeGreaterThan(0);
        runtime.Metrics.Value("weft_stream_key_mismatch_total").Should().Be(0);
        runtime.FirstKeyMismatch.Should().BeNull();
    }

    /// <summary>
    /// A lake written from one embedded log, then a new log (a new source.path, a replaced directory):
    /// the new log's offsets start at 0, below what the lake holds. The runtime records that the
    /// partition's offsets start over, so the new log's events reach the lake and its bad records the
    /// dead letters, where before every record up to the old log's offsets was taken for a replay and left out.
    /// </summary>
    [Fact]
    public async Task A_new_log_under_a_lake_written_from_another_starts_the_partition_offsets_over()
    {
        using var world = new StreamWorld();
        var first = StreamWorld.Events(120, seed: 61);
        await world.AppendAsync(first);
        (await world.RunAsync()).StartedOver.Should().BeEmpty();
        var deadBefore = (await world.TableAsync("lake/dead_letters/_stream")).RowCount;

        Directory.Delete(Path.Combine(world.Root, "log"), recursive: true);
        var second = StreamWorld.Events(40, seed: 62, baseTime: StreamWorld.Start + StreamWorld.Hour);
        await world.AppendAsync([.. second, "{ not json"]);
        var runtime = await world.RunAsync();

        var over = runtime.StartedOver.Should().ContainSingle().Subject;
        over.Partition.Should().Be(Weft.Streaming.Embedded.EmbeddedLog.PartitionName);
        over.End.Should().Be(41);
        over.HeldThrough.Should().BeGreaterThanOrEqualTo(41);
        var expected = ((StringColumn)(await world.ReferenceAsync(second))[StandardColumns.EventId]).Values;
        expected.Should().NotBeEmpty();
        (await world.StreamLakeIdsAsync()).Should().Contain(expected).And.OnlyHaveUniqueItems();
        int unrouted = second.Count(l => l.Contains("\"event_type\":\"search\"", StringComparison.Ordinal)) + 1;
        (await world.TableAsync("lake/dead_letters/_stream")).RowCount.Should().Be(deadBefore + unrouted, "the new log's malformed record and events no signal reads are dead letters");

        (await world.RunAsync()).StartedOver.Should().BeEmpty("the reset is recorded, and the lake now holds the new log's offsets");
    }

    /// <summary>
    /// A runtime of some signals only (weft stream --signal) that finds the log replaced starts the
    /// partition over in the other signals' tables too: left behind, they would take the new log's
    /// records for replays once a runtime ran them.
    /// </summary>
    [Fact]
    public async Task A_new_log_starts_the_offsets_over_for_signals_not_running_too()
    {
        using var world = new StreamWorld(refundSignal: true);
        var refund = $$"""{"event_id":"r-1","user_id":3,"event_type":"refund","event_time":"{{Timestamps.Format(StreamWorld.Start)}}","amount":5}""";
        await world.AppendAsync([.. StreamWorld.Events(60, seed: 63), refund]);
        await world.RunAsync();
        var refunds = await Weft.Storage.EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "refunds"));
        (await refunds.Log.GetHistoryAsync()).Should().Contain(c => c.Parameters.ContainsKey(LakeParameters.Offsets), "the refunds signal wrote the first log's offsets");

        Directory.Delete(Path.Combine(world.Root, "log"), recursive: true);
        await world.AppendAsync(StreamWorld.Events(10, seed: 64, baseTime: StreamWorld.Start + StreamWorld.Hour));
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            await using var engagementOnly = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, ["engagement"]);
            engagementOnly.StartedOver.Should().ContainSingle();
        }

        var history = await refunds.Log.GetHistoryAsync();
        history.Should().Contain(c => c.Parameters.GetValueOrDefault(LakeParameters.OffsetsReset) == Weft.Streaming.Embedded.EmbeddedLog.PartitionName);
    }

    /// <summary>
    /// Every record read is in the stream's raw archive once a flush has committed it, as it came but on
    /// one line and stamped with the time the stream read it (a producer's own ingest_time wins); what
    /// the batch path then parses from the archive is what the stream parsed.
    /// </summary>
    [Fact]
    public async Task Each_flush_archives_the_records_it_commits_as_JSON_lines_the_batch_path_reads()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(300, seed: 21);
        string time = Timestamps.Format(StreamWorld.Start + 5_000_000);
        var odd = new[]
        {
            $$"""{{"\n  "}}{"event_id":"pretty",{{"\r\n"}}  "user_id":4,"event_type":"save","event_time":"{{time}}","item_id":9}""",
            $$"""{"event_id":"own-ingest","user_id":4,"event_type":"save","event_time":"{{time}}","item_id":9,"ingest_time":"{{time}}"}""",
            "{}",
            "not json",
        };
        var records = lines.Take(150).Concat(odd).Concat(lines.Skip(150)).ToList();
        await world.AppendAsync(records);
        long before = Timestamps.ToMicros(DateTimeOffset.UtcNow);

        await world.RunAsync(flush: false);
        string folder = Path.Combine(world.Root, "lake", "raw", "stream");
        (Directory.Exists(folder) ? Directory.GetFiles(folder, "*.jsonl", SearchOption.AllDirectories) : []).Should().BeEmpty("nothing is archived before a flush commits it");
        await world.RunAsync();

        var archived = Directory.GetFiles(folder, "*.jsonl", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .SelectMany(File.ReadAllLines).ToList();
        archived.Should().HaveCount(records.Count, "the crashed run committed nothing, so its records were read, and archived, once");
        archived.Should().OnlyContain(l => !l.Contains('\r'));
        archived.Should().Contain("not json");
        archived.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.EnumerateObject().First().Name)
            .Should().OnlyContain(n => n == "ingest_time", "the stream's stamp is the first property");
        archived.Single(l => l.StartsWith("{\"ingest_time\":", StringComparison.Ordinal) && l.EndsWith(" }", StringComparison.Ordinal))
            .Should().MatchRegex("^\\{\"ingest_time\":[0-9]+ \\}$", "an empty object stays an object");

        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        var parser = new RawEventParser(env.Signal);
        var fromArchive = parser.Parse(archived.Select((l, i) => new RawRecord(Encoding.UTF8.GetBytes(l), $"archive {i}")));
        var fromLog = parser.Parse(records.Select((l, i) => new RawRecord(Encoding.UTF8.GetBytes(l), $"log {i}")));
        Ids(fromArchive.Events).Should().HaveSameItemsAs(Ids(fromLog.Events)).And.Contain(["pretty", "own-ingest"]);
        fromArchive.DeadLetters.Select(d => d.Reason).Should().HaveSameItemsAs(fromLog.DeadLetters.Select(d => d.Reason));
        var ingest = (PrimitiveColumn<long>)fromArchive.Events[StandardColumns.IngestTime];
        var ids = Ids(fromArchive.Events);
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i] == "own-ingest")
            {
                ingest.Values[i].Should().Be(StreamWorld.Start + 5_000_000, "a producer's ingest_time is kept");
            }
            else
            {
                ingest.Values[i].Should().BeInRange(before, Timestamps.ToMicros(DateTimeOffset.UtcNow), "the time the stream read it");
            }
        }

        var enriched = await world.TableAsync("lake/enriched/engagement");
        var streamIngest = Ids(enriched).Zip(((PrimitiveColumn<long>)enriched[StandardColumns.IngestTime]).Values).ToDictionary(p => p.First, p => p.Second);
        var archiveIngest = ids.Zip(ingest.Values).ToDictionary(p => p.First, p => p.Second);
        streamIngest.Should().NotBeEmpty().And.Equal(archiveIngest.Where(p => streamIngest.ContainsKey(p.Key)).ToDictionary(),
            "the stream's rows and the batch path's reading of the archive agree on when each event was read");

        static List<string> Ids(EventBatch events) => [.. ((StringColumn)events[StandardColumns.EventId]).Values.Select(v => v!)];
    }

    [Fact]
    public async Task An_archive_folder_that_cannot_be_written_fails_the_start_naming_the_option()
    {
        using var world = new StreamWorld();
        await File.WriteAllTextAsync(Path.Combine(world.Root, "blocker"), "a file where the archive's parent folder should be");
        string config = Path.Combine(world.Root, "weft.json");
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace("\"path\": \"log\" }", "\"path\": \"log\", \"archive\": \"blocker/stream\" }", StringComparison.Ordinal));
        await world.AppendAsync(StreamWorld.Events(10, seed: 3));

        var start = () => world.RunAsync();

        (await start.Should().ThrowAsync<IOException>()).Which.Message.Should()
            .StartWith($"the stream's raw archive ($.source.archive) at '{Path.Combine(world.Root, "blocker", "stream")}' cannot be written: ");
        (await world.OnlineAsync()).Should().BeEmpty("nothing was read");
    }

    /// <summary>
    /// The archive's counters move when a flush's file is durable, not when its lines are buffered: a run
    /// that crashes before flushing reports nothing. Each run then reports what its own flushes committed
    /// since it started: every record once, and the bytes and files it added to the archive's folder.
    /// </summary>
    [Fact]
    public async Task The_archive_metrics_count_what_the_flushes_committed_as_the_folder_holds_it()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(900, seed: 27);
        await world.AppendAsync(lines);
        string folder = Path.Combine(world.Root, "lake", "raw", "stream");
        var options = new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(20), FlushInterval = TimeSpan.FromHours(1) };

        var crashed = await world.RunAsync(flush: false, options: options);
        crashed.RecordsIn.Should().Be(lines.Count, "every record was read, and its line buffered");
        crashed.ArchiveFolder.Should().Be(folder);
        Archived(crashed).Should().Be((0L, 0L, 0L), "no flush committed a file");
        crashed.ArchiveCommittedAtMicros.Should().BeNull();

        var first = await world.RunAsync(maxRecords: 450, options: options);
        var firstFiles = Files();
        first.RecordsIn.Should().BeInRange(450, lines.Count - 1);
        Archived(first).Should().Be((first.RecordsIn, firstFiles.Sum(f => new FileInfo(f).Length), firstFiles.Length));
        first.ArchiveCommittedAtMicros.Should().NotBeNull();

        var second = await world.RunAsync(options: options);
        var added = Files().Except(firstFiles).ToList();
        Files().SelectMany(File.ReadAllLines).Should().HaveCount(lines.Count, "the crashed run committed nothing, so the others read and archived every record once");
        Archived(second).Should().Be((lines.Count - first.RecordsIn, added.Sum(f => new FileInfo(f).Length), added.Count), "counted since the runtime started");
        var text = new StringBuilder();
        second.Metrics.WritePrometheus(text);
        text.ToString().Should().Contain($"\nweft_stream_archive_records_total {lines.Count - first.RecordsIn}\n").And.Contain("# TYPE weft_stream_archive_bytes_total counter");

        string[] Files() => Directory.GetFiles(folder, "*.jsonl", SearchOption.AllDirectories);
        static (long Records, long Bytes, long Files) Archived(StreamRuntime runtime) =>
            ((long)runtime.Metrics.Value("weft_stream_archive_records_total"), (long)runtime.Metrics.Value("weft_stream_archive_bytes_total"), (long)runtime.Metrics.Value("weft_stream_archive_files_total"));
    }

    [Fact]
    public async Task Without_an_archive_the_stream_reports_no_archive_folder_and_no_archive_counters()
    {
        using var world = new StreamWorld();
        string config = Path.Combine(world.Root, "weft.json");
        await File.WriteAllTextAsync(config, (await File.ReadAllTextAsync(config)).Replace("\"path\": \"log\" }", "\"path\": \"log\", \"archive\": false }", StringComparison.Ordinal));
        await world.AppendAsync(StreamWorld.Events(200, seed: 29));

        var runtime = await world.RunAsync();

        runtime.RecordsIn.Should().Be(200);
        runtime.ArchiveFolder.Should().BeNull();
        runtime.ArchiveCommittedAtMicros.Should().BeNull();
        var text = new StringBuilder();
        runtime.Metrics.WritePrometheus(text);
        text.ToString().Should().Contain("weft_stream_records_total 200").And.NotContain("weft_stream_archive_");
        Directory.Exists(Path.Combine(world.Root, "lake", "raw", "stream")).Should().BeFalse();
    }

    /// <summary>
    /// Events the HTTP ingest would refuse can still arrive from Kafka: a lone surrogate escape in an id,
    /// a type or a property name, an event_id with U+0000 (PostgreSQL text cannot key it). Each is a dead
    /// letter; the stream keeps every other event and, restarted, has nothing left to choke on.
    /// </summary>
    [Fact]
    public async Task Text_no_store_can_keep_is_dead_lettered_and_the_stream_flows_past_it()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(200, seed: 13);
        string time = Timestamps.Format(StreamWorld.Start + 1_000_000);
        var bad = new[]
        {
            $$"""{"event_id":"lone\ud800","user_id":3,"event_type":"click","event_time":"{{time}}","item_id":4}""",
            $$"""{"event_id":"nul\u0000","user_id":3,"event_type":"save","event_time":"{{time}}","item_id":4}""",
            $$"""{"event_id":"name","user_id":3,"event_type":"save","event_time":"{{time}}","item_id":4,"\udc00":1}""",
            $$"""{"event_id":"type","user_id":3,"event_type":"cl\ud800ick","event_time":"{{time}}","item_id":4}""",
        };
        await world.AppendAsync(lines.Take(100).Concat(bad).Concat(lines.Skip(100)));

        await world.RunAsync();
        await world.RunAsync();

        var expected = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(((StringColumn)expected[StandardColumns.EventId]).Values);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => (string)dead["reason"].GetValue(i)!).Should().BeEquivalentTo(
            "a string is not valid Unicode: unpaired surrogate escape \\ud800 at byte 18",
            "event_id contains U+0000, which the online store cannot key on",
            "a string is not valid Unicode: unpaired surrogate escape \\udc00 at byte 108");
        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        Enumerable.Range(0, unrouted.RowCount).Select(i => (string)unrouted["reason"].GetValue(i)!)
            .Should().Contain("unknown event_type 'cl\uFFFDick': no signal includes it");
    }

    /// <summary>
    /// An event_id longer than a PostgreSQL B-tree row can hold (2,704 bytes; the store keys on it) is a
    /// dead letter, on either store. Before, on PostgreSQL the append holding it failed whole, and the
    /// runtime stopped at the record again at every start.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task An_event_id_longer_than_the_store_can_key_is_dead_lettered_and_the_stream_flows_past_it(string store)
    {
        using var world = await WorldAsync(store);
        var lines = StreamWorld.Events(200, seed: 17);
        string time = Timestamps.Format(StreamWorld.Start + 1_000_000);
        var random = new Random(3);
        string longId = new(Enumerable.Range(0, 3000).Select(_ => (char)random.Next('a', 'z' + 1)).ToArray()); // random: PostgreSQL cannot compress it into the index
        string bad = $$"""{"event_id":"{{longId}}","user_id":3,"event_type":"click","event_time":"{{time}}","item_id":4}""";
        await world.AppendAsync(lines.Take(100).Append(bad).Concat(lines.Skip(100)));

        await world.RunAsync();
        await world.RunAsync();

        var expected = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(((StringColumn)expected[StandardColumns.EventId]).Values);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => (string)dead["reason"].GetValue(i)!).Should().Equal("event_id is longer than 1024 bytes (UTF-8), more than the online store can key on");
    }

    /// <summary>
    /// Bytes that are not UTF-8 in a string (the HTTP ingest refuses them; Kafka does not): in an id or a
    /// type, with one signal or two (the route reads the type). Each event is a dead letter, and the
    /// stream keeps every other one. Before, decoding the string threw out of the micro-batch, and the
    /// runtime stopped at the record again at every start.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_that_are_not_utf8_are_dead_lettered_and_the_stream_flows_past_them(bool twoSignals)
    {
        using var world = new StreamWorld(refundSignal: twoSignals);
        var lines = StreamWorld.Events(200, seed: 13);
        string time = Timestamps.Format(StreamWorld.Start + 1_000_000);
        static byte[] Bytes(string json) => Encoding.UTF8.GetBytes(json).Select(b => b == (byte)'~' ? (byte)0xFF : b).ToArray(); // '~' stands for 0xFF
        var bad = new[]
        {
            $$"""{"event_id":"id~","user_id":3,"event_type":"click","event_time":"{{time}}","item_id":4}""",
            $$"""{"event_id":"type","user_id":3,"event_type":"cl~ick","event_time":"{{time}}","item_id":4}""",
        };
        await world.AppendAsync(lines.Take(100).Concat(bad).Concat(lines.Skip(100)).Select(Bytes));

        await world.RunAsync();
        await world.RunAsync();

        var expected = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(((StringColumn)expected[StandardColumns.EventId]).Values);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => (string)dead["reason"].GetValue(i)!).Should().Equal("a string is not valid UTF-8: byte 0xFF at byte 16");
        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        Enumerable.Range(0, unrouted.RowCount).Select(i => (string)unrouted["reason"].GetValue(i)!)
            .Should().ContainSingle(r => r.StartsWith("unknown event_type 'cl", StringComparison.Ordinal)).Which.Should().Be("unknown event_type 'cl?ick': no signal includes it");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_event_type_that_maps_its_user_property_streams_like_any_other(bool twoSignals)
    {
        using var world = new StreamWorld(clickUid: true, refundSignal: twoSignals);
        var lines = StreamWorld.Events(300, seed: 5).Select(l => l.Contains("\"click\"", StringComparison.Ordinal) ? l.Replace("\"user_id\"", "\"uid\"", StringComparison.Ordinal) : l).ToList();
        await world.AppendAsync(lines);

        await world.RunAsync();

        var expected = await world.ReferenceAsync(lines);
        ((StringColumn)expected[StandardColumns.EventType]).Values.Should().Contain("click");
        var online = await world.OnlineAsync();
        online.Keys.Select(k => k.Id).Should().HaveSameItemsAs(((StringColumn)expected[StandardColumns.EventId]).Values);
        (await world.TableAsync("lake/dead_letters/_stream")).RowCount.Should().Be(lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal)), "only the searches are unrouted");
    }

    [Fact]
    public async Task The_lag_gauges_say_what_the_source_holds_beyond_what_the_runtime_has_read()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(1000, seed: 5);
        await world.AppendAsync(lines);
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(20) });
        string partition = Weft.Streaming.Embedded.EmbeddedLog.PartitionName;

        runtime.RefreshLag();
        runtime.Metrics.Value("weft_stream_lag_records").Should().Be(lines.Count, "nothing read yet");
        runtime.Metrics.Value("weft_stream_partition_lag_records", ("partition", partition)).Should().Be(lines.Count);

        await runtime.StepAsync(CancellationToken.None);
        runtime.RefreshLag();
        runtime.Metrics.Value("weft_stream_lag_records").Should().Be(lines.Count - runtime.RecordsIn).And.BeGreaterThan(0);

        while (runtime.RecordsIn < lines.Count)
        {
            await runtime.StepAsync(CancellationToken.None);
        }

        runtime.RefreshLag();
        runtime.Metrics.Value("weft_stream_lag_records").Should().Be(0);
        await runtime.FlushAsync(CancellationToken.None);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_crash_before_the_commit_replays_without_loss_or_duplicates(string store)
    {
        using var world = await WorldAsync(store);
        var lines = StreamWorld.Events(2000, seed: 2);
        await world.AppendAsync(lines);

        // First life: a flush (lake + commit) part way, more work, then a crash with no flush.
        await FlushThenCrashAsync(world, new StreamOptions { MaxBatchRecords = 250, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromHours(1) }, dispose: false);

        (await world.StreamLakeIdsAsync()).Should().HaveCountLessThan(lines.Count, "the crash lost the unflushed rows from the lake, not from the source");

        await world.RunAsync();

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(expected);
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Lake_files_begun_after_the_last_flush_are_deleted_by_a_dispose_and_left_unreferenced_by_a_crash(bool dispose)
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(2000, seed: 5);
        await world.AppendAsync(lines);
        var lakePath = Path.Combine(world.Root, "lake", "enriched", "engagement");

        // Row groups of 50 rows: the rows after the flush are encoded into files before any commit names them.
        var options = new StreamOptions { MaxBatchRecords = 250, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromHours(1), LakeRowGroupSize = 50 };
        await FlushThenCrashAsync(world, options, dispose);

        // The crashed runtime's background encoding may still be finishing a row group: wait until it rests.
        var onDisk = await SettledParquetFilesAsync(lakePath);
        var table = await Weft.Storage.EventTable.OpenAsync(lakePath);
        var referenced = (await table.Log.GetSnapshotAsync()).Files().Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        referenced.Should().NotBeEmpty("the flush committed");
        if (dispose)
        {
            onDisk.Should().HaveSameItemsAs(referenced, "a disposed runtime deletes the files it had not committed");
        }
        else
        {
            onDisk.Except(referenced).Should().NotBeEmpty("a crash leaves the files of rows after the flush, unreferenced");
            var vacuumed = await table.Log.VacuumAsync(TimeSpan.Zero);
            // The crashed runtime is never stopped: its encoder may begin one more file after the listing,
            // which the vacuum deletes too. Every unreferenced file listed goes, and no referenced one.
            vacuumed.Files.Select(f => f.Path).Should().Contain(onDisk.Except(referenced)).And.NotIntersectWith(referenced);
        }

        await world.RunAsync(options: options with { FlushInterval = TimeSpan.FromSeconds(5) });

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(expected);
    }

    /// <summary>A first life: 750 records and a flush, then 750 more and no flush: a crash, or with <paramref name="dispose"/> a dispose.</summary>
    private static async Task FlushThenCrashAsync(StreamWorld world, StreamOptions options, bool dispose)
    {
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        var first = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, options);
        while (first.RecordsIn < 750)
        {
            await first.StepAsync(CancellationToken.None);
        }

        await first.FlushAsync(CancellationToken.None);
        while (first.RecordsIn < 1500)
        {
            await first.StepAsync(CancellationToken.None);
        }

        if (dispose)
        {
            await first.DisposeAsync();
        }
    }

    private static async Task<List<string>> SettledParquetFilesAsync(string root)
    {
        string Listing() => string.Join("\n", Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/') + " " + new FileInfo(f).Length).Order(StringComparer.Ordinal));
        var last = Listing();
        for (var i = 0; i < 50; i++)
        {
            await Task.Delay(200);
            var now = Listing();
            if (now == last)
            {
                break;
            }

            last = now;
        }

        return [.. last.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line[..line.LastIndexOf(' ')])];
    }

    [Fact]
    public async Task Rows_pending_past_the_cap_are_flushed_and_committed_before_the_interval_is_up()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(2000, seed: 3);
        await world.AppendAsync(lines);
        var reference = await world.ReferenceAsync(lines);

        // An hour-long interval never comes due: only the cap on pending rows makes flushes. Then a
        // crash, with no final flush.
        var options = new StreamOptions { MaxBatchRecords = 100, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromHours(1), MaxPendingRows = 300 };
        var first = await world.RunAsync(flush: false, options: options);
        first.RecordsIn.Should().Be(lines.Count);

        // Unflushed at the crash: under the cap plus the batch after it, and at most one flush still writing.
        (await world.StreamLakeIdsAsync()).Should().HaveCountGreaterThanOrEqualTo(reference.RowCount - (2 * (300 + 100)));

        var second = await world.RunAsync();
        second.RecordsIn.Should().BeLessThan(lines.Count, "the early flushes committed their offsets");
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected);
    }

    [Fact]
    public void A_pending_row_cap_below_one_is_refused()
    {
        FluentActions.Invoking(() => new StreamOptions { MaxPendingRows = 0 }.Validate())
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*MaxPendingRows must be at least 1*");
        FluentActions.Invoking(() => new StreamOptions { LakeRowGroupSize = 0 }.Validate())
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*LakeRowGroupSize must be at least 1*");
    }

    [Fact]
    public async Task A_crash_after_the_lake_writes_but_before_the_source_commit_records_no_dead_letter_or_late_event_twice()
    {
        using var world = new StreamWorld(LatePolicy.Drop, hotUserCap: 40);
        var lines = StreamWorld.Events(600, seed: 9);
        lines.InsertRange(200, ["{not json", """{"event_id":"x1","event_type":"click","event_time":"2026-11-20T00:00:00Z"}"""]); // unroutable
        lines.Insert(300, """{"event_id":"p1","user_id":4,"event_type":"click","event_time":"2026-11-20T00:01:00Z"}"""); // parse: no item_id
        // A hot user: 60 saves in one hour against a cap of 40, so an executor dead-letters 20 of them.
        lines.AddRange(Enumerable.Range(0, 60).Select(i =>
            $$"""{"event_id":"hot-{{i}}","user_id":31,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start + 2 * StreamWorld.Hour + i * 1_000_000L)}}","item_id":5}"""));
        lines.Add($$"""{"event_id":"late-1","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start - 5 * StreamWorld.Hour)}}","item_id":3}""");
        await world.AppendAsync(lines);

        // First life: every record read, and the flush writes lake, dead letters and ledger; then the
        // process dies before the source commit (the source never records it).
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var first = await StreamRuntime.CreateAsync(world.Config, new CommitsLost(host.Source), host.Store, null, new StreamOptions { MaxBatchRecords = 150, MaxWait = TimeSpan.FromMilliseconds(20) });
            int empty = 0;
            while (empty < 3)
            {
                empty = await first.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            }

            await first.FlushAsync(CancellationToken.None);
            first.Metrics.Value("weft_dead_letters_total", ("signal", "engagement"), ("stage", "parse")).Should().Be(1, "the metric's stage is the table's");
            first.Metrics.Value("weft_dead_letters_total", ("signal", "engagement"), ("stage", "hot_user_cap")).Should().Be(20);
        }

        var unrouted = await world.TableAsync("lake/dead_letters/_stream");
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        var late = await world.TableAsync("lake/late_events/engagement");
        unrouted.RowCount.Should().Be(2 + lines.Count(l => l.Contains("\"search\"", StringComparison.Ordinal)));
        var noUser = Enumerable.Range(0, unrouted.RowCount).Single(i => (string)unrouted["reason"].GetValue(i)! == "missing user_id");
        (unrouted[StandardColumns.EventId].GetValue(noUser), unrouted[StandardColumns.EventType].GetValue(noUser)).Should().Be(("x1", "click"), "a refused record is findable by what it says of itself");
        var search = Enumerable.Range(0, unrouted.RowCount).First(i => (string?)unrouted[StandardColumns.EventType].GetValue(i) == "search");
        unrouted[StandardColumns.UserId].GetValue(search).Should().BeOfType<long>();
        var stages = Enumerable.Range(0, dead.RowCount).Select(i => (string)dead["stage"].GetValue(i)!).ToList();
        stages.Count(s => s == "parse").Should().Be(1);
        stages.Count(s => s == "hot_user_cap").Should().Be(20);
        var hot = Enumerable.Range(0, dead.RowCount).First(i => (string)dead["stage"].GetValue(i)! == "hot_user_cap");
        ((string)dead["source"].GetValue(hot)!).Should().Contain("@", "an executor's dead letter names its record");
        ((string)dead["payload"].GetValue(hot)!).Should().Contain("\"user_id\":31");
        late.RowCount.Should().Be(1);

        // Second life: the source replays every record from the start.
        var second = await world.RunAsync();

        second.RecordsIn.Should().Be(lines.Count, "nothing was committed, so everything is read again");
        (await world.TableAsync("lake/dead_letters/_stream")).RowCount.Should().Be(unrouted.RowCount);
        (await world.TableAsync("lake/dead_letters/engagement")).RowCount.Should().Be(dead.RowCount);
        (await world.TableAsync("lake/late_events/engagement")).RowCount.Should().Be(1);
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task A_restarted_stream_judges_replayed_events_against_the_watermark_it_had_committed()
    {
        using var world = new StreamWorld(LatePolicy.Drop);
        // First life: events at hour 10, flushed and committed; the stream's watermark is then in hour 9.
        await world.AppendAsync(StreamWorld.Events(50, seed: 21, baseTime: StreamWorld.Start + (10 * StreamWorld.Hour)));
        await world.RunAsync();

        // Second life: an event of hour 1, late by eight hours, then more of hour 10; the process dies
        // before any flush, so all of them are read again.
        string late = $$"""{"event_id":"late-b","user_id":5,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start + StreamWorld.Hour)}}","item_id":3}""";
        await world.AppendAsync([late, .. StreamWorld.Events(30, seed: 22, startIndex: 1000, baseTime: StreamWorld.Start + (10 * StreamWorld.Hour) + 600_000_000L)]);
        await world.RunAsync(flush: false);
        (await world.OnlineAsync()).Keys.Should().NotContain((5L, "late-b"), "the second life dropped it as late");

        // Third life: the replay starts from the committed watermark, so the late event is still late:
        // dropped again, and in the ledger once. Judged against no watermark, it would be the first event
        // seen, taken as on time, and appended online and to the lake.
        await world.RunAsync();

        (await world.OnlineAsync()).Keys.Should().NotContain((5L, "late-b"));
        (await world.StreamLakeIdsAsync()).Should().NotContain("late-b").And.OnlyHaveUniqueItems();
        var ledger = await world.TableAsync("lake/late_events/engagement");
        Enumerable.Range(0, ledger.RowCount).Select(i => (string)ledger[StandardColumns.EventId].GetValue(i)!).Should().Equal("late-b");
    }

    /// <summary>
    /// A stream reloads a signal's enrichment tables when they change, and starts its executors again
    /// with them; the dedup memory and the hot-user counts depend on the events seen, not the tables,
    /// and must go on: a redelivery after the reload is still a duplicate, a hot user still capped. The
    /// definition is the one the stream started with, not a file deployed since for the next start (the
    /// reload took that up mid-run: its rows went unserved, and a schema change stopped the stream).
    /// </summary>
    [Fact]
    public async Task Reloading_changed_enrichment_tables_keeps_the_dedup_memory_and_the_hot_user_counts()
    {
        using var world = new StreamWorld(hotUserCap: 3);
        string Save(string id, long user, int second, int item) =>
            $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start + second * 1_000_000L)}}","item_id":{{item}}}""";
        await world.AppendAsync([Save("a1", 7, 1, 1), Save("a2", 7, 2, 2), Save("a3", 7, 3, 3)]);

        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var options = new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(10), EnrichmentRefresh = TimeSpan.FromMilliseconds(1) };
            var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, host.Store, null, options);
            while (runtime.RecordsIn < 3)
            {
                await runtime.StepAsync(CancellationToken.None);
            }

            // The next definition deployed (a filter that would keep no save), then a new version of item 4,
            // then a redelivery of a2, user 7's fourth event of the hour, and user 8's.
            var next = world.Signal with { Version = 2, EventTypes = [.. world.Signal.EventTypes.Where(t => t.Name != "save")] };
            await File.WriteAllBytesAsync(Path.Combine(world.Root, "signals", "engagement.json"), SignalJsonWriter.Write(next));
            await File.AppendAllTextAsync(Path.Combine(world.Root, "items.jsonl"), """{"item_id":4,"version_time":"2026-11-10T00:00:00Z","category":"fresh"}""" + "\n");
            (await runtime.StepAsync(CancellationToken.None)).Should().Be(0, "a step with nothing to read only looks at the tables, and reloads them");
            await host.EmbeddedLog!.AppendAsync([.. new[] { Save("a2", 7, 2, 2), Save("a4", 7, 4, 4), Save("b1", 8, 5, 4) }.Select(l => (Array.Empty<byte>(), System.Text.Encoding.UTF8.GetBytes(l)))]);
            int empty = 0;
            while (runtime.RecordsIn < 6 || empty < 3)
            {
                empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            }

            await runtime.FlushAsync(CancellationToken.None);
        }

        var enriched = await world.TableAsync("lake/enriched/engagement");
        var categories = Enumerable.Range(0, enriched.RowCount).ToDictionary(i => (string)enriched[StandardColumns.EventId].GetValue(i)!, i => (string?)enriched["category"].GetValue(i));
        categories["b1"].Should().Be("fresh", "the stream reloaded the changed table before it read b1");
        var lake = await Weft.Storage.EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        (await lake.Log.GetHistoryAsync()).Where(c => c.Parameters.ContainsKey(LakeParameters.Fingerprint)).Select(c => c.Parameters[LakeParameters.Fingerprint])
            .Should().NotBeEmpty().And.OnlyContain(f => f == SignalJsonWriter.Fingerprint(world.Signal), "every flush ran the definition the stream started with");
        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(["a1", "a2", "a3", "b1"], "a2's redelivery is still a duplicate, and a4 is over user 7's cap of 3 an hour");
        (await world.OnlineAsync()).Keys.Should().BeEquivalentTo([(7L, "a1"), (7L, "a2"), (7L, "a3"), (8L, "b1")]);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => ((string?)dead[StandardColumns.EventId].GetValue(i), (string)dead["stage"].GetValue(i)!))
            .Should().Equal([("a4", "hot_user_cap")]);
    }

    /// <summary>
    /// A runtime made from definitions a process read already (weft serve's) runs those, not the files
    /// as they are when it opens: a compile landing between serving's read and the stream's split one
    /// signal into two definitions, the stream's elements then unserved.
    /// </summary>
    [Fact]
    public async Task A_runtime_made_from_read_definitions_runs_them_not_the_files_as_they_are_now()
    {
        using var world = new StreamWorld();
        var read = world.Config.LoadSignals();
        await File.WriteAllBytesAsync(Path.Combine(world.Root, "signals", "engagement.json"), SignalJsonWriter.Write(world.Signal with { Version = 2 }));
        await world.AppendAsync(StreamWorld.Events(40, seed: 71));

        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            await using var runtime = await StreamRuntime.CreateForAsync(world.Config, read, host.Source, host.Store, new StreamOptions { MaxBatchRecords = 300, MaxWait = TimeSpan.FromMilliseconds(20) });
            int empty = 0;
            while (empty < 3)
            {
                empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            }

            await runtime.FlushAsync(CancellationToken.None);
        }

        var lake = await Weft.Storage.EventTable.OpenAsync(Path.Combine(world.Root, "lake", "enriched", "engagement"));
        (await lake.Log.GetHistoryAsync()).Where(c => c.Parameters.ContainsKey(LakeParameters.Fingerprint)).Select(c => c.Parameters[LakeParameters.Fingerprint])
            .Should().NotBeEmpty().And.OnlyContain(f => f == SignalJsonWriter.Fingerprint(world.Signal));
    }

    /// <summary>
    /// A stream that stops and starts again takes the ids and hourly counts of the events its lake
    /// holds back into its dedup window and hot-user cap: a redelivery of a stored event is still a
    /// duplicate, a hot user still capped. Before, a restart forgot both.
    /// </summary>
    [Fact]
    public async Task A_restarted_stream_recalls_its_dedup_memory_and_hot_user_counts_from_the_lake()
    {
        using var world = new StreamWorld(hotUserCap: 3);
        string Save(string id, long user, int second, int item) =>
            $$"""{"event_id":"{{id}}","user_id":{{user}},"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start + second * 1_000_000L)}}","item_id":{{item}}}""";
        await world.AppendAsync([Save("a1", 7, 1, 1), Save("a2", 7, 2, 2), Save("a3", 7, 3, 3), Save("b1", 8, 4, 4)]);
        var first = await world.RunAsync();
        first.Metrics.Value("weft_stream_recalled_events", ("signal", "engagement")).Should().Be(0, "the lake held nothing yet");

        // A redelivery of b1, user 7's fourth event of the hour, and user 8's second.
        await world.AppendAsync([Save("b1", 8, 4, 4), Save("a4", 7, 5, 4), Save("b2", 8, 6, 5)]);
        var second = await world.RunAsync();
        second.Metrics.Value("weft_stream_recalled_events", ("signal", "engagement")).Should().Be(4);
        second.Metrics.Value("weft_stream_recall_seconds", ("signal", "engagement")).Should().BeGreaterThan(0);
        second.RecordsIn.Should().Be(3, "the first run committed its records");
        second.DefinitionsChanged.Should().BeEmpty("the definition that wrote the lake runs again");

        (await world.StreamLakeIdsAsync()).Should().BeEquivalentTo(["a1", "a2", "a3", "b1", "b2"], "b1's redelivery is still a duplicate, and a4 is over user 7's cap of 3 an hour");
        (await world.OnlineAsync()).Keys.Should().BeEquivalentTo([(7L, "a1"), (7L, "a2"), (7L, "a3"), (8L, "b1"), (8L, "b2")]);
        var dead = await world.TableAsync("lake/dead_letters/engagement");
        Enumerable.Range(0, dead.RowCount).Select(i => ((string?)dead[StandardColumns.EventId].GetValue(i), (string)dead["stage"].GetValue(i)!))
            .Should().Equal([("a4", "hot_user_cap")]);
    }

    [Theory]
    [InlineData(LatePolicy.Accept)]
    [InlineData(LatePolicy.BatchOnly)]
    [InlineData(LatePolicy.Drop)]
    public async Task Late_events_are_recorded_in_the_ledger_and_handled_by_the_signal_policy(LatePolicy policy)
    {
        using var world = new StreamWorld(policy);
        var lines = StreamWorld.Events(300, seed: 3);
        // Three hours after the last event's time, a save from long before the watermark.
        lines.Add($$"""{"event_id":"late-1","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start - 5 * StreamWorld.Hour)}}","item_id":3}""");
        await world.AppendAsync(lines);

        await world.RunAsync();

        var ledger = await world.TableAsync("lake/late_events/engagement");
        var row = Enumerable.Range(0, ledger.RowCount).Single(i => (string)ledger[StandardColumns.EventId].GetValue(i)! == "late-1");
        ((long)ledger["lateness_us"].GetValue(row)!).Should().BeGreaterThan(4 * StreamWorld.Hour);
        ledger["reason"].GetValue(row).Should().Be("older than the stream watermark");
        var online = await world.OnlineAsync();
        online.ContainsKey((7, "late-1")).Should().Be(policy == LatePolicy.Accept);
        (await world.StreamLakeIdsAsync()).Contains("late-1").Should().Be(policy == LatePolicy.Accept);
    }

    /// <summary>
    /// The ledger holds each late event once: its second delivery in the same batch, a later one or to a
    /// runtime started again, and the redelivery of an event that came on time (late only by the time it
    /// came again), are repeats the dedup drops, not late events. Before, each delivery was another row.
    /// </summary>
    [Theory]
    [InlineData(LatePolicy.Accept)]
    [InlineData(LatePolicy.BatchOnly)]
    [InlineData(LatePolicy.Drop)]
    public async Task A_late_event_delivered_again_and_a_redelivered_on_time_event_are_not_recorded_late_again(LatePolicy policy)
    {
        using var world = new StreamWorld(policy);
        string Save(string id, long time) => $$"""{"event_id":"{{id}}","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(time)}}","item_id":3}""";
        string early = Save("early", StreamWorld.Start + 1_000_000), late = Save("late-1", StreamWorld.Start - (5 * StreamWorld.Hour));
        await world.AppendAsync([early, .. StreamWorld.Events(300, seed: 4, baseTime: StreamWorld.Start + (2 * StreamWorld.Hour)), late, late, early,
            .. StreamWorld.Events(100, seed: 5, startIndex: 300, baseTime: StreamWorld.Start + (3 * StreamWorld.Hour)), late, early]);
        // Micro-batches of 50: the first two deliveries of late-1 share one, the third and early's first are in others.
        var runtime = await world.RunAsync(options: new StreamOptions { MaxBatchRecords = 50, MaxWait = TimeSpan.FromMilliseconds(20) });
        runtime.Metrics.Value("weft_late_events_total", ("signal", "engagement"), ("event_type", "save"), ("action", LatePolicyNames.Name(policy))).Should().Be(1);
        await runtime.DisposeAsync();
        await world.AppendAsync([late, early]); // again, to a runtime started anew: it recalls what the first one saw
        await (await world.RunAsync()).DisposeAsync();

        var ledger = await world.TableAsync("lake/late_events/engagement");
        ((StringColumn)ledger[StandardColumns.EventId]).Values.Should().Equal(["late-1"]);
        (await world.StreamLakeIdsAsync()).Where(id => id is "late-1" or "early").Should().BeEquivalentTo(policy == LatePolicy.Accept ? ["early", "late-1"] : ["early"]);
    }

    /// <summary>
    /// A flush commits the dead letters and the ledger before the rows. The rows first, a crash before the
    /// ledger's commit lost the late events for good: the replay took the rows' ids back from the lake and
    /// judged their deliveries repeats. A store whose sync fails stops the flush at the rows' commit.
    /// </summary>
    [Fact]
    public async Task A_flush_that_fails_at_the_rows_commit_has_recorded_its_late_events_and_the_replay_stores_them_once()
    {
        using var world = new StreamWorld(LatePolicy.Accept);
        // A first life stores events, so the lake has stream buckets a restart recalls (with the ledger's ids).
        await world.AppendAsync(StreamWorld.Events(200, seed: 11));
        await (await world.RunAsync()).DisposeAsync();
        int stored = (await world.StreamLakeIdsAsync()).Count;
        var lines = StreamWorld.Events(300, seed: 12, startIndex: 1000, baseTime: StreamWorld.Start + StreamWorld.Hour);
        lines.Add($$"""{"event_id":"late-1","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start - 5 * StreamWorld.Hour)}}","item_id":3}""");
        lines.Add($$"""{"event_id":"p1","user_id":4,"event_type":"click","event_time":"{{Timestamps.Format(StreamWorld.Start + StreamWorld.Hour)}}"}"""); // parse: no item_id
        await world.AppendAsync(lines);
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var first = await StreamRuntime.CreateAsync(world.Config, host.Source, new FailingSync(host.Store), null, new StreamOptions { MaxBatchRecords = 100, MaxWait = TimeSpan.FromMilliseconds(20) });
            int empty = 0;
            while (empty < 3)
            {
                empty = await first.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            }

            var flush = async () => await first.FlushAsync(CancellationToken.None);
            await flush.Should().ThrowAsync<Exception>();
        }

        (await world.StreamLakeIdsAsync()).Should().HaveCount(stored, "the rows' commit waits for the store's sync, which failed");
        ((StringColumn)(await world.TableAsync("lake/late_events/engagement"))[StandardColumns.EventId]).Values.Should().Equal(["late-1"]);
        (await world.TableAsync("lake/dead_letters/engagement")).RowCount.Should().Be(1);

        await (await world.RunAsync()).DisposeAsync();

        ((StringColumn)(await world.TableAsync("lake/late_events/engagement"))[StandardColumns.EventId]).Values.Should().Equal(["late-1"]);
        (await world.TableAsync("lake/dead_letters/engagement")).RowCount.Should().Be(1);
        var ids = await world.StreamLakeIdsAsync();
        ids.Should().OnlyHaveUniqueItems().And.Contain("late-1", "accepted: the replay stores it, though the ledger it recalled holds it");
        (await world.OnlineAsync()).Keys.Should().Contain((7L, "late-1"));
    }

    /// <summary>
    /// Under accept, the ledger holds the late events the signal serves. One its filter removes was never
    /// going to be served and is no late event of the signal: recorded, a producer's redelivery after a
    /// restart (its id is in no lake table to recall) recorded it again, and the demo's restart filled the
    /// ledger with thousands of "accepted" events that were nowhere. A late event the filter keeps is
    /// recorded once, before and after a restart.
    /// </summary>
    [Fact]
    public async Task Under_accept_the_ledger_holds_the_late_events_the_signal_serves_once_across_restarts()
    {
        using var world = new StreamWorld(LatePolicy.Accept);
        string shortClick = $$"""{"event_id":"short-1","user_id":7,"event_type":"click","event_time":"{{Timestamps.Format(StreamWorld.Start - 5 * StreamWorld.Hour)}}","item_id":3,"dwell_ms":100}""";
        string longClick = $$"""{"event_id":"long-1","user_id":7,"event_type":"click","event_time":"{{Timestamps.Format(StreamWorld.Start - 5 * StreamWorld.Hour)}}","item_id":3,"dwell_ms":900}""";
        await world.AppendAsync([.. StreamWorld.Events(300, seed: 13), shortClick, longClick]);
        var first = await world.RunAsync();
        first.Metrics.Value("weft_late_events_total", ("signal", "engagement"), ("event_type", "click"), ("action", "accept")).Should().Be(1, "the late click the filter removed is not counted");
        await first.DisposeAsync();
        (await world.StreamLakeIdsAsync()).Should().NotContain("short-1", "the filter keeps clicks of 500 ms or more").And.Contain("long-1");

        await world.AppendAsync([shortClick, longClick]);
        await (await world.RunAsync()).DisposeAsync();

        ((StringColumn)(await world.TableAsync("lake/late_events/engagement"))[StandardColumns.EventId]).Values.Should().Equal(["long-1"]);
    }

    /// <summary>
    /// One micro-batch spans hours of event time (a backlog): an event comes on time, then again after
    /// the watermark has passed it. The on-time delivery is stored (a left-out id reaches the dedup window
    /// only after the batch's stages have run), and the late one is a repeat, not a late event.
    /// </summary>
    [Theory]
    [InlineData(LatePolicy.Accept)]
    [InlineData(LatePolicy.BatchOnly)]
    [InlineData(LatePolicy.Drop)]
    public async Task An_on_time_event_repeated_late_in_the_same_micro_batch_is_stored_once_and_not_recorded_late(LatePolicy policy)
    {
        using var world = new StreamWorld(policy);
        string early = $$"""{"event_id":"early","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(StreamWorld.Start + 1_000_000)}}","item_id":3}""";
        await world.AppendAsync([early, .. StreamWorld.Events(100, seed: 6, baseTime: StreamWorld.Start + (2 * StreamWorld.Hour)), early]);

        await (await world.RunAsync(options: new StreamOptions { MaxBatchRecords = 1000, MaxWait = TimeSpan.FromMilliseconds(20) })).DisposeAsync();

        (await world.StreamLakeIdsAsync()).Should().ContainSingle(id => id == "early");
        (await world.OnlineAsync()).Keys.Should().Contain((7L, "early"));
        (await world.TableAsync("lake/late_events/engagement")).RowCount.Should().Be(0, "the late delivery repeats one that came on time");
    }

    /// <summary>
    /// A client whose clock runs hours ahead sends an event the parser accepts (within its day of future
    /// skew). It raises the watermark only to now: the on-time events after it are not late, in this
    /// life or, from what the lake's commits record, in the next.
    /// </summary>
    [Fact]
    public async Task An_event_from_a_clock_hours_ahead_does_not_make_the_on_time_events_after_it_late()
    {
        using var world = new StreamWorld(LatePolicy.Drop);
        long now = Timestamps.ToMicros(DateTimeOffset.UtcNow);
        var first = StreamWorld.Events(100, seed: 21, baseTime: now - (StreamWorld.Hour / 2));
        var skewed = $$"""{"event_id":"ahead","user_id":7,"event_type":"save","event_time":"{{Timestamps.Format(now + (20 * StreamWorld.Hour))}}","item_id":3}""";
        var second = StreamWorld.Events(100, seed: 22, startIndex: 100, baseTime: now - (StreamWorld.Hour / 2) + 250_000_000); // after the first's (2 s apart at most)
        await world.AppendAsync([.. first, skewed, .. second]);
        await (await world.RunAsync(options: new StreamOptions { MaxBatchRecords = 50, MaxWait = TimeSpan.FromMilliseconds(20) })).DisposeAsync();

        var third = StreamWorld.Events(100, seed: 23, startIndex: 200, baseTime: Timestamps.ToMicros(DateTimeOffset.UtcNow) - (StreamWorld.Hour / 4));
        await world.AppendAsync(third);
        await (await world.RunAsync()).DisposeAsync(); // a new runtime: its watermark comes from the lake's commits

        (await world.TableAsync("lake/late_events/engagement")).RowCount.Should().Be(0);
        var expected = await world.ReferenceAsync([.. first, skewed, .. second, .. third]);
        var ids = ((StringColumn)expected[StandardColumns.EventId]).Values.ToHashSet();
        ids.Should().Contain("ahead");
        (await world.StreamLakeIdsAsync()).Should().HaveSameItemsAs(ids, "every event the signal keeps is on time, and policy drop keeps no late one");
    }

    /// <summary>
    /// The loop prepares the next batch while the batch before it waits for the store, but never gets
    /// more than two batches ahead of it; the store receives the batches in the order they were read.
    /// </summary>
    [Fact]
    public async Task While_the_store_holds_an_append_the_loop_queues_one_batch_more_and_the_store_takes_them_in_order()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(1000, seed: 8);
        await world.AppendAsync(lines);
        var options = new StreamOptions { MaxBatchRecords = 100, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromHours(1) };
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        var gated = new GatedAppends(host.Store);
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, gated, null, options);

        (await runtime.StepAsync(CancellationToken.None)).Should().Be(100);
        (await runtime.StepAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30))).Should().Be(100, "the second batch is prepared while the first waits for the store");
        var third = runtime.StepAsync(CancellationToken.None);
        for (int i = 0; i < 200 && gated.Waiting < 1; i++)
        {
            await Task.Delay(50);
        }

        for (int i = 0; i < 200 && runtime.RecordsIn < 300; i++)
        {
            await Task.Delay(50);
        }

        // The third batch has been read (its preparation counts it first); it then waits for the store.
        runtime.RecordsIn.Should().Be(300, "the third step read its batch, and no step reads a fourth");
        await Task.Delay(300);
        third.IsCompleted.Should().BeFalse("two batches already wait for the store");
        runtime.RecordsIn.Should().Be(300, "nothing reads past the third batch while two wait for the store");
        gated.Waiting.Should().Be(1, "the second batch's append starts only after the first's");

        gated.Release();
        (await third).Should().Be(100);
        while (runtime.RecordsIn < lines.Count)
        {
            gated.Release(10);
            await runtime.StepAsync(CancellationToken.None);
        }

        gated.Release(1000);
        await runtime.FlushAsync(CancellationToken.None);

        var position = lines.Select((l, i) => (Id: System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("event_id").GetString()!, i))
            .GroupBy(p => p.Id).ToDictionary(g => g.Key, g => g.Min(p => p.i));
        var appends = gated.Appended.Where(a => a.Count > 0).Select(a => (First: a.Min(id => position[id]), Last: a.Max(id => position[id]))).ToList();
        appends.Should().HaveCountGreaterThan(5);
        appends.Zip(appends.Skip(1)).Should().OnlyContain(p => p.First.Last < p.Second.First, "each batch's records were read after the one before it");
    }

    [Fact]
    public async Task A_failed_online_append_stops_the_runtime_without_committing_past_it_and_a_new_runtime_loses_and_duplicates_nothing()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(2000, seed: 5);
        await world.AppendAsync(lines);

        // A flush is due at every step, so offsets are committed as often as they can be.
        var options = new StreamOptions { MaxBatchRecords = 150, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromMilliseconds(1) };
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var failing = new FailingAppends(host.Store, failAt: 4);
            var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, failing, null, options);
            IOException? thrown = null;
            for (int i = 0; i < 200 && thrown is null; i++)
            {
                try
                {
                    await runtime.StepAsync(CancellationToken.None);
                }
                catch (IOException e)
                {
                    thrown = e;
                }
            }

            thrown.Should().NotBeNull("the fourth append failed");
            var step = () => runtime.StepAsync(CancellationToken.None);
            (await step.Should().ThrowAsync<InvalidOperationException>()).Which.InnerException.Should().BeSameAs(thrown);

            // Still allowed: it writes and commits what is durable, and nothing beyond it.
            await runtime.FlushAsync(CancellationToken.None);
            failing.Appends.Should().Be(4, "no append starts after the failed one");
        }

        await world.RunAsync();

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(expected);
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected);
    }

    [Fact]
    public async Task A_stop_while_an_append_is_in_flight_commits_only_what_is_durable_and_a_new_runtime_loses_and_duplicates_nothing()
    {
        using var world = new StreamWorld();
        var lines = StreamWorld.Events(2000, seed: 6);
        await world.AppendAsync(lines);

        var options = new StreamOptions { MaxBatchRecords = 150, MaxWait = TimeSpan.FromMilliseconds(10), FlushInterval = TimeSpan.FromMilliseconds(1) };
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var blocking = new FailingAppends(host.Store, failAt: 5, block: true);
            var runtime = await StreamRuntime.CreateAsync(world.Config, host.Source, blocking, null, options);
            using var stop = new CancellationTokenSource();
            var running = runtime.RunAsync(stop.Token);
            await blocking.Reached.WaitAsync(TimeSpan.FromSeconds(60));

            // The fifth append waits until the stop cancels it: a clean stop, with one batch not durable.
            await stop.CancelAsync();
            await running.WaitAsync(TimeSpan.FromSeconds(60));
            blocking.Appends.Should().Be(5);
        }

        await world.RunAsync();

        var reference = await world.ReferenceAsync(lines);
        var expected = Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!).ToList();
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(expected);
        (await world.StreamLakeIdsAsync()).Should().OnlyHaveUniqueItems().And.HaveSameItemsAs(expected);
    }

    /// <summary>An online store whose appends each wait for a <see cref="Release"/>, noting the event ids of each in the order they reach it.</summary>
    private sealed class GatedAppends(IOnlineStore inner) : DelegatingStore(inner)
    {
        private readonly SemaphoreSlim _gate = new(0);
        private int _waiting;

        public List<List<string>> Appended { get; } = [];

        /// <summary>Appends that have reached the gate and not passed it.</summary>
        public int Waiting => Volatile.Read(ref _waiting);

        public void Release(int count = 1) => _gate.Release(count);

        public override async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _waiting);
            await _gate.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _waiting);
            lock (Appended)
            {
                Appended.Add([.. elements.Select(e => e.EventId)]);
            }

            return await base.AppendAsync(signal, elements, checkpoint, durability, cancellationToken);
        }
    }

    /// <summary>An online store whose n-th append fails, or with <c>block</c> waits until it is cancelled, before writing anything.</summary>
    private sealed class FailingAppends(IOnlineStore inner, int failAt, bool block = false) : DelegatingStore(inner)
    {
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _appends;

        public int Appends => Volatile.Read(ref _appends);

        /// <summary>Completes when the n-th append has begun.</summary>
        public Task Reached => _reached.Task;

        public override async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _appends) != failAt)
            {
                return await base.AppendAsync(signal, elements, checkpoint, durability, cancellationToken);
            }

            _reached.TrySetResult();
            if (block)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            throw new IOException($"append {failAt} fails (test)");
        }
    }

    /// <summary>An online store whose sync fails: what a disk full or lost at the flush leaves.</summary>
    private sealed class FailingSync(IOnlineStore inner) : DelegatingStore(inner)
    {
        public override ValueTask SyncAsync(CancellationToken cancellationToken) => ValueTask.FromException(new IOException("sync fails (test)"));
    }

    /// <summary>An online store that passes every call to <c>inner</c>; the host owns (and disposes) <c>inner</c>.</summary>
    private abstract class DelegatingStore(IOnlineStore inner) : IOnlineStore
    {
        public string Describe => inner.Describe;

        public virtual ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken) =>
            inner.AppendAsync(signal, elements, checkpoint, durability, cancellationToken);

        public virtual ValueTask SyncAsync(CancellationToken cancellationToken) => inner.SyncAsync(cancellationToken);

        public ValueTask<IReadOnlyList<OnlineElement>> ReadAsync(string signal, long userId, OnlineReadOptions options, CancellationToken cancellationToken) =>
            inner.ReadAsync(signal, userId, options, cancellationToken);

        public ValueTask<IReadOnlyDictionary<long, IReadOnlyList<OnlineElement>>> ReadManyAsync(string signal, IReadOnlyList<long> userIds, OnlineReadOptions options, CancellationToken cancellationToken) =>
            inner.ReadManyAsync(signal, userIds, options, cancellationToken);

        public ValueTask<long> TrimAsync(string signal, int keep, CancellationToken cancellationToken) => inner.TrimAsync(signal, keep, cancellationToken);

        public ValueTask<IReadOnlyDictionary<string, long>> ReadCheckpointAsync(string consumer, CancellationToken cancellationToken) =>
            inner.ReadCheckpointAsync(consumer, cancellationToken);

        public ValueTask<OnlineStoreStats> StatsAsync(string signal, CancellationToken cancellationToken) => inner.StatsAsync(signal, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Online_appends_are_deferred_and_the_store_is_synced_before_every_source_commit()
    {
        using var world = new StreamWorld(LatePolicy.Accept);
        var lines = StreamWorld.Events(900, seed: 31);
        await world.AppendAsync(lines);
        var log = new List<string>();
        await using (var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None))
        {
            var store = new SyncLog(host.Store, log);
            var runtime = await StreamRuntime.CreateAsync(world.Config, new CommitLog(host.Source, log), store, null,
                new StreamOptions { MaxBatchRecords = 100, MaxWait = TimeSpan.FromMilliseconds(20), FlushInterval = TimeSpan.FromMilliseconds(1) });
            int empty = 0;
            while (empty < 3)
            {
                empty = await runtime.StepAsync(CancellationToken.None) == 0 ? empty + 1 : 0;
            }

            await runtime.FlushAsync(CancellationToken.None);
        }

        List<string> entries;
        lock (log)
        {
            entries = [.. log];
        }

        entries.Where(e => e.StartsWith("append", StringComparison.Ordinal)).Should().NotBeEmpty().And.AllBe("append Deferred");
        var commits = entries.Select((e, i) => (e, i)).Where(x => x.e == "commit").Select(x => x.i).ToList();
        commits.Should().HaveCountGreaterThan(1);
        int previous = -1;
        foreach (var commit in commits)
        {
            // Appends of later batches may run alongside a flush's sync, so each commit is checked
            // against a sync of its own; the last one against every append.
            entries.FindIndex(previous + 1, commit - previous - 1, e => e == "sync").Should().BeGreaterThan(previous, $"the commit at entry {commit} comes after a sync of its own");
            previous = commit;
        }

        int lastAppend = entries.FindLastIndex(e => e.StartsWith("append", StringComparison.Ordinal));
        entries.FindLastIndex(commits[^1], e => e == "sync-start").Should().BeGreaterThan(lastAppend, "the final flush syncs after the last append");

        var reference = await world.ReferenceAsync(lines);
        (await world.OnlineAsync()).Keys.Select(k => k.Id).Should().HaveSameItemsAs(
            Enumerable.Range(0, reference.RowCount).Select(i => (string)reference[StandardColumns.EventId].GetValue(i)!));
    }

    /// <summary>An online store that notes each append (with its durability) and each sync, in order.</summary>
    private sealed class SyncLog(IOnlineStore inner, List<string> log) : DelegatingStore(inner)
    {
        public override async ValueTask<int> AppendAsync(string signal, IReadOnlyList<OnlineElement> elements, SourceCheckpoint? checkpoint, OnlineDurability durability, CancellationToken cancellationToken)
        {
            int added = await base.AppendAsync(signal, elements, checkpoint, durability, cancellationToken);
            lock (log)
            {
                log.Add($"append {durability}");
            }

            return added;
        }

        public override async ValueTask SyncAsync(CancellationToken cancellationToken)
        {
            // Noted before it starts: an append noted after this entry may not be covered by it.
            lock (log)
            {
                log.Add("sync-start");
            }

            await base.SyncAsync(cancellationToken);
            lock (log)
            {
                log.Add("sync");
            }
        }
    }

    [Fact]
    public async Task From_a_rebalance_revoke_until_its_assignment_the_runtime_says_it_awaits_partitions()
    {
        // weft stream --exit-when-idle reads this: a survivor must not stop while the group is handing
        // it a dead member's partitions.
        using var world = new StreamWorld();
        await world.AppendAsync(StreamWorld.Events(200, seed: 3));
        await using var host = await StreamHost.OpenAsync(world.Config, "weft-stream", CancellationToken.None);
        var source = new HandlerKept(host.Source);
        await using var runtime = await StreamRuntime.CreateAsync(world.Config, source, host.Store, null, new StreamOptions { MaxBatchRecords = 50, MaxWait = TimeSpan.FromMilliseconds(20) });
        (await runtime.StepAsync(CancellationToken.None)).Should().BePositive();
        runtime.AwaitingAssignment.Should().BeFalse("no rebalance has begun");

        await source.Handler!(true);
        runtime.AwaitingAssignment.Should().BeTrue("partitions were revoked and none assigned yet");
        await runtime.StepAsync(CancellationToken.None);
        runtime.AwaitingAssignment.Should().BeTrue("a step does not end the wait; only the assignment does");

        await source.Handler!(false);
        runtime.AwaitingAssignment.Should().BeFalse("the assignment was taken in");
    }

    /// <summary>A source that keeps the rebalance handler the runtime sets, so a test can call it as a consumer group would.</summary>
    private sealed class HandlerKept(IEventSource inner) : DelegatingSource(inner)
    {
        public Func<bool, Task>? Handler { get; private set; }

        public override void SetRebalanceHandler(Func<bool, Task>? handler) => Handler = handler;
    }

    /// <summary>A source that notes each commit in the shared log.</summary>
    private sealed class CommitLog(IEventSource inner, List<string> log) : DelegatingSource(inner)
    {
        public override async ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken)
        {
            lock (log)
            {
                log.Add("commit");
            }

            await base.CommitAsync(processedOffsets, cancellationToken);
        }
    }
}
