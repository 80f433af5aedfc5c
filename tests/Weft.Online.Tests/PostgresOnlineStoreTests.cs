using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using FsCheck;
using FsCheck.Fluent;
using Npgsql;
using Weft.Online.Postgres;
using Xunit;

namespace Weft.Online.Tests;

/// <summary>The contract against the PostgreSQL store, each test in its own schema of the collection's server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresOnlineStoreTests(PostgresServer server) : OnlineStoreContract
{
    private string _connectionString = "";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _connectionString = await server.CreateSchemaAsync();
    }

    private protected override Task<IOnlineStore> OpenStoreAsync(OnlineStoreTuning tuning) =>
        OnlineStores.OpenPostgresAsync(_connectionString, tuning, CancellationToken.None);

    private async Task RepairCheckpointWritesAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("DROP TRIGGER weft_test_break ON weft_online_checkpoints", connection);
        await command.ExecuteNonQueryAsync();
    }

    protected override async Task BreakCheckpointWritesAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            CREATE FUNCTION weft_test_break() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'checkpoint writes are broken by the test'; END $$;
            CREATE TRIGGER weft_test_break BEFORE INSERT ON weft_online_checkpoints FOR EACH ROW EXECUTE FUNCTION weft_test_break();
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Describe_names_host_port_and_database_without_the_password()
    {
        var settings = new NpgsqlConnectionStringBuilder(_connectionString) { Password = "s3cret-pw" };

        var store = await OnlineStores.OpenPostgresAsync(settings.ConnectionString, CancellationToken.None);
        await using (store)
        {
            store.Describe.Should().Be($"postgres:{settings.Host}:{settings.Port}/{settings.Database}");
        }
    }

    [Fact]
    public async Task Opening_an_unreachable_server_fails_naming_host_and_port_as_a_transient_failure()
    {
        // Port 1 (tcpmux) has no listener here: a port freed by a test could be taken by another test's server.
        const int port = 1;

        var open = () => OnlineStores.OpenPostgresAsync($"Host=127.0.0.1;Port={port};Username=weft;Password=s3cret-pw;Database=online;Timeout=5", CancellationToken.None);

        var failure = (await open.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.Message.Should().Contain($"127.0.0.1:{port}/online").And.NotContain("s3cret-pw");
        failure.Store.Should().Be($"postgres:127.0.0.1:{port}/online");
        failure.IsTransient.Should().BeTrue();
    }

    [Fact]
    public async Task A_sliced_append_whose_checkpoint_fails_moves_no_checkpoint_and_stores_each_user_whole_or_not_at_all()
    {
        // Chunks of 5 rows and 2 connections: 24 elements of 6 users go out as two slices of whole users.
        var store = await OpenAsync(new OnlineStoreTuning { InsertChunkRows = 5, AppendConnections = 2 });
        await store.AppendAsync("s", [E(1, 0, "before")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 1 }), CancellationToken.None);
        var batch = Enumerable.Range(0, 24).Select(i => E(1 + (i % 6), 1 + i, $"e{i}")).ToArray();
        await BreakCheckpointWritesAsync();

        var append = async () => await store.AppendAsync("s", batch, new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 2 }), CancellationToken.None);

        await append.Should().ThrowAsync<OnlineStoreException>();
        (await store.ReadCheckpointAsync("job", CancellationToken.None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["p"] = 1 });
        var storedByFailure = 0;
        for (long user = 1; user <= 6; user++)
        {
            var stored = (await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None)).Count(e => e.EventId != "before");
            stored.Should().BeOneOf([0, 4], $"user {user}'s 4 new elements are stored together or not at all");
            storedByFailure += stored;
        }

        await RepairCheckpointWritesAsync();
        var replayed = await store.AppendAsync("s", batch, new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 2 }), CancellationToken.None);
        var total = 0;
        for (long user = 1; user <= 6; user++)
        {
            total += (await store.ReadAsync("s", user, OnlineReadOptions.Default, CancellationToken.None)).Count;
        }

        total.Should().Be(25, "the replay stored what the failed append had not, and nothing twice");
        replayed.Should().Be(24 - storedByFailure);
        (await store.ReadCheckpointAsync("job", CancellationToken.None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["p"] = 2 });
    }

    [Fact]
    public void User_slices_cover_the_batch_in_order_with_no_user_in_two_of_them()
    {
        var property = Prop.ForAll(
            Gen.Choose(0, 8).Select(u => (long)u).ListOf().ToArbitrary(),
            Gen.Choose(1, 6).ToArbitrary(),
            (users, count) =>
            {
                var elements = users.Select((u, i) => E(u, i, $"e{i}")).ToArray();
                var order = PostgresBatches.KeyOrder(elements);
                var bounds = PostgresBatches.UserSlices(elements, order, count);

                bounds[0].Should().Be(0);
                bounds[^1].Should().Be(order.Length);
                (bounds.Length - 1).Should().BeInRange(1, count);
                for (int k = 1; k < bounds.Length - 1; k++)
                {
                    bounds[k].Should().BeGreaterThan(bounds[k - 1]);
                    elements[order[bounds[k]]].UserId.Should().NotBe(elements[order[bounds[k] - 1]].UserId, "a slice ends where a user does");
                }

                var distinctUsers = users.Distinct().Count();
                if (distinctUsers >= count && users.GroupBy(u => u).All(g => g.Count() == 1))
                {
                    (bounds.Length - 1).Should().Be(count, "distinct users split into as many slices as asked");
                }
            });
        property.QuickCheckThrowOnFailure();
    }

    [Fact]
    public async Task An_appends_lock_order_is_the_order_of_the_key_index_for_ids_mixing_private_use_and_astral_characters()
    {
        // UTF-16 ordinal order puts a surrogate pair (U+10000 and up) below U+E000–U+FFFF; the index's
        // "C" collation, like UTF-8 bytes, puts it above. An append takes its row locks in the order it
        // sends the rows, so that order must be the index's for every writer to take them alike.
        string[] alphabet = ["a", "z", "\u00E9", "\uD7FF", "\uE000", "\uF8FF", "\uFFFD", "\U00010000", "\U0001F600", "\U0010FFFD"];
        var random = new Random(7);
        var elements = Enumerable.Range(0, 400)
            .Select(i => E(1 + random.Next(2), random.Next(2), string.Concat(Enumerable.Range(0, 1 + random.Next(3)).Select(_ => alphabet[random.Next(alphabet.Length)]))))
            .ToArray();
        var store = await OpenAsync();
        await store.AppendAsync("s", elements, null, CancellationToken.None);

        var sent = PostgresBatches.KeyOrder(elements).Select(i => (elements[i].UserId, elements[i].EventTimeMicros, elements[i].EventId)).ToList();

        var indexed = new List<(long, long, string)>();
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT user_id, event_time, event_id FROM weft_online_elements WHERE signal = 's' ORDER BY user_id, event_time DESC, event_id", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                indexed.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2)));
            }
        }

        indexed.Should().HaveCount(sent.Count).And.HaveCountGreaterThan(100);
        sent.Should().Equal(indexed);
    }

    [Fact]
    public async Task A_read_is_one_index_range_scan_without_sorting()
    {
        await OpenAsync();
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        var sql = PostgresOnlineStore.ReadSql
            .Replace("$1", "'s'", StringComparison.Ordinal).Replace("$2", "1", StringComparison.Ordinal)
            .Replace("$3", "100", StringComparison.Ordinal).Replace("$4", "0", StringComparison.Ordinal)
            .Replace("$5", "100", StringComparison.Ordinal).Replace("$6", "500", StringComparison.Ordinal);
        await using var command = new NpgsqlCommand($"SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN {sql}", connection);

        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        var text = string.Join('\n', plan);
        text.Should().Contain("Index Scan using weft_online_elements_key").And.NotContain("Sort");
    }

    [Theory]
    [InlineData("40001", true)] // serialization failure
    [InlineData("40P01", true)] // deadlock detected
    [InlineData("08006", true)] // connection failure
    [InlineData("57P01", true)] // admin shutdown
    [InlineData("53300", true)] // too many connections
    [InlineData("23505", false)] // unique violation
    [InlineData("42P01", false)] // undefined table
    public void Serialization_failures_and_lost_connections_are_transient_and_bad_statements_are_not(string sqlState, bool transient)
    {
        PostgresErrors.IsTransient(new PostgresException("failure", "ERROR", "ERROR", sqlState)).Should().Be(transient);
    }

    [Fact]
    public void A_connection_reset_is_a_transient_failure()
    {
        PostgresErrors.IsTransient(new NpgsqlException("Exception while reading from stream", new IOException("Connection reset by peer"))).Should().BeTrue();
    }

    /// <summary>
    /// A server restart closes every pooled connection; the next statement on each fails with 57P01. An
    /// append that met one stopped the stream although the server was back. Terminating the store's
    /// backends is that restart, as its pool sees it.
    /// </summary>
    [Fact]
    public async Task Appends_and_reads_go_on_after_the_server_closed_every_pooled_connection()
    {
        var application = "weft_restart_" + Guid.NewGuid().ToString("N")[..8];
        _connectionString = new NpgsqlConnectionStringBuilder(_connectionString) { ApplicationName = application }.ConnectionString;
        var store = await OpenAsync(new OnlineStoreTuning { InsertChunkRows = 5, AppendConnections = 3 });
        var first = Enumerable.Range(0, 30).Select(i => E(1 + (i % 6), i, $"a{i}")).ToArray();
        await store.AppendAsync("s", first, new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 1 }), CancellationToken.None);
        (await store.ReadManyAsync("s", [1, 2, 3], OnlineReadOptions.Default, CancellationToken.None)).Should().HaveCount(3);
        int terminated = await TerminateAsync(application);
        terminated.Should().BeGreaterThan(0, "the pool keeps the connections the append and the reads used (how many depends on how the slices overlapped)");

        var added = await store.AppendAsync("s", [E(1, 100, "after")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 2 }), CancellationToken.None);

        added.Should().Be(1);
        (await store.ReadCheckpointAsync("job", CancellationToken.None)).Should().BeEquivalentTo(new Dictionary<string, long> { ["p"] = 2 });
        await TerminateAsync(application);
        (await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Select(e => e.EventId).Should().StartWith("after").And.HaveCount(6);
        await TerminateAsync(application);
        var many = await store.ReadManyAsync("s", [2, 3], OnlineReadOptions.Default, CancellationToken.None);
        many[2].Should().HaveCount(5);
        await TerminateAsync(application);
        // Users 1..6; the 30 first appends and "after", whose event time (100) is the newest; every ingest time 0.
        (await store.StatsAsync("s", CancellationToken.None)).Should().Be(new OnlineStoreStats(first.Select(e => e.UserId).Distinct().Count(), first.Length + 1, 100, 0));
        await TerminateAsync(application);
        await store.TrimAsync("s", 2, CancellationToken.None);
        (await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Should().HaveCount(2);
    }

    [Fact]
    public async Task A_statement_that_fails_for_good_is_not_retried_and_its_message_is_one_line()
    {
        var store = await OpenAsync();
        await store.AppendAsync("s", [E(1, 0, "before")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 1 }), CancellationToken.None);
        await BreakCheckpointWritesAsync();

        var append = async () => await store.AppendAsync("s", [E(1, 1, "x")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 2 }), CancellationToken.None);

        var failure = (await append.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.IsTransient.Should().BeFalse();
        failure.Message.Should().Contain("checkpoint writes are broken by the test").And.NotContain("tried").And.NotContain("\n");
        ((Npgsql.PostgresException)failure.InnerException!).SqlState.Should().Be("P0001");
    }

    /// <summary>
    /// A command that runs past its timeout is transient but not tried again: each attempt would wait as
    /// long again. Nor does it empty the pool, as a lost connection does; a pool with no connection free
    /// in time neither.
    /// </summary>
    [Fact]
    public async Task A_command_timeout_is_not_retried_and_timeouts_do_not_count_as_lost_connections()
    {
        await (await OpenAsync()).AppendAsync("s", [E(1, 0, "a")], null, CancellationToken.None);
        _connectionString = new NpgsqlConnectionStringBuilder(_connectionString) { CommandTimeout = 1 }.ConnectionString;
        var store = await OpenAsync();
        await using var holder = new NpgsqlConnection(_connectionString);
        await holder.OpenAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE weft_online_elements IN ACCESS EXCLUSIVE MODE", holder, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        var read = async () => await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None);

        var failure = (await read.Should().ThrowAsync<OnlineStoreException>()).Which;
        failure.IsTransient.Should().BeTrue();
        failure.Message.Should().NotContain("tried");
        PostgresErrors.IsTimeout(failure.InnerException!).Should().BeTrue();
        PostgresErrors.IsLostConnection(failure.InnerException!).Should().BeFalse();
        var exhausted = new NpgsqlException("The connection pool has been exhausted, either raise 'Max Pool Size' (currently 100) or 'Timeout' (currently 15 seconds) in your connection string.", new TimeoutException());
        (PostgresErrors.IsTransient(exhausted), PostgresErrors.IsTimeout(exhausted), PostgresErrors.IsLostConnection(exhausted)).Should().Be((true, true, false));
        PostgresErrors.IsLostConnection(new NpgsqlException("Exception while reading from stream", new IOException("Connection reset by peer"))).Should().BeTrue();
        PostgresErrors.IsLostConnection(new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01")).Should().BeTrue();
        PostgresErrors.IsLostConnection(new PostgresException("deadlock detected", "ERROR", "ERROR", "40P01")).Should().BeFalse();
    }

    /// <summary>A serving role may read and write the tables without the right to create them.</summary>
    [Fact]
    public async Task A_role_without_create_rights_opens_a_store_whose_tables_exist_and_is_told_what_an_empty_one_needs()
    {
        var role = "weft_dml_" + Guid.NewGuid().ToString("N")[..8];
        var owner = new NpgsqlConnectionStringBuilder(_connectionString);
        var limited = new NpgsqlConnectionStringBuilder(_connectionString) { Username = role, Password = "s3cret-pw" }.ConnectionString;
        await ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD 's3cret-pw'; GRANT USAGE ON SCHEMA \"{owner.SearchPath}\" TO {role}; REVOKE CREATE ON SCHEMA \"{owner.SearchPath}\" FROM {role}");
        try
        {
            var empty = () => OnlineStores.OpenPostgresAsync(limited, CancellationToken.None);
            var refused = (await empty.Should().ThrowAsync<OnlineStoreException>()).Which;
            refused.Message.Should().Contain("permission denied for schema").And.Contain("needs the CREATE privilege on the schema").And.NotContain("POSITION").And.NotContain("s3cret-pw");

            await (await OpenAsync()).AppendAsync("s", [E(1, 0, "by-owner")], null, CancellationToken.None);
            await ExecuteAsync($"GRANT SELECT, INSERT, UPDATE, DELETE ON weft_online_elements, weft_online_checkpoints TO {role}");
            var store = await OnlineStores.OpenPostgresAsync(limited, CancellationToken.None);
            await using (store)
            {
                await store.AppendAsync("s", [E(1, 1, "by-role")], new SourceCheckpoint("job", new Dictionary<string, long> { ["p"] = 1 }), CancellationToken.None);
                (await store.ReadAsync("s", 1, OnlineReadOptions.Default, CancellationToken.None)).Select(e => e.EventId).Should().Equal("by-role", "by-owner");
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync($"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    [Fact]
    public async Task An_open_cancelled_while_it_creates_the_schema_leaves_no_connection_open()
    {
        var application = "weft-open-cancel-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new NpgsqlConnectionStringBuilder(_connectionString) { ApplicationName = application };
        using var cancel = new CancellationTokenSource();
        Task<IOnlineStore> open;

        // The schema is created under an advisory lock: held here, the open waits on it until cancelled.
        await using (var holder = new NpgsqlConnection(server.ConnectionString))
        {
            await holder.OpenAsync();
            await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(6288509782614494257)", holder))
            {
                await take.ExecuteNonQueryAsync();
            }

            open = OnlineStores.OpenPostgresAsync(settings.ConnectionString, cancel.Token);
            while (await CountAsync($"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}' AND wait_event_type = 'Lock'") == 0)
            {
                open.IsCompleted.Should().BeFalse("the open waits on the lock");
                await Task.Delay(20);
            }

            await cancel.CancelAsync();
            await open.Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        }

        // The store was never handed out, so nothing else can close its pool's connection.
        long left = 0;
        for (int i = 0; i < 250 && (left = await CountAsync($"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'")) > 0; i++)
        {
            await Task.Delay(20);
        }

        left.Should().Be(0, "the failed open disposes its connection pool");
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task A_connection_string_without_a_host_is_refused_saying_so()
    {
        var open = () => OnlineStores.OpenPostgresAsync("Port=5432;Username=weft;Password=s3cret-pw;Database=online", CancellationToken.None);

        (await open.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("names no Host").And.NotContain("s3cret-pw");
    }

    private async Task<int> TerminateAsync(string application)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = application });
        return Convert.ToInt32(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
