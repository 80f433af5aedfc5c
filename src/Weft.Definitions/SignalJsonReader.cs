using System.Collections.Immutable;
using System.Text.Json;

namespace Weft.Definitions;

/// <summary>The outcome of reading a signal: the frozen definition when valid, and every problem found.</summary>
public sealed record SignalReadResult(SignalDefinition? Signal, IReadOnlyList<DefinitionProblem> Problems)
{
    public bool IsValid => Signal is not null && Problems.Count == 0;
}

/// <summary>
/// Reads and validates signal JSON in one pass, collecting every problem with its JSON path rather
/// than stopping at the first. Types of derived and element columns are inferred here; where the
/// JSON states them they must agree. This is the only way a runtime obtains a signal.
/// </summary>
public static class SignalJsonReader
{
    /// <summary>
    /// How deep a signal's JSON may nest. Expressions are trees: a chain of <c>a | b | c …</c> built in C#
    /// nests two levels a term, so the framework's default of 64 stopped at about 30 terms.
    /// </summary>
    public const int MaxDepth = 512;

    private static readonly JsonDocumentOptions DocumentOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = MaxDepth };

    public static SignalReadResult Read(string json) => Read(System.Text.Encoding.UTF8.GetBytes(json));

    /// <param name="isKnownExecutor">Resolves custom executor names; null accepts any name.</param>
    public static SignalReadResult Read(ReadOnlyMemory<byte> utf8Json, Func<string, bool>? isKnownExecutor = null)
    {
        if (utf8Json.Span.StartsWith("\uFEFF"u8))
        {
            utf8Json = utf8Json[3..]; // a byte-order mark some editors write: not part of the JSON
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8Json, DocumentOptions);
        }
        catch (JsonException ex)
        {
            return new SignalReadResult(null, [new DefinitionProblem("$", $"not valid JSON at {JsonErrors.Where(ex)}")]);
        }

        using (doc)
        {
            var reader = new Reader(isKnownExecutor);
            if (!JsonErrors.CheckText(doc.RootElement, "$", reader.Problems))
            {
                // A value the rest would read wrongly (invalid Unicode) or silently drop (a repeated
                // property, the last winning): report these alone, since every later check would misread.
                return new SignalReadResult(null, reader.Problems);
            }

            var signal = reader.ReadSignal(doc.RootElement);
            return new SignalReadResult(reader.Problems.Count == 0 ? signal : null, reader.Problems);
        }
    }

    private sealed class Reader(Func<string, bool>? isKnownExecutor)
    {
        public List<DefinitionProblem> Problems { get; } = [];

        private void Problem(string path, string message, string? hint = null) => Problems.Add(new DefinitionProblem(path, message, hint));

        public SignalDefinition? ReadSignal(JsonElement root)
        {
            if (!Object(root, "$", "format", "name", "version", "tenant", "description", "event_types", "enrichment_sources", "enrichments",
                    "element", "order", "dedup", "max_length", "lookback", "bucket", "late_allowance", "merge", "late_policy", "freshness_objective", "budgets"))
            {
                return null;
            }

            var format = String(root, "format", "$", required: true);
            if (format is not null && format != SignalJsonWriter.Format)
            {
                Problem("$.format", $"unsupported format '{format}'", $"this version of Weft reads \"{SignalJsonWriter.Format}\"");
            }

            var name = Name(root, "name", "$");
            int version = Int(root, "version", "$", 1, min: 1, hint: "versions start at 1; a breaking change needs a new version");
            var tenant = Name(root, "tenant", "$");
            var description = String(root, "description", "$", required: false) ?? "";

            var sources = ReadSources(root);
            var eventTypes = ReadEventTypes(root, out var scopes);
            var enrichments = ReadEnrichments(root, eventTypes, sources, scopes);
            var element = ReadElement(root, eventTypes, scopes);

            if (root.TryGetProperty("order", out var order) && (order.ValueKind != JsonValueKind.String || order.GetString() != SignalDefinition.OrderBy))
            {
                Problem("$.order", $"order must be \"{SignalDefinition.OrderBy}\"", "the order is fixed by the sequence contract");
            }

            if (root.TryGetProperty("dedup", out var dedup) && (dedup.ValueKind != JsonValueKind.String || dedup.GetString() != SignalDefinition.DedupBy))
            {
                Problem("$.dedup", $"dedup must be \"{SignalDefinition.DedupBy}\"", "events are deduplicated by event_id");
            }

            int problemsBefore = Problems.Count;
            var budgets = ReadBudgets(root);
            bool budgetsRead = Problems.Count == problemsBefore; // else max_elements is a stand-in, not the file's
            int maxLength = Int(root, "max_length", "$", null, min: 1, hint: "max_length is the number of events kept per user, e.g. 500");
            if (budgetsRead && maxLength > budgets.MaxElements)
            {
                Problem("$.max_length", $"max_length {maxLength} exceeds the budget max_elements {budgets.MaxElements}", "raise budgets.max_elements or lower max_length");
            }

            var lookback = Duration(root, "lookback", "$", null, positive: true);
            var bucketText = String(root, "bucket", "$", required: false) ?? "hour";
            var bucket = TimeBucket.Hour;
            if (bucketText == "day")
            {
                bucket = TimeBucket.Day;
            }
            else if (bucketText != "hour")
            {
                Problem("$.bucket", $"unknown bucket '{bucketText}'", "use \"hour\" or \"day\"");
            }

            var lateAllowance = Duration(root, "late_allowance", "$", TimeSpan.FromHours(6), positive: false);
            var mergeText = String(root, "merge", "$", required: false) ?? "batch_seals_stream_fills";
            var merge = MergePolicyKind.BatchSealsStreamFills;
            if (mergeText == "last_write_wins")
            {
                merge = MergePolicyKind.LastWriteWins;
            }
            else if (mergeText != "batch_seals_stream_fills")
            {
                Problem("$.merge", $"unknown merge policy '{mergeText}'", "use \"batch_seals_stream_fills\" or \"last_write_wins\"");
            }

            var lateText = String(root, "late_policy", "$", required: false) ?? "accept";
            if (!LatePolicyNames.TryParse(lateText, out var late))
            {
                Problem("$.late_policy", $"unknown late policy '{lateText}'", "use \"accept\", \"batch_only\" or \"drop\"");
            }

            var freshness = Duration(root, "freshness_objective", "$", TimeSpan.FromSeconds(5), positive: true);

            if (maxLength > 0 && !element.IsDefaultOrEmpty)
            {
                long bytesPerElement = 8 + 16 + 8; // event_id, event_type, event_time
                foreach (var f in element)
                {
                    bytesPerElement += f.Type.EstimatedBytes(EstimatedListLength);
                }

                long estimate = bytesPerElement * maxLength;
                if (estimate > budgets.MaxBytesPerUser)
                {
                    Problem("$.budgets.max_bytes_per_user", $"a full sequence is estimated at {estimate} bytes ({bytesPerElement} per element × {maxLength}), over the budget of {budgets.MaxBytesPerUser}",
                        "lower max_length, drop wide columns from element, or raise the budget");
                }
            }

            if (name is null || tenant is null || lookback is null || Problems.Count > 0)
            {
                return null;
            }

            return new SignalDefinition(name, version, tenant, description, eventTypes, sources, enrichments, element, maxLength, lookback.Value, bucket,
                lateAllowance ?? TimeSpan.Zero, merge, freshness ?? TimeSpan.FromSeconds(5), budgets, late);
        }

        // List columns (embeddings) are budgeted at 64 elements each; the real width is data-dependent.
        private const int EstimatedListLength = 64;

        private Budgets ReadBudgets(JsonElement root)
        {
            if (!root.TryGetProperty("budgets", out var b))
            {
                return Budgets.Default;
            }

            const string path = "$.budgets";
            if (!Object(b, path, "max_elements", "max_bytes_per_user", "hot_user_max_events_per_hour"))
            {
                return Budgets.Default;
            }

            int maxElements = Int(b, "max_elements", path, Budgets.Default.MaxElements, min: 1);
            long maxBytes = Long(b, "max_bytes_per_user", path, Budgets.Default.MaxBytesPerUser, min: 1);
            int hot = Int(b, "hot_user_max_events_per_hour", path, Budgets.Default.HotUserMaxEventsPerHour, min: 1);
            return new Budgets(maxElements, maxBytes, hot);
        }

        private ImmutableArray<EnrichmentSourceDefinition> ReadSources(JsonElement root)
        {
            var result = ImmutableArray.CreateBuilder<EnrichmentSourceDefinition>();
            if (!root.TryGetProperty("enrichment_sources", out var arr))
            {
                return result.ToImmutable();
            }

            if (!Array(arr, "$.enrichment_sources"))
            {
                return result.ToImmutable();
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            int i = 0;
            foreach (var s in arr.EnumerateArray())
            {
                string path = $"$.enrichment_sources[{i++}]";
                if (!Object(s, path, "name", "key", "columns", "version_column"))
                {
                    continue;
                }

                var name = Name(s, "name", path);
                if (name is not null && !seen.Add(name))
                {
                    Problem(path + ".name", $"duplicate enrichment source '{name}'");
                }

                FieldDefinition? key = null;
                if (s.TryGetProperty("key", out var k))
                {
                    key = Field(k, path + ".key");
                }
                else
                {
                    Problem(path, "missing required property 'key'", "the entity key, e.g. {\"name\": \"item_id\", \"type\": \"int64\"}");
                }

                if (key is not null && (key.Type.IsList || key.Type.Kind is not (ScalarKind.Int32 or ScalarKind.Int64 or ScalarKind.String)))
                {
                    Problem(path + ".key.type", $"an entity key must be int32, int64 or string, got {key.Type}");
                }

                var columns = Fields(s, "columns", path, required: true);
                foreach (var (c, j) in columns.Select((c, j) => (c, j)))
                {
                    if (key is not null && c.Name == key.Name)
                    {
                        Problem($"{path}.columns[{j}].name", $"column '{c.Name}' repeats the key");
                    }
                }

                var versionColumn = s.TryGetProperty("version_column", out _) ? Name(s, "version_column", path) ?? "version_time" : "version_time";
                if ((key is not null && versionColumn == key.Name) || columns.Any(c => c.Name == versionColumn))
                {
                    // The table's rows hold the key, the columns and the version time side by side: one name for two of them cannot be read.
                    Problem(path + ".version_column", $"version_column '{versionColumn}' is also {(key is not null && versionColumn == key.Name ? "the key" : "one of the columns")}", "name the column that holds each version's time (default version_time)");
                }
                if (name is not null && key is not null)
                {
                    result.Add(new EnrichmentSourceDefinition(name, key, columns, versionColumn));
                }
            }

            return result.ToImmutable();
        }

        private ImmutableArray<EventTypeDefinition> ReadEventTypes(JsonElement root, out Dictionary<string, Dictionary<string, FieldDefinition>> scopes)
        {
            scopes = new(StringComparer.Ordinal);
            var result = ImmutableArray.CreateBuilder<EventTypeDefinition>();
            if (!root.TryGetProperty("event_types", out var arr))
            {
                Problem("$", "missing required property 'event_types'", "a signal includes at least one event type");
                return result.ToImmutable();
            }

            if (!Array(arr, "$.event_types"))
            {
                return result.ToImmutable();
            }

            if (arr.GetArrayLength() == 0)
            {
                Problem("$.event_types", "a signal must include at least one event type");
            }

            var rawTypes = new Dictionary<string, (WeftType Type, string EventType)>(StringComparer.Ordinal);
            int i = 0;
            foreach (var et in arr.EnumerateArray())
            {
                string path = $"$.event_types[{i++}]";
                if (!Object(et, path, "name", "raw_schema", "column_mapping", "steps"))
                {
                    continue;
                }

                var name = Name(et, "name", path);
                if (name is not null && scopes.ContainsKey(name))
                {
                    Problem(path + ".name", $"duplicate event type '{name}'");
                    continue;
                }

                var raw = Fields(et, "raw_schema", path, required: false);
                var scope = new Dictionary<string, FieldDefinition>(StringComparer.Ordinal);
                foreach (var f in StandardColumns.All)
                {
                    scope[f.Name] = f;
                }

                scope[StandardColumns.Tenant] = new FieldDefinition(StandardColumns.Tenant, WeftType.String, true);
                for (int j = 0; j < raw.Length; j++)
                {
                    if (StandardColumns.IsStandard(raw[j].Name))
                    {
                        Problem($"{path}.raw_schema[{j}].name", $"'{raw[j].Name}' is a standard column", "standard columns (event_id, user_id, event_type, event_time, ingest_time, tenant) are implicit; do not declare them");
                    }
                    else
                    {
                        scope[raw[j].Name] = raw[j];
                        if (rawTypes.TryGetValue(raw[j].Name, out var other) && other.Type != raw[j].Type)
                        {
                            // Raw archives hold every event type in one table, so one name has one type.
                            Problem($"{path}.raw_schema[{j}].type", $"raw attribute '{raw[j].Name}' is {raw[j].Type} here but {other.Type} in event type '{other.EventType}'",
                                "give the attributes different names, or one type and convert with a map step");
                        }
                        else if (name is not null)
                        {
                            rawTypes[raw[j].Name] = (raw[j].Type, name);
                        }
                    }
                }

                var mapping = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
                if (et.TryGetProperty("column_mapping", out var cm) && Object(cm, path + ".column_mapping"))
                {
                    foreach (var p in cm.EnumerateObject())
                    {
                        if (p.Value.ValueKind != JsonValueKind.String)
                        {
                            Problem($"{path}.column_mapping.{p.Name}", "must be a string: the column name in the raw schema");
                            continue;
                        }

                        var target = p.Value.GetString()!;
                        if (!scope.ContainsKey(target))
                        {
                            Problem($"{path}.column_mapping.{p.Name}", $"maps to '{target}', which is neither a raw schema column nor a standard column", ExprTyper.Suggest(target, scope.Keys));
                        }

                        mapping[p.Name] = target;
                    }
                }

                var steps = ReadSteps(et, path, scope);
                if (name is not null)
                {
                    scopes[name] = scope;
                    result.Add(new EventTypeDefinition(name, raw, mapping.ToImmutable(), steps));
                }
            }

            return result.ToImmutable();
        }

        private ImmutableArray<StepDefinition> ReadSteps(JsonElement et, string etPath, Dictionary<string, FieldDefinition> scope)
        {
            var result = ImmutableArray.CreateBuilder<StepDefinition>();
            if (!et.TryGetProperty("steps", out var arr) || !Array(arr, etPath + ".steps"))
            {
                return result.ToImmutable();
            }

            int i = 0;
            foreach (var s in arr.EnumerateArray())
            {
                string path = $"{etPath}.steps[{i++}]";
                if (s.ValueKind != JsonValueKind.Object)
                {
                    Problem(path, "a step must be an object");
                    continue;
                }

                var op = String(s, "op", path, required: true);
                switch (op)
                {
                    case "filter":
                    {
                        Object(s, path, "op", "where");
                        var where = RequiredExpr(s, "where", path);
                        if (where is null)
                        {
                            break;
                        }

                        var t = ExprTyper.Infer(where, scope, path + ".where", Problems);
                        if (t is { } type && type.Type != WeftType.Bool)
                        {
                            Problem(path + ".where", $"a filter predicate must be bool, got {type.Type}", "compare values, e.g. {\"op\":\"gt\",...}");
                        }

                        result.Add(new FilterStep(where));
                        break;
                    }

                    case "map":
                    {
                        Object(s, path, "op", "columns");
                        var columns = ImmutableArray.CreateBuilder<MapColumn>();
                        if (!s.TryGetProperty("columns", out var cols))
                        {
                            Problem(path, "missing required property 'columns'");
                            break;
                        }

                        if (!Array(cols, path + ".columns"))
                        {
                            break;
                        }

                        var updates = new List<FieldDefinition>();
                        int j = 0;
                        foreach (var c in cols.EnumerateArray())
                        {
                            string cpath = $"{path}.columns[{j++}]";
                            if (!Object(c, cpath, "name", "from", "cast"))
                            {
                                continue;
                            }

                            var colName = Name(c, "name", cpath);
                            var from = String(c, "from", cpath, required: true);
                            WeftType? cast = null;
                            if (c.TryGetProperty("cast", out var castEl))
                            {
                                cast = Type(castEl, cpath + ".cast");
                            }

                            if (colName is null || from is null)
                            {
                                continue;
                            }

                            if (!scope.TryGetValue(from, out var source))
                            {
                                Problem(cpath + ".from", $"unknown column '{from}'", ExprTyper.Suggest(from, scope.Keys));
                                continue;
                            }

                            if (StandardColumns.IsStandard(colName))
                            {
                                Problem(cpath + ".name", $"cannot overwrite standard column '{colName}'");
                                continue;
                            }

                            if (cast is { } ct && (ct.IsList || source.Type.IsList) && ct != source.Type)
                            {
                                Problem(cpath + ".cast", $"cannot cast {source.Type} to {ct}", "casts convert between scalar types");
                                continue;
                            }

                            updates.Add(new FieldDefinition(colName, cast ?? source.Type, source.Nullable));
                            columns.Add(new MapColumn(colName, from, cast));
                        }

                        foreach (var u in updates)
                        {
                            scope[u.Name] = u;
                        }

                        result.Add(new MapStep(columns.ToImmutable()));
                        break;
                    }

                    case "derive":
                    {
                        Object(s, path, "op", "name", "type", "expr");
                        var colName = Name(s, "name", path);
                        var expr = RequiredExpr(s, "expr", path);
                        WeftType? declared = s.TryGetProperty("type", out var typeEl) ? Type(typeEl, path + ".type") : null;
                        if (colName is null || expr is null)
                        {
                            break;
                        }

                        if (StandardColumns.IsStandard(colName))
                        {
                            Problem(path + ".name", $"cannot overwrite standard column '{colName}'");
                            break;
                        }

                        var t = ExprTyper.Infer(expr, scope, path + ".expr", Problems);
                        if (t is not { } inferred)
                        {
                            break;
                        }

                        if (declared is { } d && d != inferred.Type)
                        {
                            Problem(path + ".type", $"declared type {d} does not match the expression's type {inferred.Type}", "wrap the expression in a cast, or fix the declared type");
                            break;
                        }

                        scope[colName] = new FieldDefinition(colName, inferred.Type, inferred.Nullable);
                        result.Add(new DeriveStep(colName, expr, inferred.Type));
                        break;
                    }

                    case "custom":
                    {
                        Object(s, path, "op", "executor", "args", "produces");
                        var executor = String(s, "executor", path, required: true);
                        if (executor is not null && isKnownExecutor is not null && !isKnownExecutor(executor))
                        {
                            Problem(path + ".executor", $"no executor named '{executor}' is registered", "custom executors register by name in the engine's ExecutorRegistry");
                        }

                        var args = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
                        if (s.TryGetProperty("args", out var a) && Object(a, path + ".args"))
                        {
                            foreach (var p in a.EnumerateObject())
                            {
                                if (p.Value.ValueKind == JsonValueKind.String)
                                {
                                    args[p.Name] = p.Value.GetString()!;
                                }
                                else
                                {
                                    Problem($"{path}.args.{p.Name}", "custom executor arguments are strings");
                                }
                            }
                        }

                        var produces = Fields(s, "produces", path, required: false);
                        for (int j = 0; j < produces.Length; j++)
                        {
                            if (StandardColumns.IsStandard(produces[j].Name))
                            {
                                Problem($"{path}.produces[{j}].name", $"cannot overwrite standard column '{produces[j].Name}'");
                                continue;
                            }

                            scope[produces[j].Name] = produces[j];
                        }

                        if (executor is not null)
                        {
                            result.Add(new CustomStep(executor, args.ToImmutable(), produces));
                        }

                        break;
                    }

                    case null:
                        break;
                    default:
                        Problem(path + ".op", $"unknown step '{op}'", "steps are filter, map, derive or custom");
                        break;
                }
            }

            return result.ToImmutable();
        }

        private ImmutableArray<EnrichmentDefinition> ReadEnrichments(JsonElement root, ImmutableArray<EventTypeDefinition> eventTypes,
            ImmutableArray<EnrichmentSourceDefinition> sources, Dictionary<string, Dictionary<string, FieldDefinition>> scopes)
        {
            var result = ImmutableArray.CreateBuilder<EnrichmentDefinition>();
            if (!root.TryGetProperty("enrichments", out var arr) || !Array(arr, "$.enrichments"))
            {
                return result.ToImmutable();
            }

            int i = 0;
            foreach (var e in arr.EnumerateArray())
            {
                string path = $"$.enrichments[{i++}]";
                if (!Object(e, path, "source", "on", "columns", "event_types"))
                {
                    continue;
                }

                var sourceName = String(e, "source", path, required: true);
                var on = String(e, "on", path, required: true);
                var columns = Strings(e, "columns", path, required: true);
                if (columns.IsEmpty && e.TryGetProperty("columns", out var listed) && listed.ValueKind == JsonValueKind.Array && listed.GetArrayLength() == 0)
                {
                    Problem(path + ".columns", "an enrichment adds at least one column", "list the source columns it adds, or remove the enrichment");
                }

                var types = Strings(e, "event_types", path, required: false);
                var source = sources.FirstOrDefault(s => s.Name == sourceName);
                if (sourceName is not null && source is null)
                {
                    Problem(path + ".source", $"unknown enrichment source '{sourceName}'", ExprTyper.Suggest(sourceName, sources.Select(s => s.Name)) ?? "declare it under enrichment_sources");
                }

                for (int t = 0; t < types.Length; t++)
                {
                    if (!scopes.ContainsKey(types[t]))
                    {
                        Problem($"{path}.event_types[{t}]", $"unknown event type '{types[t]}'", ExprTyper.Suggest(types[t], scopes.Keys));
                    }
                }

                if (source is null || on is null)
                {
                    continue;
                }

                var added = new List<FieldDefinition>();
                for (int c = 0; c < columns.Length; c++)
                {
                    var col = source.Columns.FirstOrDefault(x => x.Name == columns[c]);
                    if (col is null)
                    {
                        Problem($"{path}.columns[{c}]", $"source '{source.Name}' has no column '{columns[c]}'", ExprTyper.Suggest(columns[c], source.Columns.Select(x => x.Name)));
                    }
                    else
                    {
                        // A lookup can miss, so enrichment columns are always nullable.
                        added.Add(col with { Nullable = true });
                    }
                }

                foreach (var et in eventTypes)
                {
                    if (types.Length > 0 && !types.Contains(et.Name))
                    {
                        continue;
                    }

                    // A bad key is one problem: its columns still join the scope, so the element naming them
                    // does not add "never produced" for each.
                    var scope = scopes[et.Name];
                    if (!scope.TryGetValue(on, out var keyColumn))
                    {
                        Problem(path + ".on", $"enrichment key '{on}' is missing from event type '{et.Name}'",
                            $"add '{on}' to the raw schema of '{et.Name}', derive it, or restrict this enrichment with \"event_types\"");
                    }
                    else if (keyColumn.Type != source.Key.Type && !(keyColumn.Type.IsInteger && source.Key.Type.IsInteger))
                    {
                        Problem(path + ".on", $"column '{on}' of event type '{et.Name}' is {keyColumn.Type} but the key of '{source.Name}' is {source.Key.Type}", "cast it with a map step");
                    }

                    foreach (var f in added)
                    {
                        if (scope.ContainsKey(f.Name))
                        {
                            Problem(path + ".columns", $"enrichment column '{f.Name}' collides with an existing column of event type '{et.Name}'", "rename one of them with a map step");
                        }
                        else
                        {
                            scope[f.Name] = f;
                        }
                    }
                }

                result.Add(new EnrichmentDefinition(source.Name, on, columns, types));
            }

            return result.ToImmutable();
        }

        private ImmutableArray<FieldDefinition> ReadElement(JsonElement root, ImmutableArray<EventTypeDefinition> eventTypes, Dictionary<string, Dictionary<string, FieldDefinition>> scopes)
        {
            var result = ImmutableArray.CreateBuilder<FieldDefinition>();
            if (!root.TryGetProperty("element", out var arr))
            {
                Problem("$", "missing required property 'element'", "list the columns each sequence element carries");
                return result.ToImmutable();
            }

            if (!Array(arr, "$.element"))
            {
                return result.ToImmutable();
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            int i = 0;
            foreach (var e in arr.EnumerateArray())
            {
                string path = $"$.element[{i++}]";
                string? colName;
                WeftType? declared = null;
                bool? declaredNullable = null;
                if (e.ValueKind == JsonValueKind.String)
                {
                    colName = e.GetString();
                    if (string.IsNullOrEmpty(colName))
                    {
                        Problem(path, "an element column needs a name");
                        continue;
                    }
                }
                else if (Object(e, path, "name", "type", "nullable"))
                {
                    colName = Name(e, "name", path);
                    if (e.TryGetProperty("type", out var t))
                    {
                        declared = Type(t, path + ".type");
                    }

                    if (e.TryGetProperty("nullable", out var n))
                    {
                        declaredNullable = n.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null };
                        if (declaredNullable is null)
                        {
                            Problem(path + ".nullable", $"expected true or false, got {n.ValueKind.ToString().ToLowerInvariant()}");
                        }
                    }
                }
                else
                {
                    continue;
                }

                if (string.IsNullOrEmpty(colName))
                {
                    continue;
                }

                if (!seen.Add(colName))
                {
                    Problem(path, $"duplicate element column '{colName}'");
                    continue;
                }

                if (colName is StandardColumns.EventId or StandardColumns.EventType or StandardColumns.EventTime)
                {
                    Problem(path, $"'{colName}' is always part of an element", "remove it from element");
                    continue;
                }

                if (colName is StandardColumns.UserId or StandardColumns.IngestTime)
                {
                    // Every row of the enriched table has them beside the element: a column of the same name would repeat one.
                    Problem(path, colName == StandardColumns.UserId
                        ? "'user_id' keys the sequence (every row of the enriched table has it), so it cannot also be an element column"
                        : "'ingest_time' is kept on every row of the enriched table (the known_at cut reads it), so it cannot also be an element column", "remove it from element");
                    continue;
                }

                WeftType? type = null;
                bool nullable = false;
                string? typeFrom = null;
                bool conflict = false;
                foreach (var et in eventTypes)
                {
                    if (!scopes.TryGetValue(et.Name, out var scope) || !scope.TryGetValue(colName, out var f))
                    {
                        nullable = true; // this event type does not produce it
                        continue;
                    }

                    nullable |= f.Nullable;
                    if (type is null)
                    {
                        type = f.Type;
                        typeFrom = et.Name;
                    }
                    else if (type != f.Type)
                    {
                        Problem(path, $"column '{colName}' is {type} in event type '{typeFrom}' but {f.Type} in '{et.Name}'", "cast one of them with a map step so both agree");
                        conflict = true;
                        break;
                    }
                }

                if (conflict)
                {
                    continue;
                }

                if (type is null)
                {
                    var produced = scopes.Values.SelectMany(s => s.Keys).Distinct().Where(c => c is not (StandardColumns.UserId or StandardColumns.IngestTime or StandardColumns.EventId or StandardColumns.EventType or StandardColumns.EventTime));
                    Problem(path, $"column '{colName}' is used in element but never produced by any event type or enrichment", ExprTyper.Suggest(colName, produced));
                    continue;
                }

                if (declared is { } d && d != type)
                {
                    Problem(path + ".type", $"declared type {d} does not match the produced type {type}");
                    continue;
                }

                if (declaredNullable == false && nullable)
                {
                    Problem(path + ".nullable", $"column '{colName}' is declared non-nullable but can be null (nullable input, an enrichment miss, or an event type that lacks it)");
                    continue;
                }

                // A column declared nullable stays nullable even when every producer always fills it: the
                // author reserves the right to add a producer that does not, without a breaking change.
                result.Add(new FieldDefinition(colName, type.Value, nullable || declaredNullable == true));
            }

            if (arr.GetArrayLength() == 0)
            {
                Problem("$.element", "element must list at least one column");
            }

            return result.ToImmutable();
        }

        // ---- expressions ----
        private Expr? RequiredExpr(JsonElement obj, string property, string path)
        {
            if (!obj.TryGetProperty(property, out var e))
            {
                Problem(path, $"missing required property '{property}'");
                return null;
            }

            return ReadExpr(e, $"{path}.{property}");
        }

        private Expr? ReadExpr(JsonElement e, string path)
        {
            if (e.ValueKind != JsonValueKind.Object)
            {
                Problem(path, "an expression must be an object", "{\"col\": name}, {\"lit\": value, \"type\": t} or {\"op\": name, \"args\": [...]}");
                return null;
            }

            if (e.TryGetProperty("col", out var col))
            {
                Object(e, path, "col");
                if (col.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(col.GetString()))
                {
                    Problem(path + ".col", "a column reference must be a non-empty string");
                    return null;
                }

                return Expr.Col(col.GetString()!);
            }

            if (e.TryGetProperty("lit", out var lit))
            {
                Object(e, path, "lit", "type");
                return ReadLiteral(e, lit, path);
            }

            if (e.TryGetProperty("op", out var op))
            {
                Object(e, path, "op", "args", "type");
                if (op.ValueKind != JsonValueKind.String)
                {
                    Problem(path + ".op", "must be a string");
                    return null;
                }

                var args = ImmutableArray.CreateBuilder<Expr>();
                bool ok = true;
                if (e.TryGetProperty("args", out var argsEl) && Array(argsEl, path + ".args"))
                {
                    int i = 0;
                    foreach (var a in argsEl.EnumerateArray())
                    {
                        var x = ReadExpr(a, $"{path}.args[{i++}]");
                        ok &= x is not null;
                        if (x is not null)
                        {
                            args.Add(x);
                        }
                    }
                }

                WeftType? target = null;
                if (e.TryGetProperty("type", out var t))
                {
                    if (op.GetString() == "cast")
                    {
                        target = Type(t, path + ".type");
                    }
                    else
                    {
                        Problem(path + ".type", $"only a cast takes a type; '{op.GetString()}' infers its own", "remove \"type\", or wrap the expression in {\"op\": \"cast\", \"type\": ...}");
                        ok = false;
                    }
                }

                return ok ? new CallExpr(op.GetString()!, args.ToImmutable(), target) : null;
            }

            Problem(path, "an expression needs one of 'col', 'lit' or 'op'");
            return null;
        }

        private LiteralExpr? ReadLiteral(JsonElement e, JsonElement lit, string path)
        {
            WeftType? type = e.TryGetProperty("type", out var t) ? Type(t, path + ".type") : InferLiteralType(lit);
            if (type is not { } ty)
            {
                if (!e.TryGetProperty("type", out _))
                {
                    Problem(path, "a literal needs a \"type\"", WeftType.AcceptedNames);
                }

                return null;
            }

            if (lit.ValueKind == JsonValueKind.Null)
            {
                return new LiteralExpr(null, ty);
            }

            if (ty.IsList)
            {
                Problem(path + ".type", "list literals are not supported");
                return null;
            }

            switch (ty.Kind)
            {
                case ScalarKind.Bool when lit.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    return new LiteralExpr(lit.GetBoolean(), ty);
                case ScalarKind.Int32 when lit.ValueKind == JsonValueKind.Number && lit.TryGetInt32(out int i32):
                    return new LiteralExpr((long)i32, ty);
                case ScalarKind.Int64 when lit.ValueKind == JsonValueKind.Number && lit.TryGetInt64(out long i64):
                    return new LiteralExpr(i64, ty);
                case ScalarKind.Float32 or ScalarKind.Float64 when lit.ValueKind == JsonValueKind.Number && lit.TryGetDouble(out double real)
                    && double.IsFinite(real) && (ty.Kind == ScalarKind.Float64 || Math.Abs(real) <= float.MaxValue):
                    return new LiteralExpr(real, ty);
                case ScalarKind.String when lit.ValueKind == JsonValueKind.String:
                    return new LiteralExpr(lit.GetString(), ty);
                case ScalarKind.Timestamp when lit.ValueKind == JsonValueKind.String && Timestamps.TryParseInstant(lit.GetString(), out long micros):
                    // ISO 8601 only: a form the framework would complete (a time without a date takes
                    // today's) would make the same file mean, and fingerprint, differently each day.
                    return new LiteralExpr(micros, ty);
                default:
                    Problem(path + ".lit", $"value {lit.GetRawText()} is not a valid {ty}", ty.Kind switch
                    {
                        ScalarKind.Timestamp => "timestamps are ISO-8601 strings, e.g. \"2026-01-01T00:00:00Z\"",
                        ScalarKind.Float32 or ScalarKind.Float64 => "a finite number in the type's range",
                        _ => null,
                    });
                    return null;
            }
        }

        private static WeftType? InferLiteralType(JsonElement lit) => lit.ValueKind switch
        {
            JsonValueKind.True or JsonValueKind.False => WeftType.Bool,
            JsonValueKind.String => WeftType.String,
            JsonValueKind.Number => lit.TryGetInt64(out _) ? WeftType.Int64 : WeftType.Float64,
            _ => null,
        };

        // ---- primitives ----
        private bool Object(JsonElement e, string path, params string[] known)
        {
            if (e.ValueKind != JsonValueKind.Object)
            {
                Problem(path, $"expected an object, got {Kind(e)}");
                return false;
            }

            if (known.Length > 0)
            {
                foreach (var p in e.EnumerateObject())
                {
                    if (System.Array.IndexOf(known, p.Name) < 0)
                    {
                        Problem($"{path}.{p.Name}", $"unknown property '{p.Name}'", ExprTyper.Suggest(p.Name, known));
                    }
                }
            }

            return true;
        }

        private bool Array(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                return true;
            }

            Problem(path, $"expected an array, got {Kind(e)}");
            return false;
        }

        private static string Kind(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        };

        private string? String(JsonElement obj, string property, string path, bool required)
        {
            if (!obj.TryGetProperty(property, out var v))
            {
                if (required)
                {
                    Problem(path, $"missing required property '{property}'");
                }

                return null;
            }

            if (v.ValueKind != JsonValueKind.String)
            {
                Problem($"{path}.{property}", $"expected a string, got {Kind(v)}");
                return null;
            }

            return v.GetString();
        }

        private string? Name(JsonElement obj, string property, string path)
        {
            var s = String(obj, property, path, required: true);
            if (s is null)
            {
                return null;
            }

            bool valid = s.Length is > 0 and <= 128 && char.IsAsciiLetterLower(s[0]);
            foreach (char c in s)
            {
                valid &= char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-';
            }

            if (!valid)
            {
                Problem($"{path}.{property}", $"'{s}' is not a valid name", "names start with a lower-case letter and use a-z, 0-9, '_' or '-' (they become file and column names)");
                return null;
            }

            return s;
        }

        private int Int(JsonElement obj, string property, string path, int? defaultValue, int min, string? hint = null)
        {
            long v = Long(obj, property, path, defaultValue, min, hint);
            if (v > int.MaxValue)
            {
                Problem($"{path}.{property}", $"{v} is too large");
                return min;
            }

            return (int)v;
        }

        private long Long(JsonElement obj, string property, string path, long? defaultValue, long min, string? hint = null)
        {
            if (!obj.TryGetProperty(property, out var v))
            {
                if (defaultValue is null)
                {
                    Problem(path, $"missing required property '{property}'", hint);
                    return min;
                }

                return defaultValue.Value;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n))
            {
                Problem($"{path}.{property}", $"expected an integer, got {v.GetRawText()}", hint);
                return min;
            }

            if (n < min)
            {
                Problem($"{path}.{property}", $"{property} must be ≥ {min}, got {n}", hint);
                return min;
            }

            return n;
        }

        private TimeSpan? Duration(JsonElement obj, string property, string path, TimeSpan? defaultValue, bool positive)
        {
            if (!obj.TryGetProperty(property, out var v))
            {
                if (defaultValue is null)
                {
                    Problem(path, $"missing required property '{property}'", "durations look like \"30d\", \"6h\", \"15m\", \"5s\" or \"250ms\"");
                }

                return defaultValue;
            }

            if (v.ValueKind != JsonValueKind.String || !Durations.TryParse(v.GetString(), out var d))
            {
                Problem($"{path}.{property}", $"{v.GetRawText()} is not a duration", "durations look like \"30d\", \"6h\", \"15m\", \"5s\" or \"250ms\"");
                return null;
            }

            if (positive && d <= TimeSpan.Zero)
            {
                Problem($"{path}.{property}", $"{property} must be greater than zero");
                return null;
            }

            return d;
        }

        private WeftType? Type(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.String && WeftType.TryParse(e.GetString(), out var t))
            {
                return t;
            }

            Problem(path, $"unknown type {e.GetRawText()}", WeftType.AcceptedNames);
            return null;
        }

        private FieldDefinition? Field(JsonElement e, string path)
        {
            if (!Object(e, path, "name", "type", "nullable"))
            {
                return null;
            }

            var name = Name(e, "name", path);
            WeftType? type = null;
            if (e.TryGetProperty("type", out var t))
            {
                type = Type(t, path + ".type");
            }
            else
            {
                Problem(path, "missing required property 'type'", WeftType.AcceptedNames);
            }

            bool nullable = true;
            if (e.TryGetProperty("nullable", out var n))
            {
                if (n.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    nullable = n.GetBoolean();
                }
                else
                {
                    Problem(path + ".nullable", "expected true or false");
                }
            }

            return name is null || type is null ? null : new FieldDefinition(name, type.Value, nullable);
        }

        private ImmutableArray<FieldDefinition> Fields(JsonElement obj, string property, string path, bool required)
        {
            var result = ImmutableArray.CreateBuilder<FieldDefinition>();
            if (!obj.TryGetProperty(property, out var arr))
            {
                if (required)
                {
                    Problem(path, $"missing required property '{property}'");
                }

                return result.ToImmutable();
            }

            if (!Array(arr, $"{path}.{property}"))
            {
                return result.ToImmutable();
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            int i = 0;
            foreach (var e in arr.EnumerateArray())
            {
                string fpath = $"{path}.{property}[{i++}]";
                var f = Field(e, fpath);
                if (f is null)
                {
                    continue;
                }

                if (!seen.Add(f.Name))
                {
                    Problem(fpath + ".name", $"duplicate column '{f.Name}'");
                    continue;
                }

                result.Add(f);
            }

            return result.ToImmutable();
        }

        private ImmutableArray<string> Strings(JsonElement obj, string property, string path, bool required)
        {
            var result = ImmutableArray.CreateBuilder<string>();
            if (!obj.TryGetProperty(property, out var arr))
            {
                if (required)
                {
                    Problem(path, $"missing required property '{property}'");
                }

                return result.ToImmutable();
            }

            if (!Array(arr, $"{path}.{property}"))
            {
                return result.ToImmutable();
            }

            int i = 0;
            foreach (var e in arr.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String)
                {
                    Problem($"{path}.{property}[{i}]", $"expected a string, got {Kind(e)}");
                }
                else if (result.Contains(e.GetString()!))
                {
                    Problem($"{path}.{property}[{i}]", $"duplicate '{e.GetString()}'");
                }
                else
                {
                    result.Add(e.GetString()!);
                }

                i++;
            }

            return result.ToImmutable();
        }
    }
}
