namespace Weft.Parquet.Columns;

/// <summary>
/// Dremel shredding and assembly for list columns of depth 1 (<c>list&lt;T&gt;</c>) and 2
/// (<c>list&lt;list&lt;T&gt;&gt;</c>); see <see cref="ColumnDescriptor"/> for the level meanings.
/// Every row, inner list and element slot becomes one (repetition, definition) pair, except that a
/// list with entries is represented by its entries: a null or empty list takes one pair of its own.
/// </summary>
internal static class ListLevels
{
    /// <summary>The number of level pairs <paramref name="column"/> shreds into.</summary>
    public static int Count(ParquetColumnData column)
    {
        // Each element slot takes one pair; each row without entries and each inner list without
        // elements takes one more.
        var count = (long)column.Values.Length + EmptyLists(column.Offsets!);
        if (column.InnerOffsets is { } inner)
        {
            count += EmptyLists(inner);
        }

        return checked((int)count);
    }

    /// <summary>
    /// Writes the repetition and definition levels of every row (<see cref="Count"/> pairs). A list inside
    /// structs passes <paramref name="enclosingNulls"/>: per row, the definition level at which an enclosing
    /// group is null (<see cref="GroupTree.NotNull"/> when none is); such a row's list is null, and its one
    /// level pair takes that lower level instead of the list's own null level.
    /// </summary>
    public static void Shred(ParquetColumnData column, ColumnDescriptor descriptor, Span<byte> defs, Span<byte> reps, byte[]? enclosingNulls = null)
    {
        var offsets = column.Offsets!;
        var nulls = column.Nulls;
        var elementNulls = column.ElementNulls;
        var present = descriptor.ListPresentLevels;
        var maxDef = (byte)descriptor.MaxDefinitionLevel;
        var l = 0;
        if (column.InnerOffsets is not { } inner)
        {
            var empty0 = (byte)present[0];
            for (var i = 0; i < column.RowCount; i++)
            {
                var start = offsets[i];
                var length = offsets[i + 1] - start;
                if (length == 0)
                {
                    defs[l] = nulls is not null && nulls[i] ? NullLevel(enclosingNulls, i, empty0) : empty0;
                    reps[l++] = 0;
                    continue;
                }

                Elements(defs.Slice(l, length), reps.Slice(l, length), first: 0, next: 1, maxDef, elementNulls, start);
                l += length;
            }

            return;
        }

        var innerNulls = column.InnerNulls;
        var empty = (byte)present[0];
        var innerEmpty = (byte)present[1];
        for (var i = 0; i < column.RowCount; i++)
        {
            var first = offsets[i];
            var end = offsets[i + 1];
            if (first == end)
            {
                defs[l] = nulls is not null && nulls[i] ? NullLevel(enclosingNulls, i, empty) : empty;
                reps[l++] = 0;
                continue;
            }

            for (var j = first; j < end; j++)
            {
                var rep = j == first ? (byte)0 : (byte)1;
                var start = inner[j];
                var length = inner[j + 1] - start;
                if (length == 0)
                {
                    defs[l] = innerNulls is not null && innerNulls[j] ? (byte)(innerEmpty - 1) : innerEmpty;
                    reps[l++] = rep;
                    continue;
                }

                Elements(defs.Slice(l, length), reps.Slice(l, length), rep, next: 2, maxDef, elementNulls, start);
                l += length;
            }
        }
    }

