using Xunit;
using Xunit.Abstractions;

namespace Weft.Streaming.Tests.Kafka;

/// <summary>The source contract against Kafka: each test gets its own mock cluster (3 brokers) and a 4-partition topic.</summary>
public sealed class KafkaEventSourceContractTests(ITestOutputHelper output) : EventSourceContract, IAsyncLifetime
{
    private KafkaTestCluster? _kafka;

    private KafkaTestCluster Kafka => _kafka ?? throw new InvalidOperationException("The cluster starts in InitializeAsync.");

    public Task InitializeAsync()
    {
        _kafka = KafkaTestCluster.Start(output);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_kafka is not null)
        {
            await _kafka.DisposeAsync();
        }
    }

    protected override async Task<IEventSource> OpenAsync(string group) => await Kafka.OpenAsync(group);

    protected override Task ProduceAsync(IReadOnlyList<(string Key, string Json)> records) => Kafka.ProduceAsync(records);
}
