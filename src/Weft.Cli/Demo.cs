using System.Diagnostics;
using System.Runtime.CompilerServices;
using Weft.Definitions;
using Weft.Engine;
using Weft.Storage;

namespace Weft.Cli;

/// <summary><c>weft demo</c>: everything that exists, end to end, on generated data and embedded defaults.</summary>
internal static class Demo
{
    public static async Task<int> RunAsync(string dir, int events, TextWriter o, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true); // a fresh run each time: tables are append-only
        }

        Directory.CreateDirectory(dir);
        await o.WriteLineAsync($"Weft demo — working in {dir}").ConfigureAwait(false);

        // 1. Definitions as code → canonical JSON.
        await o.WriteLineAsync("\n[1/5] compile the example C# definitions to canonical JSON").ConfigureAwait(false);
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
        var gen = new GenOptions { Events = events };
        await o.WriteLineAsync($"\n[2/5] generate {events:N0} raw events (power-law users/items, diurnal, late, duplicated, malformed)").ConfigureAwait(false);
        var data = await SyntheticData.GenerateAsync(Path.Combine(dir, "raw"), gen, ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  landing log   {data.Deliveries:N0} deliveries: {data.Late:N0} late, {data.Duplicates:N0} duplicated, {data.Bad:N0} malformed").ConfigureAwait(false);
        await o.WriteLineAsync($"  raw archive   {data.Archived:N0} well-formed deliveries in a Delta table, one bucket per day").ConfigureAwait(false);

        var registry = ExecutorRegistry.CreateDefault();
        var tables = new Dictionary<string, EnrichmentTable>(StringComparer.Ordinal);
        foreach (var source in compiled.Signals.SelectMany(s => s.EnrichmentSources).DistinctBy(s => s.Name))
        {
            var rows = await ReadAllAsync(await EventTable.OpenAsync(data.ItemsTable, ct).ConfigureAwait(false), null, null, ct).ConfigureAwait(false);
            tables[source.Name] = EnrichmentTable.Build(source, rows.Project(EnrichmentTable.RowSchema(source)));
            await o.WriteLineAsync($"  enrichment    '{source.Name}': {tables[source.Name].EntityCount:N0} entities, {rows.RowCount:N0} versions ({data.Corrections} corrections)").ConfigureAwait(false);
        }

        var archive = await ReadAllAsync(await EventTable.OpenAsync(data.EventsTable, ct).ConfigureAwait(false), null, null, ct).ConfigureAwait(false);

        // 3. Each signal in both scheduling shapes.
        await o.WriteLineAsync("\n[3/5] run each signal in both shapes: the stream shape on the landing log (256-event micro-batches), the batch shape on the archive table").ConfigureAwait(false);
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

        // 4. The lake: enriched events as time-partitioned tables, stream and batch paths side by side.
        await o.WriteLineAsync("\n[4/5] write enriched/<signal> tables (Parquet + Delta log, partitioned by bucket and path)").ConfigureAwait(false);
        foreach (var (signal, stream, batch, _) in outputs)
        {
            var bucket = signal.Definition.Bucket;
            string path = Path.Combine(dir, "lake", "enriched", signal.Definition.Name);
            var table = await EventTable.OpenOrCreateAsync(path, signal.EnrichedSchema, EventLayout.PartitionColumns, cancellationToken: ct).ConfigureAwait(false);
            await table.AppendAsync(stream, EventPartitioner.ByTimeBucket(bucket, EventLayout.StreamPath), ct).ConfigureAwait(false);
            var times = ((PrimitiveColumn<long>)batch[StandardColumns.EventTime]).Values;
            if (times.Length > 0)
            {
                var buckets = TimeBuckets.Filter(times.Min(), times.Max(), bucket, PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath));
                await table.ReplacePartitionsAsync(batch, EventPartitioner.ByTimeBucket(bucket, EventLayout.BatchPath), buckets, ct).ConfigureAwait(false);
            }

            var snapshot = await table.Log.GetSnapshotAsync(ct).ConfigureAwait(false);
            long bytes = snapshot.Files().Sum(f => f.Size);
            await o.WriteLineAsync($"  {path}: version {snapshot.Version}, {snapshot.FileCount} files, {bytes / 1024.0 / 1024.0:N1} MiB").ConfigureAwait(false);
        }

        var (first, _, _, firstRun) = outputs[0];
        var lake = await EventTable.OpenAsync(Path.Combine(dir, "lake", "enriched", first.Definition.Name), ct).ConfigureAwait(false);
        var batchOnly = PartitionFilter.All.Equal(EventLayout.PathColumn, EventLayout.BatchPath);
        var before = lake.ReadStatistics;
        var full = await ReadAllAsync(lake, null, batchOnly, ct).ConfigureAwait(false);
        var fullCost = lake.ReadStatistics - before;
        before = lake.ReadStatistics;
        string[] two = [StandardColumns.UserId, StandardColumns.EventTime];
        var projected = await ReadAllAsync(lake, two, batchOnly, ct).ConfigureAwait(false);
        var twoCost = lake.ReadStatistics - before;
        await o.WriteLineAsync($"  read back path=batch: all {full.Schema.Length} columns decompress {fullCost.BytesDecompressed / 1024:N0} KiB; user_id + event_time only: {twoCost.BytesDecompressed / 1024:N0} KiB ({projected.RowCount:N0} rows)").ConfigureAwait(false);
        await o.WriteLineAsync($"  inspect with: weft table ls {lake.Path}   ·   DuckDB: SELECT * FROM read_parquet('{lake.Path}/**/*.parquet', hive_partitioning=true)").ConfigureAwait(false);

        // 5. A sequence as a model would read it.
        var sequences = firstRun.Assembler.Snapshot(asOf);
        if (sequences.Count > 0 && first.Definition.Name == "engagement")
        {
            var top = sequences.OrderByDescending(s => s.Elements.RowCount).ThenBy(s => s.UserId).First();
            await o.WriteLineAsync($"\n[5/5] user {top.UserId}: {top.Elements.RowCount} elements (truncated: {top.Truncated}), newest first, as of {Timestamps.Format(asOf)}").ConfigureAwait(false);
            var e = top.Elements;
            for (int r = 0; r < Math.Min(5, e.RowCount); r++)
            {
                var emb = (float[]?)e["embedding"].GetValue(r);
                await o.WriteLineAsync($"  {Timestamps.Format((long)e[StandardColumns.EventTime].GetValue(r)!)[..19]}  {e[StandardColumns.EventType].GetValue(r),-6} item {e["item_id"].GetValue(r),-7} {e["category"].GetValue(r) ?? "-",-4} dwell {e["dwell_ms"].GetValue(r) ?? "-",-6} emb[{(emb is null ? "-" : string.Join(",", emb.Take(3).Select(x => x.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))) + ",…")}]").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"  fingerprint {first.Fingerprint}").ConfigureAwait(false);
        }

        await o.WriteLineAsync($"\ndone in {total.Elapsed.TotalSeconds:N1} s").ConfigureAwait(false);
        return 0;
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
