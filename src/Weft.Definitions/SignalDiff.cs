namespace Weft.Definitions;

public enum ChangeKind
{
    None,
    Additive,
    Compatible,
    Breaking,
}

public sealed record SignalChange(ChangeKind Kind, string Path, string Reason)
{
    public override string ToString() => $"{Kind.ToString().ToLowerInvariant(),-10} {Path}: {Reason}";
}

/// <summary>
/// Classifies the change between two versions of a signal. Additive: consumers see new columns or
/// event types and nothing they read changes. Compatible: same schema, different contents or
/// operational settings (filters, windows, budgets). Breaking: a consumer reading the old schema or
/// layout would break (removed or retyped columns, a different bucket or owner); it needs a new version.
/// </summary>
public static class SignalDiff
{
    public sealed record Result(ChangeKind Overall, IReadOnlyList<SignalChange> Changes, bool NeedsNewVersion);

    public static Result Compare(SignalDefinition old, SignalDefinition @new)
    {
        var changes = new List<SignalChange>();
        void Add(ChangeKind kind, string path, string reason) => changes.Add(new SignalChange(kind, path, reason));

        if (old.Name != @new.Name)
        {
            Add(ChangeKind.Breaking, "$.name", $"renamed '{old.Name}' → '{@new.Name}': a different signal to every consumer");
        }

        if (old.Tenant != @new.Tenant)
        {
            Add(ChangeKind.Breaking, "$.tenant", $"owner changed '{old.Tenant}' → '{@new.Tenant}': the old tenant loses access");
        }

        // Element columns: the schema every consumer reads.
        var oldElement = old.Element.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var newElement = @new.Element.ToDictionary(f => f.Name, StringComparer.Ordinal);
        foreach (var f in old.Element)
        {
            if (!newElement.TryGetValue(f.Name, out var nf))
            {
                Add(ChangeKind.Breaking, $"$.element.{f.Name}", $"column '{f.Name}' removed: consumers reading it break");
            }
            else if (nf.Type != f.Type)
            {
                Add(ChangeKind.Breaking, $"$.element.{f.Name}.type", $"column '{f.Name}' changed type {f.Type} → {nf.Type}: stored partitions and readers disagree");
            }
            else if (!f.Nullable && nf.Nullable)
            {
                Add(ChangeKind.Breaking, $"$.element.{f.Name}.nullable", $"column '{f.Name}' became nullable: readers that assume a value break");
            }
            else if (f.Nullable && !nf.Nullable)
            {
                Add(ChangeKind.Compatible, $"$.element.{f.Name}.nullable", $"column '{f.Name}' is no longer nullable");
            }
        }

        foreach (var f in @new.Element)
        {
            if (!oldElement.ContainsKey(f.Name))
            {
                Add(ChangeKind.Additive, $"$.element.{f.Name}", $"column '{f.Name}' ({f.Type}) added");
            }
        }

        if (!old.Element.Select(f => f.Name).Where(newElement.ContainsKey).SequenceEqual(@new.Element.Select(f => f.Name).Where(oldElement.ContainsKey)))
        {
            Add(ChangeKind.Compatible, "$.element", "column order changed (readers address columns by name)");
        }

        // Event types.
        var oldTypes = old.EventTypes.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var newTypes = @new.EventTypes.ToDictionary(e => e.Name, StringComparer.Ordinal);
        foreach (var et in old.EventTypes)
        {
            if (!newTypes.TryGetValue(et.Name, out var net))
            {
                Add(ChangeKind.Breaking, $"$.event_types.{et.Name}", $"event type '{et.Name}' removed: its events disappear from sequences");
                continue;
            }

            var oldRaw = et.RawSchema.ToDictionary(f => f.Name, StringComparer.Ordinal);
            var newRaw = net.RawSchema.ToDictionary(f => f.Name, StringComparer.Ordinal);
            foreach (var f in et.RawSchema)
            {
                if (!newRaw.TryGetValue(f.Name, out var nf))
                {
                    Add(ChangeKind.Compatible, $"$.event_types.{et.Name}.raw_schema.{f.Name}", $"raw attribute '{f.Name}' no longer read");
                }
                else if (nf.Type != f.Type)
                {
                    Add(ChangeKind.Breaking, $"$.event_types.{et.Name}.raw_schema.{f.Name}.type", $"raw attribute '{f.Name}' changed type {f.Type} → {nf.Type}: archived raw data no longer parses the same");
                }
                else if (f.Nullable && !nf.Nullable)
                {
                    Add(ChangeKind.Compatible, $"$.event_types.{et.Name}.raw_schema.{f.Name}.nullable", $"raw attribute '{f.Name}' became required: events without it are now dead letters");
                }
                else if (!f.Nullable && nf.Nullable)
                {
                    Add(ChangeKind.Compatible, $"$.event_types.{et.Name}.raw_schema.{f.Name}.nullable", $"raw attribute '{f.Name}' became optional: events without it, dead letters before, are now kept");
                }
            }

            foreach (var f in net.RawSchema)
            {
                if (!oldRaw.ContainsKey(f.Name))
                {
                    // A required attribute is not additive: every event without it, the archived history included, becomes a dead letter.
                    Add(f.Nullable ? ChangeKind.Additive : ChangeKind.Compatible, $"$.event_types.{et.Name}.raw_schema.{f.Name}", f.Nullable
                        ? $"raw attribute '{f.Name}' added"
                        : $"raw attribute '{f.Name}' added as required: events without it, archived ones included, are now dead letters");
                }
            }

            if (!et.ColumnMapping.SequenceEqual(net.ColumnMapping))
            {
                Add(ChangeKind.Compatible, $"$.event_types.{et.Name}.column_mapping", "raw column mapping changed");
            }

            if (StepsJson(et) != StepsJson(net))
            {
                Add(ChangeKind.Compatible, $"$.event_types.{et.Name}.steps", "executor chain changed (filter, mapping or derivation): contents differ, schema does not; backfill to rewrite history");
            }
        }

        foreach (var et in @new.EventTypes)
        {
            if (!oldTypes.ContainsKey(et.Name))
            {
                Add(ChangeKind.Additive, $"$.event_types.{et.Name}", $"event type '{et.Name}' added");
            }
        }

        // Enrichments.
        var oldEnrich = old.Enrichments.Select(e => $"{e.Source} on {e.On}: {string.Join(",", e.Columns)} [{string.Join(",", e.EventTypes)}]").ToHashSet();
        var newEnrich = @new.Enrichments.Select(e => $"{e.Source} on {e.On}: {string.Join(",", e.Columns)} [{string.Join(",", e.EventTypes)}]").ToHashSet();
        foreach (var e in oldEnrich.Except(newEnrich))
        {
            Add(ChangeKind.Compatible, "$.enrichments", $"enrichment '{e}' removed or changed");
        }

        foreach (var e in newEnrich.Except(oldEnrich))
        {
            Add(ChangeKind.Additive, "$.enrichments", $"enrichment '{e}' added");
        }

        foreach (var src in old.EnrichmentSources)
        {
            var ns = @new.EnrichmentSources.FirstOrDefault(s => s.Name == src.Name);
            if (ns is not null && ns.Key.Type != src.Key.Type)
            {
                Add(ChangeKind.Breaking, $"$.enrichment_sources.{src.Name}.key", $"key type changed {src.Key.Type} → {ns.Key.Type}");
            }
            else if (ns is not null && ns.Key.Name != src.Key.Name)
            {
                Add(ChangeKind.Compatible, $"$.enrichment_sources.{src.Name}.key.name", $"the source is keyed by its column '{ns.Key.Name}', not '{src.Key.Name}': which rows events join with can change");
            }

            if (ns is not null && ns.VersionColumn != src.VersionColumn)
            {
                Add(ChangeKind.Compatible, $"$.enrichment_sources.{src.Name}.version_column", $"versions are read from '{ns.VersionColumn}', not '{src.VersionColumn}': which version an event is joined with can change");
            }

            if (ns is not null && !ns.Columns.SequenceEqual(src.Columns))
            {
                Add(ChangeKind.Compatible, $"$.enrichment_sources.{src.Name}.columns", "the source's columns or their types changed");
            }
        }

        // Assembly and layout.
        if (old.Bucket != @new.Bucket)
        {
            Add(ChangeKind.Breaking, "$.bucket", $"time bucket changed {BucketName(old.Bucket)} → {BucketName(@new.Bucket)}: the partition layout of stored tables changes");
        }

        Setting(changes, "$.max_length", old.MaxLength, @new.MaxLength, "sequences are truncated differently");
        Setting(changes, "$.lookback", Durations.Format(old.Lookback), Durations.Format(@new.Lookback), "the window of events changes");
        Setting(changes, "$.late_allowance", Durations.Format(old.LateAllowance), Durations.Format(@new.LateAllowance), "buckets seal at a different time");
        Setting(changes, "$.merge", SignalJsonWriter.MergeName(old.Merge), SignalJsonWriter.MergeName(@new.Merge), "stream and batch reconcile differently");
        Setting(changes, "$.late_policy", LatePolicyNames.Name(old.Late), LatePolicyNames.Name(@new.Late), "the stream treats late events differently");
        Setting(changes, "$.freshness_objective", Durations.Format(old.FreshnessObjective), Durations.Format(@new.FreshnessObjective), "the freshness objective changes");
        Setting(changes, "$.budgets.max_elements", old.Budgets.MaxElements, @new.Budgets.MaxElements, "budgets change");
        Setting(changes, "$.budgets.max_bytes_per_user", old.Budgets.MaxBytesPerUser, @new.Budgets.MaxBytesPerUser, "budgets change");
        Setting(changes, "$.budgets.hot_user_max_events_per_hour", old.Budgets.HotUserMaxEventsPerHour, @new.Budgets.HotUserMaxEventsPerHour, "budgets change");
        if (old.Description != @new.Description)
        {
            Add(ChangeKind.Compatible, "$.description", "description changed");
        }

        bool raisedVersion = false;
        if (@new.Version < old.Version)
        {
            Add(ChangeKind.Breaking, "$.version", $"version went down {old.Version} → {@new.Version}: versions order a signal's definitions, and a lower one can name a layout consumers already knew as another");
        }
        else if (@new.Version > old.Version)
        {
            // Named, but it classes the change only when it is the whole of it: a column added under a new version is still additive.
            raisedVersion = true;
            Add(ChangeKind.Compatible, "$.version", $"version {old.Version} → {@new.Version}");
        }

        if (changes.Count == 0 && SignalJsonWriter.Fingerprint(old) != SignalJsonWriter.Fingerprint(@new))
        {
            // Whatever the rules above do not name still changes what runs: never answer "none" to a new fingerprint.
            Add(ChangeKind.Compatible, "$", "the canonical JSON differs (a new fingerprint) in a part the rules above do not classify; compare the two files");
        }

        var overall = changes.Count == 0 ? ChangeKind.None
            : raisedVersion && changes.Count > 1 ? changes.Where(c => c.Path != "$.version").Max(c => c.Kind)
            : changes.Max(c => c.Kind);
        bool needsVersion = overall == ChangeKind.Breaking && @new.Version <= old.Version;
        return new Result(overall, changes, needsVersion);
    }

