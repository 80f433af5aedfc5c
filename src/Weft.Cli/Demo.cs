using System.Diagnostics;
using System.Runtime.CompilerServices;
using Weft.Definitions;
using Weft.Engine;

namespace Weft.Cli;

/// <summary><c>weft demo</c>: everything that exists, end to end, on generated data and embedded defaults.</summary>
internal static class Demo
{
    public static async Task<int> RunAsync(string dir, int events, TextWriter o, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(dir);
        await o.WriteLineAsync($"Weft demo — working in {dir}").ConfigureAwait(false);

        // 1. Definitions as code → canonical JSON.
        await o.WriteLineAsync("\n[1/4] compile the example C# definitions to canonical JSON").ConfigureAwait(false);
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

        // 2. Synthetic raw data.
        await o.WriteLineAsync($"\n[2/4] generate {events:N0} raw events (power-law users/items, diurnal, late, duplicated, malformed)").ConfigureAwait(false);
        var gen = await SyntheticData.GenerateAsync(Path.Combine(dir, "raw"), new GenOptions { Events = events }, ct).ConfigureAwait(false);
        await o.WriteLineAsync($"  {gen.Deliveries:N0} deliveries: {gen.Late:N0} late, {gen.Duplicates:N0} duplicated, {gen.Bad:N0} malformed; {gen.ItemVersions:N0} item versions ({gen.Corrections} corrections)").ConfigureAwait(false);

        var registry = ExecutorRegistry.CreateDefault();
        var tables = new Dictionary<string, EnrichmentTable>(StringComparer.Ordinal);
        foreach (var source in compiled.Signals.SelectMany(s => s.EnrichmentSources).DistinctBy(s => s.Name))
        {
            var (rows, bad) = JsonRows.Read(JsonRows.ReadLines(gen.ItemsFile), EnrichmentTable.RowSchema(source), "enrichment:" + source.Name);
            tables[source.Name] = EnrichmentTable.Build(source, rows);
            await o.WriteLineAsync($"  enrichment '{source.Name}': {tables[source.Name].EntityCount:N0} entities, {rows.RowCount:N0} versions, {bad.Count} bad rows").ConfigureAwait(false);
        }

        // 3. Each signal in both scheduling shapes.
        await o.WriteLineAsync("\n[3/4] run each signal in both shapes: one bounded table (batch) and 256-event micro-batches (stream)").ConfigureAwait(false);
        long asOf = Timestamps.ToMicros(new GenOptions().Start.AddDays(new GenOptions().Days));
        var engagement = (CompiledSignal?)null;
        SignalRun? engagementRun = null;
        foreach (var definition in compiled.Signals)
        {
            var signal = CompiledSignal.Compile(definition, registry, tables);
            var parser = new RawEventParser(signal);
            var sw = Stopwatch.StartNew();
            var parsed = parser.Parse(JsonRows.ReadLines(gen.EventsFile));
            var parseTime = sw.Elapsed;

            sw.Restart();
            var options = new RunOptions { AsOfMicros = asOf };
            var batchRun = signal.StartRun(new ExecutorContext(definition), options);
            var enrichedBatch = await batchRun.ProcessTableAsync(parsed.Events, ct).ConfigureAwait(false);
            var batchTime = sw.Elapsed;

            sw.Restart();
            var streamRun = signal.StartRun(new ExecutorContext(definition), options);
            var streamed = new List<EventBatch>();
            await streamRun.ProcessStreamAsync(MicroBatches(parsed.Events, 256, ct), (b, _) =>
            {
                streamed.Add(b);
                return ValueTask.CompletedTask;
            }, ct).ConfigureAwait(false);
            var streamTime = sw.Elapsed;

            var batchSeq = batchRun.Assembler.Snapshot(asOf);
            var streamSeq = streamRun.Assembler.Snapshot(asOf);
            bool same = batchSeq.Count == streamSeq.Count
                && batchSeq.Zip(streamSeq).All(p => p.First.UserId == p.Second.UserId && JsonRows.Canonical(p.First.Elements) == JsonRows.Canonical(p.Second.Elements))
                && Sorted(enrichedBatch) == Sorted(EventBatch.Concat(signal.EnrichedSchema, streamed.Count == 0 ? [EventBatch.Empty(signal.EnrichedSchema)] : streamed));

            await o.WriteLineAsync($"  signal '{definition.Name}' (tenant {definition.Tenant}, {definition.EventTypes.Length} event type(s), max_length {definition.MaxLength})").ConfigureAwait(false);
            await o.WriteLineAsync($"    parsed {parsed.Events.RowCount:N0} events in {parseTime.TotalMilliseconds:N0} ms; {parsed.SkippedOtherTypes:N0} of other event types; {parsed.DeadLetters.Count} malformed → dead letters").ConfigureAwait(false);
            foreach (var group in parsed.DeadLetters.GroupBy(d => Reason(d.Reason)).OrderByDescending(g => g.Count()))
            {
                await o.WriteLineAsync($"      {group.Count(),5} × {group.Key}   e.g. {group.First().Source}").ConfigureAwait(false);
            }

            foreach (var (stage, reason, count) in batchRun.Context.Summary())
            {
                await o.WriteLineAsync($"      {count,5} × [{stage}] {reason}").ConfigureAwait(false);
            }

            long duplicates = batchRun.Stages.OfType<DedupExecutor>().Sum(d => d.Duplicates);
            await o.WriteLineAsync($"    {duplicates:N0} duplicate deliveries dropped; {parsed.Events.RowCount - duplicates - batchRun.EventsOut - batchRun.Context.DeadLetters.Count:N0} events filtered out by the signal's predicates").ConfigureAwait(false);
            await o.WriteLineAsync($"    batch shape : {batchRun.EventsOut:N0} enriched events, {batchSeq.Count:N0} user sequences in {batchTime.TotalMilliseconds:N0} ms").ConfigureAwait(false);
            await o.WriteLineAsync($"    stream shape: {streamRun.EventsOut:N0} enriched events, {streamSeq.Count:N0} user sequences in {streamTime.TotalMilliseconds:N0} ms").ConfigureAwait(false);
            await o.WriteLineAsync($"    parity      : {(same ? "identical enriched events and sequences" : "MISMATCH between shapes")}").ConfigureAwait(false);
            if (!same)
            {
                return 1;
            }

            if (definition.Name == "engagement")
            {
                engagement = signal;
                engagementRun = batchRun;
            }
        }

        // 4. A sequence as a model would read it.
        if (engagement is not null && engagementRun is not null)
        {
            var sequences = engagementRun.Assembler.Snapshot(asOf);
            var top = sequences.OrderByDescending(s => s.Elements.RowCount).ThenBy(s => s.UserId).First();
            await o.WriteLineAsync($"\n[4/4] user {top.UserId}: {top.Elements.RowCount} elements (truncated: {top.Truncated}), newest first, as of {Timestamps.Format(asOf)}").ConfigureAwait(false);
            var e = top.Elements;
            for (int r = 0; r < Math.Min(5, e.RowCount); r++)
            {
                var emb = (float[]?)e["embedding"].GetValue(r);
                await o.WriteLineAsync($"  {Timestamps.Format((long)e[StandardColumns.EventTime].GetValue(r)!)[..19]}  {e[StandardColumns.EventType].GetValue(r),-6} item {e["item_id"].GetValue(r),-7} {e["category"].GetValue(r) ?? "-",-4} dwell {e["dwell_ms"].GetValue(r) ?? "-",-6} emb[{(emb is null ? "-" : string.Join(",", emb.Take(3).Select(x => x.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))) + ",…")}]").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"  fingerprint {engagement.Fingerprint}").ConfigureAwait(false);
        }

        await o.WriteLineAsync($"\ndone in {total.Elapsed.TotalSeconds:N1} s").ConfigureAwait(false);
        return 0;
    }

    private static string Reason(string reason)
    {
        int quote = reason.IndexOf(" of ", StringComparison.Ordinal);
        return reason.StartsWith("malformed JSON", StringComparison.Ordinal) ? "malformed JSON" : quote > 0 && reason.Contains("expected", StringComparison.Ordinal) ? reason[..quote] + ": wrong type" : reason.Split(' ').Length > 6 ? string.Join(' ', reason.Split(' ').Take(3)) + " …" : reason;
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
