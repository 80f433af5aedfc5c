using System.Diagnostics;
using System.Runtime.CompilerServices;
using Weft.Definitions;
using Weft.Engine;
using Microsoft.Extensions.Logging;
using Weft.Batch;
using Weft.Engine.Configuration;
using Weft.Engine.Sequences;
using Weft.Serving;
using Weft.Quality;
using Weft.Storage;
using Weft.Streaming.Runtime;

namespace Weft.Cli;

/// <summary><c>weft demo</c>: everything that exists, end to end, on generated data and embedded defaults.</summary>
internal static class Demo
{
    /// <summary>The fewest events with which every step has something to show (a watched user, late events, both event types).</summary>
    public const int MinEvents = 1_000;

    /// <summary>The file that marks a directory as the demo's own: only such a directory is deleted before a run.</summary>
    public const string Marker = ".weft-demo";

    /// <summary>
    /// Why the demo must not run in <paramref name="dir"/>, or null: it starts each run from an empty
    /// directory (its tables are append-only), so it deletes one it wrote before, and refuses a file or a
    /// directory holding anything else rather than delete what it did not write.
    /// </summary>
    public static string? RefuseDirectory(string dir)
    {
        if (File.Exists(dir))
        {
            return $"'{dir}' is a file, not a directory";
        }

        // Only the marker the demo writes says a directory is the demo's: its layout (weft.json, signals/,
        // raw/) is every deployment's too, and the demo would have deleted one.
        return Directory.Exists(dir) && !File.Exists(Path.Combine(dir, Marker)) && Directory.EnumerateFileSystemEntries(dir).Any()
            ? $"'{dir}' holds files the demo did not write (it has no {Marker}); the demo empties its directory before each run, so choose a new or empty one (delete it yourself if it is an earlier demo's)"
            : null;
    }

