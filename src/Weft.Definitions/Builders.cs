using System.Text.Json;
using System.Text.Json.Nodes;

namespace Weft.Definitions;

/// <summary>A C# file of definitions: <c>weft compile</c> instantiates every public implementation and calls <see cref="Define"/>.</summary>
public interface IDefinitionModule
{
    void Define(DefinitionCatalog weft);
}

/// <summary>
/// The mutable side of definitions-as-code. Event types and enrichment sources are declared once and
/// shared by signals; <see cref="Build"/> freezes every signal through the same validating JSON
/// reader the runtimes use, so C# and hand-written JSON obey one set of rules.
/// </summary>
public sealed class DefinitionCatalog
{
    private readonly List<EventTypeBuilder> _eventTypes = [];
    private readonly List<EnrichmentSourceBuilder> _sources = [];
    private readonly List<SignalBuilder> _signals = [];
    private readonly List<(string Name, string File, int Line)> _declared = [];

    public EventTypeBuilder EventType(string name)
    {
        var b = new EventTypeBuilder(name);
        _eventTypes.Add(b);
        return b;
    }

    public EnrichmentSourceBuilder EnrichmentSource(string name, string key, WeftType keyType)
    {
        var b = new EnrichmentSourceBuilder(name, new FieldDefinition(key, keyType, Nullable: false));
        _sources.Add(b);
        return b;
    }

    /// <remarks>The caller's file and line are filled in by the C# compiler: <c>weft compile</c> names them in a problem of the signal.</remarks>
    public SignalBuilder Signal(string name, string tenant, int version = 1,
        [System.Runtime.CompilerServices.CallerFilePath] string declaredInFile = "", [System.Runtime.CompilerServices.CallerLineNumber] int declaredAtLine = 0)
    {
        var b = new SignalBuilder(name, tenant, version);
        _signals.Add(b);
        _declared.Add((name, declaredInFile, declaredAtLine));
        return b;
    }

