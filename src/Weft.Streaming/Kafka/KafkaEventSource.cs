using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Weft.Streaming.Kafka;

/// <summary>
/// One consumer of a Kafka consumer group as an <see cref="IEventSource"/>.
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> Polling blocks, so it runs on a dedicated poll thread that converts messages
/// into <see cref="SourceRecord"/>s and hands them to the reader through a bounded channel in chunks.
/// The assigned partitions' messages are drained from a queue of their own many at a time
/// (<see cref="FetchedMessageQueue"/>); rebalances and errors are served by Confluent.Kafka's
/// <c>Consume</c> between drains. After a wait for a first message, the thread takes what
/// librdkafka has already fetched without blocking, up to a chunk, and writes the chunk (so a lone
/// record waits for nothing, and a busy stream costs one channel operation per chunk, not per record).
/// <see cref="ReadBatchAsync"/> drains chunks into batches. When the channel is full the poll thread
/// waits up to one poll timeout for the reader, then pauses the assigned partitions and keeps polling
/// (so rebalances are served), and resumes them once the reader has emptied half the channel: the
/// channel's capacity is the backpressure. Rebalance callbacks run on the poll thread, inside
/// <c>Consume</c>.</para>
/// <para><b>Rebalances.</b> Every assignment of a partition gets a fresh <see cref="PartitionState"/>;
/// each buffered record points at the state it was fetched under. A revoke marks the states revoked
/// while holding the same lock under which the reader takes a batch, so once a revoke has happened no
/// batch contains a record fetched under the old assignment: the partition's next records come from
/// the group's committed offset (by this consumer if it gets the partition back, else by the new
/// owner), never interleaved with stale ones.</para>
/// <para><b>Commits.</b> <see cref="CommitAsync"/> commits offset + 1 for each given partition that is
/// still assigned here; offsets of partitions that moved away are not committed (the new owner
/// delivers those records again: at-least-once), nor are commits the coordinator refuses because the
/// group is rebalancing, nor while its coordinator cannot be reached (the next commit made covers them;
/// <see cref="CommitsNotMade"/> counts them). Other commit failures throw <see cref="KafkaSourceException"/>.</para>
/// <para><b>Failures.</b> Non-fatal librdkafka errors (a broker down, a connection refused) are logged and
/// librdkafka retries. A fatal error stops the poll thread; the next read or commit throws a
/// <see cref="KafkaSourceException"/> naming it.</para>
/// </remarks>
internal sealed class KafkaEventSource : IEventSource
{
    private readonly KafkaSourceOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<Chunk> _channel;
    private readonly int _chunkSize;
    private readonly int _chunkCapacity;
    private readonly Lock _deliveryGate = new();
    private readonly ManualResetEventSlim _room = new(false, spinCount: 1); // waits are milliseconds long: spinning only burns a core the reader needs
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly FetchedMessageQueue _fetched;
    private readonly byte[][] _topicNames; // the topics' names in UTF-8, to tell a fetched message's topic without a string
    private readonly Thread _pollThread;
    private readonly FetcherWake _wake;

    private volatile bool _stopping;
    private volatile bool _waitingForRoom;
    private volatile KafkaSourceException? _fault;
    private volatile bool _refused; // the fault is a refused partition (Refuse): the consumer itself is sound and leaves its group on close
    private volatile Func<bool, Task>? _rebalanceHandler;
    private int _disposed;
    private int _buffered; // records in the channel and in the reader's current chunk

    /// <summary>Partitions assigned here, by their <c>topic/partition</c> name; replaced (never mutated) on the poll thread.</summary>
    private volatile Dictionary<string, PartitionState> _owned = new(StringComparer.Ordinal);

    /// <summary>What the reader's tables hold per partition (<see cref="SetHeldOffsets"/>); null until it says. Under <see cref="_heldGate"/>.</summary>
    private Dictionary<string, long>? _held;
    private readonly Lock _heldGate = new();

    /// <summary>
    /// Held across each native end query, which may run on the reader's thread (<see cref="SetHeldOffsets"/>):
    /// librdkafka takes the consumer's raw handle, so the poll thread's close waits for a query in flight,
    /// and none starts after it (<see cref="_queriesClosed"/>).
    /// </summary>
    private readonly Lock _queryGate = new();
    private bool _queriesClosed;

    /// <summary>Whether any partition was ever assigned here; until then, the broker's last error (set on librdkafka's threads).</summary>
    private volatile bool _everAssigned;
    private volatile string? _lastError;

    // Poll-thread state.
    private readonly Dictionary<TopicPartition, PartitionState> _assigned = [];
    private readonly Queue<Chunk> _pending = new(); // chunks the full channel did not take yet, in order
    private Chunk? _filling;
    private readonly MessageBytes _bytes = new(); // the poll thread's copies of fetched messages
    private PartitionState? _lastState;
    private int _assignmentVersion;
    private int _pausedVersion = -1;
    private bool _paused;
    private int _pauseCount;
    private long _strayMessages;
    private long _commitsNotMade;
    private volatile string? _whyLastCommitNotMade;
    private long _fullSince; // Stopwatch timestamp the channel was first found full (0: it has room)

    // Reader state, under the delivery lock.
    private Chunk? _reading;
    private int _readIndex;

    private KafkaEventSource(KafkaSourceOptions options, ILogger logger, TimeProvider time)
    {
        _options = options;
        _logger = logger;
        _time = time;
        Name = "kafka:" + string.Join(',', options.Topics);
        // At most ChannelCapacity records in the channel: a quarter of it (≤ 512) per chunk.
        _chunkSize = Math.Clamp(options.ChannelCapacity / 4, 1, 512);
        _chunkCapacity = Math.Max(1, options.ChannelCapacity / _chunkSize);
        _channel = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(_chunkCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = false,
        });
        _consumer = BuildConsumer(options);
        try
        {
            _fetched = FetchedMessageQueue.Open(_consumer, _chunkSize);
        }
        catch
        {
            _consumer.Dispose();
            throw;
        }

