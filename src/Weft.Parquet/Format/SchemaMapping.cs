using System.Globalization;
using Weft.Parquet.Columns;

namespace Weft.Parquet.Format;

/// <summary>Maps between <see cref="ParquetSchema"/> and Parquet's flattened SchemaElement list.</summary>
internal static class SchemaMapping
{
    /// <summary>
    /// The schema tree depth first: each group opens before its first field (the schema keeps a group's
    /// fields contiguous) and closes after its last.
    /// </summary>
    public static List<SchemaElement> ToElements(ParquetSchema schema)
    {
        var tree = schema.Tree;
        var elements = new List<SchemaElement>(schema.Fields.Count * 3 + tree.Groups.Length * 2 + 1)
        {
            new() { Name = "schema", NumChildren = tree.RootChildren },
        };
        var open = new List<int>();
        for (var i = 0; i < schema.Fields.Count; i++)
        {
            var field = schema.Fields[i];
            var chain = tree.Chain(tree.FieldGroup[i]);
            var shared = 0;
            while (shared < open.Count && shared < chain.Count && open[shared] == chain[shared])
            {
                shared++;
            }

            open.RemoveRange(shared, open.Count - shared);
            foreach (var g in chain.Skip(shared))
            {
                open.Add(g);
                AddGroup(elements, tree, g);
            }

            var name = tree.LocalName(field, i);
            if (tree.MapOf(i) >= 0)
            {
                // The map group holds the list level; key and value are the entry's leaves.
                elements.Add(Leaf(name, field.Type, name == "key" ? Repetition.Required : Optional(field.ElementNullable)));
            }
            else if (field.IsList)
            {
                elements.Add(ListGroup(name, Optional(field.Nullable)));
                elements.Add(new SchemaElement { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 });
                if (field.ListDepth == 2)
                {
                    elements.Add(ListGroup("element", Optional(field.InnerListNullable)));
                    elements.Add(new SchemaElement { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 });
                }

                elements.Add(Leaf("element", field.Type, Optional(field.ElementNullable)));
            }
            else
            {
                elements.Add(Leaf(name, field.Type, Optional(field.Nullable)));
            }
        }

        return elements;
    }

    private static void AddGroup(List<SchemaElement> elements, GroupTree tree, int g)
    {
        var group = tree.Groups[g];
        if (group.Kind == ParquetGroupKind.Struct)
        {
            elements.Add(new SchemaElement { Name = tree.LocalName(g), RepetitionType = Optional(group.Nullable), NumChildren = tree.Children[g] });
            return;
        }

        elements.Add(new SchemaElement
        {
            Name = tree.LocalName(g),
            RepetitionType = Optional(group.Nullable),
            NumChildren = 1,
            ConvertedType = ConvertedType.Map,
            LogicalType = new LogicalType { Kind = LogicalType.Map },
        });
        elements.Add(new SchemaElement { Name = "key_value", RepetitionType = Repetition.Repeated, NumChildren = 2 });
    }

    /// <summary>
    /// Reads the schema tree. Supported columns: primitive REQUIRED/OPTIONAL leaves; LIST groups in the
    /// three-level layout (<c>repeated group { element }</c>) or the two-level legacy layout
    /// (<c>repeated primitive</c>), whose element is a primitive or itself such a LIST group of
    /// primitives; a bare repeated primitive (a non-null list); the leaves, lists and maps inside
    /// structs (non-repeated groups without annotation), named by their dotted path; MAP groups of
    /// primitive keys and values, read as two lists <c>m.key</c> and <c>m.value</c>.
    /// </summary>
    public static (ParquetSchema Schema, ColumnDescriptor[] Columns) FromElements(IReadOnlyList<SchemaElement> elements)
    {
        var (schema, columns, unsupported, _) = FromElementsSkippingUnsupported(elements);
        if (unsupported.Count > 0)
        {
            ThrowHelper.NotSupported(unsupported[0].Reason);
        }

        return (schema, columns);
    }

