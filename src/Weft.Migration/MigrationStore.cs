using System.Globalization;
using Microsoft.Data.Sqlite;
using Weft.Definitions;

namespace Weft.Migration;

/// <summary>A stored piece of evidence: a shadow check, a two-tier comparison, an A/B test or an online outcome test (with its consumer), with its verdict.</summary>
/// <param name="Summary">One line a person reads.</param>
/// <param name="Details">The whole result as JSON.</param>
/// <param name="Fingerprint">The signal definition's fingerprint the evidence was gathered under (null in ledgers older than the column).</param>
/// <param name="Percent">The split an online outcome test measured (null for other evidence, and in ledgers older than the column).</param>
public sealed record MigrationEvidence(long Id, string Kind, DateTimeOffset At, bool Passed, string Summary, string Details, string? Consumer = null, string? Fingerprint = null, double? Percent = null);

/// <summary>Evidence to store: its kind, verdict, one-line summary and JSON details, the definition fingerprint it was gathered under, and the split an outcome test measured.</summary>
public sealed record EvidenceInput(string Kind, bool Passed, string Summary, string Details, string? Consumer = null, string? Fingerprint = null, double? Percent = null);

/// <summary>The share of users (0–100) for whom one consumer reads an event type from Weft.</summary>
public sealed record MigrationRoute(string Consumer, double Percent, DateTimeOffset Since);

/// <summary>
/// One event type's migration: its stage and since when, its routes, the latest evidence of each kind,
/// and per consumer the online outcome test that holds its route: the latest, unless an earlier one
/// did not pass and no later test of that split or a larger one has passed since (by consumer).
/// </summary>
public sealed record MigrationStatus(
    string Signal,
    string EventType,
    MigrationStage Stage,
    DateTimeOffset? Since,
    IReadOnlyList<MigrationRoute> Routes,
    MigrationEvidence? Shadow,
    MigrationEvidence? Comparison,
    MigrationEvidence? AbTest,
    IReadOnlyList<MigrationEvidence> Outcomes)
{
    /// <summary>The latest comparison that failed (null when none did): an A/B test older than it tested sequences found wrong since.</summary>
    public long? LastFailedComparisonId { get; init; }
}

/// <summary>One line of the audit log: who did what to which event type, from which stage to which, on what evidence or override.</summary>
public sealed record AuditEntry(
    long Seq,
    DateTimeOffset At,
    string Signal,
    string EventType,
    string Action,
    MigrationStage From,
    MigrationStage To,
    string? Consumer,
    double? Percent,
    long? EvidenceId,
    string? Reason,
    bool Overridden,
    string Actor);

/// <summary>One user served during a split: which consumer, which event type at which route percent, and which side served them.</summary>
public sealed record Exposure(string Signal, string EventType, string Consumer, double Percent, long UserId, bool ServedByWeft, DateTimeOffset At);

/// <summary>A transition the store made: the audit line it wrote and the status after it.</summary>
public sealed record MigrationTransition(AuditEntry Entry, MigrationStatus Status);

/// <summary>A transition refused: its gate does not hold (the message says which and what would make it hold).</summary>
public sealed class MigrationGateException(string message) : Exception(message);

/// <summary>
/// The migration ledger of one deployment, in one SQLite file: per (signal, event type) the stage,
/// the routes per consumer, the evidence, and an append-only audit log of every transition. Each
/// transition reads, checks its gate and writes in one immediate transaction, so two operators (or
/// processes) racing on the same event type are serialized and neither acts on a stale stage.
/// Thread-safe: calls on one store are serialized.
/// </summary>
public sealed class MigrationStore : IAsyncDisposable
{
    /// <summary>Evidence kinds.</summary>
    public const string ShadowKind = "shadow";
    public const string ComparisonKind = "comparison";
    public const string AbTestKind = "abtest";
    public const string OutcomeKind = "outcome";

    private readonly SqliteConnection _connection;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, string> _definitions = new(StringComparer.Ordinal);

    // One connection serves every caller (a serving process shares one store); SQLite connections are not thread-safe.
    private readonly SemaphoreSlim _gate = new(1, 1);

    // The evidence columns read, in ReadEvidence's order; a ledger opened for reading that is older than a column reads null for it.
    private readonly string _evidenceColumns;

    private MigrationStore(SqliteConnection connection, TimeProvider time, string path, string evidenceColumns = AllEvidenceColumns)
    {
        _connection = connection;
        _time = time;
        Path = path;
        _evidenceColumns = evidenceColumns;
    }

    private const string AllEvidenceColumns = "id, kind, at_us, passed, summary, details, consumer, fingerprint, percent";

    public string Path { get; }

    /// <summary>False for the empty ledger <see cref="OpenForReadingAsync"/> stands in for a file that does not exist.</summary>
    public bool Exists { get; private init; } = true;

    /// <summary>
    /// Names the definition <paramref name="signal"/> runs now: from then on, a comparison or A/B test
    /// gathered under another fingerprint of it holds no gate (it tested different sequences).
    /// </summary>
    public void UseDefinition(string signal, string fingerprint)
    {
        ArgumentException.ThrowIfNullOrEmpty(signal);
        ArgumentException.ThrowIfNullOrEmpty(fingerprint);
        _definitions[signal] = fingerprint;
    }

    /// <summary>Tests widen the window between a transition's read and its write with this, to race two stores.</summary>
    internal Func<Task>? AfterReadForTesting { get; set; }

