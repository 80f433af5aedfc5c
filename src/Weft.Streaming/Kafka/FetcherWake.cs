using Confluent.Kafka;

namespace Weft.Streaming.Kafka;

/// <summary>
/// Wakes librdkafka's broker threads once the source has drained a full prefetch queue, so that they
/// fetch again at once instead of up to a second later.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> librdkafka 2.0.2 stops fetching every partition once the source's queue holds
/// <c>queued.min.messages</c> (it counts the one queue all partitions deliver to), and its broker
/// threads then sleep until an operation or a socket wakes them, or a second has passed.
/// Dequeuing wakes nothing; <c>fetch.queue.backoff.ms</c>, which bounds that sleep, came in 2.1. So a
/// small prefetch queue starved the stream (the thirteenth session measured 230k events/s against
/// ~300k with 32 MB), and a large one (256 MB) held the backlog in memory long gone cold from the
/// caches: behind a slower reader, every message cost the Kafka side twice the CPU the raw consume
/// reference paid.</para>
/// <para><b>How.</b> When the queue has been near the threshold (four fifths) and the poll thread has
/// drained it to two fifths, one watermark query per broker that leads an assigned partition
/// (a ListOffsets request, answered from the broker's log end) goes out from a pool thread. Each request
/// is an operation on that broker's thread: it wakes, finds the queue under the threshold and fetches.
/// At most one wake runs at a time; the leaders are looked up again after each rebalance. A wake that
/// fails changes nothing: librdkafka's own second still applies.</para>
/// </remarks>
internal sealed class FetcherWake(IConsumer<byte[]?, byte[]?> consumer, IReadOnlyList<string> topics, int threshold)
{
    private static readonly TimeSpan MetadataTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan QueryTimeout = TimeSpan.FromMilliseconds(500);

    private readonly WakePolicy _policy = new(threshold);
    private int _state; // 0 idle, 1 waking, 2 closed
    private int _leadersVersion = -1;
    private TopicPartition[] _perLeader = [];
    private long _wakes;

    /// <summary>Wakes sent so far (each: one query per leading broker).</summary>
    public long Wakes => Interlocked.Read(ref _wakes);

    /// <summary>On the poll thread, after a drain: starts a wake when the queue has gone from full to drained.</summary>
    /// <param name="queued">Messages now in the source's librdkafka queue.</param>
    /// <param name="assignmentVersion">Changes with every rebalance.</param>
    /// <param name="assigned">The partitions assigned now (copied only when a wake starts and the leaders are to be looked up).</param>
    public void AfterDrain(int queued, int assignmentVersion, ICollection<TopicPartition> assigned)
    {
        if (_policy.Due(queued) && Interlocked.CompareExchange(ref _state, 1, 0) == 0)
        {
            _policy.Started();
            TopicPartition[]? partitions = assignmentVersion == Volatile.Read(ref _leadersVersion) ? null : [.. assigned];
            ThreadPool.UnsafeQueueUserWorkItem(_ => Wake(assignmentVersion, partitions), null);
        }
    }

    /// <summary>Waits for a wake in flight and refuses new ones: call before the consumer is closed, whose handle a wake uses.</summary>
    public void Close()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _state, 2, 0) == 1)
        {
            spin.SpinOnce(sleep1Threshold: 10);
        }
    }

    private void Wake(int assignmentVersion, TopicPartition[]? assigned)
    {
        try
        {
            if (assigned is not null)
            {
                _perLeader = OnePartitionPerLeader(assigned);
                Volatile.Write(ref _leadersVersion, assignmentVersion);
            }

            foreach (var partition in _perLeader)
            {
                consumer.QueryWatermarkOffsets(partition, QueryTimeout);
            }

            Interlocked.Increment(ref _wakes);
        }
        catch (KafkaException)
        {
            // A broker down or slow, or a leader moved: its thread wakes on its own within a second, and
            // the leaders are looked up again at the next wake.
            Volatile.Write(ref _leadersVersion, -1);
        }
        finally
        {
            Volatile.Write(ref _state, 0);
        }
    }

    private TopicPartition[] OnePartitionPerLeader(TopicPartition[] assigned)
    {
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var byLeader = new Dictionary<int, TopicPartition>();
        foreach (var topic in topics)
        {
            foreach (var t in admin.GetMetadata(topic, MetadataTimeout).Topics)
            {
                foreach (var p in t.Partitions)
                {
                    var partition = new TopicPartition(t.Topic, new Partition(p.PartitionId));
                    if (p.Leader >= 0 && Array.IndexOf(assigned, partition) >= 0)
                    {
                        byLeader.TryAdd(p.Leader, partition);
                    }
                }
            }
        }

        return [.. byLeader.Values];
    }

    /// <summary>When a wake is due: the queue reached four fifths of the threshold, then fell to two fifths.</summary>
    internal sealed class WakePolicy(int threshold)
    {
        private readonly int _high = Math.Max(1, threshold / 5 * 4);
        private readonly int _low = threshold / 5 * 2;
        private bool _armed;

        /// <summary>Whether a wake is due with <paramref name="queued"/> messages in the queue.</summary>
        public bool Due(int queued)
        {
            if (queued >= _high)
            {
                _armed = true;
                return false;
            }

            return _armed && queued <= _low;
        }

        /// <summary>A wake started: the next one waits for the queue to fill again.</summary>
        public void Started() => _armed = false;
    }
}