    /// <summary>
    /// Rebuilds a list column from its levels and its present values (<paramref name="present"/>, one per
    /// definition level equal to the maximum). Throws <see cref="ParquetFormatException"/> when the levels
    /// are inconsistent with each other, with the row count or with the value count.
    /// </summary>
    public static ParquetColumnData Assemble<T>(
        ColumnDescriptor descriptor, long rowCount, ReadOnlySpan<byte> defLevels, ReadOnlySpan<byte> repLevels, ReadOnlySpan<T> present)
    {
        var depth = descriptor.MaxRepetitionLevel;
        var presentLevels = descriptor.ListPresentLevels;
        var maxDef = descriptor.MaxDefinitionLevel;
        var leafSlot = presentLevels[depth - 1] + 1;
        var innerSlot = presentLevels[0] + 1;

        // Counting pass: exactly the rows, inner lists and element slots the assembly pass creates.
        long rows = 0, innerLists = 0, slots = 0, values = 0;
        for (var i = 0; i < repLevels.Length; i++)
        {
            var r = repLevels[i];
            var d = defLevels[i];
            rows += r == 0 ? 1 : 0;
            innerLists += r <= 1 && d >= innerSlot ? 1 : 0;
            slots += d >= leafSlot ? 1 : 0;
            values += d == maxDef ? 1 : 0;
        }

        if (rows != rowCount)
        {
            ThrowHelper.Format($"the chunk's repetition levels hold {rows} rows, the row group {rowCount}");
        }

        if (values != present.Length)
        {
            ThrowHelper.Format($"the chunk decoded {present.Length} elements where its levels describe {values}");
        }

        var offsets = new int[rows + 1];
        var inner = depth == 2 ? new int[innerLists + 1] : null;
        bool[]? nulls = null, innerNulls = null, elementNulls = null;

        // Without null elements the present values are the elements; otherwise spread them over their slots.
        var spread = slots == values ? null : new T[slots];
        int row = -1, innerCount = 0, slot = 0, value = 0;
        bool open0 = false, open1 = false;
        for (var i = 0; i < repLevels.Length; i++)
        {
            var r = repLevels[i];
            var d = defLevels[i];
            if (r > 0 && (!(r == 1 ? open0 : open1) || d <= presentLevels[r - 1]))
            {
                ThrowHelper.Format($"list levels at position {i} continue a list that is null or empty");
            }

            if (r == 0)
            {
                row++;
                offsets[row] = depth == 1 ? slot : innerCount;
                open0 = d > presentLevels[0];
                open1 = false;
                if (!open0)
                {
                    if (d < presentLevels[0])
                    {
                        nulls ??= new bool[rows];
                        nulls[row] = true;
                    }

                    continue;
                }
            }

            if (depth == 2 && r <= 1)
            {
                inner![innerCount] = slot;
                open1 = d > presentLevels[1];
                if (!open1)
                {
                    if (d < presentLevels[1])
                    {
                        innerNulls ??= new bool[innerLists];
                        innerNulls[innerCount] = true;
                    }

                    innerCount++;
                    continue;
                }

                innerCount++;
            }

            if (d == maxDef)
            {
                if (spread is not null)
                {
                    spread[slot] = present[value];
                }

                value++;
            }
            else
            {
                elementNulls ??= new bool[slots];
                elementNulls[slot] = true;
            }

            slot++;
        }

        offsets[rows] = depth == 1 ? slot : innerCount;
        if (inner is not null)
        {
            inner[innerLists] = slot;
        }

        return ParquetColumnData.CreateTrusted(
            descriptor.Field, spread ?? present.ToArray(), nulls, offsets, innerNulls, inner, elementNulls);
    }

    private static byte NullLevel(byte[]? enclosingNulls, int row, byte empty) =>
        enclosingNulls is not null && enclosingNulls[row] != GroupTree.NotNull ? enclosingNulls[row] : (byte)(empty - 1);

    private static void Elements(Span<byte> defs, Span<byte> reps, byte first, byte next, byte maxDef, bool[]? elementNulls, int start)
    {
        defs.Fill(maxDef);
        reps.Fill(next);
        reps[0] = first;
        if (elementNulls is null)
        {
            return;
        }

        var flags = elementNulls.AsSpan(start, defs.Length);
        for (var k = flags.IndexOf(true); k >= 0; k = NextTrue(flags, k))
        {
            defs[k] = (byte)(maxDef - 1);
        }
    }

    private static int NextTrue(ReadOnlySpan<bool> flags, int after)
    {
        var k = flags[(after + 1)..].IndexOf(true);
        return k < 0 ? -1 : after + 1 + k;
    }

    private static int EmptyLists(int[] offsets)
    {
        var empty = 0;
        for (var i = 0; i < offsets.Length - 1; i++)
        {
            empty += offsets[i] == offsets[i + 1] ? 1 : 0;
        }

        return empty;
    }
}