        _topicNames = [.. options.Topics.Select(Encoding.UTF8.GetBytes)];
        _wake = new FetcherWake(_consumer, options.Topics, PrefetchThreshold(options));
        _pollThread = new Thread(PollLoop) { IsBackground = true, Name = $"weft-kafka-poll {options.GroupId}" };
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The partitions assigned to this consumer right now, as <c>topic/partition</c>.</summary>
    internal IReadOnlyCollection<string> AssignedPartitions => _owned.Keys;

    /// <summary>Records waiting in the channel (not counting chunks the full channel has not taken).</summary>
    internal int BufferedCount => Volatile.Read(ref _buffered);

    /// <summary>Whether the poll thread is waiting for room in a full channel (for tests).</summary>
    internal bool WaitingForRoom => Volatile.Read(ref _fullSince) != 0;

    /// <summary>How often a full channel has paused the partitions.</summary>
    internal int PauseCount => Volatile.Read(ref _pauseCount);

    /// <summary>Messages that came through Confluent's <c>Consume</c> instead of the fetched-message queue (none, when every assigned partition is attached).</summary>
    internal long StrayMessages => Volatile.Read(ref _strayMessages);

    /// <summary>Wakes of librdkafka's fetchers after a full prefetch queue was drained (see <see cref="FetcherWake"/>).</summary>
    internal long FetcherWakes => _wake.Wakes;

    /// <inheritdoc />
    /// <remarks>Called on the poll thread, inside the rebalance callbacks; not while the source closes (a
    /// closing reader has flushed already, or is gone), nor for partitions lost (the group has moved on: a
    /// commit would be refused).</remarks>
    public void SetRebalanceHandler(Func<bool, Task>? handler) => _rebalanceHandler = handler;

    /// <summary>Validates the options, loads librdkafka, creates the consumer and starts its poll thread.</summary>
    internal static KafkaEventSource Open(KafkaSourceOptions options, ILogger? logger, TimeProvider? timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        LibRdKafka.EnsureLoaded(options.LibrdkafkaPath);
        logger ??= NullLogger.Instance;
        var source = new KafkaEventSource(options, logger, timeProvider ?? TimeProvider.System);
        StreamingLog.KafkaSourceOpening(logger, source.Name, options.ToString(), Library.VersionString, LibRdKafka.LoadedFrom);
        source._pollThread.Start();
        return source;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<SourceRecord>> ReadBatchAsync(int maxRecords, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecords, 1);
        if (maxWait < TimeSpan.Zero && maxWait != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(maxWait), maxWait, "maxWait must be zero or positive (or infinite).");
        }

        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfUnusable();
        var batch = Drain(maxRecords);
        if (batch is not null || maxWait == TimeSpan.Zero)
        {
            return batch ?? (IReadOnlyList<SourceRecord>)[];
        }

