using System.Collections.Immutable;
using System.Globalization;
using FluentAssertions;
using Weft.Batch;
using Weft.Definitions;
using Weft.Engine;
using Weft.Parquet.Tests;
using Weft.Storage;
using Xunit;

namespace Weft.Quality.Tests;

/// <summary>
/// <see cref="StreamBatchQuality"/> over an enriched table written here as the two paths would write it:
/// batch rows committed with the bucket sealed and the time the sealing run read, stream rows with
/// their own ingest times.
/// </summary>
public sealed class StreamBatchQualityTests : IDisposable
{
    private const string Bucket = "2026-11-01T00";

    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(StandardColumns.EventId, WeftType.String, Nullable: false),
        new(StandardColumns.UserId, WeftType.Int64, Nullable: false),
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new(StandardColumns.IngestTime, WeftType.Timestamp, Nullable: false),
        new("score", WeftType.Float64),
    ];

    private static readonly long Start = TimeBuckets.Parse(Bucket).StartMicros;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// A stream behind its source (a backlog, a restart) reads an event after the sealing batch run
    /// read it from the archives. That stream row was set apart as one the run could not have had, so
    /// the batch path's copy counted as missing from the stream: completeness fell for events the stream
    /// holds. Only the stream's late rows the batch path lacks are events it could not have had.
    /// </summary>
    [Fact]
    public async Task A_stream_row_read_after_the_seal_of_an_event_the_batch_path_has_is_matched()
    {
        long readAt = Start + 7_200_000_000; // the sealing run read two hours after the bucket began
        var table = await EventTable.OpenOrCreateAsync(_dir.File("enriched"), Schema, EventLayout.PartitionColumns);
        await table.AppendAsync(
            Rows(("a", readAt - 1), ("b", readAt - 1), ("c", readAt - 1)),
            EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.BatchPath)),
            new Dictionary<string, string> { [LakeParameters.Sealed] = Bucket, [LakeParameters.ReadAt] = readAt.ToString(CultureInfo.InvariantCulture) });
        await table.AppendAsync(
            Rows(
                ("a", readAt - 1_000_000),   // read before the run: matched
                ("b", readAt + 10_000_000),  // read 10 s after the run read it from the archives: still the same event
                ("d", readAt + 5_000_000),   // after the run, and the batch path lacks it: one the run could not have
                ("e", readAt - 1_000_000)),  // before the run, and the batch path lacks it: the stream's extra
            EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.StreamPath)));

        var report = await StreamBatchQuality.CompareAsync(_dir.File("enriched"), _dir.File("late"), "s", "f", new QualityRequest());

        report.Buckets.Compared.Should().Equal(Bucket);
        var total = report.Comparison.Total;
        (total.Matched, total.ReferenceOnly, total.CandidateOnly).Should().Be((2, 1, 1), "a and b are on both paths, c only on the batch path, e only on the stream's");
        report.Buckets.ArrivedAfterSealRows.Should().Be(1, "only d arrived after the run read and is absent from the batch path");
        total.Completeness.Should().Be(2.0 / 3);
        report.Freshness.Single().Events.Should().Be(4, "freshness measures every stream row");
    }

    /// <summary>
    /// A table that is not an enriched table as Weft writes it (another table at the path, or one written
    /// by hand) lacked a column or had one of another type: the run failed on a cast or a missing key,
    /// uncaught by <c>weft quality</c>, or with a message naming neither the table nor, for some, the column.
    /// </summary>
    [Theory]
    [InlineData(StandardColumns.IngestTime, null)]
    [InlineData(StandardColumns.UserId, null)]
    [InlineData(StandardColumns.EventType, "int64")]
    [InlineData(StandardColumns.EventId, "int64")]
    [InlineData(StandardColumns.EventTime, "string")]
    public async Task An_enriched_table_lacking_a_standard_column_or_with_one_of_another_type_is_refused_naming_both(string column, string? type)
    {
        var schema = Schema.Select(f => f.Name != column ? f : type is null ? null : f with { Type = WeftType.TryParse(type, out var t) ? t : throw new ArgumentException(type) }).OfType<FieldDefinition>().ToImmutableArray();
        var path = _dir.File("odd");
        var table = await EventTable.OpenOrCreateAsync(path, schema, EventLayout.PartitionColumns);
        var rows = new EventBatch(schema, [.. schema.Select(f => f.Type == WeftType.String ? new StringColumn(["1"]) : f.Type == WeftType.Float64 ? new PrimitiveColumn<double>(f.Type, [1.0]) : (Column)new PrimitiveColumn<long>(f.Type, [Start]))]);
        await table.AppendAsync(rows, EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.BatchPath)), new Dictionary<string, string> { [LakeParameters.Sealed] = Bucket });
        await table.AppendAsync(rows, EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.StreamPath)));

        var run = () => StreamBatchQuality.CompareAsync(path, _dir.File("late"), "s", "f", new QualityRequest());

        var refused = await run.Should().ThrowAsync<QualityException>();
        refused.Which.Message.Should().Contain(path).And.Contain($"'{column}'").And.Contain(type ?? "no column");
    }

    /// <summary>A late-event ledger without its action column (another table at the path) is refused naming it and the column.</summary>
    [Theory]
    [InlineData(Weft.Streaming.Runtime.LateEventLedger.ActionColumn)]
    [InlineData(StandardColumns.EventId)]
    public async Task A_late_ledger_lacking_a_column_it_is_read_by_is_refused_naming_both(string column)
    {
        var table = await EventTable.OpenOrCreateAsync(_dir.File("enriched"), Schema, EventLayout.PartitionColumns);
        await table.AppendAsync(Rows(("a", Start)), EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.BatchPath)), new Dictionary<string, string> { [LakeParameters.Sealed] = Bucket });
        await table.AppendAsync(Rows(("a", Start)), EventPartitioner.Single(EventLayout.Partition(Bucket, EventLayout.StreamPath)));
        var ledgerSchema = Weft.Streaming.Runtime.LateEventLedger.Schema.Where(f => f.Name != column).ToImmutableArray();
        await EventTable.OpenOrCreateAsync(_dir.File("late"), ledgerSchema, [EventLayout.BucketColumn]);

        var run = () => StreamBatchQuality.CompareAsync(_dir.File("enriched"), _dir.File("late"), "s", "f", new QualityRequest());

        var refused = await run.Should().ThrowAsync<QualityException>();
        refused.Which.Message.Should().Contain(_dir.File("late")).And.Contain($"'{column}'");
    }

    private static EventBatch Rows(params (string Id, long Ingest)[] rows) => new(Schema,
    [
        new StringColumn([.. rows.Select(r => (string?)r.Id)]),
        new PrimitiveColumn<long>(WeftType.Int64, [.. rows.Select(r => (long)r.Id[0])]),
        new StringColumn([.. rows.Select(_ => (string?)"click")]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(r => Start + (r.Id[0] * 1_000_000L))]),
        new PrimitiveColumn<long>(WeftType.Timestamp, [.. rows.Select(r => r.Ingest)]),
        new PrimitiveColumn<double>(WeftType.Float64, [.. rows.Select(r => (double)r.Id[0])]),
    ]);
}
