using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Confluent.Kafka;

namespace Weft.Streaming.Kafka;

/// <summary>
/// A librdkafka queue of its own that a consumer's assigned partitions deliver their fetched messages
/// to, drained many messages per call with <c>rd_kafka_consume_batch_queue</c>.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> Confluent.Kafka's <c>Consume</c> returns one message per call: three native calls
/// (poll, timestamp, destroy), a marshalled struct and five objects each. On this project's 2-core
/// benchmark that loop, not the brokers, bounds the consumer (raw-consume 0.67–1.11M events/s; the same
/// consumer drained through this queue 0.87–1.39M, alternated in one run). The consumer stays
/// Confluent.Kafka's: configuration, group membership, rebalance handlers, pause, commit and close.</para>
/// <para><b>Rebalances stay in order.</b> Only the partitions' message queues are forwarded here
/// (<see cref="Attach"/>, called from the assigned handler, before librdkafka starts fetching them).
/// Rebalances, errors and logs stay on the consumer's own queue, served by Confluent's <c>Consume</c>
/// between drains. So a rebalance never runs in the middle of a drain, where messages taken before it
/// and after it could not be told apart. Messages of a revoked partition still in this queue are
/// outdated to librdkafka (its fetch version moved on) and are dropped as they are dequeued.</para>
/// <para><b>Lifetime.</b> Dispose before the consumer is closed: librdkafka's destroy waits for the
/// partitions' queues, and a queue of the application's still referenced would hold it forever.
/// Messages still queued are dropped (they were never delivered, so never committed).</para>
/// <para>The native client handle is Confluent.Kafka's internal <c>Handle.LibrdkafkaHandle</c>, read by
/// reflection from the pinned 1.9.3 assembly (checked at open; a different build fails with a clear error).</para>
/// </remarks>
internal sealed unsafe class FetchedMessageQueue : IDisposable
{
    /// <summary>librdkafka's <c>RD_KAFKA_RESP_ERR__PARTITION_EOF</c>: the end of a partition, not an error.</summary>
    public const int PartitionEof = -191;

    /// <summary>librdkafka's <c>RD_KAFKA_RESP_ERR__FATAL</c>: the client is unusable; the cause is in <c>rd_kafka_fatal_error</c>.</summary>
    public const int Fatal = -150;

    private readonly SafeHandle _client;
    private readonly nint _rk;
    private readonly nint[] _messages;
    private nint _queue;
    private int _taken;

    private FetchedMessageQueue(SafeHandle client, int capacity)
    {
        _client = client;
        var added = false;
        client.DangerousAddRef(ref added); // the handle must outlive the queue
        _rk = client.DangerousGetHandle();
        _queue = Native.QueueNew(_rk);
        _messages = new nint[capacity];
    }

    /// <summary>Creates the queue on the consumer's librdkafka client; at most <paramref name="capacity"/> messages per <see cref="Take"/>.</summary>
    /// <exception cref="InvalidOperationException">The Confluent.Kafka assembly does not expose its native handle the way 1.9.3 does.</exception>
    public static FetchedMessageQueue Open(IClient consumer, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (property?.GetValue(consumer.Handle) is not SafeHandle client || client.IsInvalid)
        {
            throw new InvalidOperationException(
                $"Confluent.Kafka {typeof(Handle).Assembly.GetName().Version} does not expose its librdkafka handle as 1.9.3 does (Handle.LibrdkafkaHandle); Weft pins Confluent.Kafka 1.9.3.");
        }

        return new FetchedMessageQueue(client, capacity);
    }

    /// <summary>Messages waiting in this queue (librdkafka counts them against <c>queued.min.messages</c>).</summary>
    public int Length => _queue == 0 ? 0 : (int)Native.QueueLength(_queue);

    /// <summary>Routes a partition's fetched messages to this queue. Call from the assigned handler, before the partition is fetched.</summary>
    public void Attach(string topic, int partition) => Forward(topic, partition, _queue);

    /// <summary>Routes a revoked partition's messages back to the consumer's queue; nothing once disposed (a consumer closing revokes all).</summary>
    public void Detach(string topic, int partition)
    {
        if (_queue != 0)
        {
            Forward(topic, partition, 0);
        }
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> fetched messages (at most the capacity), waiting up to
    /// <paramref name="timeoutMs"/> until that many are there (0: only what is there now). Each must be
    /// read before <see cref="Release"/>; a take not released yet is released first.
    /// </summary>
    public ReadOnlySpan<nint> Take(int timeoutMs, int max)
    {
        ObjectDisposedException.ThrowIf(_queue == 0, this);
        Release();
        fixed (nint* messages = _messages)
        {
            var count = Native.ConsumeBatchQueue(_queue, timeoutMs, messages, (nuint)Math.Clamp(max, 1, _messages.Length));
            _taken = count < 0 ? 0 : (int)count;
        }

        return _messages.AsSpan(0, _taken);
    }

    /// <summary>A message <see cref="Take"/> returned, read in place; valid until <see cref="Release"/>.</summary>
    public static ref readonly Message Read(nint message) => ref *(Message*)message;

    /// <summary>Frees the messages of the last <see cref="Take"/>.</summary>
    public void Release()
    {
        for (var i = 0; i < _taken; i++)
        {
            Native.MessageDestroy(_messages[i]);
            _messages[i] = 0;
        }

        _taken = 0;
    }

    /// <summary>The client's fatal error, after a message carried <see cref="Fatal"/>.</summary>
    public Error FatalError()
    {
        const int size = 512;
        var reason = stackalloc byte[size];
        var code = Native.FatalError(_rk, reason, size);
        return new Error((ErrorCode)code, Marshal.PtrToStringUTF8((nint)reason) ?? "fatal error", isFatal: true);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_queue == 0)
        {
            return;
        }

        Release();
        Native.QueueDestroy(_queue);
        _queue = 0;
        _client.DangerousRelease();
    }

