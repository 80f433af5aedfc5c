using System.Text;
using Weft.Streaming.Embedded;

namespace Weft.Streaming.Tests.Embedded;

/// <summary>A fresh directory under the temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "weft-streaming-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail a test.
        }
    }
}

internal static class LogTesting
{
    public static (byte[] Key, byte[] Payload) Record(string key, string payload) => (Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(payload));

    public static List<(byte[] Key, byte[] Payload)> Records(int count, int start = 0, int padding = 0) =>
        Enumerable.Range(start, count).Select(i => Record($"u{i % 5}", $"{{\"event_id\":\"e{i}\",\"pad\":\"{new string('x', padding)}\"}}")).ToList();

    /// <summary>Every record from <see cref="EmbeddedLog.StartOffset"/> on, read by a throwaway consumer group.</summary>
    public static async Task<List<SourceRecord>> ReadAllAsync(EmbeddedLog log, string group = "read-all")
    {
        await using var source = await log.OpenSourceAsync(group);
        var records = new List<SourceRecord>();
        while (true)
        {
            var batch = await source.ReadBatchAsync(500, TimeSpan.Zero, CancellationToken.None);
            if (batch.Count == 0)
            {
                return records;
            }

            records.AddRange(batch);
        }
    }

    public static string[] Segments(string directory) =>
        [.. Directory.GetFiles(directory, "*.seg").Order(StringComparer.Ordinal)];

    public static string Text(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);
}
