using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Npgsql;
using Weft.Definitions;
using Weft.Online;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary><c>weft serve</c> over the PostgreSQL store of the collection's server.</summary>
[Collection(Weft.Online.Tests.PostgresCollection.Name)]
public sealed class ServePostgresTests(Weft.Online.Tests.PostgresServer postgres)
{
    /// <summary>
    /// A read the store cannot answer for the moment (a lock past the role's lock_timeout: transient, as a
    /// restart or failover is) was a 500 "internal error"; it is a 503 with Retry-After, and the next read
    /// after the lock is gone answers.
    /// </summary>
    [Fact]
    public async Task A_read_the_store_cannot_answer_for_the_moment_is_a_503_with_retry_after_and_then_answers()
    {
        using var cli = new CliHarness();
        var connection = new NpgsqlConnectionStringBuilder(await postgres.CreateSchemaAsync()) { Options = "-c lock_timeout=100" }.ConnectionString;
        await using (await OnlineStores.OpenPostgresAsync(connection, CancellationToken.None))
        {
            // creates the tables
        }

        Directory.CreateDirectory(cli.PathOf("signals"));
        var weft = new DefinitionCatalog();
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        weft.Signal("saves", tenant: "t").Include(save).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromDays(1));
        await File.WriteAllBytesAsync(cli.PathOf("signals/saves.json"), SignalJsonWriter.Write(weft.Build().Single()));
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("k-1")));
        await File.WriteAllTextAsync(cli.PathOf("weft.json"), $$"""
            { "signals": "signals", "tenants": [ { "name": "t", "api_keys_sha256": ["{{key}}"] } ], "serving": { "stream": "off" },
              "online_store": { "kind": "postgres", "connection_string": {{JsonSerializer.Serialize(connection)}} } }
            """);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using var cts = new CancellationTokenSource();
        var (run, url) = await CliHarness.StartServeAsync(["--config", cli.PathOf("weft.json")], stdout, stderr, cts.Token);
        using var client = new HttpClient { BaseAddress = new Uri(url) };
        client.DefaultRequestHeaders.Add("X-Api-Key", "k-1");
        (await client.GetAsync("/v1/signals/saves/users/1/sequence")).StatusCode.Should().Be(HttpStatusCode.OK);

        HttpResponseMessage locked;
        await using (var holder = new NpgsqlConnection(connection))
        {
            await holder.OpenAsync();
            await using var transaction = await holder.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE weft_online_elements IN ACCESS EXCLUSIVE MODE", holder, transaction))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            locked = await client.GetAsync("/v1/signals/saves/users/2/sequence");
            await transaction.RollbackAsync();
        }

        var body = await locked.Content.ReadAsStringAsync();
        locked.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, body);
        locked.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(1));
        body.Should().Contain("the online store is unavailable for the moment; retry").And.NotContain("127.0.0.1");
        (await client.GetAsync("/v1/signals/saves/users/3/sequence")).StatusCode.Should().Be(HttpStatusCode.OK);

        await cts.CancelAsync();
        (await run).Should().Be(0, stderr.ToString());
    }
}
