using System.Runtime.InteropServices;
using System.Text;

namespace Weft.Streaming.Kafka;

/// <summary>
/// An in-process Kafka cluster from librdkafka's mock-cluster API: real brokers speaking the Kafka
/// protocol on 127.0.0.1 ports, so Kafka sources and producers are tested end to end without a JVM
/// or a network. For tests, benchmarks and demos.
/// </summary>
/// <remarks>
/// <para>Limits of the mock (librdkafka 2.0.2): it keeps about 5 MB of message sets per partition and
/// drops the oldest beyond that (size a topic's partitions for what a test must keep); leaders never
/// move by themselves (<see cref="SetBrokerDown"/> only disconnects a broker); the CreateTopics admin
/// API is not supported (use <see cref="CreateTopic"/>; unknown topics are auto-created on use).</para>
/// <para>Broker ids run from 1 to the broker count. Dispose clients (sources, producers) before the
/// cluster.</para>
/// </remarks>
public sealed class KafkaMockCluster : IDisposable, IAsyncDisposable
{
    private const int ProducerType = 0; // RD_KAFKA_PRODUCER
    private const int ErrorStringSize = 512;

    private readonly Lock _gate = new();
    private nint _client;  // rd_kafka_t that owns the cluster
    private nint _cluster; // rd_kafka_mock_cluster_t

    private KafkaMockCluster(nint client, nint cluster, int brokerCount, string bootstrapServers)
    {
        _client = client;
        _cluster = cluster;
        BrokerCount = brokerCount;
        BootstrapServers = bootstrapServers;
    }

    /// <summary>The brokers' addresses, e.g. <c>127.0.0.1:40123,127.0.0.1:40125,…</c>, for <c>bootstrap.servers</c>.</summary>
    public string BootstrapServers { get; }

    /// <summary>How many brokers the cluster has (ids 1 … <see cref="BrokerCount"/>).</summary>
    public int BrokerCount { get; }

    /// <summary>Starts a mock cluster with <paramref name="brokerCount"/> brokers listening on 127.0.0.1.</summary>
    /// <exception cref="DllNotFoundException">librdkafka is not installed.</exception>
    public static KafkaMockCluster Start(int brokerCount = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokerCount, 1);
        LibRdKafka.EnsureLoaded();

        var conf = Native.ConfNew();
        // The owning handle only keeps the cluster alive; it connects nowhere. Its own log is kept to errors.
        Native.ConfSet(conf, "log_level", "3");
        var client = Native.New(ProducerType, conf, out var error);
        if (client == 0)
        {
            Native.ConfDestroy(conf);
            throw new InvalidOperationException($"librdkafka could not create the client that owns the mock cluster: {error}");
        }

        var cluster = Native.MockClusterNew(client, brokerCount);
        if (cluster == 0)
        {
            Native.Destroy(client);
            throw new InvalidOperationException("librdkafka could not start the mock cluster (rd_kafka_mock_cluster_new returned NULL).");
        }