    /// <summary>
    /// As <see cref="FromElements"/>, but a column outside Weft's subset (a decimal, a list of structs,
    /// a map of structs…) is left out of the schema and listed with the reason instead of failing the
    /// file, so a reader can still take the columns it needs; inside a struct only that field (leaf or
    /// subtree) is left out. <c>Leaves</c> counts every leaf, read or not: the column chunks of a row group.
    /// </summary>
    public static (ParquetSchema Schema, ColumnDescriptor[] Columns, List<(string Name, string Reason)> Unsupported, int Leaves) FromElementsSkippingUnsupported(IReadOnlyList<SchemaElement> elements)
    {
        if (elements.Count == 0)
        {
            ThrowHelper.Format("the schema is empty");
        }

        var root = elements[0];
        var topCount = root.NumChildren ?? 0;
        if (topCount <= 0)
        {
            ThrowHelper.Format("the schema root has no columns");
        }

        var found = new Found(topCount);
        var index = 1;
        var top = new Enclosing(string.Empty, [], 0);
        for (var c = 0; c < topCount; c++)
        {
            if (index >= elements.Count)
            {
                ThrowHelper.Format($"the schema root declares {topCount} columns but the schema ends after {c}");
            }

            ReadNode(elements, ref index, top, found);
        }

        if (index != elements.Count)
        {
            ThrowHelper.Format($"the schema has {elements.Count - index} elements that belong to no column");
        }

        if (found.Columns.Count == 0)
        {
            ThrowHelper.NotSupported(found.Unsupported[0].Reason); // nothing left to read
        }

        return (new ParquetSchema(found.Columns.ConvertAll(c => c.Field)), found.Columns.ToArray(), found.Unsupported, found.Leaves);
    }

    /// <summary>
    /// The structs around a node: the prefix of its dotted name, their schema path, and the definition
    /// levels they add (one per optional struct; a value under them is null when any of them is).
    /// </summary>
    /// <remarks><c>IdPrefix</c>: the enclosing structs' field ids as a dotted path ("" at the top), or null when one lacks an id.</remarks>
    private readonly record struct Enclosing(string Prefix, string[] Path, int Definition, string? IdPrefix = "");

    /// <summary>The columns and skipped fields found so far, in leaf order, and the leaves passed.</summary>
    private sealed class Found(int capacity)
    {
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);

        public List<ColumnDescriptor> Columns { get; } = new(capacity);

        public List<(string Name, string Reason)> Unsupported { get; } = [];

        public int Leaves { get; private set; }

        public void Add(ColumnDescriptor column)
        {
            Claim(column.Field.Name);

            // Every column Weft reads has exactly one leaf, so one column chunk.
            column.ChunkIndex = Leaves++;
            Columns.Add(column);
        }

        public void Skip(string name, string reason, int leaves)
        {
            Claim(name);
            Unsupported.Add((name, reason));
            Leaves += leaves;
        }

