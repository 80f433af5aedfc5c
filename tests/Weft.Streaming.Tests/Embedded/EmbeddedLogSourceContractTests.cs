using System.Text;
using Weft.Streaming.Embedded;
using Xunit;

namespace Weft.Streaming.Tests.Embedded;

/// <summary>The source contract, run against the embedded log (small segments, so reads cross segment rolls).</summary>
public sealed class EmbeddedLogSourceContractTests : EventSourceContract, IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private EmbeddedLog? _log;

    private EmbeddedLog Log => _log ?? throw new InvalidOperationException("The log is opened by InitializeAsync.");

    public async Task InitializeAsync() =>
        _log = await EmbeddedLog.OpenAsync(_directory.Path, new EmbeddedLogOptions { SegmentBytes = 8 * 1024 });

    public async Task DisposeAsync()
    {
        if (_log is not null)
        {
            await _log.DisposeAsync();
        }

        _directory.Dispose();
    }

    protected override async Task<IEventSource> OpenAsync(string group) => await Log.OpenSourceAsync(group);

    protected override async Task ProduceAsync(IReadOnlyList<(string Key, string Json)> records) =>
        await Log.AppendAsync(records.Select(r => (Encoding.UTF8.GetBytes(r.Key), Encoding.UTF8.GetBytes(r.Json))).ToList());
}