        using var timeout = new CancellationTokenSource(maxWait, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        while (true)
        {
            var wait = _channel.Reader.WaitToReadAsync(linked.Token).AsTask();
            await ((Task)wait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
            if (wait.IsCanceled)
            {
                return []; // maxWait passed without a record
            }

            if (wait.IsFaulted || !await wait.ConfigureAwait(false))
            {
                ThrowIfUnusable();
                throw new ObjectDisposedException(Name, "The Kafka source stopped.");
            }

            if (_fault is not null)
            {
                ThrowIfUnusable(); // a partition refused while the reader waited: what the poll thread published since is not delivered
            }

            batch = Drain(maxRecords);
            if (batch is not null)
            {
                return batch;
            }

            // Everything buffered belonged to revoked partitions: wait on, within maxWait.
        }
    }

    /// <inheritdoc />
    public async ValueTask CommitAsync(IReadOnlyDictionary<string, long> processedOffsets, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(processedOffsets);
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfUnusable();
        if (processedOffsets.Count == 0)
        {
            return;
        }

        var owned = _owned;
        var offsets = new List<TopicPartitionOffset>(processedOffsets.Count);
        foreach (var (partition, offset) in processedOffsets)
        {
            if (offset < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(processedOffsets), offset, $"The processed offset of {partition} must not be negative.");
            }

            if (owned.TryGetValue(partition, out var state))
            {
                offsets.Add(new TopicPartitionOffset(state.TopicPartition, new Offset(offset + 1)));
            }
            else if (TryParsePartition(partition, out _))
            {
                StreamingLog.KafkaCommitSkipped(_logger, Name, partition);
            }
            else
            {
                throw new ArgumentException($"\"{partition}\" is not a Kafka partition name (topic/partition).", nameof(processedOffsets));
            }
        }

        if (offsets.Count > 0)
        {
            // Commit blocks until the coordinator answers; keep it off the caller's thread.
            await Task.Run(() => CommitBlocking(offsets), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the poll thread, which closes the consumer (leaving the group) and completes the channel.</summary>
    public async ValueTask DisposeAsync()
    {
        bool first = Interlocked.Exchange(ref _disposed, 1) == 0;
        if (first)
        {
            _stopping = true;
            _room.Set();
        }

        // librdkafka 2.0.2's close can block for good inside a rebalance (seen once in the suite: the
        // revoke's unassign waiting in rd_kafka_assign). Disposing must not hang with it: past the
        // timeout, the poll thread (a background thread) is left to it, and the group's session timeout
        // moves the partitions on, as after a crash. Commits were made before; nothing is lost.
        try
        {
            await _stopped.Task.WaitAsync(_options.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            StreamingLog.KafkaCloseTimedOut(_logger, Name, _options.CloseTimeout.TotalSeconds);
            return; // the poll thread may still wait on _room
        }

        if (first)
        {
            _room.Dispose();
        }
    }

    /// <summary>Parses <c>topic/partition</c>.</summary>
    internal static bool TryParsePartition(string name, out TopicPartition topicPartition)
    {
        var slash = name.LastIndexOf('/');
        if (slash > 0
            && int.TryParse(name.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var partition)
            && KafkaSourceOptions.IsValidTopicName(name[..slash]))
        {
            topicPartition = new TopicPartition(name[..slash], new Partition(partition));
            return true;
        }

        topicPartition = null!;
        return false;
    }

    internal static string PartitionName(TopicPartition tp) =>
        string.Create(CultureInfo.InvariantCulture, $"{tp.Topic}/{tp.Partition.Value}");

    /// <summary>
    /// Prefetch thresholds the source sets unless <see cref="KafkaSourceOptions.Config"/> names them.
    /// librdkafka 2.0.2 stops fetching once the source's queue holds <c>queued.min.messages</c> messages
    /// or <c>queued.max.messages.kbytes</c> (it counts the one queue every partition delivers to), and its
    /// broker threads then sleep up to a second unless woken (<see cref="FetcherWake"/> wakes them once the
    /// queue is drained). 40,000 messages (~9 MB of 230-byte events) keep the prefetched messages few
    /// enough to be read while still in the caches: with 500,000 (256 MB) behind a slower reader, the
    /// Kafka side cost twice the CPU per message the raw consume reference paid. The byte cap stays for
    /// large messages.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> PrefetchDefaults = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["queued.min.messages"] = "40000",
        ["queued.max.messages.kbytes"] = "262144",
    };

    /// <summary>The <c>queued.min.messages</c> the consumer runs with: the options' own, or the prefetch default.</summary>
    internal static int PrefetchThreshold(KafkaSourceOptions options) =>
        int.TryParse(ConsumerSettings(options).GetValueOrDefault("queued.min.messages"), NumberStyles.None, CultureInfo.InvariantCulture, out var threshold) && threshold > 0
            ? threshold
            : 100_000; // librdkafka's own default

    /// <summary>The librdkafka consumer configuration the source runs with: the options' own, the prefetch defaults, and the managed keys.</summary>
    internal static Dictionary<string, string> ConsumerSettings(KafkaSourceOptions options)
    {
        var properties = new Dictionary<string, string>(PrefetchDefaults, StringComparer.Ordinal);
        foreach (var (key, value) in options.Config)
        {
            properties[key] = value;
        }

        var config = new ConsumerConfig(properties)
        {
            BootstrapServers = options.BootstrapServers,
            GroupId = options.GroupId,
            ClientId = options.ClientId,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = options.AutoOffsetReset == "latest" ? Confluent.Kafka.AutoOffsetReset.Latest : Confluent.Kafka.AutoOffsetReset.Earliest,

            // Confluent.Kafka makes a Headers list and a topic string for every message unless told not
            // to; the source reads neither headers nor (with one topic, which it knows) the topic name.
            ConsumeResultFields = options.Topics.Count == 1 ? "timestamp" : "topic,timestamp",
        };
        return config.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
    }

    private IConsumer<byte[]?, byte[]?> BuildConsumer(KafkaSourceOptions options)
    {
        var config = new ConsumerConfig(ConsumerSettings(options));
        try
        {
            return new ConsumerBuilder<byte[]?, byte[]?>(config)
                .SetErrorHandler((_, error) => OnError(error))
                .SetLogHandler((_, message) => OnLog(message))
                .SetPartitionsAssignedHandler((_, partitions) => OnAssigned(partitions))
                .SetPartitionsRevokedHandler((_, partitions) => OnRevoked(partitions, lost: false))
                .SetPartitionsLostHandler((_, partitions) => OnRevoked(partitions, lost: true))
                .Build();
        }
        catch (Exception e) when (e is KafkaException or ArgumentException or InvalidOperationException)
        {
            throw new ArgumentException($"KafkaSourceOptions.Config is not accepted by librdkafka: {e.Message}", nameof(options), e);
        }
    }

    // ---- poll thread -------------------------------------------------------------------------

    private void PollLoop()
    {
        try
        {
            _consumer.Subscribe(_options.Topics);
            while (!_stopping)
            {
                if (_paused || _pending.Count > 0)
                {
                    WaitForRoom();
                    continue;
                }

                // Rebalances and errors, on the consumer's own queue, between drains (see FetchedMessageQueue);
                // messages there too if any ever arrive outside the attached partitions.
                var strays = 0;
                while ((_filling?.Count ?? 0) < _chunkSize && TryConsume(TimeSpan.Zero) is { } stray)
                {
                    AddStray(stray);
                    strays++;
                }

                // Take what librdkafka has already fetched, without blocking, up to a chunk; when there is
                // nothing anywhere, wait up to one poll timeout for a first message.
                if (TakeFetched(0) == 0 && strays == 0 && _filling is not { Count: > 0 })
                {
                    TakeFetched((int)_options.PollTimeout.TotalMilliseconds, max: 1);
                }

                while (_filling is { Count: > 0 } filling && filling.Count < _chunkSize && !_stopping && TakeFetched(0) > 0)
                {
                }

                Publish();
                _wake.AfterDrain(_fetched.Length, _assignmentVersion, _assigned.Keys);
            }
        }
        catch (KafkaException e) when (e.Error.IsFatal)
        {
            Fault(e.Error, e);
        }
#pragma warning disable CA1031 // A poll thread must not take the process down: any failure faults the source and surfaces on the next read.
        catch (Exception e)
#pragma warning restore CA1031
        {
            StreamingLog.KafkaPollThreadFailed(_logger, Name, e);
            _fault ??= new KafkaSourceException($"Kafka source {Name} stopped: its poll thread failed: {e.Message}", "PollThreadFailed", isTransient: false, e);
        }
        finally
        {
            Close();
        }
    }

    /// <summary>
    /// Drains fetched messages into the chunk being filled (up to its free room, or <paramref name="max"/>),
    /// waiting up to <paramref name="timeoutMs"/> for them. Returns how many messages it took, errors included.
    /// </summary>
    private int TakeFetched(int timeoutMs, int max = int.MaxValue)
    {
        var room = _chunkSize - (_filling?.Count ?? 0);
        if (room <= 0)
        {
            return 0;
        }

        var messages = _fetched.Take(timeoutMs, Math.Min(room, max));
        try
        {
            foreach (var pointer in messages)
            {
                ref readonly var message = ref FetchedMessageQueue.Read(pointer);
                if (message.Error != 0)
                {
                    OnMessageError(in message);
                    continue;
                }

                var state = StateOf(TopicOf(in message), message.Partition);
                var timestampMs = FetchedMessageQueue.Message.TimestampMs(pointer) ?? 0;
                // The key is empty for a message without one.
                Append(new SourceRecord(state.Name, message.Offset, _bytes.Copy(message.KeyBytes), _bytes.Copy(message.Value), timestampMs * 1000), state);
            }

            return messages.Length;
        }
        finally
        {
            _fetched.Release();
        }
    }

    /// <summary>A fetched message that carries an error: fatal ones stop the source, others are logged (librdkafka retries).</summary>
    private void OnMessageError(in FetchedMessageQueue.Message message)
    {
        if (message.Error == FetchedMessageQueue.PartitionEof)
        {
            return;
        }

        if (message.Error == FetchedMessageQueue.Fatal)
        {
            var fatal = _fetched.FatalError();
            throw new KafkaException(fatal);
        }

        var error = new Error((ErrorCode)message.Error);
        var where = message.Topic == 0 ? "-" : $"{TopicOf(in message)} [{message.Partition}]";
        var reason = message.Value.IsEmpty ? error.Reason : Encoding.UTF8.GetString(message.Value); // librdkafka puts an error's text in its payload
        StreamingLog.KafkaConsumeError(_logger, Name, error.Code.ToString(), where, reason);
    }

    /// <summary>The subscribed topic a fetched message belongs to, as the options spell it (no string made per message).</summary>
    private string TopicOf(in FetchedMessageQueue.Message message)
    {
        if (_topicNames.Length == 1)
        {
            return _options.Topics[0];
        }

        var name = message.TopicName;
        for (var i = 0; i < _topicNames.Length; i++)
        {
            if (name.SequenceEqual(_topicNames[i]))
            {
                return _options.Topics[i];
            }
        }

        return Encoding.UTF8.GetString(name); // not subscribed by name (cannot happen with these options): still delivered
    }

    /// <summary>The current assignment of a partition; the last one found is kept, as consecutive messages mostly share it.</summary>
    private PartitionState StateOf(string topic, int partition)
    {
        var state = _lastState;
        if (state is null || state.TopicPartition.Partition.Value != partition || !string.Equals(state.TopicPartition.Topic, topic, StringComparison.Ordinal))
        {
            var tp = new TopicPartition(topic, partition);
            if (!_assigned.TryGetValue(tp, out state))
            {
                // Not announced through a callback (cannot happen with the subscribe API): adopt it.
                state = AddAssigned(tp);
                PublishOwned();
            }

            _lastState = state;
        }

        return state;
    }

    /// <summary>One <c>Consume</c>; null on timeout, at the end of a partition, or after a non-fatal error (logged).</summary>
    private ConsumeResult<byte[]?, byte[]?>? TryConsume(TimeSpan timeout)
    {
        try
        {
            var result = _consumer.Consume(timeout);
            return result?.Message is null ? null : result;
        }
        catch (ConsumeException e) when (!e.Error.IsFatal)
        {
            StreamingLog.KafkaConsumeError(_logger, Name, e.Error.Code.ToString(), e.ConsumerRecord?.TopicPartition?.ToString() ?? "-", e.Error.Reason);
            return null;
        }
    }

    /// <summary>Converts a message <c>Consume</c> returned (one outside the attached partitions: a stray, counted) into a record of the chunk being filled.</summary>
    private void AddStray(ConsumeResult<byte[]?, byte[]?> result)
    {
        Interlocked.Increment(ref _strayMessages);
        var state = StateOf(result.Topic ?? _options.Topics[0], result.Partition.Value); // the topic is marshalled only when there are several
        var message = result.Message;
        Append(new SourceRecord(state.Name, result.Offset.Value, message.Key ?? ReadOnlyMemory<byte>.Empty, message.Value ?? ReadOnlyMemory<byte>.Empty, message.Timestamp.UnixTimestampMs * 1000), state);
    }

    private void Append(SourceRecord record, PartitionState state)
    {
        if (state.FirstReceived < 0)
        {
            Volatile.Write(ref state.FirstReceived, record.Offset);
            if (!state.EndChecked)
            {
                CheckFirstReceived(state);
            }
        }

        _filling ??= new Chunk(ArrayPool<Buffered>.Shared.Rent(_chunkSize));
        _filling.Items[_filling.Count++] = new Buffered(record, state);
    }

    /// <summary>Writes the filled chunk to the channel, or queues it when the channel is full (or others wait before it).</summary>
    private void Publish()
    {
        if (_filling is not { Count: > 0 } chunk)
        {
            return;
        }

        _filling = null;
        if (_pending.Count > 0 || !TryWrite(chunk))
        {
            _pending.Enqueue(chunk);
        }
    }

    private bool TryWrite(Chunk chunk)
    {
        Interlocked.Add(ref _buffered, chunk.Count); // before the reader can see (and subtract) it
        if (_channel.Writer.TryWrite(chunk))
        {
            return true;
        }

        Interlocked.Add(ref _buffered, -chunk.Count);
        return false;
    }

    /// <summary>
    /// While the channel is full. A stall shorter than <see cref="KafkaSourceOptions.PauseAfter"/> is
    /// waited out without pausing, so a reader that is busy (or slower than the brokers) never makes
    /// librdkafka drop and refetch its prefetched messages; a longer one pauses the assigned partitions,
    /// and they stay paused until the reader has emptied half the channel. Either way callbacks
    /// (rebalances) are served at least once per poll timeout.
    /// </summary>
    private void WaitForRoom()
    {
        FlushPending();
        if (_pending.Count == 0)
        {
            if (!_paused)
            {
                _fullSince = 0;
                return;
            }

            if (_channel.Reader.Count <= _chunkCapacity / 2)
            {
                Resume();
                return;
            }
        }

        if (!_paused)
        {
            if (_fullSince == 0)
            {
                _fullSince = Stopwatch.GetTimestamp();
            }

            WaitForReader();
            FlushPending();
            if (_pending.Count == 0)
            {
                _fullSince = 0;
                return;
            }

            if (Stopwatch.GetElapsedTime(_fullSince) >= _options.PauseAfter)
            {
                Pause();
            }
        }
        else if (_pausedVersion != _assignmentVersion)
        {
            Pause(); // a rebalance assigned partitions that are not paused yet
        }
        else
        {
            WaitForReader();
        }

        // Serve rebalance callbacks (fetched messages wait in their own queue, so none is taken here but a
        // stray one outside the attached partitions: it waits in the local queue behind the others, in order).
        if (TryConsume(TimeSpan.Zero) is { } result)
        {
            AddStray(result);
            Publish();
        }
    }

    /// <summary>Blocks until the reader takes a batch, or one poll timeout.</summary>
    private void WaitForReader()
    {
        _room.Reset();
        _waitingForRoom = true;
        var stillFull = _pending.Count > 0 ? _channel.Reader.Count >= _chunkCapacity : _channel.Reader.Count > _chunkCapacity / 2;
        if (stillFull && !_stopping)
        {
            _room.Wait(_options.PollTimeout);
        }

        _waitingForRoom = false;
    }

    private void FlushPending()
    {
        while (_pending.TryPeek(out var chunk) && TryWrite(chunk))
        {
            _pending.Dequeue();
        }
    }

    private void Pause()
    {
        var assignment = _consumer.Assignment;
        _consumer.Pause(assignment);
        _paused = true;
        _pausedVersion = _assignmentVersion;
        Interlocked.Increment(ref _pauseCount);
        StreamingLog.KafkaPaused(_logger, Name, assignment.Count);
    }

    private void Resume()
    {
        if (!_paused)
        {
            return;
        }

        var assignment = _consumer.Assignment;
        _consumer.Resume(assignment);
        _paused = false;
        _fullSince = 0; // the next full channel waits PauseAfter again
        StreamingLog.KafkaResumed(_logger, Name, assignment.Count);
    }

    private void OnAssigned(List<TopicPartition> partitions)
    {
        CallRebalanceHandler(revoking: false); // before any record of theirs can be fetched
        var states = new List<PartitionState>(partitions.Count);
        foreach (var tp in partitions)
        {
            _fetched.Attach(tp.Topic, tp.Partition.Value); // before librdkafka starts fetching it, which follows this handler
            states.Add(AddAssigned(tp));
        }

        _assignmentVersion++;
        PublishOwned();
        CheckAssigned(states); // after the reader's handler, which says what it holds of them now
        if (_logger.IsEnabled(LogLevel.Information))
        {
            StreamingLog.KafkaPartitionsAssigned(_logger, Name, string.Join(", ", partitions.Select(PartitionName)));
        }
    }

    private PartitionState AddAssigned(TopicPartition tp)
    {
        var state = new PartitionState(PartitionName(tp), tp);
        if (_assigned.Remove(tp, out var previous))
        {
            lock (_deliveryGate)
            {
                previous.Revoked = true;
            }
        }

        _assigned[tp] = state;
        return state;
    }

    private void OnRevoked(List<TopicPartitionOffset> partitions, bool lost)
    {
        lock (_deliveryGate)
        {
            foreach (var tpo in partitions)
            {
                _fetched.Detach(tpo.Topic, tpo.Partition.Value);
                if (_assigned.Remove(tpo.TopicPartition, out var state))
                {
                    state.Revoked = true;
                }
            }
        }

        _lastState = null;
        if (!lost)
        {
            // No record of theirs is delivered from here on, and they are still owned (commits of them
            // go through): what the reader processed of them can be committed before they move.
            CallRebalanceHandler(revoking: true);
        }

        _assignmentVersion++;
        PublishOwned();
        if (_logger.IsEnabled(lost ? LogLevel.Warning : LogLevel.Information))
        {
            var names = string.Join(", ", partitions.Select(p => PartitionName(p.TopicPartition)));
            if (lost)
            {
                StreamingLog.KafkaPartitionsLost(_logger, Name, names);
            }
            else
            {
                StreamingLog.KafkaPartitionsRevoked(_logger, Name, names);
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// A partition is checked when it is assigned, after the reader's rebalance handler (which may have
    /// said what it holds of it), with one ListOffsets request per leader, before librdkafka fetches it.
    /// One the group assigned before the reader said what it holds (the reader still opening its tables)
    /// is checked here, before the reader's first read. Where the request fails, its first record is
    /// checked instead (<see cref="CheckFetchedEnd"/>).
    /// </remarks>
    public void SetHeldOffsets(IReadOnlyDictionary<string, long> heldThrough)
    {
        ArgumentNullException.ThrowIfNull(heldThrough);
        var held = new Dictionary<string, long>(heldThrough, StringComparer.Ordinal); // a snapshot: the reader's own goes on changing
        List<PartitionState> toCheck;
        lock (_heldGate)
        {
            _held = held;
            toCheck = [.. _owned.Values.Where(s => !s.EndChecked)];
        }

        CheckEnds(toCheck, held);
    }

    /// <summary>On the poll thread, in the assigned handler: see <see cref="SetHeldOffsets"/>.</summary>
    private void CheckAssigned(List<PartitionState> assigned)
    {
        if (HeldNow() is { } held)
        {
            CheckEnds(assigned, held);
        }
    }

    /// <summary>What the reader last said it holds, read under the lock <see cref="SetHeldOffsets"/> sets it and takes the owned partitions under: one of the two sees the other's partition.</summary>
    private Dictionary<string, long>? HeldNow()
    {
        lock (_heldGate)
        {
            return _held;
        }
    }

    /// <summary>On the poll thread, at the first record of an assignment of a partition not checked yet: see <see cref="SetHeldOffsets"/>.</summary>
    private void CheckFirstReceived(PartitionState state)
    {
        if (HeldNow() is { } held && !state.EndChecked && held.GetValueOrDefault(state.Name, -1) >= 0)
        {
            CheckFetchedEnd(state, held);
        }
    }

    /// <summary>
    /// Checks a partition against the high watermark of this assignment's fetch. That may lag (a leader just
    /// elected, a follower fetched from), so one at or below what is held is only a reason to ask the leader:
    /// the partition is refused only on its answer, and read unchecked, with a warning, without one.
    /// </summary>
    private void CheckFetchedEnd(PartitionState state, Dictionary<string, long> held)
    {
        if (EndOf(state.TopicPartition) is not { } fetched)
        {
            state.EndChecked = true;
            StreamingLog.KafkaEndUnknown(_logger, Name, state.Name);
            return;
        }

        if (fetched > held.GetValueOrDefault(state.Name, -1))
        {
            state.EndChecked = true;
            return;
        }

        if (QueryEnds([state.TopicPartition]).TryGetValue(state.TopicPartition, out var end))
        {
            if (StartedOver(state, held, end) is { } through)
            {
                Refuse([(state, end, through)]);
            }
        }
        else if (!_stopping)
        {
            state.EndChecked = true;
            StreamingLog.KafkaEndUnknown(_logger, Name, state.Name);
        }
    }

    /// <summary>Checks the partitions <paramref name="held"/> names against their ends, asked of their leaders in one request each.</summary>
    private void CheckEnds(List<PartitionState> states, Dictionary<string, long> held)
    {
        states.RemoveAll(s => held.GetValueOrDefault(s.Name, -1) < 0); // nothing held: nothing to take for a replay
        if (states.Count == 0 || _stopping)
        {
            return;
        }

        var ends = QueryEnds(states.Select(s => s.TopicPartition));
        if (_stopping)
        {
            return; // refused meanwhile (a first record's check), or closing: its request went unanswered
        }

        List<(PartitionState State, long End, long Through)>? startedOver = null;
        foreach (var state in states)
        {
            if (ends.TryGetValue(state.TopicPartition, out var end))
            {
                if (StartedOver(state, held, end) is { } through)
                {
                    (startedOver ??= []).Add((state, end, through));
                }
            }
            else if (Volatile.Read(ref state.FirstReceived) >= 0)
            {
                // Fetched under this assignment already. Before that, librdkafka's watermark is the one of an
                // earlier assignment of the partition, which the group may have read far past since: its first
                // record is checked instead.
                CheckFetchedEnd(state, held);
            }
        }

        if (startedOver is not null)
        {
            Refuse(startedOver);
        }
    }

    /// <summary>
    /// The offset the reader's tables hold <paramref name="state"/>'s partition through when that is at or
    /// past <paramref name="end"/>, its high watermark, or null. A retained topic's high watermark never
    /// falls below a record it held (retention deletes from the start only), so such a partition's offsets
    /// started over, and the reader would take its records up to the offset held for replays: they would
    /// reach its online store and not its lake.
    /// </summary>
    private static long? StartedOver(PartitionState state, Dictionary<string, long> held, long end)
    {
        state.EndChecked = true;
        var through = held.GetValueOrDefault(state.Name, -1);
        return through >= end ? through : null;
    }

    /// <summary>Stops the source for partitions whose offsets started over, naming each in one error.</summary>
    private void Refuse(List<(PartitionState State, long End, long Through)> startedOver)
    {
        lock (_deliveryGate)
        {
            foreach (var (state, _, _) in startedOver)
            {
                state.Revoked = true; // none of its records is delivered, even one already in the channel
            }
        }

        var message = new StringBuilder().Append(CultureInfo.InvariantCulture,
            $"Kafka source {Name} (group {_options.GroupId}) refused {startedOver.Count} partition{(startedOver.Count == 1 ? "" : "s")} whose offsets started over: ");
        for (int i = 0; i < startedOver.Count; i++)
        {
            var (state, end, through) = startedOver[i];
            message.Append(CultureInfo.InvariantCulture,
                $"{(i == 0 ? "" : "; ")}{state.Name} ends at offset {end} (its high watermark), but the stream's tables hold its records through offset {through}");
            StreamingLog.KafkaOffsetsStartedOver(_logger, Name, state.Name, end, through);
        }

        message.Append(". The topic was deleted and created again, or this is another cluster's topic of that name: its records are not the ones stored, " +
            "and up to those offsets they would be taken for replays of them. None of their records was read. Give the new topic another name, or read it into a new lake.");
        var refused = new KafkaSourceException(message.ToString(), OffsetsStartedOverCode, isTransient: false);
        if (Interlocked.CompareExchange(ref _fault, refused, null) is null)
        {
            _refused = true;
        }

        _stopping = true;
    }

    /// <summary>The <see cref="KafkaSourceException.ErrorCode"/> of a partition refused because its offsets started over.</summary>
    internal const string OffsetsStartedOverCode = "OffsetsStartedOver";

    private static readonly TimeSpan EndQueryTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Timestamp -1 in a ListOffsets request: the partition's latest offset, its high watermark; under
    /// <c>isolation.level=read_committed</c> (librdkafka's default) its last stable offset, which is past
    /// every record a reader of that isolation was given.
    /// </summary>
    private static readonly Timestamp Latest = new(-1, TimestampType.NotAvailable);

    /// <summary>The partitions' high watermarks, asked of their leaders (one request per broker); a partition whose leader did not answer is left out.</summary>
    private Dictionary<TopicPartition, long> QueryEnds(IEnumerable<TopicPartition> partitions)
    {
        List<TopicPartitionOffset> results;
        try
        {
            lock (_queryGate)
            {
                results = _queriesClosed ? [] : _consumer.OffsetsForTimes(partitions.Select(p => new TopicPartitionTimestamp(p, Latest)), EndQueryTimeout);
            }
        }
        catch (TopicPartitionOffsetException e)
        {
            results = [.. e.Results.Where(r => !r.Error.IsError).Select(r => r.TopicPartitionOffset)];
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            results = [];
        }

        var ends = new Dictionary<TopicPartition, long>();
        foreach (var result in results)
        {
            if (result.Offset.Value >= 0)
            {
                ends[result.TopicPartition] = result.Offset.Value;
            }
        }

        return ends;
    }

    /// <summary>A partition's high watermark as librdkafka last heard it (with each fetch; no request is made), or null before any.</summary>
    private long? EndOf(TopicPartition partition)
    {
        try
        {
            Offset high;
            lock (_queryGate)
            {
                if (_queriesClosed)
                {
                    return null;
                }

                high = _consumer.GetWatermarkOffsets(partition).High;
            }

            return high != Offset.Unset && high.Value >= 0 ? high.Value : null;
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>Runs the reader's rebalance handler and waits for it, up to <see cref="KafkaSourceOptions.RebalanceTimeout"/>.</summary>
    private void CallRebalanceHandler(bool revoking)
    {
        if (_rebalanceHandler is not { } handler || _stopping)
        {
            return;
        }

        var action = revoking ? "revoke" : "assign";
        try
        {
            // The handler is the reader's async code: run it off this thread, so that a continuation it
            // awaits can never need this one. This thread must block: librdkafka goes on with the
            // rebalance when the callback returns, and it is a dedicated thread, not the pool's.
#pragma warning disable VSTHRD002
            if (!Task.Run(() => handler(revoking)).Wait(_options.RebalanceTimeout))
#pragma warning restore VSTHRD002
            {
                StreamingLog.KafkaRebalanceHandlerTimedOut(_logger, Name, action, _options.RebalanceTimeout.TotalSeconds);
            }
        }
        catch (AggregateException e)
        {
            StreamingLog.KafkaRebalanceHandlerFailed(_logger, Name, action, e.InnerExceptions.Count == 1 ? e.InnerExceptions[0] : e);
        }
    }

    private void PublishOwned()
    {
        var owned = new Dictionary<string, PartitionState>(_assigned.Count, StringComparer.Ordinal);
        foreach (var state in _assigned.Values)
        {
            owned[state.Name] = state;
        }

        _owned = owned;
        if (owned.Count > 0)
        {
            _everAssigned = true;
        }
    }

    /// <inheritdoc />
    public string? NotReadingReason()
    {
        if (_everAssigned)
        {
            return null;
        }

        string? error = _lastError;
        return $"no partition of {string.Join(", ", _options.Topics)} has been assigned to consumer group '{_options.GroupId}' by {_options.BootstrapServers}" +
            (error is null ? " (no broker error reported: is the topic there?)" : $"; the last error: {error}");
    }

    /// <inheritdoc />
    /// <remarks>
    /// Per assigned partition: its high watermark as librdkafka last heard it from the broker (with each
    /// fetch response; no request is made) minus the offset after the last record delivered, or, before
    /// any, the first one received. A partition with neither yet, or whose watermark is not known yet,
    /// is left out.
    /// </remarks>
    public IReadOnlyDictionary<string, long> Backlog()
    {
        var backlog = new Dictionary<string, long>(StringComparer.Ordinal);
        if (Volatile.Read(ref _disposed) != 0)
        {
            return backlog;
        }

        foreach (var state in _owned.Values)
        {
            long next = Volatile.Read(ref state.Delivered);
            next = next >= 0 ? next : Volatile.Read(ref state.FirstReceived);
            if (next < 0)
            {
                continue;
            }

            try
            {
                var high = _consumer.GetWatermarkOffsets(state.TopicPartition).High;
                if (high != Offset.Unset && high.Value >= 0)
                {
                    backlog[state.Name] = Math.Max(0, high.Value - next);
                }
            }
            catch (Exception e) when (e is KafkaException or ObjectDisposedException)
            {
                // Closing, or the partition is gone: nothing to say of it.
            }
        }

        return backlog;
    }

    private void OnError(Error error)
    {
        if (error.IsFatal)
        {
            Fault(error, null);
            _stopping = true;
        }
        else
        {
            _lastError = $"{error.Code}: {error.Reason}";
            StreamingLog.KafkaError(_logger, Name, error.Code.ToString(), error.Reason);
        }
    }

    private void OnLog(LogMessage message)
    {
        var level = message.Level switch
        {
            SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical => LogLevel.Critical,
            SyslogLevel.Error => LogLevel.Error,
            SyslogLevel.Warning => LogLevel.Warning,
            SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        if (_logger.IsEnabled(level))
        {
            StreamingLog.KafkaLibraryLog(_logger, level, message.Name, message.Facility, message.Message);
        }
    }

    private void Fault(Error error, Exception? inner)
    {
        StreamingLog.KafkaFatalError(_logger, Name, error.Code.ToString(), error.Reason);
        _fault ??= new KafkaSourceException(
            $"Kafka source {Name} (group {_options.GroupId}) stopped on a fatal librdkafka error {error.Code}: {error.Reason}. " +
            "Reopen the source; records after the last commit are delivered again.",
            error.Code.ToString(),
            isTransient: false,
            inner);
    }

    /// <summary>
    /// Unsubscribes and serves the rebalances that follow with the ordinary poll until nothing is
    /// assigned (at most half of <see cref="KafkaSourceOptions.CloseTimeout"/>, leaving the close the
    /// rest), so that <c>Close</c> finds no rebalance to run.
    /// librdkafka can block for ever in a rebalance handler's assign or unassign run inside
    /// <c>rd_kafka_consumer_close</c> while the group terminates, when a rebalance was still pending
    /// (librdkafka issue 4884, open; a CI run of ours hung there); leaving first is the known way round.
    /// </summary>
    private void LeaveGroup()
    {
        _consumer.Unsubscribe();
        var deadline = Environment.TickCount64 + (long)(_options.CloseTimeout.TotalMilliseconds / 2);
        while (_consumer.Assignment.Count > 0 && Environment.TickCount64 < deadline)
        {
            // Serves the revoke (and an assignment still pending before it). A message returned here is
            // dropped: not delivered, so not committed, and read again by the partition's next owner.
            _ = TryConsume(LeavePoll);
        }
    }

    private static readonly TimeSpan LeavePoll = TimeSpan.FromMilliseconds(50);

    private void Close()
    {
        lock (_queryGate)
        {
            _queriesClosed = true; // after a query in flight on the reader's thread: the handle outlives it
        }

        _wake.Close(); // a wake uses the consumer's handle
        try
        {
            if (_fault is null || _refused)
            {
                LeaveGroup();
            }
        }
        catch (Exception e) when (e is KafkaException or InvalidOperationException)
        {
            StreamingLog.KafkaCloseFailed(_logger, Name, e);
        }

        _fetched.Dispose(); // before the consumer is destroyed: librdkafka's destroy waits for every queue of the application's
        try
        {
            if (_fault is null || _refused)
            {
                _consumer.Close(); // the group was left above; if that timed out, this leaves it, so its partitions move on at once
            }
        }
        catch (Exception e) when (e is KafkaException or InvalidOperationException)
        {
            StreamingLog.KafkaCloseFailed(_logger, Name, e);
        }
        finally
        {
            lock (_deliveryGate)
            {
                foreach (var state in _assigned.Values)
                {
                    state.Revoked = true;
                }
            }

            _assigned.Clear();
            _owned = new Dictionary<string, PartitionState>(StringComparer.Ordinal);
            try
            {
                _consumer.Dispose();
            }
            catch (Exception e) when (e is KafkaException or InvalidOperationException)
            {
                StreamingLog.KafkaCloseFailed(_logger, Name, e);
            }

            _channel.Writer.TryComplete(_fault);
            StreamingLog.KafkaSourceClosed(_logger, Name);
            _stopped.TrySetResult();
        }
    }

    // ---- reader side -------------------------------------------------------------------------

    private List<SourceRecord>? Drain(int maxRecords)
    {
        List<SourceRecord>? batch = null;
        var taken = 0;
        var stale = 0;
        lock (_deliveryGate)
        {
            while (batch is null || batch.Count < maxRecords)
            {
                if (_reading is null)
                {
                    if (!_channel.Reader.TryRead(out var next))
                    {
                        break;
                    }

                    (_reading, _readIndex) = (next, 0);
                }

                var items = _reading.Items;
                var count = _reading.Count;
                while (_readIndex < count && (batch is null || batch.Count < maxRecords))
                {
                    ref readonly var item = ref items[_readIndex++];
                    taken++;
                    if (item.State.Revoked)
                    {
                        stale++;
                        continue;
                    }

                    batch ??= new List<SourceRecord>(Math.Min(maxRecords, Math.Max(1, Volatile.Read(ref _buffered))));
                    batch.Add(item.Record);
                    Volatile.Write(ref item.State.Delivered, item.Record.Offset + 1);
                }

                if (_readIndex == count)
                {
                    ArrayPool<Buffered>.Shared.Return(items, clearArray: true);
                    _reading = null;
                }
            }
        }

        Interlocked.Add(ref _buffered, -taken);
        if (_waitingForRoom)
        {
            _room.Set();
        }

        if (stale > 0)
        {
            StreamingLog.KafkaStaleRecordsDropped(_logger, Name, stale);
        }

        return batch;
    }

    private void CommitBlocking(List<TopicPartitionOffset> offsets)
    {
        try
        {
            _consumer.Commit(offsets);
            _whyLastCommitNotMade = null;
        }
        catch (TopicPartitionOffsetException e)
        {
            var failed = e.Results.FirstOrDefault(r => r.Error.IsError)?.Error ?? e.Error;
            ThrowCommitFailure(failed, e);
        }
        catch (KafkaException e)
        {
            ThrowCommitFailure(e.Error, e);
        }
    }

    /// <summary>Commits not made because the group rebalanced or its coordinator could not be reached (each covered by the next commit that is made).</summary>
    public long CommitsNotMade => Interlocked.Read(ref _commitsNotMade);

    /// <inheritdoc/>
    public string? WhyLastCommitNotMade => _whyLastCommitNotMade;

    private void NotMade(string why)
    {
        Interlocked.Increment(ref _commitsNotMade);
        _whyLastCommitNotMade = why;
    }

    private void ThrowCommitFailure(Error error, Exception inner)
    {
        if (error.Code is ErrorCode.RebalanceInProgress or ErrorCode.IllegalGeneration or ErrorCode.UnknownMemberId or ErrorCode.Local_State)
        {
            StreamingLog.KafkaCommitRebalancing(_logger, Name, error.Code.ToString());
            NotMade($"the group was rebalancing: {error.Code}");
            return;
        }

        if (error.Code is ErrorCode.Local_WaitCoord or ErrorCode.NotCoordinatorForGroup or ErrorCode.GroupCoordinatorNotAvailable or ErrorCode.GroupLoadInProgress
            or ErrorCode.RequestTimedOut or ErrorCode.NetworkException or ErrorCode.Local_TimedOut or ErrorCode.Local_Transport or ErrorCode.Local_AllBrokersDown)
        {
            // A coordinator moving or a broker down (librdkafka finds the new one by itself): a commit is a
            // position, so the next one covers these offsets too; stopping the stream for it lost the
            // process and replayed everything since the last commit anyway.
            StreamingLog.KafkaCommitCoordinatorUnavailable(_logger, Name, error.Code.ToString(), error.Reason);
            NotMade($"the group's coordinator was not reachable: {error.Code}");
            return;
        }

        var permanent = error.IsFatal || error.Code is ErrorCode.GroupAuthorizationFailed or ErrorCode.TopicAuthorizationFailed
            or ErrorCode.Local_InvalidArg or ErrorCode.OffsetMetadataTooLarge or ErrorCode.InvalidCommitOffsetSize;
        throw new KafkaSourceException(
            $"Kafka source {Name}: commit failed with {error.Code}: {error.Reason}.", error.Code.ToString(), isTransient: !permanent, inner);
    }

    private void ThrowIfUnusable()
    {
        if (_fault is { } fault)
        {
            throw new KafkaSourceException(fault.Message, fault.ErrorCode, fault.IsTransient, fault);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
    }

    /// <summary>One assignment of one partition to this consumer; revoked when the partition leaves it.</summary>
    private sealed class PartitionState(string name, TopicPartition topicPartition)
    {
        public string Name { get; } = name;

        public TopicPartition TopicPartition { get; } = topicPartition;

        /// <summary>Set on the poll thread under the delivery lock; read by the reader under that lock (and by the poll thread).</summary>
        public bool Revoked { get; set; }

        /// <summary>The offset of the first record the poll thread received for this assignment, or -1. Written by the poll thread.</summary>
        public long FirstReceived = -1;

        /// <summary>The offset after the last record handed to the reader, or -1. Written by the reader under the delivery lock.</summary>
        public long Delivered = -1;

        /// <summary>Whether its end was compared with what the reader's tables hold (<see cref="SetHeldOffsets"/>).</summary>
        public volatile bool EndChecked;
    }

    private readonly record struct Buffered(SourceRecord Record, PartitionState State);

    /// <summary>Records handed over together; the array is pooled and returned once the reader has taken them all.</summary>
    private sealed class Chunk(Buffered[] items)
    {
        public Buffered[] Items { get; } = items;

        public int Count { get; set; }
    }
}
