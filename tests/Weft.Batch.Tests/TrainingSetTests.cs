using System.Globalization;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Sequences;
using Weft.Parquet.Tests;
using Xunit;

namespace Weft.Batch.Tests;

/// <summary>Point-in-time training sets and snapshot files, read back by DuckDB as a user would.</summary>
public sealed class TrainingSetTests
{
    private const long User = 99;
    private static readonly long T0 = BatchWorld.Start + BatchWorld.Day + 12 * BatchWorld.Hour;

    /// <summary>A world with one late event and one corrected embedding around a label at T0 + 1h.</summary>
    private static async Task<BatchWorld> LateAndCorrectedAsync()
    {
        var world = await BatchWorld.CreateAsync(seed: 5, events: 120, write: false);
        world.Events.Add(new RawEvent("on-time", User, "save", T0 - BatchWorld.Hour, T0 - BatchWorld.Hour + 1_000, 500, null));
        world.Events.Add(new RawEvent("late", User, "save", T0, T0 + 10 * BatchWorld.Hour, 27, null)); // ingested 10 h after it happened
        world.Items.Add(new ItemVersion(500, BatchWorld.Start - BatchWorld.Day, "old", [1, 1, 1, 1]));
        world.Items.Add(new ItemVersion(500, T0 + 5 * BatchWorld.Hour, "fixed", [2, 2, 2, 2])); // a correction, after the label
        await world.WriteAsync();
        return world;
    }

