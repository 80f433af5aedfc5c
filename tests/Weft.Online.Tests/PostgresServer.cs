using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;
using Xunit;

namespace Weft.Online.Tests;

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL server";
}

/// <summary>
/// A PostgreSQL server for the tests. By default a throwaway one of its own: <c>initdb</c> into a
/// temporary directory, <c>pg_ctl start</c> on a free 127.0.0.1 port with trust authentication, and
/// on dispose an immediate stop and the directory removed. Run as root, the server programs run as the
/// <c>postgres</c> OS user (initdb refuses root) through <c>runuser</c>, in a directory that user owns.
/// When <c>WEFT_TEST_POSTGRES</c> holds a connection string, that server is used instead. Each test
/// gets its own schema (<see cref="CreateSchemaAsync"/>), so tests never see each other's tables.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "WEFT_TEST_POSTGRES";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    private readonly List<string> _schemas = [];
    private readonly Lock _schemasLock = new();
    private string? _root;
    private string? _pgCtl;
    private bool _started;

    /// <summary>A superuser connection string to the server's <c>postgres</c> database.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Where the server came from, for failure messages.</summary>
    public string Origin { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            ConnectionString = external;
            Origin = $"the server named by {EnvironmentVariable}";
            return;
        }

        var bin = FindBinaries();
        _pgCtl = Path.Combine(bin, "pg_ctl");
        _root = Directory.CreateTempSubdirectory("weft-online-pg-").FullName;
        var data = Path.Combine(_root, "data");
        var asPostgres = Environment.IsPrivilegedProcess;
        if (asPostgres)
        {
            await RunAsync("chown", ["postgres:postgres", _root], asPostgres: false);
        }

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"], asPostgres);

        // A free port can be taken between probing and binding: try a few.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            await File.WriteAllTextAsync(Path.Combine(data, "postgresql.auto.conf"), $"""
                listen_addresses = '127.0.0.1'
                port = {port}
                unix_socket_directories = '{_root}'
                fsync = off
                synchronous_commit = off
                full_page_writes = off
                max_connections = 100
                shared_buffers = '32MB'
                """);
            try
            {
                await RunAsync(_pgCtl, ["-D", data, "-l", Path.Combine(_root, "server.log"), "-w", "-t", "60", "start"], asPostgres);
                _started = true;
                ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=30;Command Timeout=120";
                Origin = $"the throwaway server in {_root} (binaries {bin})";
                return;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_root is null)
        {
            // An external server: remove what the tests created there.
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync();
            foreach (var schema in _schemas)
            {
                await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
                await drop.ExecuteNonQueryAsync();
            }

            return;
        }

        NpgsqlConnection.ClearAllPools();
        if (_started)
        {
            await RunAsync(_pgCtl!, ["-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "stop"], Environment.IsPrivilegedProcess);
        }

        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Creates an empty schema and returns a connection string whose search path starts with it.</summary>
    public async Task<string> CreateSchemaAsync()
    {
        var schema = "weft_test_" + Guid.NewGuid().ToString("N");
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE SCHEMA \"{schema}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        lock (_schemasLock)
        {
            _schemas.Add(schema);
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = schema }.ConnectionString;
    }

    /// <summary>The newest <c>/usr/lib/postgresql/N/bin</c> holding initdb and pg_ctl.</summary>
    private static string FindBinaries()
    {
        const string Root = "/usr/lib/postgresql";
        var candidates = Directory.Exists(Root)
            ? Directory.GetDirectories(Root)
                .Select(d => (Version: int.TryParse(Path.GetFileName(d), out var v) ? v : -1, Bin: Path.Combine(d, "bin")))
                .Where(c => File.Exists(Path.Combine(c.Bin, "initdb")) && File.Exists(Path.Combine(c.Bin, "pg_ctl")))
                .OrderByDescending(c => c.Version)
                .ToList()
            : [];
        return candidates.Count > 0
            ? candidates[0].Bin
            : throw new InvalidOperationException(
                $"The PostgreSQL tests need the server programs (initdb, pg_ctl) under {Root}/*/bin, and there are none. " +
                $"Run ./test.sh, which installs Debian's 'postgresql' package when it is missing, or set {EnvironmentVariable} to the connection string of a server to use.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task RunAsync(string program, IReadOnlyList<string> arguments, bool asPostgres)
    {
        var start = new ProcessStartInfo
        {
            FileName = asPostgres ? "runuser" : program,
            WorkingDirectory = _root ?? Path.GetTempPath(), // the postgres user may not be able to enter the current directory
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgres)
        {
            foreach (var a in (string[])["-u", "postgres", "--", program])
            {
                start.ArgumentList.Add(a);
            }
        }

        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{Describe(start)} did not finish within {CommandTimeout}.");
        }

        if (process.ExitCode != 0)
        {
            var message = new StringBuilder()
                .Append(Describe(start)).Append(" failed with exit code ").Append(process.ExitCode).AppendLine(":")
                .AppendLine(await stdout).AppendLine(await stderr);
            var log = _root is null ? null : Path.Combine(_root, "server.log");
            if (log is not null && File.Exists(log))
            {
                message.AppendLine("server.log:").AppendLine(await File.ReadAllTextAsync(log));
            }

            throw new InvalidOperationException(message.ToString());
        }
    }

    private static string Describe(ProcessStartInfo start) => start.FileName + " " + string.Join(' ', start.ArgumentList);
}
