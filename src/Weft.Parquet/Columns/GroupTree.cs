namespace Weft.Parquet.Columns;

/// <summary>
/// The group nodes of a <see cref="ParquetSchema"/> and where each field sits among them. Fields are the
/// leaves of the tree in depth-first order, so every group's fields are contiguous. A schema built
/// without groups has an empty tree and its field names are taken as they are, dots included.
/// </summary>
internal sealed class GroupTree
{
    /// <summary>In a per-row enclosing-null array: no enclosing group is null in that row.</summary>
    public const byte NotNull = byte.MaxValue;

    private readonly Dictionary<string, int> _byPath;

    private GroupTree(ParquetGroup[] groups, Dictionary<string, int> byPath, int[] parent, int[] fieldGroup)
    {
        Groups = groups;
        _byPath = byPath;
        Parent = parent;
        FieldGroup = fieldGroup;
        DefinitionAbove = new int[groups.Length];
        Children = new int[groups.Length];
        TopDown = Enumerable.Range(0, groups.Length).OrderBy(g => Depth(g)).ToArray();
        foreach (var g in TopDown)
        {
            var p = parent[g];
            DefinitionAbove[g] = p < 0 ? 0 : DefinitionAbove[p] + (groups[p].Nullable ? 1 : 0);
            if (p < 0)
            {
                RootChildren++;
            }
            else
            {
                Children[p]++;
            }
        }

        foreach (var g in fieldGroup)
        {
            if (g < 0)
            {
                RootChildren++;
            }
            else
            {
                Children[g]++;
            }
        }
    }

    public static GroupTree Empty(int fields) => new([], new Dictionary<string, int>(StringComparer.Ordinal), [], Enumerable.Repeat(-1, fields).ToArray());

    public ParquetGroup[] Groups { get; }

    /// <summary>Each group's enclosing group, or -1 at the top level.</summary>
    public int[] Parent { get; }

    /// <summary>Each field's innermost group, or -1 for a top-level field.</summary>
    public int[] FieldGroup { get; }

    /// <summary>Each group's optional ancestors: the definition level of a row where the group itself is null.</summary>
    public int[] DefinitionAbove { get; }

    /// <summary>Each group's direct children (groups and fields).</summary>
    public int[] Children { get; }

    public int RootChildren { get; }

    /// <summary>Group indices, every group after its enclosing one.</summary>
    public int[] TopDown { get; }

    public int IndexOf(string path) => _byPath.TryGetValue(path, out var g) ? g : -1;

    /// <summary>The name of a field's own node: its last dotted segment in a grouped schema.</summary>
    public string LocalName(ParquetField field, int index) =>
        FieldGroup[index] < 0 ? field.Name : field.Name[(Groups[FieldGroup[index]].Path.Length + 1)..];

    public string LocalName(int group) => Parent[group] < 0 ? Groups[group].Path : Groups[group].Path[(Groups[Parent[group]].Path.Length + 1)..];

    /// <summary>The groups from the outermost down to <paramref name="group"/> (none for -1).</summary>
    public List<int> Chain(int group)
    {
        var chain = new List<int>();
        for (var g = group; g >= 0; g = Parent[g])
        {
            chain.Add(g);
        }

        chain.Reverse();
        return chain;
    }

    /// <summary>The map a field is the key or value list of, or -1.</summary>
    public int MapOf(int field) => FieldGroup[field] is var g and >= 0 && Groups[g].Kind == ParquetGroupKind.Map ? g : -1;

    /// <summary>The innermost struct around a field (above its map, for a map's keys and values), or -1.</summary>
    public int StructOf(int field) => MapOf(field) is var m and >= 0 ? Parent[m] : FieldGroup[field];

    /// <summary>
    /// The optional groups around a field's own node (a map's keys and values: around the map, whose own
    /// optionality is the list level's).
    /// </summary>
    public int EnclosingDefinition(int field)
    {
        if (MapOf(field) is var m and >= 0)
        {
            return DefinitionAbove[m];
        }

        var g = FieldGroup[field];
        return g < 0 ? 0 : DefinitionAbove[g] + (Groups[g].Nullable ? 1 : 0);
    }

    /// <summary>Checks the groups against the fields (see <see cref="ParquetSchema(IReadOnlyList{ParquetField}, IReadOnlyList{ParquetGroup})"/>).</summary>
    public static GroupTree Build(ParquetField[] fields, IReadOnlyList<ParquetGroup> declared)
    {
        var groups = new ParquetGroup[declared.Count];
        var byPath = new Dictionary<string, int>(declared.Count, StringComparer.Ordinal);
        for (var g = 0; g < groups.Length; g++)
        {
            var group = declared[g] ?? throw Error($"Group {g} is null.");
            if (string.IsNullOrEmpty(group.Path) || group.Path.Split('.').Any(s => s.Length == 0))
            {
                throw Error($"Group {g} has the path '{group.Path}'; a group path is one or more non-empty names joined by dots.");
            }

            if (!Enum.IsDefined(group.Kind))
            {
                throw Error($"Group '{group.Path}' has unknown kind {group.Kind}.");
            }

            if (!byPath.TryAdd(group.Path, g))
            {
                throw Error($"Group '{group.Path}' is declared more than once.");
            }

            groups[g] = group;
        }

        var parent = new int[groups.Length];
        for (var g = 0; g < groups.Length; g++)
        {
            parent[g] = Enclosing(groups[g].Path, $"Group '{groups[g].Path}'", groups, byPath);
            if (parent[g] >= 0 && groups[parent[g]].Kind == ParquetGroupKind.Map)
            {
                throw Error($"Group '{groups[g].Path}' is inside the map '{groups[parent[g]].Path}', which holds only its '.key' and '.value' list fields.");
            }
        }

        var fieldGroup = new int[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            var name = fields[i].Name;
            if (byPath.ContainsKey(name))
            {
                throw Error($"Field '{name}' has the path of a declared group.");
            }

            if (name.Split('.').Any(s => s.Length == 0))
            {
                throw Error($"Field '{name}' has an empty name between dots; in a schema with groups, dots separate group names.");
            }

            fieldGroup[i] = Enclosing(name, $"Field '{name}'", groups, byPath);
        }

        var tree = new GroupTree(groups, byPath, parent, fieldGroup);
        tree.CheckContiguous(fields);
        tree.CheckNullability(fields);
        tree.CheckMaps(fields);
        return tree;
    }