        var bootstraps = Native.MockClusterBootstraps(cluster);
        return new KafkaMockCluster(client, cluster, brokerCount, bootstraps);
    }

    /// <summary>Creates <paramref name="topic"/> with <paramref name="partitions"/> partitions.</summary>
    public void CreateTopic(string topic, int partitions, int replicationFactor = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(replicationFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replicationFactor, BrokerCount);
        lock (_gate)
        {
            Check(Native.MockTopicCreate(Cluster, topic, partitions, replicationFactor), $"create topic {topic}");
        }
    }

    /// <summary>Makes broker <paramref name="brokerId"/> the leader of <paramref name="topic"/>/<paramref name="partition"/>.</summary>
    public void SetPartitionLeader(string topic, int partition, int brokerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        CheckBroker(brokerId);
        lock (_gate)
        {
            Check(Native.MockPartitionSetLeader(Cluster, topic, partition, brokerId), $"set the leader of {topic}/{partition}");
        }
    }

    /// <summary>Makes broker <paramref name="brokerId"/> the coordinator of consumer group <paramref name="groupId"/>.</summary>
    public void SetGroupCoordinator(string groupId, int brokerId)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        CheckBroker(brokerId);
        lock (_gate)
        {
            Check(Native.MockCoordinatorSet(Cluster, "group", groupId, brokerId), $"set the coordinator of group {groupId}");
        }
    }

    /// <summary>Disconnects broker <paramref name="brokerId"/> and refuses new connections to it. Leadership does not move.</summary>
    public void SetBrokerDown(int brokerId)
    {
        CheckBroker(brokerId);
        lock (_gate)
        {
            Check(Native.MockBrokerSetDown(Cluster, brokerId), $"take broker {brokerId} down");
        }
    }

    /// <summary>Lets broker <paramref name="brokerId"/> accept connections again.</summary>
    public void SetBrokerUp(int brokerId)
    {
        CheckBroker(brokerId);
        lock (_gate)
        {
            Check(Native.MockBrokerSetUp(Cluster, brokerId), $"bring broker {brokerId} up");
        }
    }

    /// <summary>
    /// Makes the next <paramref name="count"/> requests of Kafka API <paramref name="apiKey"/> (2: ListOffsets),
    /// to any broker, fail with error code <paramref name="error"/> (29: TOPIC_AUTHORIZATION_FAILED, not retried).
    /// </summary>
    public void PushRequestErrors(short apiKey, int count, int error)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var errors = new int[count];
        Array.Fill(errors, error);
        lock (_gate)
        {
            Native.MockPushRequestErrors(Cluster, apiKey, errors);
        }
    }

    /// <summary>Stops the brokers (closing their connections) and frees the cluster, then its owning client.</summary>
    public void Dispose()
    {
        nint cluster, client;
        lock (_gate)
        {
            (cluster, _cluster) = (_cluster, 0);
            (client, _client) = (_client, 0);
        }

        if (cluster != 0)
        {
            Native.MockClusterDestroy(cluster);
        }

        if (client != 0)
        {
            Native.Destroy(client);
        }
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private nint Cluster => _cluster != 0 ? _cluster : throw new ObjectDisposedException(nameof(KafkaMockCluster));

    private void CheckBroker(int brokerId)
    {
        if (brokerId < 1 || brokerId > BrokerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(brokerId), brokerId, $"Broker ids run from 1 to {BrokerCount}.");
        }
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new InvalidOperationException($"Mock cluster: could not {what}: {Native.ErrorString(error)} ({error}).");
        }
    }

    /// <summary>The librdkafka C functions used here, bound through function pointers from the loaded library.</summary>
    private static unsafe class Native
    {
        private static readonly delegate* unmanaged<nint> s_confNew = (delegate* unmanaged<nint>)LibRdKafka.Export("rd_kafka_conf_new");
        private static readonly delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int> s_confSet =
            (delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int>)LibRdKafka.Export("rd_kafka_conf_set");
        private static readonly delegate* unmanaged<nint, void> s_confDestroy = (delegate* unmanaged<nint, void>)LibRdKafka.Export("rd_kafka_conf_destroy");
        private static readonly delegate* unmanaged<int, nint, byte*, nuint, nint> s_new =
            (delegate* unmanaged<int, nint, byte*, nuint, nint>)LibRdKafka.Export("rd_kafka_new");
        private static readonly delegate* unmanaged<nint, void> s_destroy = (delegate* unmanaged<nint, void>)LibRdKafka.Export("rd_kafka_destroy");
        private static readonly delegate* unmanaged<int, byte*> s_err2str = (delegate* unmanaged<int, byte*>)LibRdKafka.Export("rd_kafka_err2str");
        private static readonly delegate* unmanaged<nint, int, nint> s_mockClusterNew =
            (delegate* unmanaged<nint, int, nint>)LibRdKafka.Export("rd_kafka_mock_cluster_new");
        private static readonly delegate* unmanaged<nint, void> s_mockClusterDestroy =
            (delegate* unmanaged<nint, void>)LibRdKafka.Export("rd_kafka_mock_cluster_destroy");
        private static readonly delegate* unmanaged<nint, byte*> s_mockClusterBootstraps =
            (delegate* unmanaged<nint, byte*>)LibRdKafka.Export("rd_kafka_mock_cluster_bootstraps");
        private static readonly delegate* unmanaged<nint, byte*, int, int, int> s_mockTopicCreate =
            (delegate* unmanaged<nint, byte*, int, int, int>)LibRdKafka.Export("rd_kafka_mock_topic_create");
        private static readonly delegate* unmanaged<nint, byte*, int, int, int> s_mockPartitionSetLeader =
            (delegate* unmanaged<nint, byte*, int, int, int>)LibRdKafka.Export("rd_kafka_mock_partition_set_leader");
        private static readonly delegate* unmanaged<nint, byte*, byte*, int, int> s_mockCoordinatorSet =
            (delegate* unmanaged<nint, byte*, byte*, int, int>)LibRdKafka.Export("rd_kafka_mock_coordinator_set");
        private static readonly delegate* unmanaged<nint, int, int> s_mockBrokerSetDown =
            (delegate* unmanaged<nint, int, int>)LibRdKafka.Export("rd_kafka_mock_broker_set_down");
        private static readonly delegate* unmanaged<nint, int, int> s_mockBrokerSetUp =
            (delegate* unmanaged<nint, int, int>)LibRdKafka.Export("rd_kafka_mock_broker_set_up");
        private static readonly delegate* unmanaged<nint, short, nuint, int*, void> s_mockPushRequestErrors =
            (delegate* unmanaged<nint, short, nuint, int*, void>)LibRdKafka.Export("rd_kafka_mock_push_request_errors_array");

        public static nint ConfNew() => s_confNew();

        public static void ConfDestroy(nint conf) => s_confDestroy(conf);

        public static void ConfSet(nint conf, string name, string value)
        {
            var error = stackalloc byte[ErrorStringSize];
            fixed (byte* n = Utf8Z(name), v = Utf8Z(value))
            {
                if (s_confSet(conf, n, v, error, ErrorStringSize) != 0) // RD_KAFKA_CONF_OK
                {
                    throw new InvalidOperationException($"librdkafka rejected {name}={value}: {Marshal.PtrToStringUTF8((nint)error)}");
                }
            }
        }

        public static nint New(int type, nint conf, out string error)
        {
            var buffer = stackalloc byte[ErrorStringSize];
            buffer[0] = 0;
            var client = s_new(type, conf, buffer, ErrorStringSize);
            error = Marshal.PtrToStringUTF8((nint)buffer) ?? "";
            return client;
        }

        public static void Destroy(nint client) => s_destroy(client);

        public static string ErrorString(int error) => Marshal.PtrToStringUTF8((nint)s_err2str(error)) ?? error.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public static nint MockClusterNew(nint client, int brokers) => s_mockClusterNew(client, brokers);

        public static void MockClusterDestroy(nint cluster) => s_mockClusterDestroy(cluster);

        public static string MockClusterBootstraps(nint cluster) => Marshal.PtrToStringUTF8((nint)s_mockClusterBootstraps(cluster)) ?? "";

        public static int MockTopicCreate(nint cluster, string topic, int partitions, int replication)
        {
            fixed (byte* t = Utf8Z(topic))
            {
                return s_mockTopicCreate(cluster, t, partitions, replication);
            }
        }

        public static int MockPartitionSetLeader(nint cluster, string topic, int partition, int brokerId)
        {
            fixed (byte* t = Utf8Z(topic))
            {
                return s_mockPartitionSetLeader(cluster, t, partition, brokerId);
            }
        }

        public static int MockCoordinatorSet(nint cluster, string keyType, string key, int brokerId)
        {
            fixed (byte* t = Utf8Z(keyType), k = Utf8Z(key))
            {
                return s_mockCoordinatorSet(cluster, t, k, brokerId);
            }
        }

        public static int MockBrokerSetDown(nint cluster, int brokerId) => s_mockBrokerSetDown(cluster, brokerId);

        public static int MockBrokerSetUp(nint cluster, int brokerId) => s_mockBrokerSetUp(cluster, brokerId);

        public static void MockPushRequestErrors(nint cluster, short apiKey, int[] errors)
        {
            fixed (int* first = errors)
            {
                s_mockPushRequestErrors(cluster, apiKey, (nuint)errors.Length, first);
            }
        }

        private static byte[] Utf8Z(string value)
        {
            var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
            Encoding.UTF8.GetBytes(value, bytes);
            return bytes;
        }
    }
}