    /// <summary>
    /// The ledger at <paramref name="path"/> when the file exists; otherwise an empty one in memory, so a
    /// command that only reads never creates the file (a server that finds a ledger starts routing by it).
    /// </summary>
    public static async Task<MigrationStore> OpenForReadingAsync(string path, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path))
        {
            // Reading creates and alters nothing: a ledger missing a table was damaged, and a recreated empty one would hide it.
            return await OpenAsync(path, time, cancellationToken, inMemory: false, readOnly: true).ConfigureAwait(false);
        }

        var empty = await OpenAsync(path, time, cancellationToken, inMemory: true).ConfigureAwait(false);
        return new MigrationStore(empty._connection, empty._time, path) { Exists = false };
    }

    /// <summary>
    /// The ledger at <paramref name="path"/>, which must exist: every step but the first (shadow) acts
    /// on a migration already recorded, and one that recreated a lost ledger would act on a blank one.
    /// </summary>
    public static Task<MigrationStore> OpenExistingAsync(string path, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The migration ledger '{path}' does not exist: a migration starts with `weft migrate shadow`, which creates it. If it was moved, put it back (\"migration_store\" in weft.json).", path);
        }

        return OpenAsync(path, time, cancellationToken, inMemory: false, mustHaveTables: true);
    }

    /// <summary>Opens the ledger at <paramref name="path"/>, creating the file and its tables when absent.</summary>
    public static Task<MigrationStore> OpenAsync(string path, TimeProvider? time = null, CancellationToken cancellationToken = default) =>
        OpenAsync(path, time, cancellationToken, inMemory: false);

    /// <param name="readOnly">Create, alter and convert nothing (no journal mode either); the tables must exist.</param>
    /// <param name="mustHaveTables">The ledger's tables must exist before any is created: a step on an existing migration does not recreate a lost table.</param>
    private static async Task<MigrationStore> OpenAsync(string path, TimeProvider? time, CancellationToken cancellationToken, bool inMemory, bool readOnly = false, bool mustHaveTables = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new IOException($"The migration store '{path}' is a folder; it must be a SQLite file (\"migration_store\" in weft.json).");
        }

        if (!inMemory && System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
        }

        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = inMemory ? ":memory:" : path, DefaultTimeout = 30, Pooling = false, Mode = readOnly ? SqliteOpenMode.ReadWrite : SqliteOpenMode.ReadWriteCreate,
        }.ToString());
        string evidenceColumns = AllEvidenceColumns;
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            if (readOnly || mustHaveTables)
            {
                evidenceColumns = await CheckTablesAsync(connection, path, cancellationToken).ConfigureAwait(false);
            }

            if (readOnly)
            {
                await ExecuteAsync(connection, null, "PRAGMA busy_timeout = 30000", cancellationToken).ConfigureAwait(false);
                return new MigrationStore(connection, time ?? TimeProvider.System, path, evidenceColumns);
            }

            await ExecuteAsync(connection, null, """
                PRAGMA journal_mode = WAL;
                PRAGMA busy_timeout = 30000;
                CREATE TABLE IF NOT EXISTS stages (
                    signal TEXT NOT NULL, event_type TEXT NOT NULL, stage TEXT NOT NULL, since_us INTEGER NOT NULL,
                    PRIMARY KEY (signal, event_type));
                CREATE TABLE IF NOT EXISTS routes (
                    signal TEXT NOT NULL, event_type TEXT NOT NULL, consumer TEXT NOT NULL, percent REAL NOT NULL, since_us INTEGER NOT NULL,
                    PRIMARY KEY (signal, event_type, consumer));
                CREATE TABLE IF NOT EXISTS evidence (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, signal TEXT NOT NULL, event_type TEXT NOT NULL, kind TEXT NOT NULL,
                    at_us INTEGER NOT NULL, passed INTEGER NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL, consumer TEXT);
                CREATE TABLE IF NOT EXISTS audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_us INTEGER NOT NULL, signal TEXT NOT NULL, event_type TEXT NOT NULL,
                    action TEXT NOT NULL, from_stage TEXT NOT NULL, to_stage TEXT NOT NULL, consumer TEXT, percent REAL,
                    evidence_id INTEGER REFERENCES evidence (id), reason TEXT, overridden INTEGER NOT NULL, actor TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS exposures (
                    signal TEXT NOT NULL, event_type TEXT NOT NULL, consumer TEXT NOT NULL, percent REAL NOT NULL, user_id INTEGER NOT NULL,
                    weft INTEGER NOT NULL, first_us INTEGER NOT NULL,
                    PRIMARY KEY (signal, event_type, consumer, percent, user_id));
                """, cancellationToken).ConfigureAwait(false);
            await AddEvidenceColumnAsync(connection, "consumer", "TEXT", cancellationToken).ConfigureAwait(false);
            await AddEvidenceColumnAsync(connection, "fingerprint", "TEXT", cancellationToken).ConfigureAwait(false);
            await AddEvidenceColumnAsync(connection, "percent", "REAL", cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"The migration store '{path}' cannot be opened: {ex.Message}", ex);
        }
        catch (IOException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new MigrationStore(connection, time ?? TimeProvider.System, path);
    }

    /// <summary>
    /// The ledger's tables exist (Weft never drops one; exposures came later and is needed only by the
    /// sample-ratio check); the evidence columns to read, null in place of one an older ledger lacks.
    /// </summary>
    private static async Task<string> CheckTablesAsync(SqliteConnection connection, string path, CancellationToken cancellationToken)
    {
        var tables = new HashSet<string>(StringComparer.Ordinal);
        using (var command = Command(connection, null, "SELECT name FROM sqlite_master WHERE type = 'table'"))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                tables.Add(reader.GetString(0));
            }
        }

        foreach (var table in (string[])["stages", "routes", "evidence", "audit"])
        {
            if (!tables.Contains(table))
            {
                throw new IOException($"The migration ledger '{path}' has no table '{table}', which Weft never drops: it was edited by hand or damaged. Restore it from a copy; Weft does not recreate it empty, as that would lose what it held.");
            }
        }

        var columns = new HashSet<string>(StringComparer.Ordinal);
        using (var command = Command(connection, null, "SELECT name FROM pragma_table_info('evidence')"))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                columns.Add(reader.GetString(0));
            }
        }

        return string.Join(", ", AllEvidenceColumns.Split(", ").Select(c => columns.Contains(c) ? c : $"NULL AS {c}"));
    }

    /// <summary>A ledger written before online outcome tests (consumer), definition fingerprints (fingerprint) or outcome splits (percent) lacks that evidence column: add it (null for every older row).</summary>
    private static async Task AddEvidenceColumnAsync(SqliteConnection connection, string column, string type, CancellationToken cancellationToken)
    {
        using (var info = Command(connection, null, "SELECT count(*) FROM pragma_table_info('evidence') WHERE name = $column", ("$column", column)))
        {
            if ((long)(await info.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! > 0)
            {
                return;
            }
        }

        await ExecuteAsync(connection, null, $"ALTER TABLE evidence ADD COLUMN {column} {type}", cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    /// <summary>The event type's status; <see cref="MigrationStage.NotStarted"/> with nothing recorded when it has never been touched.</summary>
    public Task<MigrationStatus> StatusAsync(string signal, string eventType, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            using var transaction = _connection.BeginTransaction(deferred: true);
            return await ReadStatusAsync(transaction, signal, eventType, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>
    /// The statuses of <paramref name="eventTypes"/> and the version of the signal's assembly (which
    /// side serves each event type to whom), read in one transaction. The version is the audit line of
    /// the signal's latest route change (a cutover, a rollback, a deprecation), 0 before any: servers
    /// reading one ledger report the same version for the same routes, and it only grows.
    /// </summary>
    public Task<(IReadOnlyDictionary<string, MigrationStatus> Statuses, long AssemblyVersion)> AssemblyAsync(string signal, IReadOnlyList<string> eventTypes, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            ArgumentNullException.ThrowIfNull(eventTypes);
            using var transaction = _connection.BeginTransaction(deferred: true);
            var statuses = new Dictionary<string, MigrationStatus>(StringComparer.Ordinal);
            foreach (var type in eventTypes)
            {
                statuses[type] = await ReadStatusAsync(transaction, signal, type, cancellationToken).ConfigureAwait(false);
            }

            using var command = Command(transaction,
                "SELECT coalesce(max(seq), 0) FROM audit WHERE signal = $signal AND action IN ('cutover', 'rollback', 'deprecate')",
                ("$signal", signal));
            long version = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            return ((IReadOnlyDictionary<string, MigrationStatus>)statuses, version);
        }, cancellationToken);

    /// <summary>The event types of <paramref name="signal"/> the ledger holds anything for.</summary>
    public Task<IReadOnlyList<string>> EventTypesAsync(string signal, CancellationToken cancellationToken = default) =>
        LockedAsync(() => ReadEventTypesAsync(signal, cancellationToken), cancellationToken);

    private async Task<IReadOnlyList<string>> ReadEventTypesAsync(string signal, CancellationToken cancellationToken)
    {
        var types = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var table in (string[])["stages", "evidence", "audit"])
        {
            using var command = Command(null, $"SELECT DISTINCT event_type FROM {table} WHERE signal = $signal", ("$signal", signal));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                types.Add(reader.GetString(0));
            }
        }

        return [.. types];
    }

    /// <summary>
    /// not-started → shadow: Weft runs the event type in parallel with legacy. Gate: the shadow
    /// evidence (both sides hold events of the type) passed, or an override reason.
    /// </summary>
    public Task<MigrationTransition> ShadowAsync(string signal, string eventType, EvidenceInput evidence, string? overrideReason, string actor, CancellationToken cancellationToken = default) =>
        TransitionAsync(signal, eventType, "shadow", actor, overrideReason, cancellationToken, (status, now) =>
        {
            if (status.Stage != MigrationStage.NotStarted)
            {
                throw new MigrationGateException($"'{eventType}' is already in stage {MigrationStages.Name(status.Stage)}; shadow starts a migration that has not started.");
            }

            if (!evidence.Passed && overrideReason is null)
            {
                throw new MigrationGateException($"shadow of '{eventType}' refused: {evidence.Summary} (pass --override REASON to start anyway)");
            }

            return new Step(MigrationStage.Shadow, evidence, overrideReason, Overridden: !evidence.Passed);
        });

    /// <summary>
    /// Stores a two-tier comparison. Before any traffic moved (shadow, compared, ab-tested) the stage
    /// follows it: passed → compared (ab-tested while an A/B test still holds), failed → shadow. During and after a cutover
    /// the stage stays, but a failed comparison blocks raising any route until one passes again.
    /// </summary>
    public Task<MigrationTransition> RecordComparisonAsync(string signal, string eventType, EvidenceInput evidence, string actor, CancellationToken cancellationToken = default) =>
        TransitionAsync(signal, eventType, "compare", actor, cancellationToken, (status, now) =>
        {
            RequireLegacyRunning(status, "compare");
            if (status.Stage == MigrationStage.NotStarted)
            {
                throw new MigrationGateException($"'{eventType}' is not in shadow: run `weft migrate shadow` for it first.");
            }

            // Before traffic moved, the stage is derived (after the insert) from the evidence as the cutover
            // gate reads it: kept as ab-tested, an A/B test of an earlier definition named a step the gate refuses.
            MigrationStage? next = status.Stage is MigrationStage.Shadow or MigrationStage.Compared or MigrationStage.AbTested ? null : status.Stage;
            return new Step(next, evidence, null, false);
        });

    /// <summary>
    /// Stores an A/B (offline replay) test. Gate: the latest comparison passed. Before any traffic
    /// moved the stage follows it (passed → ab-tested, failed → compared).
    /// </summary>
    public Task<MigrationTransition> RecordAbTestAsync(string signal, string eventType, EvidenceInput evidence, string actor, CancellationToken cancellationToken = default) =>
        TransitionAsync(signal, eventType, "abtest", actor, cancellationToken, (status, now) =>
        {
            RequireLegacyRunning(status, "abtest");
            if (status.Stage is MigrationStage.NotStarted or MigrationStage.Shadow || !Holds(status, status.Comparison))
            {
                throw new MigrationGateException($"A/B test of '{eventType}' refused: {ComparisonState(status)}; an A/B test follows a passed comparison.");
            }

            var next = status.Stage is MigrationStage.Compared or MigrationStage.AbTested
                ? (evidence.Passed ? MigrationStage.AbTested : MigrationStage.Compared)
                : status.Stage;
            return new Step(next, evidence, null, false);
        });

    /// <summary>
    /// Sets the share of users for whom <paramref name="consumer"/> (or every consumer without a route
    /// of its own, <see cref="MigrationRouting.DefaultConsumer"/>) reads the event type from Weft.
    /// Raising a share is gated: the latest comparison and A/B test passed and the consumer's latest online
    /// outcome test (any consumer's, for the default route) did not fail, or an override reason.
    /// Lowering one never is. The stage becomes cut-over when every route is at 100 % (the default
    /// route included), cutting-over while any is above 0.
    /// </summary>
    public Task<MigrationTransition> CutoverAsync(string signal, string eventType, string consumer, double percent, string? overrideReason, string actor, CancellationToken cancellationToken = default)
    {
        percent = CheckPercent(percent);
        if (string.IsNullOrWhiteSpace(consumer))
        {
            throw new ArgumentException($"A route needs a consumer: a name, or {MigrationRouting.DefaultConsumer} for every consumer without a route of its own.", nameof(consumer));
        }

        return TransitionAsync(signal, eventType, "cutover", actor, overrideReason, cancellationToken, (status, now) =>
        {
            RequireLegacyRunning(status, "cutover");
            if (status.Stage == MigrationStage.NotStarted)
            {
                throw new MigrationGateException($"'{eventType}' is not in shadow: Weft must produce it before anyone reads it from Weft (`weft migrate shadow`).");
            }

            // What the consumer reads now: its own route, or the default one it follows without one.
            double current = RouteOf(status, consumer)?.Percent ?? 0;
            bool raising = percent > current;
            var problems = new List<string>();
            if (!Holds(status, status.Comparison) || !Holds(status, status.AbTest))
            {
                problems.Add($"{ComparisonState(status)}, and {AbTestState(status)}; both must pass before a route rises");
            }
            else if (!AbTestStands(status))
            {
                problems.Add($"its A/B test (#{status.AbTest!.Id}) predates a comparison that failed since (#{status.LastFailedComparisonId}); test again (`weft migrate abtest`)");
            }

            // A consumer whose model did worse on Weft's sequences online is not moved further onto them;
            // the default route serves every consumer without its own, so any failed outcome holds it.
            // And a failed test of the default route holds every consumer: it measured their users too.
            foreach (var outcome in status.Outcomes.Where(o => !o.Passed && (consumer == MigrationRouting.DefaultConsumer || o.Consumer == consumer || o.Consumer == MigrationRouting.DefaultConsumer)))
            {
                problems.Add($"the online outcome test of consumer '{outcome.Consumer}'{At(outcome.Percent)} (#{outcome.Id}) did not pass: {outcome.Summary} (a later test of that split or a larger one must pass: test again with `weft migrate outcome` once it is fixed, or roll back)");
            }

            if (raising && problems.Count > 0 && overrideReason is null)
            {
                throw new MigrationGateException($"cutover of '{eventType}' to {percent:0.##} % refused: {string.Join("; ", problems)} (pass --override REASON to cut over anyway).");
            }

            bool overridden = raising && problems.Count > 0;
            return new Step(null, null, Bypassing(overrideReason, overridden, problems), overridden, Route: (consumer, percent), ReliedOn: raising && !overridden ? status.AbTest!.Id : null);
        });
    }

    /// <summary>
    /// Stores an online outcome test of <paramref name="consumer"/>'s split (its own metric per arm,
    /// <see cref="OnlineOutcome"/>). The stage stays; a failed one blocks raising that consumer's route
    /// (and the default route) until one passes again. Gate: the event type is being cut over.
    /// </summary>
    public Task<MigrationTransition> RecordOutcomeAsync(string signal, string eventType, string consumer, EvidenceInput evidence, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(consumer);
        ArgumentNullException.ThrowIfNull(evidence);
        return TransitionAsync(signal, eventType, "outcome", actor, cancellationToken, (status, now) =>
        {
            RequireLegacyRunning(status, "test outcomes");
            if (status.Stage is not (MigrationStage.CuttingOver or MigrationStage.CutOver))
            {
                throw new MigrationGateException($"'{eventType}' is {MigrationStages.Name(status.Stage)}: no consumer reads it from Weft yet, so there is no online split to test (`weft migrate cutover`).");
            }

            return new Step(null, evidence with { Kind = OutcomeKind, Consumer = consumer }, null, false);
        });
    }

    /// <summary>
    /// Sends the event type back to legacy at once: <paramref name="consumer"/>'s route, or every
    /// route when null, to 0 %. Never gated (legacy kept running for this), but a reason is required.
    /// </summary>
    public Task<MigrationTransition> RollbackAsync(string signal, string eventType, string? consumer, string reason, string actor, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new ArgumentException("A rollback needs a reason (it goes in the audit log).", nameof(reason));
        }

        return TransitionAsync(signal, eventType, "rollback", actor, cancellationToken, (status, now) =>
        {
            if (status.Stage == MigrationStage.LegacyDeprecated)
            {
                throw new MigrationGateException($"'{eventType}' is legacy-deprecated: legacy no longer produces it, so there is nothing to roll back to.");
            }

            // One consumer following the default route is rolled back by a route of its own at 0 %.
            var routes = consumer is null
                ? status.Routes.Where(r => r.Percent > 0).Select(r => r.Consumer).ToList()
                : RouteOf(status, consumer) is { Percent: > 0 } ? [consumer] : [];
            if (routes.Count == 0)
            {
                throw new MigrationGateException(consumer is null
                    ? $"'{eventType}' has no route above 0 %: every consumer reads it from legacy already."
                    : $"consumer '{consumer}' reads '{eventType}' from legacy already (routes: {DescribeRoutes(status.Routes)}).");
            }

            return new Step(null, null, reason, false, RollbackRoutes: routes);
        });
    }

    /// <summary>
    /// cut-over → legacy-deprecated. Gate: cut over for at least <paramref name="minSoak"/> and the latest
    /// comparison passed, or an override reason. Never from another stage: a consumer still reading
    /// legacy would lose the event type.
    /// </summary>
    public Task<MigrationTransition> DeprecateAsync(string signal, string eventType, TimeSpan minSoak, string? overrideReason, string actor, CancellationToken cancellationToken = default) =>
        TransitionAsync(signal, eventType, "deprecate", actor, overrideReason, cancellationToken, (status, now) =>
        {
            if (status.Stage == MigrationStage.LegacyDeprecated)
            {
                throw new MigrationGateException($"'{eventType}' is legacy-deprecated already (since {status.Since:yyyy-MM-dd HH:mm} UTC).");
            }

            if (status.Stage != MigrationStage.CutOver)
            {
                throw new MigrationGateException($"'{eventType}' is {MigrationStages.Name(status.Stage)}, not cut-over: every route must be at 100 % before legacy stops producing it (routes: {DescribeRoutes(status.Routes)}).");
            }

            var soaked = now - status.Since!.Value;
            var problems = new List<string>();
            if (soaked < minSoak)
            {
                problems.Add($"cut over for {Describe(soaked)}, less than the soak of {Describe(minSoak)}");
            }

            if (!Holds(status, status.Comparison))
            {
                problems.Add(ComparisonState(status));
            }

            if (problems.Count > 0 && overrideReason is null)
            {
                throw new MigrationGateException($"deprecating legacy for '{eventType}' refused: {string.Join("; ", problems)} (pass --override REASON to deprecate anyway).");
            }

            bool overridden = problems.Count > 0;
            return new Step(MigrationStage.LegacyDeprecated, null, Bypassing(overrideReason, overridden, problems), overridden, ReliedOn: overridden ? null : status.Comparison!.Id);
        });

    /// <summary>The audit log of the signal (one event type, when given), oldest first.</summary>
    public Task<IReadOnlyList<AuditEntry>> AuditAsync(string signal, string? eventType = null, CancellationToken cancellationToken = default) =>
        LockedAsync(() => ReadAuditAsync(signal, eventType, cancellationToken), cancellationToken);

    private async Task<IReadOnlyList<AuditEntry>> ReadAuditAsync(string signal, string? eventType, CancellationToken cancellationToken)
    {
        var entries = new List<AuditEntry>();
        using var command = Command(null,
            "SELECT seq, at_us, signal, event_type, action, from_stage, to_stage, consumer, percent, evidence_id, reason, overridden, actor FROM audit "
            + "WHERE signal = $signal AND ($type IS NULL OR event_type = $type) ORDER BY seq",
            ("$signal", signal), ("$type", eventType));
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var row = new LedgerRow(reader, "audit", $"#{reader.GetValue(0)}");
            entries.Add(new AuditEntry(
                row.Integer(0, "seq"), row.Time(1, "at_us"), row.Text(2, "signal"), row.Text(3, "event_type"), row.Text(4, "action"),
                row.Stage(5, "from_stage"), row.Stage(6, "to_stage"),
                row.OptionalText(7, "consumer"), row.OptionalPercent(8, "percent"),
                row.OptionalInteger(9, "evidence_id"), row.OptionalText(10, "reason"),
                row.Flag(11, "overridden"), row.Text(12, "actor")));
        }

        return entries;
    }

    /// <summary>A stored piece of evidence by id (null when there is none).</summary>
    public Task<MigrationEvidence?> EvidenceAsync(long id, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            using var command = Command(null, $"SELECT {_evidenceColumns} FROM evidence WHERE id = $id", ("$id", id));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadEvidence(reader) : null;
        }, cancellationToken);

    /// <summary>
    /// Records that users were served during a split (one row per user and route percent: a user seen
    /// again adds nothing), for the sample-ratio check of the online A/B split.
    /// </summary>
    public Task RecordExposuresAsync(IReadOnlyCollection<Exposure> exposures, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            using var transaction = _connection.BeginTransaction(deferred: false);
            using var insert = Command(transaction,
                "INSERT OR IGNORE INTO exposures (signal, event_type, consumer, percent, user_id, weft, first_us) VALUES ($signal, $type, $consumer, $percent, $user, $weft, $at)",
                ("$signal", ""), ("$type", ""), ("$consumer", ""), ("$percent", 0.0), ("$user", 0L), ("$weft", 0), ("$at", 0L));
            foreach (var e in exposures)
            {
                insert.Parameters["$signal"].Value = e.Signal;
                insert.Parameters["$type"].Value = e.EventType;
                insert.Parameters["$consumer"].Value = e.Consumer;
                insert.Parameters["$percent"].Value = e.Percent;
                insert.Parameters["$user"].Value = e.UserId;
                insert.Parameters["$weft"].Value = e.ServedByWeft ? 1 : 0;
                insert.Parameters["$at"].Value = Timestamps.ToMicros(e.At);
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return exposures.Count;
        }, cancellationToken);

    /// <summary>
    /// Exposures of <paramref name="consumer"/> (a consumer's name as it asked), or for
    /// <see cref="MigrationRouting.DefaultConsumer"/> of every consumer without a route of its own (those
    /// the default route serves), at <paramref name="percent"/>.
    /// </summary>
    private const string ExposuresOf =
        "FROM exposures WHERE signal = $signal AND event_type = $type AND round(percent * 100) = round($percent * 100) AND (consumer = $consumer OR ($consumer = '"
        + MigrationRouting.DefaultConsumer + "' AND consumer NOT IN (SELECT consumer FROM routes WHERE signal = $signal AND event_type = $type)))";

    /// <summary>
    /// Distinct users exposed to <paramref name="consumer"/>'s split of the event type at <paramref name="percent"/>,
    /// by the side that served them; for <see cref="MigrationRouting.DefaultConsumer"/>, those of every
    /// consumer the default route serves.
    /// </summary>
    public Task<(long Weft, long Legacy)> ExposureCountsAsync(string signal, string eventType, string consumer, double percent, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            using var command = Command(null,
                "SELECT count(DISTINCT CASE WHEN weft = 1 THEN user_id END), count(DISTINCT CASE WHEN weft = 0 THEN user_id END) " + ExposuresOf,
                ("$signal", signal), ("$type", eventType), ("$consumer", consumer), ("$percent", percent));
            try
            {
                using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                return (reader.GetInt64(0), reader.GetInt64(1));
            }
            catch (SqliteException ex) when (NoExposuresTable(ex))
            {
                return (0L, 0L);
            }
        }, cancellationToken);

    /// <summary>The users exposed to <paramref name="consumer"/>'s split of the event type at <paramref name="percent"/>, by the side that served them (as <see cref="ExposureCountsAsync"/> counts them).</summary>
    public Task<(IReadOnlySet<long> Weft, IReadOnlySet<long> Legacy)> ExposedUsersAsync(string signal, string eventType, string consumer, double percent, CancellationToken cancellationToken = default) =>
        LockedAsync(async () =>
        {
            var weft = new HashSet<long>();
            var legacy = new HashSet<long>();
            using var command = Command(null,
                "SELECT DISTINCT user_id, weft " + ExposuresOf,
                ("$signal", signal), ("$type", eventType), ("$consumer", consumer), ("$percent", percent));
            try
            {
                using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    (reader.GetInt64(1) != 0 ? weft : legacy).Add(reader.GetInt64(0));
                }
            }
            catch (SqliteException ex) when (NoExposuresTable(ex))
            {
                // Nothing was exposed: an empty answer, as a ledger with the table and no rows gives.
            }

            return ((IReadOnlySet<long>)weft, (IReadOnlySet<long>)legacy);
        }, cancellationToken);

    /// <summary>
    /// A ledger written before exposures were logged has no table for them, and reading it creates none
    /// (a read creates nothing): no user was exposed.
    /// </summary>
    private static bool NoExposuresTable(SqliteException ex) => ex.Message.Contains("no such table: exposures", StringComparison.Ordinal);

    /// <summary>Whether <paramref name="consumer"/> reads <paramref name="eventType"/> from Weft for <paramref name="userId"/>.</summary>
    public static bool ServedByWeft(MigrationStatus status, string consumer, long userId)
    {
        ArgumentNullException.ThrowIfNull(status);
        if (status.Stage == MigrationStage.LegacyDeprecated)
        {
            return true;
        }

        return RouteOf(status, consumer) is { } route && MigrationRouting.ServedByWeft(route.Percent, status.Signal, status.EventType, userId);
    }

    /// <summary>The route <paramref name="consumer"/> follows: its own, else the default one; null when neither exists (legacy serves).</summary>
    public static MigrationRoute? RouteOf(MigrationStatus status, string consumer)
    {
        ArgumentNullException.ThrowIfNull(status);
        return status.Routes.FirstOrDefault(r => r.Consumer == consumer) ?? status.Routes.FirstOrDefault(r => r.Consumer == MigrationRouting.DefaultConsumer);
    }

    private sealed record Step(
        MigrationStage? Stage,
        EvidenceInput? Evidence,
        string? Reason,
        bool Overridden,
        (string Consumer, double Percent)? Route = null,
        IReadOnlyList<string>? RollbackRoutes = null,
        long? ReliedOn = null);

    /// <summary>The audit reason of a step: an override's reason names the gate problems it passed over.</summary>
    private static string? Bypassing(string? reason, bool overridden, List<string> problems) =>
        overridden ? $"{reason} [passed over: {string.Join("; ", problems)}]" : reason;

    /// <summary>Whether evidence holds a gate: it passed, under the definition the signal runs now (when <see cref="UseDefinition"/> named it).</summary>
    private bool Holds(MigrationStatus status, MigrationEvidence? evidence) => evidence is { Passed: true } && !IsStale(status, evidence);

    private bool IsStale(MigrationStatus status, MigrationEvidence evidence) =>
        evidence.Fingerprint is { } gathered && _definitions.TryGetValue(status.Signal, out var now) && now != gathered;

    private string Stale(MigrationStatus status, MigrationEvidence evidence) =>
        $"was gathered under definition {Short(evidence.Fingerprint!)}, but '{status.Signal}' runs {Short(_definitions[status.Signal])} now";

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;

    private Task<MigrationTransition> TransitionAsync(
        string signal, string eventType, string action, string actor, CancellationToken cancellationToken, Func<MigrationStatus, DateTimeOffset, Step> decide) =>
        TransitionAsync(signal, eventType, action, actor, null, cancellationToken, decide);

    private Task<MigrationTransition> TransitionAsync(
        string signal, string eventType, string action, string actor, string? overrideReason, CancellationToken cancellationToken, Func<MigrationStatus, DateTimeOffset, Step> decide)
    {
        ArgumentException.ThrowIfNullOrEmpty(signal);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        if (string.IsNullOrWhiteSpace(actor))
        {
            throw new ArgumentException("A transition needs an actor (who acts goes in the audit log).", nameof(actor));
        }

        if (overrideReason is not null && string.IsNullOrWhiteSpace(overrideReason))
        {
            // An override is read later from the audit log: one that says nothing explains nothing.
            throw new ArgumentException("An override needs a reason (it goes in the audit log).", nameof(overrideReason));
        }

        return LockedAsync(() => TransitionLockedAsync(signal, eventType, action, actor, cancellationToken, decide), cancellationToken);
    }

    private async Task<T> LockedAsync<T>(Func<Task<T>> body, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            // Locked past the busy timeout, or tables not as Weft writes them: the ledger, not the request.
            throw new IOException($"The migration ledger '{Path}' cannot be used: {ex.Message}", ex);
        }
        catch (FormatException ex)
        {
            throw new IOException($"The migration ledger '{Path}' holds {ex.Message}, which this version of Weft does not write: it was edited by hand or by another version", ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<MigrationTransition> TransitionLockedAsync(
        string signal, string eventType, string action, string actor, CancellationToken cancellationToken, Func<MigrationStatus, DateTimeOffset, Step> decide)
    {
        // BEGIN IMMEDIATE: the write lock is taken before the stage is read, so the gate is checked on what is current.
        using var transaction = _connection.BeginTransaction(deferred: false);
        var status = await ReadStatusAsync(transaction, signal, eventType, cancellationToken).ConfigureAwait(false);
        if (AfterReadForTesting is { } pause)
        {
            await pause().ConfigureAwait(false);
        }

        var now = _time.GetUtcNow();
        long nowMicros = Timestamps.ToMicros(now);
        var step = decide(status, now);

        long? evidenceId = step.ReliedOn;
        if (step.Evidence is { } e)
        {
            using var insert = Command(transaction,
                "INSERT INTO evidence (signal, event_type, kind, at_us, passed, summary, details, consumer, fingerprint, percent) VALUES ($signal, $type, $kind, $at, $passed, $summary, $details, $consumer, $fingerprint, $percent) RETURNING id",
                ("$signal", signal), ("$type", eventType), ("$kind", e.Kind), ("$at", nowMicros), ("$passed", e.Passed ? 1 : 0), ("$summary", e.Summary), ("$details", e.Details), ("$consumer", e.Consumer),
                ("$fingerprint", e.Fingerprint ?? _definitions.GetValueOrDefault(signal)), ("$percent", e.Percent));
            evidenceId = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        if (step.Route is var (consumer, percent))
        {
            await ExecuteAsync(_connection, transaction,
                "INSERT INTO routes (signal, event_type, consumer, percent, since_us) VALUES ($signal, $type, $consumer, $percent, $at) "
                + "ON CONFLICT (signal, event_type, consumer) DO UPDATE SET percent = excluded.percent, since_us = excluded.since_us",
                cancellationToken, ("$signal", signal), ("$type", eventType), ("$consumer", consumer), ("$percent", percent), ("$at", nowMicros)).ConfigureAwait(false);
        }

        foreach (var rolledBack in step.RollbackRoutes ?? [])
        {
            await ExecuteAsync(_connection, transaction,
                "INSERT INTO routes (signal, event_type, consumer, percent, since_us) VALUES ($signal, $type, $consumer, 0, $at) "
                + "ON CONFLICT (signal, event_type, consumer) DO UPDATE SET percent = 0, since_us = excluded.since_us",
                cancellationToken, ("$signal", signal), ("$type", eventType), ("$consumer", rolledBack), ("$at", nowMicros)).ConfigureAwait(false);
        }

        // Re-read so the stage a route change implies is computed from the routes as stored.
        var after = await ReadStatusAsync(transaction, signal, eventType, cancellationToken).ConfigureAwait(false);
        var stage = step.Stage ?? StageFromRoutes(after);
        if (stage != status.Stage)
        {
            await ExecuteAsync(_connection, transaction,
                "INSERT INTO stages (signal, event_type, stage, since_us) VALUES ($signal, $type, $stage, $at) "
                + "ON CONFLICT (signal, event_type) DO UPDATE SET stage = excluded.stage, since_us = excluded.since_us",
                cancellationToken, ("$signal", signal), ("$type", eventType), ("$stage", MigrationStages.Name(stage)), ("$at", nowMicros)).ConfigureAwait(false);
        }

        string? routeConsumer = step.Route?.Consumer ?? (step.RollbackRoutes is { Count: 1 } one ? one[0] : null);
        double? routePercent = step.Route?.Percent ?? (step.RollbackRoutes is not null ? 0 : null);
        using (var audit = Command(transaction,
            "INSERT INTO audit (at_us, signal, event_type, action, from_stage, to_stage, consumer, percent, evidence_id, reason, overridden, actor) "
            + "VALUES ($at, $signal, $type, $action, $from, $to, $consumer, $percent, $evidence, $reason, $overridden, $actor) RETURNING seq",
            ("$at", nowMicros), ("$signal", signal), ("$type", eventType), ("$action", action), ("$from", MigrationStages.Name(status.Stage)),
            ("$to", MigrationStages.Name(stage)), ("$consumer", routeConsumer), ("$percent", routePercent), ("$evidence", evidenceId),
            ("$reason", step.Reason), ("$overridden", step.Overridden ? 1 : 0), ("$actor", actor)))
        {
            long seq = (long)(await audit.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            var final = stage == status.Stage ? after : after with { Stage = stage, Since = Timestamps.FromMicros(nowMicros) };
            var entry = new AuditEntry(seq, Timestamps.FromMicros(nowMicros), signal, eventType, action, status.Stage, stage, routeConsumer, routePercent, evidenceId, step.Reason, step.Overridden, actor);
            return new MigrationTransition(entry, final);
        }
    }

    /// <summary>
    /// The stage routes imply: cut-over when every route (the default one included) is at 100 %,
    /// cutting-over while any is above 0, else what the evidence that holds says: as the cutover gate
    /// reads it (passed, gathered under the definition loaded, an A/B test no failed comparison followed),
    /// so that a stage never names a next step the gate refuses.
    /// </summary>
    private MigrationStage StageFromRoutes(MigrationStatus status)
    {
        if (status.Routes.Any(r => r.Percent > 0))
        {
            bool all = status.Routes.Any(r => r.Consumer == MigrationRouting.DefaultConsumer) && status.Routes.All(r => r.Percent >= 100);
            return all ? MigrationStage.CutOver : MigrationStage.CuttingOver;
        }

        return Holds(status, status.Comparison)
            ? (Holds(status, status.AbTest) && AbTestStands(status) ? MigrationStage.AbTested : MigrationStage.Compared)
            : MigrationStage.Shadow;
    }

    /// <summary>
    /// Whether the A/B test still vouches for the event type: it and the latest comparison passed, and no
    /// comparison failed after it (a failure means the sequences it tested were wrong, and what was fixed
    /// since has not been tested on a model). The cutover gate and the stage a route change implies both
    /// ask this, so a route lowered to 0 % cannot bring back an A/B test the gate no longer accepts.
    /// </summary>
    private static bool AbTestStands(MigrationStatus status) =>
        status.Comparison is { Passed: true } && status.AbTest is { Passed: true } abTest && !(status.LastFailedComparisonId > abTest.Id);

    private static void RequireLegacyRunning(MigrationStatus status, string action)
    {
        if (status.Stage == MigrationStage.LegacyDeprecated)
        {
            throw new MigrationGateException($"'{status.EventType}' is legacy-deprecated: legacy no longer produces it, so there is nothing to {action} against.");
        }
    }

    private string ComparisonState(MigrationStatus status) => status.Comparison switch
    {
        null => "no comparison with legacy is stored (`weft migrate compare`)",
        { Passed: false } c => $"the latest comparison (#{c.Id}) failed: {c.Summary}",
        { } c when IsStale(status, c) => $"the latest comparison (#{c.Id}) {Stale(status, c)}: compare again",
        { } c => $"the latest comparison (#{c.Id}) passed",
    };

    private string AbTestState(MigrationStatus status) => status.AbTest switch
    {
        null => "no A/B test is stored (`weft migrate abtest`)",
        { Passed: false } a => $"the latest A/B test (#{a.Id}) failed: {a.Summary}",
        { } a when IsStale(status, a) => $"the latest A/B test (#{a.Id}) {Stale(status, a)}: test again",
        { } a => $"the latest A/B test (#{a.Id}) passed",
    };

    /// <summary>The percent a route stores: <paramref name="percent"/> on the bucket routing reads it as (within the float noise of a two-decimal percent).</summary>
    private static double CheckPercent(double percent)
    {
        if (!(percent >= 0 && percent <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A route's percent lies between 0 and 100.");
        }

        if (!MigrationRouting.IsWholeBucket(percent))
        {
            // A route takes users a 0.01 % bucket at a time: 99.999 % served everyone while the stage said cutting-over.
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A route's percent moves in steps of 0.01 % (one user bucket of 10,000).");
        }

        // 99.9999999999 is within the tolerance and routes everyone: stored as is, the stage said cutting-over.
        return MigrationRouting.OnBucket(percent);
    }

    /// <summary>Routes as "consumer percent %", comma separated; "none" when there are none.</summary>
    public static string DescribeRoutes(IReadOnlyList<MigrationRoute> routes) =>
        routes.Count == 0 ? "none" : string.Join(", ", routes.Select(r => $"{MigrationRouting.Printable(r.Consumer)} {r.Percent.ToString("0.##", CultureInfo.InvariantCulture)} %"));

    private static string At(double? percent) => percent is { } p ? $" at {p.ToString("0.##", CultureInfo.InvariantCulture)} %" : "";

    private static string Describe(TimeSpan span) =>
        span.TotalDays >= 1 ? $"{span.TotalDays:0.#} days" : span.TotalHours >= 1 ? $"{span.TotalHours:0.#} hours" : $"{span.TotalMinutes:0.#} minutes";

    private async Task<MigrationStatus> ReadStatusAsync(SqliteTransaction transaction, string signal, string eventType, CancellationToken cancellationToken)
    {
        var stage = MigrationStage.NotStarted;
        DateTimeOffset? since = null;
        using (var command = Command(transaction, "SELECT stage, since_us FROM stages WHERE signal = $signal AND event_type = $type", ("$signal", signal), ("$type", eventType)))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = new LedgerRow(reader, "stages", $"({signal}, {eventType})");
                stage = row.Stage(0, "stage");
                since = row.Time(1, "since_us");
            }
        }

        var routes = new List<MigrationRoute>();
        using (var command = Command(transaction, "SELECT consumer, percent, since_us FROM routes WHERE signal = $signal AND event_type = $type ORDER BY consumer", ("$signal", signal), ("$type", eventType)))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = new LedgerRow(reader, "routes", $"({signal}, {eventType}, {reader.GetValue(0)})");
                routes.Add(new MigrationRoute(row.Text(0, "consumer"), row.Percent(1, "percent"), row.Time(2, "since_us")));
            }
        }

        async Task<MigrationEvidence?> LatestAsync(string kind)
        {
            using var command = Command(transaction,
                $"SELECT {_evidenceColumns} FROM evidence WHERE signal = $signal AND event_type = $type AND kind = $kind ORDER BY id DESC LIMIT 1",
                ("$signal", signal), ("$type", eventType), ("$kind", kind));
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadEvidence(reader) : null;
        }

        // Each consumer's outcome tests, oldest first: a failure holds its route until a later test of
        // that split or a larger one passes. A pass at a smaller split (an earlier one, whose exposures
        // are kept) measured other users at another share and clears nothing above it.
        var latest = new SortedDictionary<string, MigrationEvidence>(StringComparer.Ordinal);
        var open = new Dictionary<string, List<MigrationEvidence>>(StringComparer.Ordinal);
        using (var command = Command(transaction,
            $"SELECT {_evidenceColumns} FROM evidence WHERE signal = $signal AND event_type = $type AND kind = $kind AND consumer IS NOT NULL ORDER BY id",
            ("$signal", signal), ("$type", eventType), ("$kind", OutcomeKind)))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var outcome = ReadEvidence(reader);
                var failures = open.TryGetValue(outcome.Consumer!, out var f) ? f : open[outcome.Consumer!] = [];
                latest[outcome.Consumer!] = outcome;
                if (!outcome.Passed)
                {
                    failures.Add(outcome);
                }
                else
                {
                    // A ledger older than the percent column knows no split: a pass then clears as it used to.
                    failures.RemoveAll(failed => outcome.Percent is not { } passedAt || failed.Percent is not { } failedAt || passedAt >= failedAt);
                }
            }
        }

        var outcomes = new List<MigrationEvidence>(latest.Count);
        foreach (var (consumer, outcome) in latest)
        {
            outcomes.Add(open[consumer] is { Count: > 0 } holding ? holding[^1] : outcome);
        }

        long? lastFailedComparison;
        using (var command = Command(transaction,
            "SELECT max(id) FROM evidence WHERE signal = $signal AND event_type = $type AND kind = $kind AND passed = 0",
            ("$signal", signal), ("$type", eventType), ("$kind", ComparisonKind)))
        {
            lastFailedComparison = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as long?;
        }

        return new MigrationStatus(signal, eventType, stage, since, routes,
            await LatestAsync(ShadowKind).ConfigureAwait(false),
            await LatestAsync(ComparisonKind).ConfigureAwait(false),
            await LatestAsync(AbTestKind).ConfigureAwait(false),
            outcomes) { LastFailedComparisonId = lastFailedComparison };
    }

    private static MigrationEvidence ReadEvidence(SqliteDataReader reader)
    {
        var row = new LedgerRow(reader, "evidence", $"#{reader.GetValue(0)}");
        return new(row.Integer(0, "id"), row.Text(1, "kind"), row.Time(2, "at_us"), row.Flag(3, "passed"), row.Text(4, "summary"), row.Json(5, "details"),
            row.OptionalText(6, "consumer"), row.OptionalText(7, "fingerprint"), row.OptionalPercent(8, "percent"));
    }

    /// <summary>
    /// Typed reads of one ledger row that fail naming its table, row and column. SQLite hands back what a
    /// hand edit stored, and read loosely 'abc' was a 0 % route (deprecate then passed) and 'x' a 1970
    /// stage (its soak long over).
    /// </summary>
    private readonly struct LedgerRow(SqliteDataReader reader, string table, string key)
    {
        public long Integer(int ordinal, string column) => reader.GetValue(ordinal) is long v ? v : throw Bad(ordinal, column, "an integer");

        public long? OptionalInteger(int ordinal, string column) => reader.IsDBNull(ordinal) ? null : Integer(ordinal, column);

        public DateTimeOffset Time(int ordinal, string column) =>
            reader.GetValue(ordinal) is long v && v >= Timestamps.MinMicros && v <= Timestamps.MaxMicros ? Timestamps.FromMicros(v) : throw Bad(ordinal, column, "a time (µs since 1970)");

        public string Text(int ordinal, string column) => reader.GetValue(ordinal) is string { Length: > 0 } v ? v : throw Bad(ordinal, column, "text");

        public string? OptionalText(int ordinal, string column) => reader.IsDBNull(ordinal) ? null : Text(ordinal, column);

        public MigrationStage Stage(int ordinal, string column)
        {
            try
            {
                return MigrationStages.Parse(Text(ordinal, column));
            }
            catch (FormatException) when (reader.GetValue(ordinal) is string)
            {
                // Named like the ledger's other damage: where, not only what.
                throw Bad(ordinal, column, "a migration stage (" + string.Join(", ", Enum.GetValues<MigrationStage>().Select(MigrationStages.Name)) + ")");
            }
        }

        public bool Flag(int ordinal, string column) => reader.GetValue(ordinal) is long v && v is 0 or 1 ? v == 1 : throw Bad(ordinal, column, "0 or 1");

        /// <summary>
        /// A route's percent, on the bucket routing reads it as. Any percent from 0 to 100 reads: a ledger
        /// written before percents moved in whole buckets may hold 33.333, which routing always read as
        /// its bucket; refusing it would lock that migration out of every step, the fix included.
        /// </summary>
        public double Percent(int ordinal, string column) =>
            reader.GetValue(ordinal) switch
            {
                double v when v is >= 0 and <= 100 => MigrationRouting.OnBucket(v),
                long v when v is >= 0 and <= 100 => v,
                _ => throw Bad(ordinal, column, "a percent from 0 to 100"),
            };

        public double? OptionalPercent(int ordinal, string column) => reader.IsDBNull(ordinal) ? null : Percent(ordinal, column);

        public string Json(int ordinal, string column)
        {
            string text = Text(ordinal, column);
            try
            {
                using var _ = System.Text.Json.JsonDocument.Parse(text);
                return text;
            }
            catch (System.Text.Json.JsonException)
            {
                throw Bad(ordinal, column, "JSON");
            }
        }

        private FormatException Bad(int ordinal, string column, string expected) =>
            new($"{Show(reader.GetValue(ordinal))} in {table}.{column} of row {key} where {expected} belongs");

        private static string Show(object value) => value switch
        {
            DBNull => "null",
            string text => $"'{Weft.Engine.DisplayText.Cut(text, 40)}'",
            byte[] bytes => $"a blob of {bytes.Length} bytes",
            _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "?",
        };
    }

    private SqliteCommand Command(SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters) =>
        Command(_connection, transaction, sql, parameters);

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

}