        // A dotted name can collide with a top-level column literally named so; which one a caller
        // meant would be ambiguous.
        private void Claim(string name)
        {
            if (!_names.Add(name))
            {
                ThrowHelper.Format($"the schema has two columns named '{name}'");
            }
        }
    }

    /// <summary>
    /// Reads the node at <paramref name="index"/> and its subtree into <paramref name="found"/>: a struct
    /// field by field, a map as its key and value lists, anything else as one column. What Weft cannot
    /// read is skipped as a whole subtree, so a struct's other fields stay readable.
    /// </summary>
    private static void ReadNode(IReadOnlyList<SchemaElement> elements, ref int index, Enclosing outer, Found found)
    {
        var start = index;
        var node = elements[index];
        if (string.IsNullOrEmpty(node.Name))
        {
            ThrowHelper.Format(outer.Prefix.Length == 0 ? "a column has an empty name" : $"a field of '{outer.Prefix[..^1]}' has an empty name");
        }

        var name = outer.Prefix + node.Name;
        if (IsStruct(node))
        {
            index++;
            var inner = new Enclosing(name + ".", [.. outer.Path, node.Name], outer.Definition + (node.RepetitionType == Repetition.Optional ? 1 : 0),
                outer.IdPrefix is null || node.FieldId is null ? null : outer.IdPrefix + node.FieldId.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
            var fields = node.NumChildren!.Value;
            for (var c = 0; c < fields; c++)
            {
                if (index >= elements.Count)
                {
                    ThrowHelper.Format($"the group '{name}' declares {fields} fields but the schema ends after {c}");
                }

                ReadNode(elements, ref index, inner, found);
            }

            return;
        }

        try
        {
            if (IsMapGroup(node))
            {
                ReadMap(elements, ref index, outer, found);
            }
            else
            {
                var column = ReadColumn(elements, ref index, outer);
                if (outer.IdPrefix is not null && node.FieldId is { } id)
                {
                    column.Field = column.Field with { FieldIdPath = outer.IdPrefix + id.ToString(System.Globalization.CultureInfo.InvariantCulture) };
                }

                found.Add(column);
            }
        }
        catch (NotSupportedException e)
        {
            index = start;
            found.Skip(name, e.Message, SkipSubtree(elements, ref index));
        }
    }

    /// <summary>Moves past the element at <paramref name="index"/> and all its descendants; returns the leaves among them.</summary>
    private static int SkipSubtree(IReadOnlyList<SchemaElement> elements, ref int index)
    {
        int pending = 1, leaves = 0;
        while (pending > 0)
        {
            if (index >= elements.Count)
            {
                ThrowHelper.Format($"the schema ends inside the group '{elements[^1].Name}'");
            }

            var children = elements[index++].NumChildren ?? 0;
            if (children < 0)
            {
                ThrowHelper.Format($"schema element '{elements[index - 1].Name}' has {children} children");
            }

            pending += children - 1;
            leaves += children == 0 ? 1 : 0;
        }

        return leaves;
    }

    /// <summary>A leaf, a bare repeated primitive or a LIST group, under the structs <paramref name="outer"/>.</summary>
    private static ColumnDescriptor ReadColumn(IReadOnlyList<SchemaElement> elements, ref int index, Enclosing outer)
    {
        var top = elements[index++];
        var name = outer.Prefix + top.Name;
        var enclosingNull = outer.Definition > 0;
        if (top.NumChildren is null or 0)
        {
            var (type, physical, stored) = LeafType(top, name);
            string[] path = [.. outer.Path, top.Name];
            return top.RepetitionType switch
            {
                Repetition.Required or null => Flat(name, type, physical, stored, outer.Definition, path),
                Repetition.Optional => Flat(name, type, physical, stored, outer.Definition + 1, path),
                Repetition.Repeated => ColumnDescriptor.ForList(
                    new ParquetField(name, type, enclosingNull, IsList: true), physical, path, [false], elementOptional: false, stored, outer.Definition),
                _ => ThrowHelper.Format<ColumnDescriptor>($"column '{name}' has unknown repetition {(int)top.RepetitionType}"),
            };
        }

        if (top.RepetitionType == Repetition.Repeated)
        {
            ThrowHelper.NotSupported($"Column '{name}' is a repeated group (a list of structs); Weft reads lists and lists of lists of primitives only.");
        }

        if (!IsListGroup(top))
        {
            ThrowHelper.NotSupported($"Column '{name}' is a nested group that is neither a struct, a MAP nor a LIST of primitives; Weft reads structs, maps of primitives, and lists (or lists of lists) of primitives only.");
        }

        var listPath = new List<string>(outer.Path.Length + 5);
        listPath.AddRange(outer.Path);
        listPath.Add(top.Name);
        var listOptional = new List<bool> { top.RepetitionType == Repetition.Optional };
        var element = ReadListChild(elements, ref index, name, listPath);
        if (element.NumChildren is > 0)
        {
            // The element is itself a list: list<list<T>>.
            if (!IsListGroup(element))
            {
                ThrowHelper.NotSupported($"List column '{name}' has elements that are neither primitives nor lists of primitives; Weft reads lists and lists of lists of primitives only.");
            }

            listOptional.Add(element.RepetitionType == Repetition.Optional);
            element = ReadListChild(elements, ref index, name, listPath);
            if (element.NumChildren is > 0)
            {
                ThrowHelper.NotSupported($"List column '{name}' nests lists more than two deep or holds groups; Weft reads lists and lists of lists of primitives only.");
            }
        }

        var (elementType, elementPhysical, elementStored) = LeafType(element, name);
        var elementOptional = element.RepetitionType == Repetition.Optional;
        var field = new ParquetField(name, elementType, enclosingNull || listOptional[0], IsList: true, ElementNullable: elementOptional)
        {
            ListDepth = listOptional.Count,
            InnerListNullable = listOptional.Count == 2 && listOptional[1],
        };
        return ColumnDescriptor.ForList(field, elementPhysical, listPath, listOptional.ToArray(), elementOptional, elementStored, outer.Definition);
    }

    /// <summary>A group without annotation that is not repeated: its fields become columns of their own.</summary>
    private static bool IsStruct(SchemaElement node) =>
        node.NumChildren is > 0
        && node.RepetitionType != Repetition.Repeated
        && node.LogicalType is null
        && node.ConvertedType is null;

    private static bool IsListGroup(SchemaElement group) =>
        (group.LogicalType?.Kind == LogicalType.List || group.ConvertedType == ConvertedType.List)
        && group.NumChildren == 1
        && group.RepetitionType != Repetition.Repeated;

    // Older writers mark the map group MAP_KEY_VALUE (the format says only its repeated child should be).
    private static bool IsMapGroup(SchemaElement group) =>
        group.NumChildren is > 0
        && (group.LogicalType?.Kind == LogicalType.Map || group.ConvertedType is ConvertedType.Map or ConvertedType.MapKeyValue);

    /// <summary>
    /// A MAP group <c>m { repeated group key_value { key; value } }</c> (any names; the value may be
    /// absent) as the lists <c>m.key</c> and <c>m.value</c>: row <c>i</c>'s entries pair up by position.
    /// A key or value Weft cannot read is skipped alone, so the other stays readable.
    /// </summary>
    private static void ReadMap(IReadOnlyList<SchemaElement> elements, ref int index, Enclosing outer, Found found)
    {
        var map = elements[index];
        var name = outer.Prefix + map.Name;
        if (map.RepetitionType == Repetition.Repeated || map.NumChildren != 1 || index + 1 >= elements.Count
            || elements[index + 1] is not { RepetitionType: Repetition.Repeated, NumChildren: 1 or 2 })
        {
            ThrowHelper.NotSupported($"Map column '{name}' is not a MAP group holding one repeated group of a key and a value; Weft reads maps of primitive keys and values only.");
        }

        var entries = elements[index + 1];
        index += 2;
        var mapOptional = map.RepetitionType == Repetition.Optional;
        string[] path = [.. outer.Path, map.Name, entries.Name];
        ReadMapEntryField(elements, ref index, outer, name + ".key", path, mapOptional, found);
        if (entries.NumChildren == 2)
        {
            ReadMapEntryField(elements, ref index, outer, name + ".value", path, mapOptional, found);
        }
    }

    private static void ReadMapEntryField(
        IReadOnlyList<SchemaElement> elements, ref int index, Enclosing outer, string name, string[] entriesPath, bool mapOptional, Found found)
    {
        if (index >= elements.Count)
        {
            ThrowHelper.Format($"map column '{name}' has no schema element");
        }

        var start = index;
        var leaf = elements[index];
        try
        {
            if (leaf.NumChildren is > 0 || leaf.RepetitionType == Repetition.Repeated)
            {
                ThrowHelper.NotSupported($"Map column '{name}' is a group or repeated; Weft reads maps of primitive keys and values only.");
            }

            index++;
            var (type, physical, stored) = LeafType(leaf, name);
            var optional = leaf.RepetitionType == Repetition.Optional;
            var field = new ParquetField(name, type, outer.Definition > 0 || mapOptional, IsList: true, ElementNullable: optional);
            found.Add(ColumnDescriptor.ForList(field, physical, [.. entriesPath, leaf.Name], [mapOptional], optional, stored, outer.Definition));
        }
        catch (NotSupportedException e)
        {
            index = start;
            found.Skip(name, e.Message, SkipSubtree(elements, ref index));
        }
    }

    /// <summary>
    /// Reads the repeated child of a LIST group (whose element has been consumed) and returns the list's
    /// element: the repeated group's single child (three-level layout) or the repeated primitive itself
    /// (two-level legacy layout). Appends the names to <paramref name="path"/>.
    /// </summary>
    private static SchemaElement ReadListChild(IReadOnlyList<SchemaElement> elements, ref int index, string name, List<string> path)
    {
        if (index >= elements.Count)
        {
            ThrowHelper.Format($"list column '{name}' has no child element");
        }

        var repeated = elements[index++];
        if (repeated.RepetitionType != Repetition.Repeated)
        {
            ThrowHelper.Format($"list column '{name}': the child of the LIST group is not repeated");
        }

        path.Add(repeated.Name);
        if (repeated.NumChildren is null or 0)
        {
            // Two-level legacy layout: the repeated field is the (required) element.
            return new SchemaElement
            {
                Name = repeated.Name,
                Type = repeated.Type,
                TypeLength = repeated.TypeLength,
                RepetitionType = Repetition.Required,
                ConvertedType = repeated.ConvertedType,
                LogicalType = repeated.LogicalType,
                Scale = repeated.Scale,
                Precision = repeated.Precision,
            };
        }

        if (repeated.NumChildren != 1 || index >= elements.Count)
        {
            ThrowHelper.NotSupported($"List column '{name}' has elements that are groups of several fields; Weft reads lists of primitives only.");
        }

        var element = elements[index++];
        if (element.RepetitionType == Repetition.Repeated)
        {
            ThrowHelper.NotSupported($"List column '{name}' has a repeated element; Weft reads lists of primitives only.");
        }

        path.Add(element.Name);
        return element;
    }

    /// <summary>A flat column: null when any optional node on its path is, so its maximum definition level counts them all.</summary>
    private static ColumnDescriptor Flat(string name, ParquetType type, PhysicalType physical, LeafStorage stored, int maxDefinition, string[] path) => new()
    {
        Field = new ParquetField(name, type, maxDefinition > 0),
        Physical = physical,
        Stored = stored.Kind,
        Scale = stored.Scale,
        TypeLength = stored.TypeLength,
        Path = path,
        MaxDefinitionLevel = maxDefinition,
    };

    private static Repetition Optional(bool optional) => optional ? Repetition.Optional : Repetition.Required;

    private static SchemaElement ListGroup(string name, Repetition repetition) => new()
    {
        Name = name,
        RepetitionType = repetition,
        NumChildren = 1,
        ConvertedType = ConvertedType.List,
        LogicalType = new LogicalType { Kind = LogicalType.List },
    };

    private static (ParquetType Type, PhysicalType Physical, LeafStorage Stored) LeafType(SchemaElement leaf, string column)
    {
        var logical = leaf.LogicalType;
        var converted = leaf.ConvertedType;
        if (logical is { Kind: LogicalType.Decimal } || (logical is null && converted == ConvertedType.Decimal))
        {
            return DecimalLeaf(leaf, column);
        }

        if (logical is { Kind: LogicalType.Time } || (logical is null && converted is ConvertedType.TimeMillis or ConvertedType.TimeMicros))
        {
            return TimeLeaf(leaf, column);
        }

        bool unsigned = logical is { Kind: LogicalType.Integer, IsSigned: false } || converted is ConvertedType.UInt8 or ConvertedType.UInt16 or ConvertedType.UInt32 or ConvertedType.UInt64;
        bool plainInteger = logical is null || logical.Kind == LogicalType.Integer;
        switch (leaf.Type)
        {
            case PhysicalType.Boolean:
                return (ParquetType.Boolean, PhysicalType.Boolean, StoredAs.AsIs);
            case PhysicalType.Int32:
                if (logical is { Kind: LogicalType.Date } || (logical is null && converted == ConvertedType.Date))
                {
                    return (ParquetType.TimestampMicros, PhysicalType.Int32, StoredAs.DateDays);
                }

                // 8- and 16-bit integers count only their low bits: a writer may leave the INT32's upper ones set.
                if (plainInteger && !unsigned && converted is null or ConvertedType.Int8 or ConvertedType.Int16 or ConvertedType.Int32)
                {
                    var stored = logical is { BitWidth: 8 } || converted is ConvertedType.Int8 ? StoredAs.Int8
                        : logical is { BitWidth: 16 } || converted is ConvertedType.Int16 ? StoredAs.Int16
                        : StoredAs.AsIs;
                    return (ParquetType.Int32, PhysicalType.Int32, stored);
                }

                if (plainInteger && unsigned)
                {
                    // A UINT_32 over 2^31 would read negative as an int.
                    if (logical is { BitWidth: 8 } || converted is ConvertedType.UInt8)
                    {
                        return (ParquetType.Int32, PhysicalType.Int32, StoredAs.UInt8);
                    }

                    return logical is { BitWidth: 16 } || converted is ConvertedType.UInt16
                        ? (ParquetType.Int32, PhysicalType.Int32, StoredAs.UInt16)
                        : (ParquetType.Int64, PhysicalType.Int32, StoredAs.UInt32);
                }

                break;
            case PhysicalType.Int64:
                if (logical is { Kind: LogicalType.Timestamp })
                {
                    switch (logical.TimeUnit)
                    {
                        case 1: return (ParquetType.TimestampMicros, PhysicalType.Int64, StoredAs.TimestampMillis);
                        case 2: return (ParquetType.TimestampMicros, PhysicalType.Int64, StoredAs.AsIs);
                        case 3: return (ParquetType.TimestampMicros, PhysicalType.Int64, StoredAs.TimestampNanos);
                    }

                    break;
                }

                if (logical is null && converted == ConvertedType.TimestampMicros)
                {
                    return (ParquetType.TimestampMicros, PhysicalType.Int64, StoredAs.AsIs);
                }

                if (logical is null && converted == ConvertedType.TimestampMillis)
                {
                    return (ParquetType.TimestampMicros, PhysicalType.Int64, StoredAs.TimestampMillis);
                }

                if (plainInteger && !unsigned && converted is null or ConvertedType.Int64)
                {
                    return (ParquetType.Int64, PhysicalType.Int64, StoredAs.AsIs);
                }

                if (plainInteger && unsigned)
                {
                    return (ParquetType.Int64, PhysicalType.Int64, StoredAs.UInt64);
                }

                break;
            case PhysicalType.Int96:
                // Spark's and Impala's legacy timestamps carry no annotation; INT96 means nothing else.
                if (logical is null && converted is null)
                {
                    return (ParquetType.TimestampMicros, PhysicalType.Int96, StoredAs.Int96Timestamp);
                }

                break;
            case PhysicalType.Float:
                return (ParquetType.Float, PhysicalType.Float, StoredAs.AsIs);
            case PhysicalType.Double:
                return (ParquetType.Double, PhysicalType.Double, StoredAs.AsIs);
            case PhysicalType.ByteArray:
                if (logical?.Kind is LogicalType.String or LogicalType.Enum or LogicalType.Json
                    || converted is ConvertedType.Utf8 or ConvertedType.Enum or ConvertedType.Json)
                {
                    return (ParquetType.String, PhysicalType.ByteArray, StoredAs.AsIs);
                }

                break;
            case null:
                ThrowHelper.Format($"column '{column}': leaf '{leaf.Name}' has no physical type");
                break;
        }

        return ThrowHelper.NotSupportedType(column, leaf);
    }

    /// <summary>
    /// DECIMAL(p, s) in any of its four physical types reads as doubles: Weft has no decimal type, and
    /// the features it feeds are doubles anyway.
    /// </summary>
    private static (ParquetType Type, PhysicalType Physical, LeafStorage Stored) DecimalLeaf(SchemaElement leaf, string column)
    {
        var logical = leaf.LogicalType;
        int? scale = logical is { Kind: LogicalType.Decimal } ? logical.Scale : leaf.Scale;
        int? precision = logical is { Kind: LogicalType.Decimal } ? logical.Precision : leaf.Precision;
        if (scale is not { } s || precision is not { } p || p < 1 || s < 0 || s > p)
        {
            return ThrowHelper.NotSupported<(ParquetType, PhysicalType, LeafStorage)>($"Column '{column}' is a DECIMAL with precision {precision?.ToString(CultureInfo.InvariantCulture) ?? "none"} and scale {scale?.ToString(CultureInfo.InvariantCulture) ?? "none"}; a decimal needs a precision of at least 1 and a scale from 0 to the precision.");
        }

        switch (leaf.Type)
        {
            case PhysicalType.Int32:
                return (ParquetType.Double, PhysicalType.Int32, new LeafStorage(StoredAs.DecimalInt32, s));
            case PhysicalType.Int64:
                return (ParquetType.Double, PhysicalType.Int64, new LeafStorage(StoredAs.DecimalInt64, s));
            case PhysicalType.ByteArray:
                return (ParquetType.Double, PhysicalType.ByteArray, new LeafStorage(StoredAs.DecimalBytes, s));
            case PhysicalType.FixedLenByteArray:
                if (leaf.TypeLength is not (>= 1 and <= 16))
                {
                    ThrowHelper.NotSupported($"Column '{column}' is a DECIMAL in a FIXED_LEN_BYTE_ARRAY of {leaf.TypeLength?.ToString(CultureInfo.InvariantCulture) ?? "no"} bytes; Weft reads decimals of 1 to 16 bytes (128 bits).");
                }

                return (ParquetType.Double, PhysicalType.FixedLenByteArray, new LeafStorage(StoredAs.DecimalFixed, s, leaf.TypeLength.Value));
            case null:
                ThrowHelper.Format($"column '{column}': leaf '{leaf.Name}' has no physical type");
                break;
        }

        return ThrowHelper.NotSupportedType(column, leaf);
    }

    /// <summary>TIME in any unit reads as µs since midnight (an Int64), the unit Weft's timestamps use.</summary>
    private static (ParquetType Type, PhysicalType Physical, LeafStorage Stored) TimeLeaf(SchemaElement leaf, string column)
    {
        var unit = leaf.LogicalType is { Kind: LogicalType.Time } logical ? logical.TimeUnit
            : leaf.ConvertedType == ConvertedType.TimeMillis ? (short)1
            : (short)2;
        switch (leaf.Type, unit)
        {
            case (PhysicalType.Int32, 1):
                return (ParquetType.Int64, PhysicalType.Int32, StoredAs.TimeMillis);
            case (PhysicalType.Int64, 2):
                return (ParquetType.Int64, PhysicalType.Int64, StoredAs.AsIs);
            case (PhysicalType.Int64, 3):
                return (ParquetType.Int64, PhysicalType.Int64, StoredAs.TimeNanos);
            case (null, _):
                ThrowHelper.Format($"column '{column}': leaf '{leaf.Name}' has no physical type");
                break;
        }

        return ThrowHelper.NotSupportedType(column, leaf);
    }

    private static SchemaElement Leaf(string name, ParquetType type, Repetition repetition) => type switch
    {
        ParquetType.String => new SchemaElement
        {
            Name = name,
            Type = PhysicalType.ByteArray,
            RepetitionType = repetition,
            ConvertedType = ConvertedType.Utf8,
            LogicalType = new LogicalType { Kind = LogicalType.String },
        },
        ParquetType.TimestampMicros => new SchemaElement
        {
            Name = name,
            Type = PhysicalType.Int64,
            RepetitionType = repetition,
            ConvertedType = ConvertedType.TimestampMicros,
            LogicalType = new LogicalType { Kind = LogicalType.Timestamp, IsAdjustedToUtc = true, TimeUnit = 2 },
        },
        _ => new SchemaElement { Name = name, Type = ColumnDescriptor.PhysicalOf(type), RepetitionType = repetition },
    };
}