    /// <summary>Where each declaration of signal <paramref name="name"/> is, as <c>file(line)</c>, in the order they ran (more than one is a problem).</summary>
    public IReadOnlyList<string> WhereDeclared(string name) =>
        [.. _declared.Where(d => d.Name == name && d.File.Length > 0).Select(d => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{d.File}({d.Line})"))];

    /// <summary>Freezes every signal; throws <see cref="DefinitionException"/> listing all problems of all signals.</summary>
    public IReadOnlyList<SignalDefinition> Build(Func<string, bool>? isKnownExecutor = null)
    {
        var result = new List<SignalDefinition>();
        var problems = new List<DefinitionProblem>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in _signals)
        {
            if (!names.Add(s.Name))
            {
                problems.Add(new DefinitionProblem($"signal '{s.Name}'", "declared twice"));
                continue;
            }

            var durationProblems = s.DurationProblems();
            var read = SignalJsonReader.Read(s.ToDraftJson(), isKnownExecutor);
            if (read.IsValid && durationProblems.Count == 0)
            {
                result.Add(read.Signal!);
            }
            else
            {
                // A duration the JSON cannot hold exactly is reported as what the user wrote, not as
                // whatever the truncated value then fails (e.g. 500µs read back as "0ms").
                foreach (var p in durationProblems.Concat(read.Problems.Where(p => !durationProblems.Any(d => d.Path == p.Path))))
                {
                    problems.Add(p with { Path = $"signal '{s.Name}' {p.Path}" });
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new DefinitionException("the definitions", problems);
        }

        return result;
    }
}

public sealed class EventTypeBuilder
{
    private readonly List<FieldDefinition> _fields = [];
    private readonly SortedDictionary<string, string> _mapping = new(StringComparer.Ordinal);

    internal EventTypeBuilder(string name) => Name = name;

    public string Name { get; }

    /// <summary>Declares an attribute of the raw schema (standard columns are implicit).</summary>
    public EventTypeBuilder Attribute(string name, WeftType type, bool nullable = true)
    {
        _fields.Add(new FieldDefinition(name, type, nullable));
        return this;
    }

    /// <summary>Reads raw column <paramref name="rawName"/> as <paramref name="column"/> (for raw tables with other layouts).</summary>
    public EventTypeBuilder MapRawColumn(string rawName, string column)
    {
        _mapping[rawName] = column;
        return this;
    }

    internal IReadOnlyList<FieldDefinition> Fields => _fields;

    internal IReadOnlyDictionary<string, string> Mapping => _mapping;
}

public sealed class EnrichmentSourceBuilder
{
    private readonly List<FieldDefinition> _columns = [];

    internal EnrichmentSourceBuilder(string name, FieldDefinition key)
    {
        Name = name;
        Key = key;
    }

    public string Name { get; }

    public FieldDefinition Key { get; }

    public string VersionColumn { get; private set; } = "version_time";

    public EnrichmentSourceBuilder Column(string name, WeftType type)
    {
        _columns.Add(new FieldDefinition(name, type, Nullable: true));
        return this;
    }

    public EnrichmentSourceBuilder VersionedBy(string column)
    {
        VersionColumn = column;
        return this;
    }

    internal IReadOnlyList<FieldDefinition> Columns => _columns;
}

/// <summary>The executor chain of one event type inside one signal.</summary>
public sealed class ChainBuilder
{
    internal List<JsonObject> Steps { get; } = [];

    public ChainBuilder Where(Expr predicate)
    {
        Steps.Add(new JsonObject { ["op"] = "filter", ["where"] = ExprNode(predicate) });
        return this;
    }

    public ChainBuilder Derive(string name, Expr expr)
    {
        Steps.Add(new JsonObject { ["op"] = "derive", ["name"] = name, ["expr"] = ExprNode(expr) });
        return this;
    }

    public ChainBuilder Rename(string from, string to) => Map(to, from, null);

    public ChainBuilder Cast(string column, WeftType type) => Map(column, column, type);

    public ChainBuilder Map(string name, string from, WeftType? cast)
    {
        var col = new JsonObject { ["name"] = name, ["from"] = from };
        if (cast is { } c)
        {
            col["cast"] = c.ToString();
        }

        Steps.Add(new JsonObject { ["op"] = "map", ["columns"] = new JsonArray(col) });
        return this;
    }

    /// <summary>A registered custom executor; <paramref name="produces"/> declares the columns it adds.</summary>
    public ChainBuilder Custom(string executor, IReadOnlyDictionary<string, string>? args = null, params FieldDefinition[] produces)
    {
        var a = new JsonObject();
        foreach (var (k, v) in args ?? new Dictionary<string, string>())
        {
            a[k] = v;
        }

        Steps.Add(new JsonObject { ["op"] = "custom", ["executor"] = executor, ["args"] = a, ["produces"] = FieldsNode(produces) });
        return this;
    }

    /// <summary>How deep an expression may nest: a call takes two levels of JSON, and the signal around it a few.</summary>
    internal const int MaxExprDepth = (SignalJsonReader.MaxDepth - 16) / 2;

    internal static JsonNode ExprNode(Expr expr)
    {
        // A null (a variable not yet set) was an out-of-range error naming no expression.
        if (expr is null)
        {
            throw new ArgumentNullException(nameof(expr), "an expression is null: a Where predicate or a Derive expression not set yet?");
        }

        int depth = Depth(expr);
        if (depth > MaxExprDepth)
        {
            throw new ArgumentException(
                $"the expression nests {depth} operators deep, more than the {MaxExprDepth} a signal holds; test many values with In(...), or combine many conditions with Any(...) or All(...), which stay one level deep",
                nameof(expr));
        }

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { MaxDepth = SignalJsonReader.MaxDepth }))
        {
            SignalJsonWriter.WriteExpr(w, expr);
        }

        return JsonNode.Parse(buffer.ToArray(), documentOptions: new JsonDocumentOptions { MaxDepth = SignalJsonReader.MaxDepth })!;
    }

    /// <summary>Operators nested in <paramref name="expr"/>, counted without recursion: a chain built in a loop can be long.</summary>
    private static int Depth(Expr expr)
    {
        int deepest = 0;
        var pending = new Stack<(Expr Expr, int Depth)>();
        pending.Push((expr, 1));
        while (pending.TryPop(out var item))
        {
            deepest = Math.Max(deepest, item.Depth);
            if (item.Expr is CallExpr call)
            {
                foreach (var arg in call.Args)
                {
                    pending.Push((arg, item.Depth + 1));
                }
            }
        }

        return deepest;
    }

    internal static JsonArray FieldsNode(IEnumerable<FieldDefinition> fields)
    {
        var arr = new JsonArray();
        foreach (var f in fields)
        {
            arr.Add(new JsonObject { ["name"] = f.Name, ["type"] = f.Type.ToString(), ["nullable"] = f.Nullable });
        }

        return arr;
    }
}

public sealed class SignalBuilder
{
    private readonly List<(EventTypeBuilder Type, ChainBuilder Chain)> _types = [];
    private readonly List<(EnrichmentSourceBuilder Source, string On, string[] Columns, string[] EventTypes)> _enrichments = [];
    private readonly List<string> _element = [];
    private string _description = "";
    private int _maxLength = 500;
    private TimeSpan _lookback = TimeSpan.FromDays(30);
    private TimeBucket _bucket = TimeBucket.Hour;
    private TimeSpan _lateAllowance = TimeSpan.FromHours(6);
    private MergePolicyKind _merge = MergePolicyKind.BatchSealsStreamFills;
    private TimeSpan _freshness = TimeSpan.FromSeconds(5);
    private LatePolicy _late = LatePolicy.Accept;
    private Budgets _budgets = Budgets.Default;

