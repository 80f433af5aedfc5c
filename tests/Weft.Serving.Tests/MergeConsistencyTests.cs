using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Storage;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>A served sequence is the one merge: after batch seals buckets it equals <c>SequenceBuilder.Snapshot</c> for the same cut.</summary>
public sealed class MergeConsistencyTests
{
    /// <summary>
    /// The stream sees most events (not the late ones) with the first item categories; then items are
    /// corrected and the batch path recomputes three days, sealing all but the last 6 hours. A few events
    /// reach only the stream, in the open buckets. Served sequences must equal snapshots of the lake.
    /// </summary>
    private static async Task<ServingWorld> SealedWorldAsync(int seed)
    {
        var world = new ServingWorld();
        var events = ServingWorld.Events(700, seed);
        var rng = new Random(seed);
        var streamOnly = Enumerable.Range(0, 12).Select(i => new RawEvent($"live-{i}", rng.Next(1, 13), "save", ServingWorld.Now - rng.Next(1, 5 * 3600) * 1_000_000L, ServingWorld.Now - 1, rng.Next(1, 41), null)).ToList();
        await world.StreamAsync(events.Where(e => e.IngestTime - e.EventTime < ServingWorld.Hour));
        world.WriteItems(Enumerable.Range(1, 40).Where(i => i % 3 == 0).Select(i => (i, ServingWorld.Now - ServingWorld.Hour, $"fixed{i}")), append: true);
        await world.ArchiveAsync(events);
        var batch = await world.BatchAsync();
        batch.SealedBuckets.Should().NotBeEmpty().And.HaveCountLessThan(72, "the last 6 hours are inside the late allowance");

        // Arrived after the batch run: in the open buckets they are stream rows beside the batch's.
        await world.StreamAsync(streamOnly);
        return world;
    }

    public static TheoryData<string?, string?, int?> Cuts => new()
    {
        { null, null, null },                                                         // now, everything known
        { "2026-11-03T21:30:00Z", null, null },                                       // in the open buckets
        { "2026-11-02T12:00:00Z", null, 7 },                                          // sealed history, known_at = as_of, a short limit
        { "2026-11-03T20:00:00Z", "2026-11-03T08:00:00Z", null },                     // as served at an earlier time
    };

    [Theory]
    [MemberData(nameof(Cuts))]
    public async Task A_served_sequence_equals_the_snapshot_for_the_same_cut(string? asOf, string? knownAt, int? limit)
    {
        await using var world = await SealedWorldAsync(seed: 11);
        await world.StartAsync();
        using var client = world.Client();

        long asOfMicros = asOf is null ? ServingWorld.Now : Micros(asOf);
        long knownAtMicros = knownAt is null ? asOfMicros : Micros(knownAt);
        var snapshot = await world.SnapshotAsync(SequenceCut.For(world.Signal, asOfMicros, knownAtMicros, limit));
        int nonEmpty = 0, truncated = 0, mixed = 0;
        for (long user = 1; user <= 13; user++)
        {
            var query = new List<string>();
            if (asOf is not null)
            {
                query.Add("as_of=" + asOf);
            }

            if (knownAt is not null)
            {
                query.Add("known_at=" + knownAt);
            }

            if (limit is not null)
            {
                query.Add("limit=" + limit.Value.ToString(CultureInfo.InvariantCulture));
            }

            var response = await client.GetAsync($"v1/signals/engagement/users/{user}/sequence?{string.Join('&', query)}");
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var served = await ServingWorld.JsonAsync(response);
            var p = served.GetProperty("provenance");

            int row = Array.IndexOf(((PrimitiveColumn<long>)snapshot.Keys[StandardColumns.UserId]).Values, user);
            if (row < 0)
            {
                served.GetProperty("length").GetInt32().Should().Be(0, $"user {user} has nothing in the snapshot");
                continue;
            }

            nonEmpty++;
            int from = snapshot.Offsets[row], count = snapshot.Length(row);
            served.GetProperty("length").GetInt32().Should().Be(count, $"user {user}");
            p.GetProperty("truncated").GetBoolean().Should().Be(snapshot.Truncated[row], $"user {user}");
            (p.GetProperty("from_batch").GetInt32() + p.GetProperty("from_stream").GetInt32()).Should().Be(count);
            truncated += snapshot.Truncated[row] ? 1 : 0;
            mixed += p.GetProperty("from_batch").GetInt32() > 0 && p.GetProperty("from_stream").GetInt32() > 0 ? 1 : 0;
            var columns = served.GetProperty("columns");
            foreach (var field in world.Signal.SequenceColumns)
            {
                var values = columns.GetProperty(field.Name).EnumerateArray().ToList();
                values.Should().HaveCount(count);
                for (int k = 0; k < count; k++)
                {
                    Text(values[k], field.Type).Should().Be(Expected(snapshot.Elements[field.Name].GetValue(from + k), field.Type), $"user {user}, element {k}, column {field.Name}");
                }
            }
        }

        nonEmpty.Should().BeGreaterThan(8);
        if (asOf is null)
        {
            truncated.Should().BeGreaterThan(0, "max_length 20 cuts the three days of most users");
            mixed.Should().BeGreaterThan(0, "the open buckets mix batch rows with stream-only events");
        }
    }