    public static async Task<int> RunAsync(string dir, int events, TextWriter o, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        if (RefuseDirectory(dir) is { } problem)
        {
            throw new ArgumentException($"--dir {problem}", nameof(dir));
        }

        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true); // a fresh run each time: tables are append-only
        }

        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, Marker), "written by weft demo, which deletes this directory before each run\n", ct).ConfigureAwait(false);
        await o.WriteLineAsync($"Weft demo — working in {dir}").ConfigureAwait(false);

        // 1. Definitions as code → canonical JSON.
        await o.WriteLineAsync("\n[1/10] compile the example C# definitions to canonical JSON").ConfigureAwait(false);
        var compiled = DefinitionCompiler.Compile(EmbeddedDefinitions(), ct);
        if (compiled.Errors.Count > 0)
        {
            foreach (var e in compiled.Errors)
            {
                await o.WriteLineAsync("  " + e).ConfigureAwait(false);
            }

            return 1;
        }

        foreach (var (file, fingerprint) in await DefinitionCompiler.WriteAsync(compiled.Signals, Path.Combine(dir, "signals"), ct).ConfigureAwait(false))
        {
            await o.WriteLineAsync($"  {Path.GetFileName(file),-18} sha256 {fingerprint[..16]}…").ConfigureAwait(false);
        }

        // 2. Synthetic raw data: a landing log (as delivered) and a raw archive table.
        // A week ending two days before today (UTC): served reads cut at now fall within the signals'
        // lookback whatever the day the demo runs (a fixed week fell out of the 30-day lookback a month
        // later), and every bucket is past the lateness the batch path waits out before sealing it.
        var today = new DateTimeOffset(DateTimeOffset.UtcNow.UtcDateTime.Date, TimeSpan.Zero);
        var gen = new GenOptions { Events = events, Start = today.AddDays(-new GenOptions().Days - 2) };
        await o.WriteLineAsync($"\n[2/10] generate {events:N0} raw events (power-law users/items, diurnal, late, duplicated, malformed)").ConfigureAwait(false);
        var data = await SyntheticData.GenerateAsync(Path.Combine(dir, "raw"), gen, ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  landing log   {data.Deliveries:N0} deliveries: {data.Late:N0} late, {data.Duplicates:N0} duplicated, {data.Bad:N0} malformed").ConfigureAwait(false);
        await o.WriteLineAsync($"  raw archive   {data.Archived:N0} well-formed deliveries in a Delta table, one bucket per day").ConfigureAwait(false);

        var registry = ExecutorRegistry.CreateDefault();
        var tables = new Dictionary<string, EnrichmentTable>(StringComparer.Ordinal);
        foreach (var source in compiled.Signals.SelectMany(s => s.EnrichmentSources).DistinctBy(s => s.Name))
        {
            var versions = await ReadAllAsync(await EventTable.OpenAsync(data.ItemsTable, ct).ConfigureAwait(false), null, null, ct).ConfigureAwait(false);
            tables[source.Name] = EnrichmentTable.Build(source, versions.Project(EnrichmentTable.RowSchema(source)));
            await o.WriteLineAsync($"  enrichment    '{source.Name}': {tables[source.Name].EntityCount:N0} entities, {versions.RowCount:N0} versions ({data.Corrections} corrections)").ConfigureAwait(false);
        }

        var archive = await ReadAllAsync(await EventTable.OpenAsync(data.EventsTable, ct).ConfigureAwait(false), null, null, ct).ConfigureAwait(false);

        // 3. Each signal in both scheduling shapes.
        await o.WriteLineAsync("\n[3/10] run each signal in both shapes: the stream shape on the landing log (256-event micro-batches), the batch shape on the archive table").ConfigureAwait(false);
        long asOf = Timestamps.ToMicros(gen.Start.AddDays(gen.Days));
        var options = new RunOptions { AsOfMicros = asOf };
        var outputs = new List<(CompiledSignal Signal, EventBatch Stream, EventBatch Batch, SignalRun BatchRun)>();
        foreach (var definition in compiled.Signals)
        {
            var signal = CompiledSignal.Compile(definition, registry, tables);
            var parser = new RawEventParser(signal);

            var sw = Stopwatch.StartNew();
            var landed = parser.Parse(JsonRows.ReadLines(data.LandingFile));
            var streamRun = signal.StartRun(new ExecutorContext(definition), options);
            var streamed = new List<EventBatch>();
            await streamRun.ProcessStreamAsync(MicroBatches(landed.Events, 256, ct), (b, _) =>
            {
                streamed.Add(b);
                return ValueTask.CompletedTask;
            }, ct).ConfigureAwait(false);
            var streamTime = sw.Elapsed;

            sw.Restart();
            var archived = parser.ParseTable(archive, data.EventsTable);
            var batchRun = signal.StartRun(new ExecutorContext(definition), options);
            var batchOut = await batchRun.ProcessTableAsync(archived.Events, ct).ConfigureAwait(false);
            var batchTime = sw.Elapsed;

            var streamOut = streamed.Count == 0 ? EventBatch.Empty(signal.EnrichedSchema) : EventBatch.Concat(signal.EnrichedSchema, streamed);
            var batchSeq = batchRun.Assembler.Snapshot(asOf);
            var streamSeq = streamRun.Assembler.Snapshot(asOf);
            bool same = batchSeq.Count == streamSeq.Count
                && batchSeq.Zip(streamSeq).All(p => p.First.UserId == p.Second.UserId && JsonRows.Canonical(p.First.Elements) == JsonRows.Canonical(p.Second.Elements))
                && Sorted(batchOut) == Sorted(streamOut);

            long duplicates = streamRun.Stages.OfType<DedupExecutor>().Sum(d => d.Duplicates);
            await o.WriteLineAsync($"  signal '{definition.Name}' (tenant {definition.Tenant}, {definition.EventTypes.Length} event type(s), max_length {definition.MaxLength})").ConfigureAwait(false);
            await o.WriteLineAsync($"    stream: {landed.Events.RowCount:N0} events parsed, {landed.SkippedOtherTypes:N0} of other types, {landed.DeadLetters.Count} malformed → dead letters:").ConfigureAwait(false);
            foreach (var group in landed.DeadLetters.GroupBy(d => Reason(d.Reason)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal))
            {
                await o.WriteLineAsync($"      {group.Count(),5} × {group.Key,-32} e.g. {Path.GetFileName(group.First().Source)}").ConfigureAwait(false);
            }

            foreach (var (stage, reason, count) in streamRun.Context.Summary())
            {
                await o.WriteLineAsync($"      {count,5} × [{stage}] {reason}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"    stream: {duplicates:N0} duplicate deliveries dropped → {streamRun.EventsOut:N0} enriched events, {streamSeq.Count:N0} sequences in {streamTime.TotalMilliseconds:N0} ms").ConfigureAwait(false);
            await o.WriteLineAsync($"    batch : {archived.Events.RowCount:N0} archived events → {batchRun.EventsOut:N0} enriched events, {batchSeq.Count:N0} sequences in {batchTime.TotalMilliseconds:N0} ms").ConfigureAwait(false);
            await o.WriteLineAsync($"    parity: {(same ? "identical enriched events and sequences" : "MISMATCH between shapes")}").ConfigureAwait(false);
            if (!same)
            {
                return 1;
            }

            outputs.Add((signal, streamOut, batchOut, batchRun));
        }

        // 4. The streaming path for real: the landing log through the embedded log, online store and stream buckets.
        string configPath = await WriteConfigAsync(dir, ct).ConfigureAwait(false);
        var weft = WeftConfig.Load(configPath);
        await o.WriteLineAsync($"\n[4/10] stream: deliveries arrive in waves on the embedded log; sequences update online ({weft.OnlineStore.Describe()}) and in path=stream buckets").ConfigureAwait(false);
        var landing = await File.ReadAllLinesAsync(data.LandingFile, ct).ConfigureAwait(false);
        long watchUser = WatchedUser(outputs[0].Stream);
        await StreamWavesAsync(weft, landing, watchUser, o, ct).ConfigureAwait(false);

        // 5. The batch path fixes history: recompute and seal buckets, then point-in-time training data.
        await o.WriteLineAsync("\n[5/10] batch: recompute every bucket from the raw archives (the landing table and the stream's: late events, corrected enrichments), atomically, and seal them").ConfigureAwait(false);
        var environments = new List<SignalEnvironment>();
        foreach (var (signal, _, _, _) in outputs)
        {
            var env = await SignalEnvironment.LoadAsync(weft, signal.Definition.Name, cancellationToken: ct).ConfigureAwait(false);
            environments.Add(env);
            var request = new BatchRequest(env.Definition.Name, Timestamps.ToMicros(gen.Start), asOf);
            if (environments.Count == 1)
            {
                // The first signal as two shards at once (what `--shard 0/2` and `--shard 1/2` in two processes do):
                // each stages its users' share of a chunk, and the last to finish a chunk commits it whole.
                var shards = await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
                    Task.Run(() => new BatchJob(env).RunAsync(request with { Shard = new BatchShard(i, 2) }, null, ct), ct))).ConfigureAwait(false);
                await o.WriteLineAsync($"  {env.Definition.Name,-11} 2 shards by user hash: {shards[0].Chunks} chunk commits ({shards[0].EventsOut:N0} + {shards[1].EventsOut:N0} enriched events), "
                    + $"{shards.Sum(r => r.SealedBuckets.Count)} buckets sealed, {shards.Sum(r => r.DeadLetters):N0} dead letters ({shards.Sum(r => r.DeadLettersRecorded):N0} distinct recorded) → {Path.GetRelativePath(dir, weft.DeadLetterTable(env.Definition.Name))}").ConfigureAwait(false);
                continue;
            }

            var result = await new BatchJob(env).RunAsync(request, null, ct).ConfigureAwait(false);
            await o.WriteLineAsync($"  {env.Definition.Name,-11} {result.Chunks} chunk commits, {result.EventsOut:N0} enriched events, {result.SealedBuckets.Count} buckets sealed, {result.DeadLetters:N0} dead letters ({result.DeadLettersRecorded:N0} distinct recorded) → {Path.GetRelativePath(dir, weft.DeadLetterTable(env.Definition.Name))}").ConfigureAwait(false);
        }

        await ShowHistoryFixedAsync(environments[0], weft, o, ct).ConfigureAwait(false);

        var engagement = environments[0].Definition;
        var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(engagement.Name), engagement, ct).ConfigureAwait(false);
        var cut = SequenceCut.For(engagement, asOf);
        var rows = await lake.ReadAsync(cut.FromMicros, cut.AsOfMicros, ct).ConfigureAwait(false);
        var snapshot = SequenceBuilder.Snapshot(rows, engagement, cut);
        string snapshotPath = BatchCommands.DefaultSnapshotPath(weft.SequencesTable(engagement.Name), asOf, knownAtMicros: null, maxLength: null);
        await SequenceFiles.WriteAsync(snapshotPath, snapshot, engagement, new Dictionary<string, string> { ["weft.fingerprint"] = environments[0].Signal.Fingerprint }, pad: null, nullable: null, ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  snapshot as of {Timestamps.Format(asOf)[..10]}: {snapshot.RowCount:N0} users, {snapshot.Elements.RowCount:N0} elements ({rows.BatchRows:N0} batch rows merged with {rows.StreamRows:N0} stream rows of open buckets) → {Path.GetRelativePath(dir, snapshotPath)}").ConfigureAwait(false);
        var before = lake.Table.ReadStatistics;
        var batchOnly = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath);
        var full = await ReadAllAsync(lake.Table, null, batchOnly, ct).ConfigureAwait(false);
        var fullCost = lake.Table.ReadStatistics - before;
        before = lake.Table.ReadStatistics;
        var projected = await ReadAllAsync(lake.Table, [StandardColumns.UserId, StandardColumns.EventTime], batchOnly, ct).ConfigureAwait(false);
        var twoCost = lake.Table.ReadStatistics - before;
        await o.WriteLineAsync($"  columnar reads of path=batch: all {full.Schema.Length} columns decompress {fullCost.BytesDecompressed / 1024:N0} KiB; user_id + event_time only: {twoCost.BytesDecompressed / 1024:N0} KiB ({projected.RowCount:N0} rows)").ConfigureAwait(false);
        await o.WriteLineAsync($"  DuckDB: SELECT * FROM read_parquet('{snapshotPath}')   ·   weft table ls {lake.Table.Path}").ConfigureAwait(false);
        var checkpoint = await lake.Table.Log.WriteCheckpointAsync(ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  Delta checkpoint of version {checkpoint.Version} ({checkpoint.Files:N0} files, {checkpoint.Tombstones:N0} tombstones) → {Path.GetRelativePath(dir, checkpoint.Path)}: "
            + "other engines open the table from it (writers add one every 100 commits; weft table checkpoint PATH)").ConfigureAwait(false);

        // 6. Quality: the stream's rows measured against the sealed batch buckets, per event type.
        await o.WriteLineAsync("\n[6/10] quality: path=stream against the sealed path=batch buckets, per event type (weft quality)").ConfigureAwait(false);
        foreach (var env in environments)
        {
            var report = await StreamBatchQuality.RunAsync(weft, env.Definition, env.Signal.Fingerprint, new QualityRequest(), ct).ConfigureAwait(false);
            var t = report.Comparison.Total;
            var worst = t.Columns.MinBy(c => c.Rate);
            await o.WriteLineAsync($"  {env.Definition.Name,-11} {report.Buckets.Compared.Count} buckets: the stream holds {t.Completeness:0.##%} of {t.Matched + t.ReferenceOnly:N0} batch events "
                + $"({t.ReferenceOnly:N0} missing, {t.ReferenceOnlyExplained:N0} of them recorded late; {t.CandidateOnly:N0} only in the stream); "
                + $"{(worst is null || worst.Rate == 1 ? $"all {t.Columns.Count} columns agree" : $"lowest agreement {worst.Column} {worst.Rate:0.##%}")}; "
                + $"{report.Comparison.Sequences.FullRate:0.##%} of {report.Comparison.Sequences.Users:N0} users' sequences identical").ConfigureAwait(false);
            // Event → stream read, per type: the generator's producers send most events within seconds and some a day late.
            await o.WriteLineAsync($"  {"",-11} event → stream read (ingest_time − event_time): "
                + string.Join("; ", report.Freshness.Select(f => $"{f.EventType} p50 {QualityCommand.Seconds(f.P50Seconds)}, p99 {QualityCommand.Seconds(f.P99Seconds)}"))).ConfigureAwait(false);
        }

        await o.WriteLineAsync($"  weft quality --config {configPath} --signal {environments[0].Definition.Name} [--min-completeness 0.99 --min-agreement 0.999 --max-freshness-p99 objective]   # exit 1 below a gate").ConfigureAwait(false);

        // 7. Migration: one event type at a time off a (stand-in) legacy pipeline, gated by evidence.
        await o.WriteLineAsync("\n[7/10] migrate: move 'engagement' off a legacy pipeline one event type at a time: shadow, two-tier compare against legacy's noise floor, A/B replay, cutover, rollback (weft migrate)").ConfigureAwait(false);
        var legacyOutput = await DemoMigration.RunAsync(dir, configPath, engagement, lake, watchUser, asOf, o, ct).ConfigureAwait(false);

        // 8. Serving: the merged sequence over HTTP, with provenance.
        await o.WriteLineAsync("\n[8/10] serve: one merge of the online store (stream tail) and sealed batch history, over HTTP").ConfigureAwait(false);
        int port = FreePort();
        (string Sequence, string Routes, string Hybrid) served;
        await using (var legacyEndpoint = await DemoMigration.StandInEndpoint.StartAsync(legacyOutput, ct).ConfigureAwait(false))
        {
            // The stand-in legacy's online endpoint exists for this step only, so only this server is told of it.
            var serving = weft with { Legacy = weft.Legacy.SetItem(engagement.Name, weft.Legacy[engagement.Name] with { Endpoint = legacyEndpoint.Url, EndpointTimeout = TimeSpan.FromSeconds(10) }) };
            served = await ServeOnceAsync(serving, port, engagement.Name, watchUser, ct).ConfigureAwait(false);
        }

        await o.WriteLineAsync($"  GET /v1/signals/{engagement.Name}/users/{watchUser}/sequence?limit=5 → {served.Sequence}").ConfigureAwait(false);
        await o.WriteLineAsync($"  GET /v1/signals/{engagement.Name}/users/{watchUser}/routes?consumer=home-ranker → {served.Routes}").ConfigureAwait(false);
        await o.WriteLineAsync($"  GET /v1/signals/{engagement.Name}/users/{watchUser}/sequence?limit=5&consumer=home-ranker (the stand-in legacy endpoint as legacy.{engagement.Name}.endpoint) → {served.Hybrid}").ConfigureAwait(false);
        await o.WriteLineAsync($"  try it:  dotnet run --project src/Weft.Cli -- serve --config {configPath} --urls http://127.0.0.1:8080").ConfigureAwait(false);
        await o.WriteLineAsync($"           curl -H 'Authorization: Bearer {DemoKey}' 'http://127.0.0.1:8080/v1/signals/{engagement.Name}/users/{watchUser}/sequence?limit=5&columns=item_id,category'").ConfigureAwait(false);

        // 9. A sequence as a model would read it.
        var (first, _, _, firstRun) = outputs[0];
        var sequences = firstRun.Assembler.Snapshot(asOf);
        if (sequences.Count > 0 && first.Definition.Name == "engagement")
        {
            var top = sequences.OrderByDescending(s => s.Elements.RowCount).ThenBy(s => s.UserId).First();
            await o.WriteLineAsync($"\n[9/10] user {top.UserId}: {top.Elements.RowCount} elements (truncated: {top.Truncated}), newest first, as of {Timestamps.Format(asOf)}").ConfigureAwait(false);
            var e = top.Elements;
            for (int r = 0; r < Math.Min(5, e.RowCount); r++)
            {
                var emb = (float[]?)e["embedding"].GetValue(r);
                await o.WriteLineAsync($"  {Timestamps.Format((long)e[StandardColumns.EventTime].GetValue(r)!)[..19]}  {e[StandardColumns.EventType].GetValue(r),-6} item {e["item_id"].GetValue(r),-7} {e["category"].GetValue(r) ?? "-",-4} dwell {e["dwell_ms"].GetValue(r) ?? "-",-6} emb[{(emb is null ? "-" : string.Join(",", emb.Take(3).Select(x => x.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))) + ",…")}]").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"  fingerprint {first.Fingerprint}").ConfigureAwait(false);
        }

        await EvolveAsync(weft, environments.First(e => e.Definition.Name == "searches").Definition, asOf, dir, o, ct).ConfigureAwait(false);

        await o.WriteLineAsync($"\ndone in {total.Elapsed.TotalSeconds:N1} s").ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Step 10: an additive change deployed over a live signal's lake. The raw query joins the elements of
    /// 'searches'; weft diff classifies it, the next batch run adds the column to the enriched table,
    /// and the rows written before read it as null.
    /// </summary>
    private static async Task EvolveAsync(WeftConfig weft, SignalDefinition searches, long asOfMicros, string dir, TextWriter o, CancellationToken ct)
    {
        await o.WriteLineAsync($"\n[10/10] evolve: deploy an additive change to '{searches.Name}' (the raw query joins its elements) over its live lake").ConfigureAwait(false);
        var evolved = searches with { Element = [.. searches.Element, new FieldDefinition("query", WeftType.String)] };
        var bytes = SignalJsonWriter.Write(evolved);
        var read = SignalJsonReader.Read(bytes);
        if (!read.IsValid)
        {
            throw new InvalidOperationException("the demo's evolved definition is invalid: " + string.Join("; ", read.Problems));
        }

        var diff = SignalDiff.Compare(searches, read.Signal!);
        await o.WriteLineAsync($"  weft diff: {diff.Overall.ToString().ToLowerInvariant()} ({string.Join("; ", diff.Changes.Select(c => c.Reason))})").ConfigureAwait(false);
        await DefinitionCompiler.WriteAsync([read.Signal!], weft.Signals, ct).ConfigureAwait(false); // the file and its .sha256, as weft compile writes them

        // The last day again, under the new definition: its rows get the column; the older ones keep none.
        long day = TimeBuckets.LengthMicros(TimeBucket.Day);
        long from = TimeBuckets.StartOf(asOfMicros, TimeBucket.Day) - day;
        var env = await SignalEnvironment.LoadAsync(weft, searches.Name, cancellationToken: ct).ConfigureAwait(false);
        var result = await new BatchJob(env).RunAsync(new BatchRequest(searches.Name, from, asOfMicros), null, ct).ConfigureAwait(false);
        var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(searches.Name), env.Definition, ct).ConfigureAwait(false);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, ct).ConfigureAwait(false);
        var queries = rows.Rows["query"];
        int withQuery = 0;
        for (int i = 0; i < rows.Rows.RowCount; i++)
        {
            withQuery += queries.IsNull(i) ? 0 : 1;
        }

        await o.WriteLineAsync($"  weft batch over {Timestamps.Format(from)[..10]}: {result.EventsOut:N0} events recomputed; {Path.GetRelativePath(dir, lake.Table.Path)} now has the column (table version {(await lake.GetStateAsync(ct).ConfigureAwait(false)).Version}): "
            + $"{withQuery:N0} of {rows.Rows.RowCount:N0} rows hold a query, the rows written before it read null (docs/signal-json.md, \"Deploying a changed signal\")").ConfigureAwait(false);
    }

    private const string DemoKey = "weft-demo-key";

    private static async Task<string> WriteConfigAsync(string dir, CancellationToken ct)
    {
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(DemoKey)));
        string searchHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(DemoKey + "-search")));
        string path = Path.Combine(dir, "weft.json");
        await File.WriteAllTextAsync(path, $$"""
            {
              "lake": "lake",
              "signals": "signals",
              "archives": [ { "path": "raw/events", "format": "delta" } ],
              "enrichments": { "items": "raw/items" },
              "online_store": { "kind": "sqlite", "path": "online.db" },
              "source": { "kind": "embedded", "path": "log" },
              "legacy": { "engagement": { "output": { "path": "{{DemoMigration.OutputPath}}", "format": "parquet" }, "replica": { "path": "{{DemoMigration.ReplicaPath}}", "format": "parquet" } } },
              "migration_store": "migration.db",
              "tenants": [
                { "name": "home-feed", "api_keys_sha256": [ "{{hash}}" ] },
                { "name": "search", "api_keys_sha256": [ "{{searchHash}}" ], "max_events_per_second": 20000, "max_sequences_per_second": 2000 }
              ]
            }
            """, ct).ConfigureAwait(false);
        return path;
    }

    /// <summary>The user with the most enriched events in the stream output: the one the demo watches.</summary>
    private static long WatchedUser(EventBatch enriched)
    {
        var users = ((PrimitiveColumn<long>)enriched[StandardColumns.UserId]).Values;
        return users.GroupBy(u => u).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
    }

    /// <summary>An event's key as a producer of Weft's events sets it: its user_id as decimal text.</summary>
    private static byte[] UserKey(byte[] json) =>
        RawEventParser.ReadIdentity(json).UserId is { } id ? Weft.Streaming.Kafka.KafkaEventProducer.KeyOf(id) : [];

    private static async Task StreamWavesAsync(WeftConfig weft, string[] landing, long user, TextWriter o, CancellationToken ct)
    {
        await using var host = await StreamHost.OpenAsync(weft, new StreamOptions().Consumer, ct).ConfigureAwait(false);
        // Compaction on demand below, with a low threshold: a flush per wave leaves a few files per bucket.
        var options = new StreamOptions { MaxWait = TimeSpan.FromMilliseconds(5), CompactInterval = TimeSpan.Zero, CompactMinFiles = 2 };
        const int waves = 4;
        int per = (landing.Length + waves - 1) / waves;
        List<(byte[], byte[])> Wave(int w) => landing.Skip(w * per).Take(per).Select(l => System.Text.Encoding.UTF8.GetBytes(l)).Select(json => (UserKey(json), json)).ToList();
        await using (var runtime = await StreamRuntime.CreateAsync(weft, host.Source, host.Store, null, options, cancellationToken: ct).ConfigureAwait(false))
        {
            await StreamWavesAsync(runtime, host, waves, Wave, weft, user, o, ct).ConfigureAwait(false);
        }

        // A restart: the new runtime recalls the stored events' ids, so the last wave sent again is all duplicates.
        long lakeRows = await StreamRowsAsync(weft, ct).ConfigureAwait(false);
        await using var restarted = await StreamRuntime.CreateAsync(weft, host.Source, host.Store, null, options, cancellationToken: ct).ConfigureAwait(false);
        var again = Wave(waves - 1);
        await host.EmbeddedLog!.AppendAsync(again, ct).ConfigureAwait(false);
        while (await restarted.StepAsync(ct).ConfigureAwait(false) > 0)
        {
        }

        await restarted.FlushAsync(ct).ConfigureAwait(false);
        double recalled = restarted.Signals.Sum(s => restarted.Metrics.Value("weft_stream_recalled_events", ("signal", s)));
        double online = restarted.Signals.Sum(s => restarted.Metrics.Value("weft_stream_events_total", ("signal", s)));
        await o.WriteLineAsync($"  restart: the new runtime recalled {recalled:N0} stored events into its dedup windows; the last wave sent again ({again.Count:N0} deliveries, new offsets) → {online:N0} events online, lake/enriched/engagement path=stream {lakeRows:N0} → {await StreamRowsAsync(weft, ct).ConfigureAwait(false):N0} rows").ConfigureAwait(false);
    }

    private static async Task StreamWavesAsync(
        StreamRuntime runtime, StreamHost host, int waves, Func<int, List<(byte[], byte[])>> next, WeftConfig weft, long user, TextWriter o, CancellationToken ct)
    {
        for (int w = 0; w < waves; w++)
        {
            var wave = next(w);
            await host.EmbeddedLog!.AppendAsync(wave, ct).ConfigureAwait(false);
            while (await runtime.StepAsync(ct).ConfigureAwait(false) > 0)
            {
            }

            await runtime.FlushAsync(ct).ConfigureAwait(false);
            var sequence = await host.Store.ReadAsync("engagement", user, new Weft.Online.OnlineReadOptions { Limit = 500 }, ct).ConfigureAwait(false);
            string newest = sequence.Count == 0 ? "-" : $"{sequence[0].EventId} at {Timestamps.Format(sequence[0].EventTimeMicros)[..19]}";
            await o.WriteLineAsync($"  wave {w + 1}/{waves}: +{wave.Count:N0} deliveries → engagement {runtime.Metrics.Value("weft_stream_events_total", ("signal", "engagement")):N0} events online; user {user}: {sequence.Count} elements, newest {newest}").ConfigureAwait(false);
        }

        // Each wave ended in a flush: everything read is in the lake and committed.
        int filesBefore = await StreamFilesAsync(weft, ct).ConfigureAwait(false);
        int removed = await runtime.CompactAsync(ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  compaction of closed buckets: {removed:N0} small files rewritten across the stream's tables; lake/enriched/engagement path=stream {filesBefore:N0} → {await StreamFilesAsync(weft, ct).ConfigureAwait(false):N0} files (open buckets keep taking flushes)").ConfigureAwait(false);
        foreach (var signal in runtime.Signals)
        {
            var p50 = runtime.Metrics.Quantile("weft_freshness_seconds", 0.5, ("signal", signal), ("event_type", signal == "searches" ? "search" : "click"));
            var p99 = runtime.Metrics.Quantile("weft_freshness_seconds", 0.99, ("signal", signal), ("event_type", signal == "searches" ? "search" : "click"));
            double late = runtime.Metrics.LabelSets("weft_late_events_total").Where(l => l.Contains($"signal=\"{signal}\"", StringComparison.Ordinal))
                .Sum(l => runtime.Metrics.Value("weft_late_events_total", ParseLabels(l)));
            await o.WriteLineAsync($"  {signal,-11} freshness (arrival → servable) p50 {p50 * 1000:N0} ms, p99 {p99 * 1000:N0} ms; {late:N0} late events in the ledger; lake path=stream flushed, offsets committed").ConfigureAwait(false);
        }

        if (weft.Source.Archive is { } archive && Directory.Exists(archive))
        {
            var files = Directory.GetFiles(archive, "*.jsonl", SearchOption.AllDirectories);
            long lines = 0;
            foreach (var file in files)
            {
                await foreach (var _ in File.ReadLinesAsync(file, ct).ConfigureAwait(false))
                {
                    lines++;
                }
            }

            await o.WriteLineAsync($"  raw archive of the stream: {lines:N0} records as read in {files.Length:N0} files → {Path.GetRelativePath(Path.GetDirectoryName(weft.ConfigPath)!, archive)}, one of the batch path's raw archives").ConfigureAwait(false);
        }
    }

    private static async Task<long> StreamRowsAsync(WeftConfig weft, CancellationToken ct)
    {
        var table = await EventTable.OpenAsync(weft.EnrichedTable("engagement"), ct).ConfigureAwait(false);
        return (await table.Log.GetSnapshotAsync(ct).ConfigureAwait(false)).Files(PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath)).Sum(f => f.NumRecords ?? 0);
    }

    private static async Task<int> StreamFilesAsync(WeftConfig weft, CancellationToken ct)
    {
        var table = await EventTable.OpenAsync(weft.EnrichedTable("engagement"), ct).ConfigureAwait(false);
        return (await table.Log.GetSnapshotAsync(ct).ConfigureAwait(false)).Files(PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.StreamPath)).Count();
    }

    private static (string Key, string Value)[] ParseLabels(string text) =>
        text.Split("\",", StringSplitOptions.RemoveEmptyEntries).Select(p =>
        {
            int eq = p.IndexOf('=', StringComparison.Ordinal);
            return (p[..eq], p[(eq + 1)..].Trim('"'));
        }).ToArray();

    /// <summary>
    /// A late event of the signal, and a label just after it happened but before it arrived: the
    /// as-served training example lacks it, the corrected one has it; enrichments corrected after the
    /// label differ between the two.
    /// </summary>
    private static async Task ShowHistoryFixedAsync(SignalEnvironment env, WeftConfig weft, TextWriter o, CancellationToken ct)
    {
        var definition = env.Definition;
        var lake = await EnrichedLake.OpenAsync(weft.EnrichedTable(definition.Name), definition, ct).ConfigureAwait(false);
        var rows = await lake.ReadAsync(long.MinValue / 2, long.MaxValue / 2, ct).ConfigureAwait(false);
        var r = rows.Rows;
        var times = ((PrimitiveColumn<long>)r[StandardColumns.EventTime]).Values;
        var ingest = ((PrimitiveColumn<long>)r[StandardColumns.IngestTime]).Values;
        var users = ((PrimitiveColumn<long>)r[StandardColumns.UserId]).Values;
        var ids = ((StringColumn)r[StandardColumns.EventId]).Values;
        var items = (PrimitiveColumn<long>)r["item_id"];
        var corrected = env.Enrichments["items"];
        const long hour = 3_600_000_000L;
        int pick = -1;
        for (int i = 0; i < r.RowCount && pick < 0; i++)
        {
            if (rows.FromBatch[i] && ingest[i] - times[i] >= 3 * hour)
            {
                pick = i;
            }
        }

        if (pick < 0)
        {
            return;
        }

        long label = times[pick] + hour;
        var keys = new EventBatch([new FieldDefinition("label", WeftType.Int64)], [new PrimitiveColumn<long>(WeftType.Int64, [1])]);
        var asServed = SequenceBuilder.ForLabels(rows, definition, keys, [users[pick]], [label], knownAtLabelTime: true, env.Enrichments);
        var fixedUp = SequenceBuilder.ForLabels(rows, definition, keys, [users[pick]], [label], knownAtLabelTime: false, env.Enrichments);
        bool InSet(SequenceTable t) => Enumerable.Range(0, t.Length(0)).Any(k => (string)t.Elements[StandardColumns.EventId].GetValue(k)! == ids[pick]);
        await o.WriteLineAsync($"  late event {ids[pick]} (user {users[pick]}) happened {Timestamps.Format(times[pick])[..19]}, arrived {(ingest[pick] - times[pick]) / (double)hour:N1} h later; a label at {Timestamps.Format(label)[..19]}:").ConfigureAwait(false);
        await o.WriteLineAsync($"    as-served training example: {asServed.Length(0)} elements, late event {(InSet(asServed) ? "PRESENT" : "absent (the stream could not have known it)")}").ConfigureAwait(false);
        await o.WriteLineAsync($"    corrected training example: {fixedUp.Length(0)} elements, late event {(InSet(fixedUp) ? "present (fixed by the batch run)" : "MISSING")}").ConfigureAwait(false);

        // An element whose item was corrected after the label: the model saw the old embedding then.
        for (int k = 0; k < fixedUp.Length(0); k++)
        {
            var item = fixedUp.Elements["item_id"].GetValue(k);
            if (item is not long id)
            {
                continue;
            }

            int then = corrected.Find(id, label), now = corrected.Find(id);
            if (then >= 0 && now >= 0 && then != now)
            {
                var old = (float[]?)corrected.Rows["embedding"].GetValue(then);
                var fresh = (float[]?)corrected.Rows["embedding"].GetValue(now);
                string Head(float[]? v) => v is null ? "-" : string.Join(",", v.Take(3).Select(x => x.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))) + ",…";
                await o.WriteLineAsync($"    item {id} was corrected after the label: as served emb[{Head(old)}], corrected emb[{Head(fresh)}]").ConfigureAwait(false);
                break;
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<(string Sequence, string Routes, string Hybrid)> ServeOnceAsync(WeftConfig weft, int port, string signal, long user, CancellationToken ct)
    {
        var options = ServingOptions.FromConfig(weft) with { Urls = $"http://127.0.0.1:{port}" };
        await using var server = await ServingServer.StartAsync(weft, options, logging: l => l.ClearProviders(), cancellationToken: ct).ConfigureAwait(false);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Add("Authorization", $"Bearer {DemoKey}");
        using var response = await http.GetAsync(new Uri($"/v1/signals/{signal}/users/{user}/sequence?limit=5", UriKind.Relative), ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        // The migration step left click cut over and save in shadow: a consumer reads a hybrid sequence.
        using var routes = await http.GetAsync(new Uri($"/v1/signals/{signal}/users/{user}/routes?consumer=home-ranker", UriKind.Relative), ct).ConfigureAwait(false);
        string routesText = $"{(int)routes.StatusCode}: {await routes.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}";
        using var hybrid = await http.GetAsync(new Uri($"/v1/signals/{signal}/users/{user}/sequence?limit=5&consumer=home-ranker", UriKind.Relative), ct).ConfigureAwait(false);
        var hybridBody = await hybrid.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        string hybridText = $"{(int)hybrid.StatusCode}: {hybridBody}";
        if (hybrid.IsSuccessStatusCode)
        {
            using var h = System.Text.Json.JsonDocument.Parse(hybridBody);
            var p = h.RootElement.GetProperty("provenance");
            var types = h.RootElement.GetProperty("columns").GetProperty("event_type").EnumerateArray().Select(t => t.GetString());
            hybridText = $"200, {h.RootElement.GetProperty("length")} elements [{string.Join(", ", types)}] "
                + $"(from_stream {p.GetProperty("from_stream")}, from_batch {p.GetProperty("from_batch")}, from_legacy {p.GetProperty("from_legacy")}), assembly: {h.RootElement.GetProperty("assembly").GetRawText()}";
        }

        if (!response.IsSuccessStatusCode)
        {
            return ($"{(int)response.StatusCode}: {body}", routesText, hybridText);
        }

        using var doc = System.Text.Json.JsonDocument.Parse(body);
        var root = doc.RootElement;
        var provenance = root.GetProperty("provenance");
        return ($"200, {root.GetProperty("length")} elements, provenance: {provenance.GetRawText()}", routesText, hybridText);
    }

    private static async Task<EventBatch> ReadAllAsync(EventTable table, IReadOnlyList<string>? columns, PartitionFilter? filter, CancellationToken ct)
    {
        var parts = new List<EventBatch>();
        await foreach (var b in table.ReadAsync(columns, filter, cancellationToken: ct).ConfigureAwait(false))
        {
            parts.Add(b);
        }

        if (parts.Count == 0)
        {
            var schema = columns is null ? table.Schema : [.. table.Schema.Where(f => columns.Contains(f.Name))];
            return EventBatch.Empty(schema);
        }

        return EventBatch.Concat(parts[0].Schema, parts);
    }

    private static string Reason(string reason)
    {
        if (reason.StartsWith("malformed JSON", StringComparison.Ordinal))
        {
            return "malformed JSON";
        }

        int of = reason.IndexOf(" of ", StringComparison.Ordinal);
        return of > 0 && reason.Contains("expected", StringComparison.Ordinal) ? reason[..of] + ": wrong type" : reason;
    }

    private static string Sorted(EventBatch batch) => string.Join('\n', JsonRows.Canonical(batch).Split('\n').Order(StringComparer.Ordinal));

    internal static async IAsyncEnumerable<EventBatch> MicroBatches(EventBatch table, int size, [EnumeratorCancellation] CancellationToken ct)
    {
        for (int start = 0; start < table.RowCount; start += size)
        {
            ct.ThrowIfCancellationRequested();
            yield return table.Slice(start, Math.Min(size, table.RowCount - start));
            await Task.Yield();
        }
    }

    internal static IReadOnlyList<(string Path, string Text)> EmbeddedDefinitions()
    {
        var assembly = typeof(Demo).Assembly;
        var result = new List<(string, string)>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("definitions/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            result.Add((name, reader.ReadToEnd()));
        }

        return result;
    }
}