    private static void Setting<T>(List<SignalChange> changes, string path, T a, T b, string reason)
    {
        if (!EqualityComparer<T>.Default.Equals(a, b))
        {
            changes.Add(new SignalChange(ChangeKind.Compatible, path, $"{a} → {b}: {reason}"));
        }
    }

    private static string BucketName(TimeBucket bucket) => bucket == TimeBucket.Hour ? "hour" : "day";

    private static string StepsJson(EventTypeDefinition et)
    {
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { MaxDepth = SignalJsonReader.MaxDepth }))
        {
            w.WriteStartArray();
            foreach (var s in et.Steps)
            {
                switch (s)
                {
                    case FilterStep f:
                        w.WriteStringValue("filter");
                        SignalJsonWriter.WriteExpr(w, f.Where);
                        break;
                    case DeriveStep d:
                        w.WriteStringValue("derive " + d.Name);
                        SignalJsonWriter.WriteExpr(w, d.Expr);
                        break;
                    case MapStep m:
                        w.WriteStringValue("map " + string.Join(",", m.Columns.Select(c => $"{c.Name}<-{c.From}:{c.Cast}")));
                        break;
                    case CustomStep c:
                        w.WriteStringValue($"custom {c.Executor} {string.Join(",", c.Args.Select(a => $"{a.Key}={a.Value}"))} produces {string.Join(",", c.Produces.Select(p => $"{p.Name}:{p.Type}{(p.Nullable ? "?" : "")}"))}");
                        break;
                }
            }

            w.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
