using System.Text;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using Weft.Testing;

namespace Weft.Online.Tests;

/// <summary>
/// The contract every <see cref="IOnlineStore"/> passes (SQLite, PostgreSQL). A subclass gives each
/// test instance a fresh, empty store location; <see cref="OpenAsync"/> opens it (again), and the
/// stores opened are disposed after the test.
/// </summary>
public abstract class OnlineStoreContract : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly List<IOnlineStore> _opened = [];

    /// <summary>Opens the store under test at this test's location (the same one on every call).</summary>
    private protected abstract Task<IOnlineStore> OpenStoreAsync(OnlineStoreTuning tuning);

    /// <summary>Makes every later checkpoint write fail inside the database (a trigger that raises).</summary>
    protected abstract Task BreakCheckpointWritesAsync();

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }
    }

    /// <summary>Trim steps of 7 rows (or users), SQLite merges from 8-row runs on, 5 rows per merge step: the chunked paths with little data.</summary>
    private protected static OnlineStoreTuning SmallChunks { get; } = new() { TrimChunkRows = 7, InsertChunkRows = 5, MaxReaders = 3, MergeBaseRows = 8, MergeChunkRows = 5 };

    private protected async Task<IOnlineStore> OpenAsync(OnlineStoreTuning? tuning = null)
    {
        var store = await OpenStoreAsync(tuning ?? SmallChunks);
        _opened.Add(store);
        return store;
    }

    // ------------------------------------------------------------------ helpers

    protected static OnlineElement E(long user, long time, string id, long ingest = 0, string? payload = null) =>
        new(user, time, id, ingest, Encoding.UTF8.GetBytes(payload ?? $"{user}/{time}/{id}"));

    /// <summary>An element as comparable values (the payload as hex, since arrays compare by reference).</summary>
    protected static (long User, long Time, string Id, long Ingest, string Payload) Show(OnlineElement e) =>
        (e.UserId, e.EventTimeMicros, e.EventId, e.IngestTimeMicros, Convert.ToHexString(e.Payload));

    protected static List<(long User, long Time, string Id, long Ingest, string Payload)> Show(IEnumerable<OnlineElement> elements) =>
        elements.Select(Show).ToList();

    protected static List<string> Keys(IEnumerable<OnlineElement> elements) =>
        elements.Select(e => $"{e.EventTimeMicros}:{e.EventId}").ToList();

    /// <summary>The reference order: event_time descending, then event_id by code point (= UTF-8 byte order).</summary>
    protected static int ReferenceOrder(OnlineElement a, OnlineElement b)
    {
        var byTime = b.EventTimeMicros.CompareTo(a.EventTimeMicros);
        return byTime != 0 ? byTime : Encoding.UTF8.GetBytes(a.EventId).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b.EventId));
    }

    /// <summary>The reference read: filter, sort, take — on elements already de-duplicated.</summary>
    protected static List<OnlineElement> ReferenceRead(IEnumerable<OnlineElement> stored, long user, OnlineReadOptions o)
    {
        var selected = stored
            .Where(e => e.UserId == user && e.EventTimeMicros <= o.AsOfMicros && e.IngestTimeMicros <= o.KnownAtMicros
                        && (o.LookbackMicros == long.MaxValue || (Int128)e.EventTimeMicros > (Int128)o.AsOfMicros - o.LookbackMicros))
            .ToList();
        selected.Sort(ReferenceOrder);
        return selected.Take(o.Limit).ToList();
    }

    // ------------------------------------------------------------------ order

    [Fact]
    public async Task Appended_elements_are_read_newest_first_with_ties_broken_by_event_id()
    {
        var store = await OpenAsync();
        var big = new string('x', 100_000);
        var added = await store.AppendAsync("clicks",
            [E(1, 100, "b"), E(1, 300, "a", ingest: 7, payload: big), E(1, 100, "a"), E(1, 200, "z"), E(1, 100, "B", payload: ""), E(2, 400, "other")],
            null, None);

        added.Should().Be(6);
        var read = await store.ReadAsync("clicks", 1, OnlineReadOptions.Default, None);
        Keys(read).Should().Equal("300:a", "200:z", "100:B", "100:a", "100:b");
        Show(read[0]).Should().Be((1L, 300L, "a", 7L, Convert.ToHexString(Encoding.UTF8.GetBytes(big))));
        read[2].Payload.Should().BeEmpty();
        read.Should().OnlyContain(e => e.UserId == 1);
    }

    [Fact]
    public async Task Ties_in_event_time_are_broken_by_code_point_order_of_the_event_id()
    {
        var store = await OpenAsync();
        string[] ids = ["\uFFFD", "z", "\U0001F600", "é", "Z", "ab", "ab1", "中"];
        await store.AppendAsync("s", [.. ids.Select(id => E(1, 5, id))], null, None);

        var read = await store.ReadAsync("s", 1, OnlineReadOptions.Default, None);

        // Code point order: Z < ab < ab1 < z < é < 中 < U+FFFD < U+1F600 (UTF-16 ordinal would put the emoji before U+FFFD).
        read.Select(e => e.EventId).Should().Equal("Z", "ab", "ab1", "z", "é", "中", "\uFFFD", "\U0001F600");
    }

    [Fact]
    public async Task Events_arriving_out_of_order_are_read_in_event_time_order()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 5, "e5"), E(1, 1, "e1")], null, None);
        await store.AppendAsync("s", [E(1, 9, "e9")], null, None);
        await store.AppendAsync("s", [E(1, 3, "e3"), E(1, 7, "e7"), E(1, -2, "old")], null, None);

        var read = await store.ReadAsync("s", 1, OnlineReadOptions.Default, None);

        Keys(read).Should().Equal("9:e9", "7:e7", "5:e5", "3:e3", "1:e1", "-2:old");
    }

    // ------------------------------------------------------------------ durability

    [Fact]
    public async Task A_deferred_append_is_readable_at_once_deduplicated_like_any_other_and_kept_after_a_sync_and_reopen()
    {
        var store = await OpenAsync();
        (await store.AppendAsync("s", [E(1, 5, "e5"), E(2, 1, "e1")], null, OnlineDurability.Deferred, None)).Should().Be(2);
        Keys(await store.ReadAsync("s", 1, OnlineReadOptions.Default, None)).Should().Equal("5:e5");

        // The same keys again, either way: nothing new.
        (await store.AppendAsync("s", [E(1, 5, "e5")], null, OnlineDurability.Immediate, None)).Should().Be(0);
        (await store.AppendAsync("s", [E(2, 1, "e1"), E(1, 9, "e9")], null, OnlineDurability.Deferred, None)).Should().Be(1);
        await store.SyncAsync(None);
        await store.SyncAsync(None); // nothing left to sync

        await store.DisposeAsync();
        var reopened = await OpenAsync();
        Keys(await reopened.ReadAsync("s", 1, OnlineReadOptions.Default, None)).Should().Equal("9:e9", "5:e5");
        Keys(await reopened.ReadAsync("s", 2, OnlineReadOptions.Default, None)).Should().Equal("1:e1");
    }

    [Fact]
    public async Task A_sync_on_a_disposed_store_is_refused()
    {
        var store = await OpenAsync();
        await store.DisposeAsync();

        await store.Invoking(s => s.SyncAsync(None).AsTask()).Should().ThrowAsync<ObjectDisposedException>();
    }

    // ------------------------------------------------------------------ idempotency

    [Fact]
    public async Task The_same_key_appended_twice_is_stored_once_and_keeps_the_first_payload()
    {
        var store = await OpenAsync();
        (await store.AppendAsync("s", [E(1, 10, "a", ingest: 1, payload: "first")], null, None)).Should().Be(1);

        (await store.AppendAsync("s", [E(1, 10, "a", ingest: 2, payload: "second")], null, None)).Should().Be(0);

        var read = await store.ReadAsync("s", 1, OnlineReadOptions.Default, None);
        Show(read).Should().Equal(Show(E(1, 10, "a", ingest: 1, payload: "first")));
    }

    [Fact]
    public async Task Replaying_a_batch_stores_nothing_new_and_leaves_the_count_unchanged()
    {
        var store = await OpenAsync();
        var batch = Enumerable.Range(0, 50).Select(i => E(i % 7, 1000 - (i * 13 % 17), $"e{i}", ingest: i)).ToList();
        (await store.AppendAsync("s", batch, null, None)).Should().Be(50);
        var before = await store.ReadManyAsync("s", [.. Enumerable.Range(0, 7).Select(u => (long)u)], OnlineReadOptions.Default, None);

        (await store.AppendAsync("s", batch, null, None)).Should().Be(0);
        (await store.AppendAsync("s", [.. batch.AsEnumerable().Reverse()], null, None)).Should().Be(0);

        (await store.StatsAsync("s", None)).Elements.Should().Be(50);
        var after = await store.ReadManyAsync("s", [.. Enumerable.Range(0, 7).Select(u => (long)u)], OnlineReadOptions.Default, None);
        foreach (var (user, elements) in before)
        {
            Show(after[user]).Should().Equal(Show(elements));
        }
    }

    [Fact]
    public async Task Duplicates_inside_one_batch_collapse_to_the_first_of_them()
    {
        var store = await OpenAsync();

        var added = await store.AppendAsync("s", [E(1, 10, "a", payload: "p1"), E(1, 10, "b"), E(1, 10, "a", payload: "p2"), E(1, 10, "a", payload: "p3")], null, None);

        added.Should().Be(2);
        var read = await store.ReadAsync("s", 1, OnlineReadOptions.Default, None);
        Show(read).Should().Equal(Show([E(1, 10, "a", payload: "p1"), E(1, 10, "b")]));
    }

    [Fact]
    public async Task Concurrent_overlapping_appends_store_each_key_exactly_once()
    {
        var store = await OpenAsync();
        var elements = Enumerable.Range(0, 200).Select(i => E(i % 10, i / 10, $"e{i % 3}")).DistinctBy(e => (e.UserId, e.EventTimeMicros, e.EventId)).ToList();
        var writers = Enumerable.Range(0, 4).Select(w =>
        {
            var shuffled = elements.OrderBy(e => HashCode.Combine(w, e.UserId, e.EventTimeMicros, e.EventId)).ToList();
            return Task.Run(async () =>
            {
                var added = 0;
                foreach (var chunk in shuffled.Chunk(23))
                {
                    added += await store.AppendAsync("s", chunk, null, None);
                }

                return added;
            });
        }).ToList();

        var counts = await Task.WhenAll(writers);

        counts.Sum().Should().Be(elements.Count);
        (await store.StatsAsync("s", None)).Elements.Should().Be(elements.Count);
    }

    // ------------------------------------------------------------------ read options

    [Fact]
    public async Task A_limit_returns_only_the_newest_elements()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [.. Enumerable.Range(1, 20).Select(t => E(1, t, "e"))], null, None);

        var five = await store.ReadAsync("s", 1, new OnlineReadOptions { Limit = 5 }, None);
        var none = await store.ReadAsync("s", 1, new OnlineReadOptions { Limit = 0 }, None);

        Keys(five).Should().Equal("20:e", "19:e", "18:e", "17:e", "16:e");
        none.Should().BeEmpty();
    }

    [Fact]
    public async Task As_of_includes_events_at_that_time_and_excludes_later_ones()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [.. Enumerable.Range(1, 10).Select(t => E(1, t * 10, "e"))], null, None);

        var read = await store.ReadAsync("s", 1, new OnlineReadOptions { AsOfMicros = 50, Limit = 3 }, None);

        Keys(read).Should().Equal("50:e", "40:e", "30:e");
    }

    [Fact]
    public async Task Lookback_keeps_only_events_after_as_of_minus_the_lookback()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [.. Enumerable.Range(1, 10).Select(t => E(1, t * 10, "e"))], null, None);

        var window = await store.ReadAsync("s", 1, new OnlineReadOptions { AsOfMicros = 70, LookbackMicros = 30 }, None);
        var empty = await store.ReadAsync("s", 1, new OnlineReadOptions { AsOfMicros = 70, LookbackMicros = 0 }, None);
        var fromNow = await store.ReadAsync("s", 1, new OnlineReadOptions { LookbackMicros = long.MaxValue - 1 }, None);

        Keys(window).Should().Equal("70:e", "60:e", "50:e");
        empty.Should().BeEmpty();
        fromNow.Should().HaveCount(10);
    }

    [Fact]
    public async Task Known_at_hides_events_ingested_after_it()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 10, "a", ingest: 100), E(1, 20, "b", ingest: 300), E(1, 5, "late", ingest: 500), E(1, 15, "c", ingest: 200)], null, None);

        var asServed = await store.ReadAsync("s", 1, new OnlineReadOptions { KnownAtMicros = 200 }, None);

        Keys(asServed).Should().Equal("15:c", "10:a");
    }

    [Fact]
    public async Task A_user_without_elements_reads_as_an_empty_list()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 10, "a")], null, None);

        (await store.ReadAsync("s", 2, OnlineReadOptions.Default, None)).Should().BeEmpty();
        (await store.ReadAsync("nothing", 1, OnlineReadOptions.Default, None)).Should().BeEmpty();
    }

    [Fact]
    public async Task Read_many_equals_reading_each_user_alone()
    {
        var store = await OpenAsync();
        var random = new Random(11);
        long[] users = [long.MinValue, -3, 0, 1, 2, 3, 42, long.MaxValue];
        var elements = Enumerable.Range(0, 300)
            .Select(i => E(users[random.Next(users.Length)], random.Next(0, 50), $"e{random.Next(0, 4)}", ingest: random.Next(0, 100)))
            .ToList();
        await store.AppendAsync("s", elements, null, None);
        OnlineReadOptions[] optionSets =
        [
            OnlineReadOptions.Default,
            new() { Limit = 4 },
            new() { AsOfMicros = 30, LookbackMicros = 15, KnownAtMicros = 60, Limit = 10 },
            new() { Limit = 0 },
        ];
        long[] asked = [1, long.MinValue, 99, 3, 1, long.MaxValue, 0, -3];

        foreach (var options in optionSets)
        {
            var many = await store.ReadManyAsync("s", asked, options, None);

            many.Keys.Should().HaveSameItemsAs(asked.Distinct());
            foreach (var user in asked.Distinct())
            {
                var alone = await store.ReadAsync("s", user, options, None);
                Show(many[user]).Should().Equal(Show(alone), $"user {user} with {options}");
            }
        }

        (await store.ReadManyAsync("s", [], OnlineReadOptions.Default, None)).Should().BeEmpty();
    }

    // ------------------------------------------------------------------ trim

    [Fact]
    public async Task Trim_keeps_exactly_the_newest_n_per_user_and_leaves_other_signals_alone()
    {
        var store = await OpenAsync();
        var random = new Random(5);
        long[] users = [long.MinValue, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, long.MaxValue];
        var elements = users.SelectMany(u => Enumerable.Range(0, random.Next(0, 13)).Select(i => E(u, random.Next(0, 8), $"e{i}"))).ToList();
        await store.AppendAsync("a", elements, null, None);
        await store.AppendAsync("b", elements, null, None);
        var beforeB = await store.ReadManyAsync("b", users, OnlineReadOptions.Default, None);

        var deleted = await store.TrimAsync("a", 5, None);

        deleted.Should().Be(users.Sum(u => Math.Max(0, elements.Count(e => e.UserId == u) - 5)));
        foreach (var user in users)
        {
            var read = await store.ReadAsync("a", user, OnlineReadOptions.Default, None);
            Show(read).Should().Equal(Show(ReferenceRead(elements, user, new OnlineReadOptions { Limit = 5 })), $"user {user}");
            Show(await store.ReadAsync("b", user, OnlineReadOptions.Default, None)).Should().Equal(Show(beforeB[user]));
        }

        (await store.TrimAsync("a", 5, None)).Should().Be(0);
        (await store.TrimAsync("a", 0, None)).Should().Be(users.Sum(u => Math.Min(5, elements.Count(e => e.UserId == u))));
        (await store.StatsAsync("a", None)).Elements.Should().Be(0);
        (await store.StatsAsync("b", None)).Elements.Should().Be(elements.Count);
    }

    // ------------------------------------------------------------------ checkpoints

    [Fact]
    public async Task Checkpoints_are_stored_with_the_append_and_only_move_forward()
    {
        var store = await OpenAsync();
        (await store.ReadCheckpointAsync("job", None)).Should().BeEmpty();

        await store.AppendAsync("s", [E(1, 1, "a")], new SourceCheckpoint("job", new Dictionary<string, long> { ["events/0"] = 10, ["events/1"] = 5 }), None);
        await store.AppendAsync("s", [E(1, 2, "b")], new SourceCheckpoint("job", new Dictionary<string, long> { ["events/0"] = 7, ["events/2"] = 3 }), None);
        await store.AppendAsync("s", [], new SourceCheckpoint("job", new Dictionary<string, long> { ["events/1"] = 9 }), None);
        await store.AppendAsync("s", [E(1, 1, "a")], new SourceCheckpoint("other", new Dictionary<string, long> { ["events/0"] = 1 }), None);

        (await store.ReadCheckpointAsync("job", None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["events/0"] = 10, ["events/1"] = 9, ["events/2"] = 3 });
        (await store.ReadCheckpointAsync("other", None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["events/0"] = 1 });
    }

    /// <summary>
    /// Within one insert chunk every store is all or nothing. A larger PostgreSQL append may store some
    /// users and not move its checkpoint (PostgresOnlineStoreTests); a SQLite one is one transaction.
    /// </summary>
    [Fact]
    public async Task A_failed_append_of_one_chunk_stores_neither_its_elements_nor_its_checkpoint()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 1, "kept")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 1 }), None);
        await BreakCheckpointWritesAsync();

        var append = async () => await store.AppendAsync("s", [E(1, 2, "lost"), E(2, 3, "lost")], new SourceCheckpoint("job", new Dictionary<string, long> { ["q"] = 2 }), None);

        (await append.Should().ThrowAsync<OnlineStoreException>()).Which.IsTransient.Should().BeFalse();
        Keys(await store.ReadAsync("s", 1, OnlineReadOptions.Default, None)).Should().Equal("1:kept");
        (await store.ReadAsync("s", 2, OnlineReadOptions.Default, None)).Should().BeEmpty();
        (await store.ReadCheckpointAsync("job", None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["p"] = 1 });
    }

    [Fact]
    public async Task Stored_elements_and_checkpoints_survive_reopening_the_store()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 1, "a"), E(1, 2, "b")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 41 }), None);
        await store.DisposeAsync();

        var reopened = await OpenAsync();

        Keys(await reopened.ReadAsync("s", 1, OnlineReadOptions.Default, None)).Should().Equal("2:b", "1:a");
        (await reopened.ReadCheckpointAsync("job", None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["p"] = 41 });
        (await reopened.AppendAsync("s", [E(1, 2, "b")], null, None)).Should().Be(0);
    }

    // ------------------------------------------------------------------ signals and stats

    [Fact]
    public async Task Signals_are_isolated_from_each_other()
    {
        var store = await OpenAsync();
        (await store.AppendAsync("a", [E(1, 10, "x", payload: "in a")], null, None)).Should().Be(1);
        (await store.AppendAsync("b", [E(1, 10, "x", payload: "in b"), E(2, 11, "y")], null, None)).Should().Be(2);

        Show(await store.ReadAsync("a", 1, OnlineReadOptions.Default, None)).Should().Equal(Show(E(1, 10, "x", payload: "in a")));
        Show(await store.ReadAsync("b", 1, OnlineReadOptions.Default, None)).Should().Equal(Show(E(1, 10, "x", payload: "in b")));
        (await store.ReadAsync("a", 2, OnlineReadOptions.Default, None)).Should().BeEmpty();
        (await store.StatsAsync("a", None)).Should().Be(new OnlineStoreStats(1, 1, 10, 0));
        (await store.TrimAsync("b", 0, None)).Should().Be(2);
        (await store.StatsAsync("a", None)).Elements.Should().Be(1);
    }

    [Fact]
    public async Task Stats_count_users_and_elements_and_give_the_newest_event_and_ingest_times()
    {
        var store = await OpenAsync();
        (await store.StatsAsync("s", None)).Should().Be(new OnlineStoreStats(0, 0, null, null));

        await store.AppendAsync("s", [E(1, 10, "a", ingest: 500), E(1, 30, "b", ingest: 40), E(7, 20, "c", ingest: 60)], null, None);

        (await store.StatsAsync("s", None)).Should().Be(new OnlineStoreStats(Users: 2, Elements: 3, NewestEventTimeMicros: 30, NewestIngestTimeMicros: 500));
    }

    // ------------------------------------------------------------------ arguments and cancellation

    [Fact]
    public async Task Unusable_arguments_are_rejected_naming_what_is_wrong_and_store_nothing()
    {
        var store = await OpenAsync();

        await FluentActions.Awaiting(async () => await store.AppendAsync("", [E(1, 1, "a")], null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*signal*");
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 1, "a"), new OnlineElement(1, 2, null!, 0, [])], null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*elements[1]*EventId is null*");
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 1, "a"), E(1, 2, "bad\0id")], null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*elements[1]*U+0000*");
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 1, "a"), new OnlineElement(1, 2, "x", 0, null!)], null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*elements[1]*Payload is null*");
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 1, "a")], new SourceCheckpoint("", new Dictionary<string, long>()), None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*checkpoint.Consumer*");
        await FluentActions.Awaiting(async () => await store.TrimAsync("s", -1, None))
            .Should().ThrowAsync<ArgumentOutOfRangeException>().WithMessage("*keep*");

        (await store.StatsAsync("s", None)).Elements.Should().Be(0);
    }

    [Fact]
    public async Task An_event_id_longer_than_the_store_can_key_on_is_rejected_naming_the_element_and_stores_nothing()
    {
        var store = await OpenAsync();
        var random = new Random(7);
        // Random text does not compress: 1,025 bytes of UTF-8 and 2,000 characters of three bytes each.
        var justOver = new string([.. Enumerable.Range(0, 1_025).Select(_ => (char)random.Next('a', 'z' + 1))]);
        var wide = new string([.. Enumerable.Range(0, 2_000).Select(_ => (char)random.Next(0x4E00, 0x9FFF))]);
        var atLimit = new string([.. Enumerable.Range(0, 341).Select(_ => (char)random.Next(0x4E00, 0x9FFF))]) + "x"; // 1,024 bytes

        (await store.AppendAsync("s", [E(1, 1, "kept")], null, None)).Should().Be(1);
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 2, "a"), E(1, 3, justOver)], null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*elements[1]*1024 bytes*");
        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(2, 2, wide), E(1, 3, "b")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 5 }), None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*elements[0]*1024 bytes*");

        Keys(await store.ReadAsync("s", 1, OnlineReadOptions.Default, None)).Should().Equal("1:kept");
        (await store.ReadAsync("s", 2, OnlineReadOptions.Default, None)).Should().BeEmpty();
        (await store.ReadCheckpointAsync("job", None)).Should().BeEmpty();
        (await store.AppendAsync("s", [E(3, 1, atLimit)], null, None)).Should().Be(1, "1,024 bytes is allowed");
        Keys(await store.ReadAsync("s", 3, OnlineReadOptions.Default, None)).Should().Equal($"1:{atLimit}");
    }

    [Fact]
    public async Task Calls_with_a_cancelled_token_throw_operation_canceled_and_store_nothing()
    {
        var store = await OpenAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await FluentActions.Awaiting(async () => await store.AppendAsync("s", [E(1, 1, "a")], null, cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();
        await FluentActions.Awaiting(async () => await store.ReadAsync("s", 1, OnlineReadOptions.Default, cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();

        (await store.StatsAsync("s", None)).Elements.Should().Be(0);
    }

    // ------------------------------------------------------------------ property

    /// <summary>One append sequence: elements in arrival order (duplicates included), cut into batches, some batches re-sent.</summary>
    public sealed record AppendCase(IReadOnlyList<OnlineElement> Arrivals, IReadOnlyList<int> BatchSizes, IReadOnlyList<int> Replays, OnlineReadOptions Options)
    {
        public override string ToString() =>
            $"{Arrivals.Count} arrivals [{string.Join(", ", Arrivals.Select(e => $"{e.UserId}/{e.EventTimeMicros}/{e.EventId}/{e.IngestTimeMicros}"))}], " +
            $"batches [{string.Join(",", BatchSizes)}], replays [{string.Join(",", Replays)}], {Options}";
    }

    private static readonly string[] PropertyIds = ["a", "b", "B", "a1", "é", "\U0001F600", "\uFFFD"];

    private static readonly Gen<OnlineReadOptions> OptionsGen =
        from limit in Gen.Elements(0, 1, 3, 500)
        from asOf in Gen.OneOf(Gen.Constant(long.MaxValue), Gen.Choose(-2, 20).Select(t => (long)t))
        from lookback in Gen.OneOf(Gen.Constant(long.MaxValue), Gen.Choose(0, 12).Select(t => (long)t))
        from knownAt in Gen.OneOf(Gen.Constant(long.MaxValue), Gen.Choose(0, 30).Select(t => (long)t))
        select new OnlineReadOptions { Limit = limit, AsOfMicros = asOf, LookbackMicros = lookback, KnownAtMicros = knownAt };

    private static readonly Gen<AppendCase> CaseGen =
        from raw in (from user in Gen.Choose(0, 3)
                     from time in Gen.Frequency((9, Gen.Choose(-2, 15).Select(t => (long)t)), (1, Gen.Elements(long.MinValue, long.MaxValue)))
                     from id in Gen.Elements(PropertyIds)
                     from ingest in Gen.Choose(0, 30)
                     select (User: user == 3 ? long.MinValue : user, Time: time, Id: id, Ingest: (long)ingest)).ListOf()
        from sizes in Gen.Choose(1, 12).ListOf()
        from replays in Gen.Choose(0, 20).ListOf()
        from options in OptionsGen
        select new AppendCase(
            // The payload names the arrival, so "the first write wins" is visible in what is read.
            [.. raw.Select((r, i) => new OnlineElement(r.User, r.Time, r.Id, r.Ingest, i % 7 == 0 ? [] : BitConverter.GetBytes(i)))],
            [.. sizes], [.. replays], options);

    [Fact]
    public async Task Reads_equal_a_reference_model_for_any_batches_arrival_orders_and_duplicates()
    {
        var store = await OpenAsync();
        var run = 0;
        long[] users = [0, 1, 2, long.MinValue];
        var property = Prop.ForAll(CaseGen.ToArbitrary(), async c =>
        {
            var signal = $"p{Interlocked.Increment(ref run)}";
            var batches = new List<OnlineElement[]>();
            for (int start = 0, b = 0; start < c.Arrivals.Count; b++)
            {
                var size = c.BatchSizes.Count == 0 ? c.Arrivals.Count : c.BatchSizes[b % c.BatchSizes.Count];
                batches.Add([.. c.Arrivals.Skip(start).Take(size)]);
                start += size;
            }

            var added = 0;
            for (var b = 0; b < batches.Count; b++)
            {
                added += await store.AppendAsync(signal, batches[b], null, None);
                foreach (var replay in c.Replays.Where(r => batches.Count > 0 && r % batches.Count == b).Take(2))
                {
                    added += await store.AppendAsync(signal, batches[replay % (b + 1)], null, None); // at-least-once: an earlier batch again
                }
            }

            var model = c.Arrivals.DistinctBy(e => (e.UserId, e.EventTimeMicros, e.EventId)).ToList();
            added.Should().Be(model.Count, c.ToString());
            var many = await store.ReadManyAsync(signal, users, c.Options, None);
            foreach (var user in users)
            {
                var expected = Show(ReferenceRead(model, user, c.Options));
                Show(await store.ReadAsync(signal, user, c.Options, None)).Should().Equal(expected, c.ToString());
                Show(many[user]).Should().Equal(expected, c.ToString());
            }
        });

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(60).WithEndSize(60).WithReplay(0x0E11E, 0x9E3779B97F4A7C15), property);
    }
}
