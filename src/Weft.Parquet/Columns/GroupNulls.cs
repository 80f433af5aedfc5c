namespace Weft.Parquet.Columns;

/// <summary>
/// Checks one row group's columns against the schema's groups and works out, per column, the rows where
/// an enclosing struct is null and the definition level that row's one level pair takes there.
/// </summary>
internal static class GroupNulls
{
    /// <summary>
    /// Per column: the enclosing-null levels (see <see cref="ColumnChunkWriter.Write"/>), or null when no
    /// enclosing struct is null in any row. Throws <see cref="ArgumentException"/> naming the group, map or
    /// column and the row when the flags or columns disagree.
    /// </summary>
    public static byte[]?[] Resolve(ParquetSchema schema, IReadOnlyList<ParquetColumnData> columns, IReadOnlyDictionary<string, bool[]> groupNulls, int rows)
    {
        var tree = schema.Tree;
        foreach (var (path, flags) in groupNulls)
        {
            var g = tree.IndexOf(path);
            if (g < 0)
            {
                throw Error($"Group nulls were given for '{path}', which is not a group of the schema.");
            }

            if (tree.Groups[g].Kind == ParquetGroupKind.Map)
            {
                throw Error($"Group nulls were given for the map '{path}'; a map is null where its '.key' and '.value' lists are null rows.");
            }

            if (!tree.Groups[g].Nullable)
            {
                throw Error($"Group nulls were given for '{path}', which is not nullable.");
            }

            if (flags is null || flags.Length != rows)
            {
                throw Error($"Group nulls of '{path}' have {flags?.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} flags; the row group has {rows} rows.");
            }
        }

        // A struct is null in a row when it or an enclosing one is; the outermost null one sets the level.
        var levels = new byte[]?[tree.Groups.Length];
        foreach (var g in tree.TopDown)
        {
            var group = tree.Groups[g];
            var outer = tree.Parent[g] < 0 ? null : levels[tree.Parent[g]];
            if (group.Kind == ParquetGroupKind.Map || !groupNulls.TryGetValue(group.Path, out var flags) || !flags.AsSpan().Contains(true))
            {
                levels[g] = outer;
                continue;
            }

            var own = outer is null ? NewNotNull(rows) : (byte[])outer.Clone();
            var level = (byte)tree.DefinitionAbove[g];
            for (var i = 0; i < rows; i++)
            {
                own[i] = flags[i] && own[i] == GroupTree.NotNull ? level : own[i];
            }

            levels[g] = own;
        }

        var result = new byte[]?[columns.Count];
        for (var c = 0; c < columns.Count; c++)
        {
            var s = tree.StructOf(c);
            var enclosing = result[c] = s < 0 ? null : levels[s];
            if (enclosing is not null)
            {
                CheckNullUnderNullGroup(tree, columns[c], c, enclosing);
            }
        }

        for (var m = 0; m < tree.Groups.Length; m++)
        {
            if (tree.Groups[m].Kind == ParquetGroupKind.Map)
            {
                CheckMap(tree, columns, m, tree.Parent[m] < 0 ? null : levels[tree.Parent[m]]);
            }
        }

        return result;
    }

    private static byte[] NewNotNull(int rows)
    {
        var levels = new byte[rows];
        levels.AsSpan().Fill(GroupTree.NotNull);
        return levels;
    }

    private static void CheckNullUnderNullGroup(GroupTree tree, ParquetColumnData column, int index, byte[] enclosing)
    {
        var nulls = column.Nulls;
        for (var i = 0; i < enclosing.Length; i++)
        {
            if (enclosing[i] != GroupTree.NotNull && (nulls is null || !nulls[i]))
            {
                throw Error(
                    $"Column '{column.Field.Name}' is not null in row {i}, where its enclosing group '{NullGroup(tree, tree.StructOf(index), enclosing[i])}' is null; "
                    + "a value inside a null struct must be null (a list: a null list).");
            }
        }
    }

    /// <summary>The outermost null struct of a row, from the level it set.</summary>
    private static string NullGroup(GroupTree tree, int innermost, byte level)
    {
        var chain = tree.Chain(innermost);
        return tree.Groups[chain.First(g => tree.Groups[g].Nullable && tree.DefinitionAbove[g] == level)].Path;
    }

    private static void CheckMap(GroupTree tree, IReadOnlyList<ParquetColumnData> columns, int m, byte[]? enclosing)
    {
        var map = tree.Groups[m];
        var key = Array.FindIndex(tree.FieldGroup, g => g == m);
        var keys = columns[key];
        var values = columns[key + 1];
        var keyOffsets = keys.Offsets!;
        var valueOffsets = values.Offsets!;
        for (var i = 0; i < keys.RowCount; i++)
        {
            var keyNull = keys.Nulls is { } kn && kn[i];
            if (keyNull != (values.Nulls is { } vn && vn[i]))
            {
                throw Error(
                    $"Map '{map.Path}': row {i} is {(keyNull ? "null" : "not null")} in '{keys.Field.Name}' but {(keyNull ? "not null" : "null")} in '{values.Field.Name}'; "
                    + "a map's key and value lists are null in the same rows.");
            }

            var keyCount = keyOffsets[i + 1] - keyOffsets[i];
            var valueCount = valueOffsets[i + 1] - valueOffsets[i];
            if (keyCount != valueCount)
            {
                throw Error($"Map '{map.Path}': row {i} has {keyCount} keys in '{keys.Field.Name}' but {valueCount} values in '{values.Field.Name}'.");
            }

            if (keyNull && !map.Nullable && (enclosing is null || enclosing[i] == GroupTree.NotNull))
            {
                throw Error($"Map '{map.Path}' is not nullable, but its lists are null in row {i}, where no enclosing group is null.");
            }
        }
    }

    private static ArgumentException Error(string message) => new(message, "columns");
}