    private static int Enclosing(string path, string what, ParquetGroup[] groups, Dictionary<string, int> byPath)
    {
        var dot = path.LastIndexOf('.');
        if (dot < 0)
        {
            return -1;
        }

        var prefix = path[..dot];
        return byPath.TryGetValue(prefix, out var g)
            ? g
            : throw Error($"{what} is inside '{prefix}', which is not a declared group; declare it as a {nameof(ParquetGroup)} (groups: {string.Join(", ", groups.Select(x => x.Path))}).");
    }

    private static ArgumentException Error(string message) => new(message, "groups");

    private int Depth(int group)
    {
        var depth = 0;
        for (var g = Parent[group]; g >= 0; g = Parent[g])
        {
            depth++;
        }

        return depth;
    }

    // The schema tree is written depth-first in field order, so a group's fields must not be split by others.
    private void CheckContiguous(ParquetField[] fields)
    {
        var first = Enumerable.Repeat(-1, Groups.Length).ToArray();
        var last = new int[Groups.Length];
        var count = new int[Groups.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            for (var g = FieldGroup[i]; g >= 0; g = Parent[g])
            {
                first[g] = first[g] < 0 ? i : first[g];
                last[g] = i;
                count[g]++;
            }
        }

        for (var g = 0; g < Groups.Length; g++)
        {
            if (first[g] < 0)
            {
                throw Error($"Group '{Groups[g].Path}' has no fields; a Parquet group needs at least one.");
            }

            if (last[g] - first[g] + 1 == count[g])
            {
                continue;
            }

            var prefix = Groups[g].Path + ".";
            var stray = Enumerable.Range(first[g], last[g] - first[g]).First(i => !fields[i].Name.StartsWith(prefix, StringComparison.Ordinal));
            throw Error(
                $"The fields of group '{Groups[g].Path}' are not contiguous: '{fields[stray].Name}' (field {stray}) sits between '{fields[first[g]].Name}' and '{fields[last[g]].Name}'. "
                + "Order the fields depth first, each group's fields together.");
        }
    }

    // A field inside a nullable group is null wherever the group is, so it must be able to hold nulls.
    private void CheckNullability(ParquetField[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (MapOf(i) >= 0 || fields[i].Nullable)
            {
                continue;
            }

            for (var g = FieldGroup[i]; g >= 0; g = Parent[g])
            {
                if (Groups[g].Nullable)
                {
                    throw Error($"Field '{fields[i].Name}' is inside the nullable group '{Groups[g].Path}', so it is null wherever that group is: declare it Nullable.");
                }
            }
        }
    }

    private void CheckMaps(ParquetField[] fields)
    {
        for (var m = 0; m < Groups.Length; m++)
        {
            var map = Groups[m];
            if (map.Kind != ParquetGroupKind.Map)
            {
                continue;
            }

            var members = Enumerable.Range(0, fields.Length).Where(i => FieldGroup[i] == m).ToArray();
            var key = map.Path + ".key";
            var value = map.Path + ".value";
            if (members.Length != 2 || fields[members[0]].Name != key || fields[members[1]].Name != value)
            {
                throw Error(
                    $"Map '{map.Path}' must have exactly the fields '{key}' then '{value}'; it has {string.Join(", ", members.Select(i => $"'{fields[i].Name}'"))}.");
            }

            // Inside a nullable struct the lists are null with it, as the reader reads them.
            var nullable = map.Nullable || DefinitionAbove[m] > 0;
            foreach (var i in members)
            {
                var f = fields[i];
                if (f.ListDepth != 1)
                {
                    throw Error($"Map field '{f.Name}' is {f.TypeName}; a map's keys and values are each a list (ListDepth 1) of primitives, one list per row.");
                }

                if (f.Nullable != nullable)
                {
                    throw Error(
                        $"Map field '{f.Name}' has Nullable = {f.Nullable}; it must be {nullable}, as the map '{map.Path}' {(map.Nullable ? "is nullable" : DefinitionAbove[m] > 0 ? "is inside a nullable group" : "is not nullable")}.");
                }
            }

            if (fields[members[0]].ElementNullable)
            {
                throw Error($"Map field '{key}' has ElementNullable; map keys cannot be null.");
            }
        }
    }
}