    internal SignalBuilder(string name, string tenant, int version)
    {
        Name = name;
        Tenant = tenant;
        Version = version;
    }

    public string Name { get; }

    public string Tenant { get; }

    public int Version { get; }

    public SignalBuilder Describe(string description)
    {
        _description = description;
        return this;
    }

    public SignalBuilder Include(EventTypeBuilder eventType, Action<ChainBuilder>? chain = null)
    {
        var c = new ChainBuilder();
        chain?.Invoke(c);
        _types.Add((eventType, c));
        return this;
    }

    public SignalBuilder Enrich(EnrichmentSourceBuilder source, string on, params string[] columns)
    {
        _enrichments.Add((source, on, columns, []));
        return this;
    }

    public SignalBuilder EnrichOnly(EnrichmentSourceBuilder source, string on, string[] eventTypes, params string[] columns)
    {
        _enrichments.Add((source, on, columns, eventTypes));
        return this;
    }

    public SignalBuilder Element(params string[] columns)
    {
        _element.AddRange(columns);
        return this;
    }

    public SignalBuilder MaxLength(int n)
    {
        _maxLength = n;
        return this;
    }

    public SignalBuilder Lookback(TimeSpan lookback)
    {
        _lookback = lookback;
        return this;
    }

    public SignalBuilder Bucket(TimeBucket bucket)
    {
        _bucket = bucket;
        return this;
    }

    public SignalBuilder LateAllowance(TimeSpan allowance)
    {
        _lateAllowance = allowance;
        return this;
    }

    /// <summary>What the stream does with late events (default: accept and amend online).</summary>
    public SignalBuilder Late(LatePolicy policy)
    {
        _late = policy;
        return this;
    }

    public SignalBuilder Merge(MergePolicyKind merge)
    {
        _merge = merge;
        return this;
    }

    public SignalBuilder FreshnessObjective(TimeSpan objective)
    {
        _freshness = objective;
        return this;
    }

    public SignalBuilder WithBudgets(Budgets budgets)
    {
        _budgets = budgets;
        return this;
    }

