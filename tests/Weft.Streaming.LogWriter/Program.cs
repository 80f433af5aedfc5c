using System.Diagnostics;
using System.Globalization;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.LogWriter;

/// <summary>
/// <list type="bullet">
/// <item><c>append DIR APPENDERS BATCH SIZE</c>: opens the embedded log in DIR and appends from
/// APPENDERS concurrent tasks, BATCH records of SIZE bytes per call, until killed. After each
/// acknowledged call it prints <c>ack APPENDER SEQ FIRST COUNT .</c> (the trailing dot marks a
/// whole line). The records' contents are <see cref="RecordContent"/> of (appender, seq, index).</item>
/// <item><c>bench DIR RECORDS SIZE BATCH APPENDERS</c>: appends RECORDS records of SIZE bytes in
/// calls of BATCH from APPENDERS concurrent tasks and prints the rate.</item>
/// </list>
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length >= 5 && args[0] == "append")
        {
            await AppendUntilKilledAsync(args[1], Int(args[2]), Int(args[3]), Int(args[4])).ConfigureAwait(false);
            return 0;
        }

        if (args.Length >= 6 && args[0] == "bench")
        {
            await BenchAsync(args[1], Int(args[2]), Int(args[3]), Int(args[4]), Int(args[5])).ConfigureAwait(false);
            return 0;
        }

        await Console.Error.WriteLineAsync("usage: append DIR APPENDERS BATCH SIZE | bench DIR RECORDS SIZE BATCH APPENDERS").ConfigureAwait(false);
        return 2;
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static async Task AppendUntilKilledAsync(string directory, int appenders, int batch, int size)
    {
        var log = await EmbeddedLog.OpenAsync(directory, new EmbeddedLogOptions { SegmentBytes = 64 * 1024 }).ConfigureAwait(false);
        var output = Console.Out;
        using var outputGate = new SemaphoreSlim(1, 1);
        var tasks = Enumerable.Range(0, appenders).Select(appender => Task.Run(async () =>
        {
            for (var seq = 0; ; seq++)
            {
                var records = new (byte[] Key, byte[] Payload)[batch];
                for (var i = 0; i < batch; i++)
                {
                    records[i] = RecordContent.Make(appender, seq, i, size);
                }

                var range = await log.AppendAsync(records).ConfigureAwait(false);
                var line = string.Create(CultureInfo.InvariantCulture, $"ack {appender} {seq} {range.FirstOffset} {range.Count} .");
                await outputGate.WaitAsync().ConfigureAwait(false);
                try
                {
                    await output.WriteLineAsync(line).ConfigureAwait(false);
                    await output.FlushAsync().ConfigureAwait(false);
                }
                finally
                {
                    outputGate.Release();
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private static async Task BenchAsync(string directory, int records, int size, int batch, int appenders)
    {
        await using var log = await EmbeddedLog.OpenAsync(directory).ConfigureAwait(false);
        var calls = records / batch;
        var prepared = Enumerable.Range(0, batch).Select(i => RecordContent.Make(0, 0, i, size)).ToArray();
        var next = -1;
        var stopwatch = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, appenders).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < calls)
            {
                await log.AppendAsync(prepared).ConfigureAwait(false);
            }
        })).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        stopwatch.Stop();
        var appended = (long)calls * batch;
        await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{appended} records of {size} B in batches of {batch} from {appenders} appender(s): {stopwatch.Elapsed.TotalSeconds:F2} s, {appended / stopwatch.Elapsed.TotalSeconds:F0} records/s, {calls / stopwatch.Elapsed.TotalSeconds:F0} appends/s")).ConfigureAwait(false);
    }
}