    private static async Task<(SignalEnvironment Env, EnrichedRows Rows)> BatchAsync(BatchWorld world)
    {
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, BatchWorld.Start + 3 * BatchWorld.Day), null, CancellationToken.None);
        var lake = await EnrichedLake.OpenAsync(world.Config.EnrichedTable("engagement"), env.Definition, CancellationToken.None);
        return (env, await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None));
    }

    [Fact]
    public async Task A_late_event_is_in_the_corrected_training_set_and_not_in_the_as_served_one()
    {
        using var world = await LateAndCorrectedAsync();
        var (env, rows) = await BatchAsync(world);
        long label = T0 + BatchWorld.Hour;
        var keys = new EventBatch([new FieldDefinition("label", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, [1])]);

        var corrected = SequenceBuilder.ForLabels(rows, env.Definition, keys, [User], [label], knownAtLabelTime: false, env.Enrichments);
        var asServed = SequenceBuilder.ForLabels(rows, env.Definition, keys, [User], [label], knownAtLabelTime: true, env.Enrichments);

        Ids(corrected).Should().Equal("late", "on-time");
        Ids(asServed).Should().Equal("on-time");
        // The correction to item 500 came after the label: as served, the model saw the old embedding.
        Value<float[]>(asServed, "embedding", 0).Should().Equal(1f, 1f, 1f, 1f);
        Value<string>(asServed, "category", 0).Should().Be("old");
        Value<float[]>(corrected, "embedding", 1).Should().Equal(2f, 2f, 2f, 2f);
        Value<string>(corrected, "category", 1).Should().Be("fixed");
    }

    [Fact]
    public async Task Nothing_after_the_label_time_enters_a_training_example()
    {
        using var world = await BatchWorld.CreateAsync(seed: 21, events: 400);
        var (env, rows) = await BatchAsync(world);
        var rng = new Random(21);
        var labels = Enumerable.Range(0, 60).Select(_ => (User: (long)rng.Next(1, 13), Time: BatchWorld.Start + (long)(rng.NextDouble() * 3 * BatchWorld.Day))).ToList();
        var keys = new EventBatch([new FieldDefinition("i", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, labels.Select((_, i) => (long)i).ToArray())]);
        foreach (bool asServed in new[] { false, true })
        {
            var set = SequenceBuilder.ForLabels(rows, env.Definition, keys, labels.Select(l => l.User).ToArray(), labels.Select(l => l.Time).ToArray(), asServed, env.Enrichments);
            var times = (PrimitiveColumn<long>)set.Elements[StandardColumns.EventTime];
            var ids = (StringColumn)set.Elements[StandardColumns.EventId];
            set.Offsets[^1].Should().BeGreaterThan(labels.Count, "the labels span three days of a dozen users' events, so the cut has elements to check");
            for (int i = 0; i < labels.Count; i++)
            {
                for (int k = set.Offsets[i]; k < set.Offsets[i + 1]; k++)
                {
                    times.Values[k].Should().BeLessThan(labels[i].Time, "event time is cut strictly before the label");
                    if (asServed)
                    {
                        var ingest = world.Events.Where(e => e.EventId == ids.Values[k]).Min(e => e.IngestTime);
                        ingest.Should().BeLessThanOrEqualTo(labels[i].Time, "as served, only what was ingested by the label time");
                    }
                }
            }
        }
    }

    /// <summary>
    /// A label's window is the read's at as_of = label_time, (label_time − lookback, label_time], less
    /// an event at label_time itself (it may be the labelled action): the event exactly a lookback
    /// before is out, as a snapshot or a served read at label_time leaves it out, and the one a
    /// microsecond later is in. (The window's start once moved back with its end and took the first.)
    /// </summary>
    [Fact]
    public async Task A_labels_window_starts_where_a_read_at_the_label_time_starts_and_leaves_the_labelled_action_out()
    {
        using var world = await BatchWorld.CreateAsync(seed: 5, events: 120, write: false);
        long label = BatchWorld.Start + (5 * BatchWorld.Day / 2);
        long lookback = 2 * BatchWorld.Day;
        foreach (var (id, time) in new[] { ("edge", label - lookback), ("inside", label - lookback + 1), ("last", label - 1), ("action", label) })
        {
            world.Events.Add(new RawEvent(id, User, "save", time, time, 500, null));
        }

        world.Items.Add(new ItemVersion(500, BatchWorld.Start - BatchWorld.Day, "c", [1, 1, 1, 1]));
        await world.WriteAsync();
        var (env, rows) = await BatchAsync(world);
        env.Definition.Lookback.Should().Be(TimeSpan.FromDays(2), "the events above sit on this lookback's edges");
        var keys = new EventBatch([new FieldDefinition("label", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, [1])]);

        var snapshot = SequenceBuilder.Snapshot(rows, env.Definition, SequenceCut.For(env.Definition, label), env.Enrichments);
        var read = Enumerable.Range(0, snapshot.RowCount).Single(r => (long)snapshot.Keys[StandardColumns.UserId].GetValue(r)! == User);
        var readIds = Enumerable.Range(snapshot.Offsets[read], snapshot.Length(read)).Select(k => (string)snapshot.Elements[StandardColumns.EventId].GetValue(k)!).ToList();
        readIds.Should().Equal("action", "last", "inside");
        foreach (bool asServed in new[] { false, true })
        {
            var set = SequenceBuilder.ForLabels(rows, env.Definition, keys, [User], [label], asServed, env.Enrichments);
            Ids(set).Should().Equal(readIds.Where(id => id != "action"));
        }
    }

    /// <summary>
    /// A corrected example holds the latest (corrected) enrichment versions also for events only the
    /// stream has written so far (an open bucket no batch run has recomputed): those carry the version the
    /// stream knew when it read them, which a correction since has replaced. They went into the corrected
    /// set as the stream stored them, so one example mixed corrected and uncorrected values of one item.
    /// </summary>
    [Fact]
    public async Task A_corrected_example_takes_the_corrected_enrichment_also_for_an_event_only_the_stream_wrote()
    {
        using var world = await BatchWorld.CreateAsync(seed: 5, events: 120, write: false);
        long batched = T0 - BatchWorld.Hour, streamed = T0 + BatchWorld.Day; // the batch run covers the first day and a half, not the second event's bucket
        world.Events.Add(new RawEvent("batched", User, "save", batched, batched + 1_000, 500, null));
        world.Items.Add(new ItemVersion(500, BatchWorld.Start - BatchWorld.Day, "old", [1, 1, 1, 1]));
        world.Items.Add(new ItemVersion(500, streamed + BatchWorld.Hour, "fixed", [2, 2, 2, 2])); // corrected after the stream read the second event
        await world.WriteAsync();
        var env = await SignalEnvironment.LoadAsync(world.Config, "engagement");
        await new BatchJob(env).RunAsync(new BatchRequest("engagement", BatchWorld.Start, T0 + BatchWorld.Hour), null, CancellationToken.None);
        var path = world.Config.EnrichedTable("engagement");
        var table = await Weft.Storage.EventTable.OpenAsync(path);
        var one = new List<EventBatch>();
        await foreach (var part in table.ReadAsync())
        {
            one.Add(part);
        }

        // The stream's row of an event on the same item, enriched as the stream knew the item then ("old").
        var all = EventBatch.Concat(env.Signal.EnrichedSchema, one);
        int at = Enumerable.Range(0, all.RowCount).Single(i => (string?)all[StandardColumns.EventId].GetValue(i) == "batched");
        var row = all.Gather([at]);
        var columns = row.Columns.ToArray();
        void Set(string name, Column column) => columns[row.Schema.IndexOf(row.Schema.Single(f => f.Name == name))] = column;
        Set(StandardColumns.EventId, new StringColumn(["streamed"]));
        Set(StandardColumns.EventTime, new PrimitiveColumn<long>(WeftType.Timestamp, [streamed]));
        Set(StandardColumns.IngestTime, new PrimitiveColumn<long>(WeftType.Timestamp, [streamed + 1_000]));
        Set("category", new StringColumn(["old"]));
        Set("embedding", new ListColumn<float>(WeftType.ListOf(ScalarKind.Float32), [[1, 1, 1, 1]]));
        await table.AppendAsync(new EventBatch(row.Schema, columns), Weft.Storage.EventPartitioner.ByTimeBucket(env.Definition.Bucket, Weft.Storage.EventLayout.StreamPath));
        var lake = await EnrichedLake.OpenAsync(path, env.Definition, CancellationToken.None);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, CancellationToken.None);
        var keys = new EventBatch([new FieldDefinition("label", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, [1])]);
        long label = streamed + (2 * BatchWorld.Hour);

        var corrected = SequenceBuilder.ForLabels(rows, env.Definition, keys, [User], [label], knownAtLabelTime: false, env.Enrichments);
        var asServed = SequenceBuilder.ForLabels(rows, env.Definition, keys, [User], [label], knownAtLabelTime: true, env.Enrichments);

        Ids(corrected).Should().StartWith(["streamed", "batched"]);
        Value<string>(corrected, "category", 0).Should().Be("fixed", "the correction, not the version the stream stored");
        Value<float[]>(corrected, "embedding", 0).Should().Equal(2f, 2f, 2f, 2f);
        Value<string>(corrected, "category", 1).Should().Be("fixed");
        Value<string>(asServed, "category", 0).Should().Be("fixed", "known by the label time");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(50)]
    public async Task A_training_set_built_in_parts_of_a_few_elements_equals_the_one_built_whole(int elementsPerPart)
    {
        using var world = await BatchWorld.CreateAsync(seed: 22, events: 400);
        var (env, rows) = await BatchAsync(world);
        var rng = new Random(elementsPerPart);
        // Users 13 and 14 have no events: their labels get empty sequences, also at a part's edge.
        var labels = Enumerable.Range(0, 80).Select(_ => (User: (long)rng.Next(1, 15), Time: BatchWorld.Start + (long)(rng.NextDouble() * 3 * BatchWorld.Day))).ToList();
        var keys = new EventBatch([new FieldDefinition("i", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, labels.Select((_, i) => (long)i).ToArray())]);
        long[] users = [.. labels.Select(l => l.User)], times = [.. labels.Select(l => l.Time)];
        foreach (bool asServed in new[] { false, true })
        {
            var whole = SequenceBuilder.ForLabels(rows, env.Definition, keys, users, times, asServed, env.Enrichments);
            var parts = SequenceBuilder.ForLabelsInParts(rows, env.Definition, keys, users, times, asServed, env.Enrichments, elementsPerPart: elementsPerPart).ToList();

            parts.Should().HaveCountGreaterThan(1);
            parts.Sum(p => p.RowCount).Should().Be(labels.Count);
            var keysOut = parts.SelectMany(p => Enumerable.Range(0, p.RowCount).Select(r => (long)p.Keys["i"].GetValue(r)!)).ToList();
            keysOut.Should().Equal(Enumerable.Range(0, labels.Count).Select(i => (long)i));
            var truncatedOut = parts.SelectMany(p => p.Truncated).ToList();
            truncatedOut.Should().Equal(whole.Truncated);
            var sequences = parts.SelectMany(p => Enumerable.Range(0, p.RowCount).Select(r => Sequence(p, r))).ToList();
            sequences.Should().Equal(Enumerable.Range(0, whole.RowCount).Select(r => Sequence(whole, r)));
        }

        static string Sequence(SequenceTable table, int row) => string.Join("|", Enumerable.Range(table.Offsets[row], table.Length(row))
            .Select(k => string.Join(",", table.Elements.Columns.Select(c => c.GetValue(k) is Array a ? string.Join(";", a.Cast<object>()) : c.GetValue(k)?.ToString() ?? "null"))));
    }

    [Fact]
    public async Task DuckDB_reads_a_training_set_file_with_list_columns_nulls_embeddings_and_padding()
    {
        using var world = await LateAndCorrectedAsync();
        var (env, rows) = await BatchAsync(world);
        var keys = new EventBatch(
            [new FieldDefinition(StandardColumns.UserId, WeftType.Int64), new FieldDefinition("label_time", WeftType.Timestamp), new FieldDefinition("clicked", WeftType.Bool)],
            [new PrimitiveColumn<long>(WeftType.Int64, [User, User, 4242]), new PrimitiveColumn<long>(WeftType.Timestamp, [T0 + BatchWorld.Hour, T0 + 12 * BatchWorld.Hour, T0]), new PrimitiveColumn<bool>(WeftType.Bool, [true, false, true])]);
        long[] users = [User, User, 4242];
        long[] times = [T0 + BatchWorld.Hour, T0 + 12 * BatchWorld.Hour, T0];
        var set = SequenceBuilder.ForLabels(rows, env.Definition, keys, users, times, knownAtLabelTime: false, env.Enrichments);

        using var dir = new TempDir();
        string plain = dir.File("plain.parquet"), padded = dir.File("padded.parquet");
        await SequenceFiles.WriteAsync(plain, set, env.Definition, new Dictionary<string, string> { ["weft.mode"] = "corrected" }, pad: null, nullable: null, CancellationToken.None);
        await SequenceFiles.WriteAsync(padded, set, env.Definition, new Dictionary<string, string>(), pad: 3, nullable: null, CancellationToken.None);

        var results = await DuckDb.RunAsync(
            $"SELECT user_id, epoch_us(label_time), clicked, length, truncated, event_id, item_id, dwell_ms, category, embedding FROM read_parquet({DuckDb.Quote(plain)}) ORDER BY label_time",
            $"SELECT length, mask, len(event_id), len(embedding), embedding[len(embedding)] FROM read_parquet({DuckDb.Quote(padded)}) ORDER BY label_time",
            $"SELECT value FROM parquet_kv_metadata({DuckDb.Quote(plain)}) WHERE key = 'weft.mode'");
        var rowsOut = results[0].Rows;
        rowsOut.Should().HaveCount(3);
        for (int r = 0; r < 3; r++)
        {
            int i = Array.IndexOf(times, long.Parse(rowsOut[r][1].GetString()!, CultureInfo.InvariantCulture));
            rowsOut[r][0].GetString().Should().Be(users[i].ToString(CultureInfo.InvariantCulture));
            rowsOut[r][3].GetInt32().Should().Be(set.Length(i));
            rowsOut[r][5].EnumerateArray().Select(e => e.GetString()).Should().Equal(Enumerable.Range(set.Offsets[i], set.Length(i)).Select(k => (string)set.Elements[StandardColumns.EventId].GetValue(k)!));
            var dwell = rowsOut[r][7].EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? (long?)null : e.GetInt64());
            dwell.Should().Equal(Enumerable.Range(set.Offsets[i], set.Length(i)).Select(k => (long?)set.Elements["dwell_ms"].GetValue(k)), "null elements stay null");
            var embeddings = rowsOut[r][9].EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).ToList();
            embeddings.Should().BeEquivalentTo(Enumerable.Range(set.Offsets[i], set.Length(i)).Select(k => (float[]?)set.Elements["embedding"].GetValue(k)), o => o.WithStrictOrdering());
        }

        rowsOut.Should().Contain(r => r[3].GetInt32() == 0, "a label whose user has no events gets an empty sequence, not a missing row");
        foreach (var row in results[1].Rows)
        {
            Int(row[2]).Should().Be(3, "padded to exactly 3");
            Int(row[3]).Should().Be(3);
            row[1].EnumerateArray().Count(m => m.GetBoolean()).Should().Be(row[0].GetInt32(), "the mask marks the real elements");
        }

        results[2].Rows.Single()[0].GetString().Should().Be("corrected");
    }

    /// <summary>DuckDB's integers: INTEGER as a number, BIGINT as decimal text (see duckdb.mjs).</summary>
    private static long Int(JsonElement e) => e.ValueKind == JsonValueKind.String ? long.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetInt64();

    private static List<string> Ids(SequenceTable table) =>
        Enumerable.Range(table.Offsets[0], table.Length(0)).Select(k => (string)table.Elements[StandardColumns.EventId].GetValue(k)!).ToList();

    private static T? Value<T>(SequenceTable table, string column, int k) => (T?)table.Elements[column].GetValue(table.Offsets[0] + k);
}
