using System.Collections.Immutable;
using System.Text;
using FluentAssertions;
using Weft.Definitions;
using Weft.Engine;
using Weft.Engine.Tests;
using Weft.Tests.Legacy;
using Xunit;

namespace Weft.Migration.Tests;

/// <summary>The legacy HTTP adapter: the two answer shapes, what it refuses, and its breaker against a failing service on loopback.</summary>
public sealed class LegacyEndpointTests
{
    private static readonly ImmutableArray<FieldDefinition> Schema =
    [
        new(StandardColumns.EventId, WeftType.String, Nullable: false),
        new(StandardColumns.EventType, WeftType.String, Nullable: false),
        new(StandardColumns.EventTime, WeftType.Timestamp, Nullable: false),
        new("item_id", WeftType.Int64, Nullable: false),
    ];

    [Fact]
    public void An_array_and_an_object_with_events_read_alike_and_only_the_keys_are_required()
    {
        const string Events = """[{"event_id":"a","event_type":"click","event_time":"2026-11-02T10:00:00Z","item_id":7,"extra":1},{"event_id":"b","event_type":"save","event_time":1793620800000000},{"event_id":"c","event_type":"save"}]""";

        var bare = LegacyEndpoint.Read(Encoding.UTF8.GetBytes(Events), "test", Schema, withColumns: true);
        var wrapped = LegacyEndpoint.Read(Encoding.UTF8.GetBytes($$"""{"user_id":3,"events":{{Events}}}"""), "test", Schema, withColumns: true);

        foreach (var read in new[] { bare, wrapped })
        {
            read.Rows.RowCount.Should().Be(2);
            read.Rows["item_id"].GetValue(1).Should().BeNull("item_id is Weft's required column, not legacy's: a missing one reads as null");
            read.Rows[StandardColumns.EventTime].GetValue(0).Should().Be(Timestamps.ToMicros(new DateTimeOffset(2026, 11, 2, 10, 0, 0, TimeSpan.Zero)));
            read.Unreadable.Should().ContainSingle().Which.Reason.Should().Contain("event_time");
            read.Columns.Should().BeEquivalentTo(["event_id", "event_type", "event_time", "item_id", "extra"]);
        }

        var notASequence = () => LegacyEndpoint.Read(Encoding.UTF8.GetBytes("""{"items":[]}"""), "http://legacy/users/3", Schema);
        notASequence.Should().Throw<LegacyEndpointException>().WithMessage("*http://legacy/users/3*neither an array of events nor an object with an \"events\" array*");
        var notJson = () => LegacyEndpoint.Read(Encoding.UTF8.GetBytes("<html>"), "http://legacy/users/3", Schema);
        notJson.Should().Throw<LegacyEndpointException>().WithMessage("*not JSON*");
        var noPlaceholder = () => new LegacyEndpoint("http://legacy/users/sequence", TimeSpan.FromSeconds(1));
        noPlaceholder.Should().Throw<ArgumentException>().WithMessage("*{user_id}*");
    }

    [Fact]
    public void Asked_for_some_types_it_reads_only_their_elements_and_still_reports_one_whose_type_is_not_text()
    {
        const string Events = """[{"event_id":"a","event_type":"click","event_time":1793620800000000},{"event_id":"b","event_type":"save","event_time":1793620800000001},{"event_id":"c","event_type":"view","event_time":1793620800000002},{"event_id":"d","event_type":7,"event_time":1793620800000003},{"event_id":"e","event_type":"click"}]""";
        var all = LegacyEndpoint.Read(Encoding.UTF8.GetBytes(Events), "test", Schema);
        var some = LegacyEndpoint.Read(Encoding.UTF8.GetBytes(Events), "test", Schema, types: ["save", "view"]);

        Ids(all.Rows).Should().Equal("a", "b", "c");
        all.Unreadable.Should().HaveCount(2);
        Ids(some.Rows).Should().Equal("b", "c");
        some.Unreadable.Should().ContainSingle("the element whose event_type is a number cannot be told apart, so it is read and refused; the click without a time is not asked for")
            .Which.Source.Should().Be("test events[3]", "named by its place in the answer, not among the elements read");

        static IEnumerable<string?> Ids(EventBatch rows) => ((StringColumn)rows[StandardColumns.EventId]).Values[..rows.RowCount].ToArray();
    }

    [Fact]
    public async Task A_failing_service_is_not_asked_after_five_failures_in_a_row_until_the_break_has_passed_and_one_request_succeeds()
    {
        await using var server = await LegacyServer.StartAsync();
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero));
        using var endpoint = new LegacyEndpoint(server.Url, TimeSpan.FromSeconds(5), breaks: true, clock);
        server.FailWith = 503;

        for (int i = 0; i < LegacyEndpoint.OpenAfter; i++)
        {
            var failed = () => endpoint.FetchAsync(1, Schema, CancellationToken.None);
            (await failed.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeFalse();
        }

        server.Requests.Should().Be(LegacyEndpoint.OpenAfter);
        var skipped = () => endpoint.FetchAsync(1, Schema, CancellationToken.None);
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.Should().Match<LegacyEndpointException>(e => e.NotAsked && e.Message.Contains("answered 503"));
        server.Requests.Should().Be(LegacyEndpoint.OpenAfter, "an open breaker asks nothing");

        // After the break one request tries again; failing, it opens the breaker once more.
        clock.Advance(LegacyEndpoint.OpenFor);
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeFalse();
        server.Requests.Should().Be(LegacyEndpoint.OpenAfter + 1);
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeTrue();

        // The one trying request is the only one asked while it is out.
        clock.Advance(LegacyEndpoint.OpenFor);
        server.FailWith = 0;
        server.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Bodies[1] = """[{"event_id":"a","event_type":"click","event_time":"2026-11-02T10:00:00Z","item_id":7}]""";
        var trying = endpoint.FetchAsync(1, Schema, CancellationToken.None);
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeTrue("another request is trying the service");
        server.Hold.SetResult();
        server.Hold = null;
        (await trying).Rows.RowCount.Should().Be(1);
        (await endpoint.FetchAsync(1, Schema, CancellationToken.None)).Rows.RowCount.Should().Be(1, "a success closes the breaker");
        server.Requests.Should().Be(LegacyEndpoint.OpenAfter + 3);

        // Closed again, it counts from zero: one failure does not open it.
        server.FailWith = 500;
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeFalse();
        (await skipped.Should().ThrowAsync<LegacyEndpointException>()).Which.NotAsked.Should().BeFalse("two failures in a row are not five");
    }
}
