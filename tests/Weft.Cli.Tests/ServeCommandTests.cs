using System.Text.RegularExpressions;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Cli.Tests;

public sealed class ServeCommandTests
{
    internal static void WriteDeployment(CliHarness cli, string serving)
    {
        Directory.CreateDirectory(cli.PathOf("signals"));
        var weft = new DefinitionCatalog();
        var save = weft.EventType("save").Attribute("item_id", WeftType.Int64, nullable: false);
        weft.Signal("saves", tenant: "t").Include(save).Element("item_id").MaxLength(10).Lookback(TimeSpan.FromDays(1));
        File.WriteAllBytes(cli.PathOf("signals/saves.json"), SignalJsonWriter.Write(weft.Build().Single()));
        File.WriteAllText(cli.PathOf("weft.json"), $$"""
            { "signals": "signals", "tenants": [ { "name": "t", "api_keys_sha256": [] } ], "serving": {{serving}} }
            """);
    }

    [Fact]
    public async Task Serve_refuses_an_invalid_option_naming_it()
    {
        using var cli = new CliHarness();
        WriteDeployment(cli, """{ "max_limit": 0, "stream": "sometimes" }""");

        var (exit, _, err) = await cli.RunAsync("serve", "--config", cli.PathOf("weft.json"));

        exit.Should().Be(2);
        err.Should().Contain("$.serving.stream: 'stream' must be \"auto\" or \"off\", got \"sometimes\"");
        var (badUrls, _, urlErr) = await cli.RunAsync("serve", "--config", cli.PathOf("weft.json").Replace("weft.json", "missing.json", StringComparison.Ordinal));
        badUrls.Should().Be(2);
        urlErr.Should().Contain("no config file");
    }

    /// <summary>
    /// An address Kestrel cannot listen on as given (a path, https, another scheme) is refused naming the
    /// option; Kestrel threw from its start-up and weft printed the stack trace, exit 1.
    /// </summary>
    [Theory]
    [InlineData("http://127.0.0.1:0/v1")]
    [InlineData("https://127.0.0.1:0")]
    [InlineData("ftp://127.0.0.1:0")]
    [InlineData("http://example.internal:0")]
    public async Task Serve_refuses_an_address_it_cannot_listen_on_naming_it(string urls)
    {
        using var cli = new CliHarness();
        WriteDeployment(cli, """{ "stream": "off" }""");

        var (exit, _, err) = await cli.RunAsync("serve", "--config", cli.PathOf("weft.json"), "--urls", urls);

        exit.Should().Be(2);
        err.Trim().Should().Be($"serve: --urls: serving.urls was {urls}; it must be absolute http URLs without a path, ';'-separated, each with an IP address or localhost as host (another host name would listen on every interface), e.g. http://127.0.0.1:8080");
    }

    /// <summary>
    /// A port another process holds: one line naming the address, exit 2, and no stack trace from the host's
    /// own log before it (the weft process is run for real: the host logs to the process's console).
    /// </summary>
    [Fact]
    public async Task Serve_on_a_port_in_use_says_so_in_one_line_without_a_stack_trace()
    {
        using var cli = new CliHarness();
        WriteDeployment(cli, """{ "stream": "off" }""");
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        string url = $"http://127.0.0.1:{((System.Net.IPEndPoint)holder.LocalEndpoint).Port}";

        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = cli.Root };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "weft.dll"), "serve", "--config", cli.PathOf("weft.json"), "--urls", url })
        {
            start.ArgumentList.Add(a);
        }

        using var child = System.Diagnostics.Process.Start(start)!;
        var output = child.StandardOutput.ReadToEndAsync();
        var error = child.StandardError.ReadToEndAsync();
        await child.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60)); // a guard against a hang
        string all = await output + await error;

        child.ExitCode.Should().Be(2, all);
        (await error).Should().Contain($"serve: Failed to bind to address {url}").And.Contain("address already in use");
        all.Should().NotContain("   at ").And.NotContain("Hosting failed to start");
    }

    /// <summary>
    /// A folder the process may not create (here under /sys, which refuses even root) fails serve and
    /// stream with exit 2 naming the path; UnauthorizedAccessException went unhandled (a stack trace, exit 1).
    /// </summary>
    [Theory]
    [InlineData("serve")]
    [InlineData("stream")]
    public async Task A_log_folder_that_cannot_be_created_fails_naming_it(string command)
    {
        using var cli = new CliHarness();
        WriteDeployment(cli, "{}");
        string folder = $"/sys/weft-test-{Guid.NewGuid():N}", log = folder + "/log";
        await File.WriteAllTextAsync(cli.PathOf("weft.json"), (await File.ReadAllTextAsync(cli.PathOf("weft.json"))).Replace("\"signals\": \"signals\"", $"\"signals\": \"signals\", \"source\": {{ \"kind\": \"embedded\", \"path\": \"{log}\" }}", StringComparison.Ordinal));

        var (exit, _, err) = await cli.RunAsync(command, "--config", cli.PathOf("weft.json"), command == "serve" ? "--urls" : "--exit-when-idle", command == "serve" ? "http://127.0.0.1:0" : "1s");

        exit.Should().Be(2);
        err.Should().StartWith($"{command}: Access to the path '{folder}' is denied.").And.NotContain("   at ");
    }

    [Fact]
    public async Task Serve_listens_until_cancelled_then_stops_cleanly()
    {
        using var cli = new CliHarness();
        WriteDeployment(cli, "{}");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using var cts = new CancellationTokenSource();

        var (run, url) = await CliHarness.StartServeAsync(["--config", cli.PathOf("weft.json")], stdout, stderr, cts.Token);
        using (var client = new HttpClient())
        {
            (await client.GetStringAsync(url + "/healthz")).Should().Be("ok\n");
            (await client.GetAsync(url + "/v1/signals")).StatusCode.Should().Be(System.Net.HttpStatusCode.Unauthorized);
        }

        await cts.CancelAsync();
        (await run).Should().Be(0, stderr.ToString());
        stdout.ToString().Should().Contain("serve: stopped");
        File.Exists(cli.PathOf("online.db")).Should().BeTrue("the embedded default store was created beside weft.json");
    }
}