    private void Forward(string topic, int partition, nint destination)
    {
        ObjectDisposedException.ThrowIf(_queue == 0, this);
        var length = Encoding.UTF8.GetByteCount(topic);
        Span<byte> name = length < 256 ? stackalloc byte[length + 1] : new byte[length + 1];
        Encoding.UTF8.GetBytes(topic, name);
        name[length] = 0;
        fixed (byte* topicName = name)
        {
            var partitionQueue = Native.QueueGetPartition(_rk, topicName, partition);
            if (partitionQueue == 0)
            {
                throw new InvalidOperationException($"librdkafka has no queue for partition {topic}/{partition} of this consumer.");
            }

            Native.QueueForward(partitionQueue, destination);
            Native.QueueDestroy(partitionQueue); // the forward outlives the handle
        }
    }

    /// <summary>librdkafka's <c>rd_kafka_message_t</c> (rdkafka.h), read in place.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public readonly struct Message
    {
        public readonly int Error;
        public readonly nint Topic;
        public readonly int Partition;
        private readonly byte* _payload;
        private readonly nuint _length;
        private readonly byte* _key;
        private readonly nuint _keyLength;
        public readonly long Offset;
        private readonly nint _private;

        /// <summary>The payload; empty when there is none. An error's payload is its text.</summary>
        public ReadOnlySpan<byte> Value => new(_payload, (int)_length);

        /// <summary>The key; empty when there is none.</summary>
        public ReadOnlySpan<byte> KeyBytes => new(_key, (int)_keyLength);

        /// <summary>The topic's name as librdkafka holds it (NUL-terminated UTF-8).</summary>
        public ReadOnlySpan<byte> TopicName => MemoryMarshal.CreateReadOnlySpanFromNullTerminated(Native.TopicName(Topic));

        /// <summary>The message's timestamp in ms since the Unix epoch, or null when the broker gave none.</summary>
        public static long? TimestampMs(nint message)
        {
            int type;
            var timestamp = Native.MessageTimestamp(message, &type);
            return type == 0 ? null : timestamp;
        }
    }

    /// <summary>The librdkafka functions Confluent.Kafka does not wrap, resolved once from the library it loaded.</summary>
    private static class Native
    {
        public static readonly delegate* unmanaged<nint, nint> QueueNew = (delegate* unmanaged<nint, nint>)LibRdKafka.Export("rd_kafka_queue_new");
        // Not SuppressGCTransition: it takes the queue's lock, which librdkafka's threads hold while they enqueue.
        public static readonly delegate* unmanaged<nint, nuint> QueueLength = (delegate* unmanaged<nint, nuint>)LibRdKafka.Export("rd_kafka_queue_length");
        public static readonly delegate* unmanaged<nint, void> QueueDestroy = (delegate* unmanaged<nint, void>)LibRdKafka.Export("rd_kafka_queue_destroy");
        public static readonly delegate* unmanaged<nint, byte*, int, nint> QueueGetPartition = (delegate* unmanaged<nint, byte*, int, nint>)LibRdKafka.Export("rd_kafka_queue_get_partition");
        public static readonly delegate* unmanaged<nint, nint, void> QueueForward = (delegate* unmanaged<nint, nint, void>)LibRdKafka.Export("rd_kafka_queue_forward");
        public static readonly delegate* unmanaged<nint, int, nint*, nuint, nint> ConsumeBatchQueue = (delegate* unmanaged<nint, int, nint*, nuint, nint>)LibRdKafka.Export("rd_kafka_consume_batch_queue");
        public static readonly delegate* unmanaged<nint, void> MessageDestroy = (delegate* unmanaged<nint, void>)LibRdKafka.Export("rd_kafka_message_destroy");
        public static readonly delegate* unmanaged[SuppressGCTransition]<nint, int*, long> MessageTimestamp = (delegate* unmanaged[SuppressGCTransition]<nint, int*, long>)LibRdKafka.Export("rd_kafka_message_timestamp");
        public static readonly delegate* unmanaged[SuppressGCTransition]<nint, byte*> TopicName = (delegate* unmanaged[SuppressGCTransition]<nint, byte*>)LibRdKafka.Export("rd_kafka_topic_name");
        public static readonly delegate* unmanaged<nint, byte*, nuint, int> FatalError = (delegate* unmanaged<nint, byte*, nuint, int>)LibRdKafka.Export("rd_kafka_fatal_error");
    }
}
