using System.Globalization;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Engine.Tests;

/// <summary>
/// Runs every golden case under conformance/ (see docs/signal-json.md, "Conformance vectors") in
/// both scheduling shapes. The expected files were derived by hand from the spec, not produced by
/// this engine; a new runtime or executor must pass the same cases.
/// </summary>
public class ConformanceTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "conformance")).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    [Fact]
    public void The_conformance_folder_has_cases() => Cases().Should().HaveCountGreaterThanOrEqualTo(3);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_passes_in_table_shape(string name) => await RunAsync(name, batchSize: null);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_passes_record_at_a_time(string name) => await RunAsync(name, batchSize: 1);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_passes_in_micro_batches(string name) => await RunAsync(name, batchSize: 2);

    private static async Task RunAsync(string name, int? batchSize)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "conformance", name);
        var read = SignalJsonReader.Read(await File.ReadAllBytesAsync(Path.Combine(dir, "signal.json")));
        read.Problems.Should().BeEmpty();
        var definition = read.Signal!;
        using var caseDoc = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(dir, "case.json")));
        long asOf = Timestamps.ToMicros(DateTimeOffset.Parse(caseDoc.RootElement.GetProperty("as_of").GetString()!, CultureInfo.InvariantCulture));

        var tables = new Dictionary<string, EnrichmentTable>();
        foreach (var source in definition.EnrichmentSources)
        {
            var (rows, bad) = JsonRows.Read(JsonRows.ReadLines(Path.Combine(dir, "enrichments", source.Name + ".jsonl")), EnrichmentTable.RowSchema(source), "enrichment");
            bad.Should().BeEmpty();
            tables[source.Name] = EnrichmentTable.Build(source, rows);
        }

        var signal = CompiledSignal.Compile(definition, ExecutorRegistry.CreateDefault(), tables);
        var parser = new RawEventParser(signal, new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero)));
        var parsed = parser.Parse(JsonRows.ReadLines(Path.Combine(dir, "events.jsonl")));
        parsed.SkippedOtherTypes.Should().Be(caseDoc.RootElement.GetProperty("other_event_types").GetInt32());

        var run = signal.StartRun(new ExecutorContext(definition), new RunOptions { AsOfMicros = asOf });
        var outputs = new List<EventBatch>();
        if (batchSize is null)
        {
            outputs.Add(await run.ProcessTableAsync(parsed.Events, CancellationToken.None));
        }
        else
        {
            await run.ProcessStreamAsync(ShapeParityTests.Slices(parsed.Events, [batchSize.Value]), (b, _) =>
            {
                outputs.Add(b);
                return ValueTask.CompletedTask;
            }, CancellationToken.None);
        }

        // Enriched events: compared as a set (row order is not part of the contract).
        var actualEnriched = outputs.SelectMany(b => Enumerable.Range(0, b.RowCount).Select(r => RowJson(b, r))).Select(Normalize).Order(StringComparer.Ordinal).ToList();
        var expectedEnriched = Lines(Path.Combine(dir, "expected", "enriched.jsonl")).Select(Normalize).Order(StringComparer.Ordinal).ToList();
        actualEnriched.Should().Equal(expectedEnriched);

        // Sequences: users ascending, elements in order.
        var actualSequences = run.Assembler.Snapshot(asOf).Select(s =>
        {
            var sb = new StringBuilder($"{{\"user_id\":{s.UserId},\"truncated\":{(s.Truncated ? "true" : "false")},\"elements\":[");
            for (int r = 0; r < s.Elements.RowCount; r++)
            {
                sb.Append(r == 0 ? "" : ",").Append(RowJson(s.Elements, r));
            }

            return Normalize(sb.Append("]}").ToString());
        }).ToList();
        actualSequences.Should().Equal(Lines(Path.Combine(dir, "expected", "sequences.jsonl")).Select(Normalize).ToList());

        // Dead letters: event and stage (reason wording is a runtime's own); parse failures also by line.
        var actualDead = parsed.DeadLetters.Select(d => $"line {d.Source![(d.Source!.LastIndexOf(':') + 1)..]} {d.EventId ?? "null"} @ {d.Stage}")
            .Concat(run.Context.DeadLetters.Select(d => $"{d.EventId} @ {d.Stage}")).Order(StringComparer.Ordinal).ToList();
        var expectedDead = Lines(Path.Combine(dir, "expected", "dead_letters.jsonl")).Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            var e = doc.RootElement;
            string id = e.GetProperty("event_id").ValueKind == JsonValueKind.Null ? "null" : e.GetProperty("event_id").GetString()!;
            return e.TryGetProperty("line", out var line) ? $"line {line.GetInt32()} {id} @ {e.GetProperty("stage").GetString()}" : $"{id} @ {e.GetProperty("stage").GetString()}";
        }).Order(StringComparer.Ordinal).ToList();
        actualDead.Should().Equal(expectedDead);
    }

    private static IEnumerable<string> Lines(string path) => File.ReadLines(path).Where(l => l.Trim().Length > 0);

    private static string RowJson(EventBatch batch, int row)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            JsonRows.WriteRow(w, batch, row);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Re-serialises JSON with numbers in one canonical form, so 1.0 and 1 compare equal.</summary>
    private static string Normalize(string json)
    {
        using var doc = JsonDocument.Parse(json);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            Write(w, doc.RootElement);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());

        static void Write(Utf8JsonWriter w, JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    w.WriteStartObject();
                    foreach (var p in e.EnumerateObject())
                    {
                        w.WritePropertyName(p.Name);
                        Write(w, p.Value);
                    }

                    w.WriteEndObject();
                    break;
                case JsonValueKind.Array:
                    w.WriteStartArray();
                    foreach (var x in e.EnumerateArray())
                    {
                        Write(w, x);
                    }

                    w.WriteEndArray();
                    break;
                case JsonValueKind.Number:
                    w.WriteNumberValue(e.GetDouble());
                    break;
                default:
                    e.WriteTo(w);
                    break;
            }
        }
    }
}