    /// <summary>
    /// Events that reached Weft only through the stream (POST /v1/events into the embedded log) are in
    /// the stream's raw archive, so the batch run that seals their bucket keeps them: served before the
    /// seal from the stream, after it from the batch history, never gone.
    /// </summary>
    [Fact]
    public async Task Events_only_the_stream_saw_are_still_served_after_batch_seals_their_bucket()
    {
        await using var world = new ServingWorld();
        await world.ArchiveAsync(ServingWorld.Events(200, seed: 31));
        long twoDaysAgo = ServingWorld.Now - (2 * ServingWorld.Day);
        var streamOnly = Enumerable.Range(0, 6)
            .Select(i => new RawEvent($"posted-{i}", 700, "save", twoDaysAgo + (i * 60_000_000L), twoDaysAgo + (i * 60_000_000L) + 1_000_000, i + 1, null)).ToList();
        await world.StreamAsync(streamOnly);

        var batch = await world.BatchAsync();

        batch.SealedBuckets.Should().Contain(TimeBuckets.Format(TimeBuckets.StartOf(twoDaysAgo, TimeBucket.Hour), TimeBucket.Hour), "the posted events' bucket is sealed");
        await world.StartAsync();
        using var client = world.Client();
        var served = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/700/sequence"));
        served.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString())
            .Should().Equal(streamOnly.Select(e => e.EventId).Reverse());
        served.GetProperty("provenance").GetProperty("from_batch").GetInt32().Should().Be(streamOnly.Count, "the sealed bucket is the batch history's");
    }

    /// <summary>
    /// An event accepted late into a bucket the batch path sealed, arriving after the sealing run read
    /// the archives, is served at once (amended online) and is in the snapshot of the same cut; before, it
    /// was hidden until the next batch run. One that arrived before that run read is not: the run had it
    /// to read, and the sealed bucket is the batch path's.
    /// </summary>
    [Fact]
    public async Task An_event_accepted_late_into_a_sealed_bucket_after_the_sealing_run_read_is_served_at_once()
    {
        await using var world = new ServingWorld();
        await world.ArchiveAsync(ServingWorld.Events(200, seed: 33));
        var batch = await world.BatchAsync(); // reads at ServingWorld.Now (the world's clock)
        long twoDaysAgo = ServingWorld.Now - (2 * ServingWorld.Day);
        batch.SealedBuckets.Should().Contain(TimeBuckets.Format(TimeBuckets.StartOf(twoDaysAgo, TimeBucket.Hour), TimeBucket.Hour));
        var after = new RawEvent("late-after", 701, "save", twoDaysAgo, ServingWorld.Now + 60_000_000L, 3, null);
        var before = new RawEvent("late-before", 701, "save", twoDaysAgo + 1_000_000, ServingWorld.Now - (10 * 60_000_000L), 4, null);
        await world.StreamAsync([after, before]);

        await world.StartAsync();
        using var client = world.Client();
        var served = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/701/sequence?known_at=" + Uri.EscapeDataString(Timestamps.Format(ServingWorld.Now + ServingWorld.Day))));
        var snapshot = await world.SnapshotAsync(Weft.Engine.Sequences.SequenceCut.For(world.Signal, ServingWorld.Now, ServingWorld.Now + ServingWorld.Day));

        served.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()).Should().Contain("late-after").And.NotContain("late-before");
        int row = Enumerable.Range(0, snapshot.RowCount).Single(r => (long)snapshot.Keys[StandardColumns.UserId].GetValue(r)! == 701);
        Enumerable.Range(snapshot.Offsets[row], snapshot.Length(row)).Select(k => (string?)snapshot.Elements[StandardColumns.EventId].GetValue(k))
            .Should().Equal(served.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_multi_get_returns_the_same_sequences_as_single_reads_in_request_order()
    {
        await using var world = await SealedWorldAsync(seed: 12);
        await world.StartAsync();
        using var client = world.Client();

        var response = await client.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = new[] { 5, 1, 99, 5, 3 }, columns = new[] { "category", "item_id" }, limit = 8 });
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var body = await ServingWorld.JsonAsync(response);
        body.GetProperty("signal").GetString().Should().Be("engagement");
        var sequences = body.GetProperty("sequences").EnumerateArray().ToList();
        sequences.Select(s => s.GetProperty("user_id").GetInt64()).Should().Equal(5, 1, 99, 3);
        sequences[2].GetProperty("length").GetInt32().Should().Be(0);
        foreach (var s in sequences)
        {
            s.GetProperty("columns").EnumerateObject().Select(c => c.Name).Should().Equal("event_id", "event_time", "category", "item_id");
            var single = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{s.GetProperty("user_id").GetInt64()}/sequence?columns=category,item_id&limit=8"));
            single.GetProperty("columns").GetRawText().Should().Be(s.GetProperty("columns").GetRawText());
            single.GetProperty("provenance").GetRawText().Should().Be(s.GetProperty("provenance").GetRawText());
        }
    }

    /// <summary>
    /// A multi-get answer larger than what the server writes before it sends (it is sent as it is
    /// written, not held whole) is still one JSON document, each sequence as a single read gives it.
    /// </summary>
    [Fact]
    public async Task A_multi_get_answer_sent_in_parts_holds_the_same_sequences_as_single_reads()
    {
        await using var world = new ServingWorld(maxLength: 1000);
        await world.StreamAsync(ServingWorld.Events(24_000, seed: 15, users: 30));
        await world.StartAsync();
        using var client = world.Client();

        var users = Enumerable.Range(1, 30).Reverse().ToArray();
        var response = await client.PostAsJsonAsync("v1/signals/engagement/sequences", new { user_ids = users });
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var text = await response.Content.ReadAsByteArrayAsync();
        text.Length.Should().BeGreaterThan(3 * Weft.Serving.Http.ServingEndpoints.MultiGetSendBytes, "the answer spans several sends");
        var sequences = JsonDocument.Parse(text).RootElement.GetProperty("sequences").EnumerateArray().ToList();
        sequences.Select(s => s.GetProperty("user_id").GetInt32()).Should().Equal(users);
        foreach (var s in sequences)
        {
            var single = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{s.GetProperty("user_id").GetInt64()}/sequence"));
            single.GetProperty("length").GetInt32().Should().BePositive();
            single.GetProperty("columns").GetRawText().Should().Be(s.GetProperty("columns").GetRawText());
        }
    }

    /// <summary>
    /// What a multi-get writes reaches the connection in parts of about <see cref="Weft.Serving.Http.ServingEndpoints.MultiGetSendBytes"/>
    /// while it is written, not all at the end: the response is never held whole.
    /// </summary>
    [Fact]
    public async Task A_multi_get_answer_is_sent_as_it_is_written()
    {
        var connection = new SendsRecorded();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Response.Body = connection;
        long sent = 0;
        var sequence = new string('x', 10_000);
        await using (var w = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            w.WriteStartArray();
            for (int i = 0; i < 100; i++)
            {
                w.WriteStringValue(sequence);
                sent = await Weft.Serving.Http.ServingEndpoints.SendAsWrittenAsync(context, w, sent);
                connection.Written.Should().BeGreaterThan(w.BytesCommitted + w.BytesPending - Weft.Serving.Http.ServingEndpoints.MultiGetSendBytes - 20_000, $"after item {i} at most one part waits");
            }

            w.WriteEndArray();
        }

        await context.Response.BodyWriter.FlushAsync();
        connection.Sends.Should().BeInRange(3, 6, "about 1 MB in parts of 256 KB");
        JsonDocument.Parse(connection.ToArray()).RootElement.GetArrayLength().Should().Be(100);
    }

    /// <summary>A connection that counts the sends (a pipe's flush writes its segments, then flushes the stream).</summary>
    private sealed class SendsRecorded : MemoryStream
    {
        public int Sends { get; private set; }

        public long Written => Length;

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Sends++;
            return base.FlushAsync(cancellationToken);
        }
    }

    [Fact]
    public async Task A_read_only_server_without_caches_serves_the_same_sequences()
    {
        await using var world = await SealedWorldAsync(seed: 14);
        await world.StartAsync();
        var config = world.Config;
        await using var reader = await ServingServer.StartAsync(config, ServingOptions.FromConfig(config) with { Stream = ServingStreamMode.Off }, world.Clock,
            l => l.SetMinimumLevel(LogLevel.Warning));
        reader.State.Sequences.Cache.Should().BeNull("only a server that sees every write may cache");
        using var cached = world.Client();
        using var direct = new HttpClient { BaseAddress = new Uri(reader.Urls[0] + "/") };
        direct.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ServingWorld.HomeKey);

        for (long user = 1; user <= 12; user++)
        {
            // The cached server remembers each timeline's last cut and reuses its result when no row lies
            // between the two cuts: walk as_of and known_at in small steps across the rows to test that.
            var steps = Enumerable.Range(0, 24).Select(i => ServingWorld.Now - (6 * ServingWorld.Hour) + (i * 13 * 60_000_000L))
                .Select((t, i) => $"?as_of={Timestamps.Format(t)}" + (i % 3 == 0 ? $"&known_at={Timestamps.Format(t - ServingWorld.Hour)}" : "") + (i % 4 == 0 ? "&limit=9" : ""));
            foreach (var query in new[] { "", "?limit=5&columns=category", "?as_of=2026-11-03T22:00:00Z&known_at=2026-11-03T21:00:00Z" }.Concat(steps))
            {
                string url = $"v1/signals/engagement/users/{user}/sequence{query}";
                var a = await ServingWorld.JsonAsync(await cached.GetAsync(url));
                a = await ServingWorld.JsonAsync(await cached.GetAsync(url)); // the second read comes from the caches
                var b = await ServingWorld.JsonAsync(await direct.GetAsync(url));
                b.GetProperty("columns").GetRawText().Should().Be(a.GetProperty("columns").GetRawText(), url);
                foreach (var field in new[] { "fingerprint", "stream_watermark", "batch_sealed_through", "from_stream", "from_batch", "truncated", "as_of", "known_at" })
                {
                    b.GetProperty("provenance").GetProperty(field).GetRawText().Should().Be(a.GetProperty("provenance").GetProperty(field).GetRawText(), $"{url} {field}");
                }

                b.GetProperty("provenance").GetProperty("lag_ms").ValueKind.Should().Be(JsonValueKind.Null, "this server runs no stream");
            }
        }

        var post = await direct.PostAsync("v1/events", new StringContent("{}"));
        post.StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await ServingWorld.JsonAsync(post)).GetProperty("error").GetString().Should().Contain("runs no streaming runtime");
    }

    [Fact]
    public async Task Provenance_never_names_a_stream_watermark_older_than_an_element_it_serves()
    {
        // A read-only server sees appends it did not make (here: a stream run by another host after it
        // started), so only what it reads tells it how far the stream has come. The same holds for a
        // streaming server between an append's commit and its report back.
        await using var world = new ServingWorld();
        var config = world.Config;
        await using var reader = await ServingServer.StartAsync(config, ServingOptions.FromConfig(config) with { Stream = ServingStreamMode.Off }, world.Clock,
            l => l.SetMinimumLevel(LogLevel.Warning));
        using var client = new HttpClient { BaseAddress = new Uri(reader.Urls[0] + "/") };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ServingWorld.HomeKey);
        var before = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/1/sequence"));
        before.GetProperty("provenance").GetProperty("stream_watermark").ValueKind.Should().Be(JsonValueKind.Null, "nothing has been streamed yet");

        var events = ServingWorld.Events(300, seed: 21);
        await world.StreamAsync(events);

        long served = long.MinValue;
        for (long user = 1; user <= 12; user++)
        {
            var body = await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"));
            var p = body.GetProperty("provenance");
            p.GetProperty("from_batch").GetInt32().Should().Be(0, "no batch has run");
            var times = body.GetProperty("columns").GetProperty("event_time").EnumerateArray().Select(e => Micros(e.GetString()!)).ToList();
            times.Should().NotBeEmpty();
            served = Math.Max(served, times.Max());
            p.GetProperty("stream_watermark").ValueKind.Should().Be(JsonValueKind.String, $"user {user}: the server has served stream elements");
            Micros(p.GetProperty("stream_watermark").GetString()!).Should().BeGreaterThanOrEqualTo(served, $"user {user}: every element served so far came from the stream");
        }
    }

    [Fact]
    public async Task A_new_batch_commit_is_served_after_the_history_reloads()
    {
        await using var world = new ServingWorld();
        var events = ServingWorld.Events(300, seed: 13);
        await world.StreamAsync(events);
        await world.StartAsync();
        using var client = world.Client();
        var before = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/4/sequence"));
        before.GetProperty("provenance").GetProperty("batch_sealed_through").ValueKind.Should().Be(JsonValueKind.Null);
        before.GetProperty("provenance").GetProperty("from_batch").GetInt32().Should().Be(0);

        // Corrected categories, then a batch run that seals the first 66 hours.
        world.WriteItems(Enumerable.Range(1, 40).Select(i => (i, ServingWorld.Now - ServingWorld.Hour, $"fixed{i}")), append: true);
        await world.ArchiveAsync(events);
        await world.BatchAsync();
        await world.Server.RefreshHistoryAsync(CancellationToken.None);

        var after = await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/4/sequence"));
        var p = after.GetProperty("provenance");
        p.GetProperty("batch_sealed_through").GetString().Should().Be("2026-11-03T18:00:00.000000Z");
        p.GetProperty("from_batch").GetInt32().Should().Be(after.GetProperty("length").GetInt32(), "batch copies win over stream copies of the same events");
        after.GetProperty("columns").GetProperty("category").EnumerateArray().Where(c => c.ValueKind == JsonValueKind.String)
            .Should().OnlyContain(c => c.GetString()!.StartsWith("fixed", StringComparison.Ordinal));
        var snapshot = await world.SnapshotAsync(SequenceCut.For(world.Signal, ServingWorld.Now));
        int row = Array.IndexOf(((PrimitiveColumn<long>)snapshot.Keys[StandardColumns.UserId]).Values, 4L);
        after.GetProperty("columns").GetProperty("event_id").EnumerateArray().Select(e => e.GetString())
            .Should().Equal(Enumerable.Range(snapshot.Offsets[row], snapshot.Length(row)).Select(k => (string?)snapshot.Elements[StandardColumns.EventId].GetValue(k)));
    }

    [Fact]
    public async Task A_stream_flush_leaves_the_history_version_so_cached_and_fresh_reads_name_the_same_one()
    {
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(200, seed: 19));
        await world.StartAsync();
        using var client = world.Client();
        var history = world.Server.State.ByName["engagement"].History;
        await world.Server.RefreshHistoryAsync(CancellationToken.None);
        int loads = history.Loads;
        long Version(JsonElement body) => body.GetProperty("provenance").GetProperty("history_version").GetInt64();
        long version = Version(await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/1/sequence")));

        // A stream flush's commit (the server's own stream holds the log): stream rows, which serving reads from the online store.
        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        await foreach (var batch in table.ReadAsync(null, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath)))
        {
            await table.AppendAsync(batch.Project(table.Schema), EventPartitioner.ByTimeBucket(world.Signal.Bucket, EventLayout.StreamPath),
                new Dictionary<string, string> { [LakeParameters.Path] = EventLayout.StreamPath });
            break;
        }

        (await table.Log.GetSnapshotAsync()).Version.Should().BeGreaterThan(version);
        await world.Server.RefreshHistoryAsync(CancellationToken.None);

        history.Loads.Should().Be(loads, "stream commits add no batch rows");
        Version(await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/1/sequence"))).Should().Be(version, "a read served again");
        Version(await ServingWorld.JsonAsync(await client.GetAsync("v1/signals/engagement/users/2/sequence"))).Should().Be(version, "a user not read before");
    }

    [Fact]
    public async Task A_compaction_of_the_lake_changes_no_served_row_and_needs_no_history_reload()
    {
        await using var world = new ServingWorld();
        var events = ServingWorld.Events(300, seed: 17);
        // Two streams over the same hours: every bucket gets two small files.
        await world.StreamAsync(events.Where((_, i) => i % 2 == 0));
        await world.StreamAsync(events.Where((_, i) => i % 2 == 1));
        await world.StartAsync();
        using var client = world.Client();
        var history = world.Server.State.ByName["engagement"].History;
        await world.Server.RefreshHistoryAsync(CancellationToken.None);
        int loads = history.Loads;
        var before = new List<string>();
        for (long user = 1; user <= 12; user++)
        {
            before.Add((await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"))).GetProperty("columns").GetRawText());
        }

        var table = await EventTable.OpenAsync(world.Config.EnrichedTable("engagement"));
        (await table.CompactAsync(null, minFiles: 2)).FilesRemoved.Should().BeGreaterThan(0);
        await world.Server.RefreshHistoryAsync(CancellationToken.None);

        history.Loads.Should().Be(loads, "a compaction commit changes no row");
        for (long user = 1; user <= 12; user++)
        {
            (await ServingWorld.JsonAsync(await client.GetAsync($"v1/signals/engagement/users/{user}/sequence"))).GetProperty("columns").GetRawText()
                .Should().Be(before[(int)user - 1], $"user {user}");
        }
    }

    private static long Micros(string iso) => Timestamps.ToMicros(DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));

    private static string Text(JsonElement value, WeftType type) =>
        value.ValueKind switch
        {
            JsonValueKind.Null => "null",
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Number when type.Kind is ScalarKind.Float32 or ScalarKind.Float64 => value.GetDouble().ToString("R", CultureInfo.InvariantCulture),
            _ => value.GetRawText(),
        };

    private static string Expected(object? value, WeftType type) =>
        value switch
        {
            null => "null",
            long micros when type.Kind == ScalarKind.Timestamp => Timestamps.Format(micros),
            string s => s,
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString()!,
        };
}
