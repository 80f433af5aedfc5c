using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using FluentAssertions;
using Weft.Streaming.Embedded;
using Weft.Streaming.LogWriter;
using Xunit;
using Xunit.Abstractions;
using static Weft.Streaming.Tests.Embedded.LogTesting;

namespace Weft.Streaming.Tests.Embedded;

/// <summary>
/// A real crash: a child process (tests/Weft.Streaming.LogWriter) appends from several tasks and
/// prints each acknowledged append; the test kills it with SIGKILL at a seeded, varying point, then
/// reopens the log and checks that every acknowledged record is there, whole, at its offset. Three
/// rounds on one directory, so each round also recovers what the previous kill left.
/// </summary>
/// <remarks>
/// SIGKILL loses what the process had not yet handed to the kernel, not the page cache, so this
/// proves the protocol (acknowledge only after the write and fsync; recover whatever a kill
/// mid-write leaves; the lock dies with the process). Torn writes of a power loss are covered by
/// the truncation tests.
/// </remarks>
public sealed class EmbeddedLogCrashTests(ITestOutputHelper output) : IDisposable
{
    private const int Appenders = 4;
    private const int Batch = 20;
    private const int RecordSize = 200;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private readonly record struct Ack(int Appender, int Seq, long FirstOffset, int Count);

    [Fact]
    public async Task Every_acknowledged_append_survives_the_writing_process_being_killed_with_SIGKILL()
    {
        var path = _directory.Combine("log");
        var random = new Random(20261130);
        var acknowledged = new List<Ack>();
        for (var round = 0; round < 3; round++)
        {
            acknowledged.AddRange(await AppendUntilKilledAsync(path, minimumAcks: 20 + random.Next(40), extraMilliseconds: random.Next(30)));
            var (end, recovery) = await VerifyAsync(path, acknowledged);
            output.WriteLine($"round {round}: {acknowledged.Count} appends acknowledged so far, log end offset {end}, recovery: {recovery?.ToString() ?? "none needed"}");
        }

        acknowledged.Select(a => a.FirstOffset).Should().OnlyHaveUniqueItems();
    }

    private static async Task<List<Ack>> AppendUntilKilledAsync(string path, int minimumAcks, int extraMilliseconds)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { WriterAssembly(), "append", path, Count(Appenders), Count(Batch), Count(RecordSize) })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("The log writer process did not start.");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var errors = process.StandardError.ReadToEndAsync(timeout.Token);
        var acks = new List<Ack>();
        try
        {
            while (acks.Count < minimumAcks)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
                if (line is null)
                {
                    await process.WaitForExitAsync(timeout.Token);
                    throw new InvalidOperationException($"The log writer exited with {process.ExitCode} after {acks.Count} acknowledgements: {await errors}");
                }

                if (TryParse(line, out var ack))
                {
                    acks.Add(ack);
                }
            }

            // Vary where in its loop the kill finds the writer.
            await Task.Delay(extraMilliseconds, timeout.Token);
        }
        finally
        {
            process.Kill(); // SIGKILL on Unix.
        }

        // Acknowledgements printed before the kill are still in the pipe; a line cut short lacks its final " .".
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (TryParse(line, out var ack))
            {
                acks.Add(ack);
            }
        }

        await process.WaitForExitAsync(timeout.Token);
        if (!OperatingSystem.IsWindows())
        {
            process.ExitCode.Should().Be(128 + 9, "the writer died of SIGKILL, not of an error: " + await errors);
        }

        return acks;
    }

    private static async Task<(long EndOffset, EmbeddedLogRecovery? Recovery)> VerifyAsync(string path, List<Ack> acknowledged)
    {
        await using var log = await EmbeddedLog.OpenAsync(path, new EmbeddedLogOptions { SegmentBytes = 64 * 1024 });
        var records = await ReadAllAsync(log);

        records.Select(r => r.Offset).Should().Equal(Enumerable.Range(0, records.Count).Select(i => (long)i), "the log is whole and dense after recovery");
        records.Count.Should().Be((int)log.EndOffset);
        foreach (var ack in acknowledged)
        {
            ack.Count.Should().Be(Batch);
            for (var i = 0; i < ack.Count; i++)
            {
                var offset = ack.FirstOffset + i;
                offset.Should().BeLessThan(records.Count, $"acknowledged record {i} of appender {ack.Appender} call {ack.Seq} is durable");
                var (key, payload) = RecordContent.Make(ack.Appender, ack.Seq, i, RecordSize);
                Text(records[(int)offset].Key).Should().Be(Text(key));
                Text(records[(int)offset].Payload).Should().Be(Text(payload));
            }
        }

        // Still appendable, at the right offset.
        var end = log.EndOffset;
        (await log.AppendAsync([Record("check", "{\"after\":\"recovery\"}")])).FirstOffset.Should().Be(end);
        return (end, log.Recovery);
    }

    private static bool TryParse(string line, out Ack ack)
    {
        ack = default;
        var parts = line.Split(' ');
        if (parts is not ["ack", var appender, var seq, var first, var count, "."])
        {
            return false;
        }

        ack = new Ack(int.Parse(appender, CultureInfo.InvariantCulture), int.Parse(seq, CultureInfo.InvariantCulture),
            long.Parse(first, CultureInfo.InvariantCulture), int.Parse(count, CultureInfo.InvariantCulture));
        return true;
    }

    private static string Count(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string WriterAssembly() => Path.Combine(AppContext.BaseDirectory, "Weft.Streaming.LogWriter.dll");

    /// <summary>The <c>dotnet</c> host of the running runtime (…/shared/Microsoft.NETCore.App/&lt;version&gt;/ → …/dotnet).</summary>
    private static string DotnetHost()
    {
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return File.Exists(host) ? host : "dotnet";
    }
}