    /// <summary>
    /// Durations the canonical JSON cannot hold: it counts whole milliseconds, so a finer part would be
    /// dropped silently and the compiled signal would differ from the C# that defined it.
    /// </summary>
    internal List<DefinitionProblem> DurationProblems()
    {
        var problems = new List<DefinitionProblem>();
        Check(_lookback, "lookback", nameof(Lookback));
        Check(_lateAllowance, "late_allowance", nameof(LateAllowance));
        Check(_freshness, "freshness_objective", nameof(FreshnessObjective));
        return problems;

        void Check(TimeSpan value, string property, string method)
        {
            if (value < TimeSpan.Zero)
            {
                problems.Add(new DefinitionProblem($"$.{property}", $"{method}({value.ToString("c", System.Globalization.CultureInfo.InvariantCulture)}) is negative", "a duration is how long, e.g. TimeSpan.FromDays(1)"));
            }
            else if (value.Ticks % TimeSpan.TicksPerMillisecond != 0)
            {
                problems.Add(new DefinitionProblem(
                    $"$.{property}",
                    $"{method}({value.ToString("c", System.Globalization.CultureInfo.InvariantCulture)}) has a part under a millisecond, which a signal's JSON cannot hold",
                    "durations are whole milliseconds: round it, e.g. TimeSpan.FromMilliseconds(250)"));
            }
        }
    }

    /// <summary>JSON without inferred types; the validating reader fills them in.</summary>
    private static readonly JsonSerializerOptions DraftOptions = new() { MaxDepth = SignalJsonReader.MaxDepth };

    internal byte[] ToDraftJson()
    {
        var types = new JsonArray();
        foreach (var (t, chain) in _types)
        {
            var mapping = new JsonObject();
            foreach (var (k, v) in t.Mapping)
            {
                mapping[k] = v;
            }

            var steps = new JsonArray();
            foreach (var s in chain.Steps)
            {
                steps.Add(s.DeepClone());
            }

            types.Add(new JsonObject { ["name"] = t.Name, ["raw_schema"] = ChainBuilder.FieldsNode(t.Fields), ["column_mapping"] = mapping, ["steps"] = steps });
        }

        var sources = new JsonArray();
        var enrichments = new JsonArray();
        // By declaration, not by name: two sources declared under one name are both written, and the
        // reader reports the clash (keeping the first by name dropped the second silently).
        var seenSources = new HashSet<EnrichmentSourceBuilder>(ReferenceEqualityComparer.Instance);
        foreach (var (src, on, columns, eventTypes) in _enrichments)
        {
            if (seenSources.Add(src))
            {
                sources.Add(new JsonObject
                {
                    ["name"] = src.Name,
                    ["key"] = new JsonObject { ["name"] = src.Key.Name, ["type"] = src.Key.Type.ToString(), ["nullable"] = false },
                    ["columns"] = ChainBuilder.FieldsNode(src.Columns),
                    ["version_column"] = src.VersionColumn,
                });
            }

            enrichments.Add(new JsonObject
            {
                ["source"] = src.Name,
                ["on"] = on,
                ["columns"] = new JsonArray([.. columns.Select(c => (JsonNode)c)]),
                ["event_types"] = new JsonArray([.. eventTypes.Select(c => (JsonNode)c)]),
            });
        }

        var root = new JsonObject
        {
            ["format"] = SignalJsonWriter.Format,
            ["name"] = Name,
            ["version"] = Version,
            ["tenant"] = Tenant,
            ["description"] = _description,
            ["event_types"] = types,
            ["enrichment_sources"] = sources,
            ["enrichments"] = enrichments,
            ["element"] = new JsonArray([.. _element.Select(c => (JsonNode)c)]),
            ["max_length"] = _maxLength,
            ["lookback"] = Durations.Format(_lookback),
            ["bucket"] = _bucket == TimeBucket.Hour ? "hour" : "day",
            ["late_allowance"] = Durations.Format(_lateAllowance),
            ["merge"] = SignalJsonWriter.MergeName(_merge),
            ["late_policy"] = LatePolicyNames.Name(_late),
            ["freshness_objective"] = Durations.Format(_freshness),
            ["budgets"] = new JsonObject
            {
                ["max_elements"] = _budgets.MaxElements,
                ["max_bytes_per_user"] = _budgets.MaxBytesPerUser,
                ["hot_user_max_events_per_hour"] = _budgets.HotUserMaxEventsPerHour,
            },
        };
        return JsonSerializer.SerializeToUtf8Bytes(root, DraftOptions);
    }
}
