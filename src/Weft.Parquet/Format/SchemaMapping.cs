using Weft.Parquet.Columns;

namespace Weft.Parquet.Format;

/// <summary>Maps between <see cref="ParquetSchema"/> and Parquet's flattened SchemaElement list.</summary>
internal static class SchemaMapping
{
    public static List<SchemaElement> ToElements(ParquetSchema schema)
    {
        var elements = new List<SchemaElement>(schema.Fields.Count * 3 + 1)
        {
            new() { Name = "schema", NumChildren = schema.Fields.Count },
        };
        foreach (var field in schema.Fields)
        {
            var repetition = field.Nullable ? Repetition.Optional : Repetition.Required;
            if (field.IsList)
            {
                elements.Add(new SchemaElement
                {
                    Name = field.Name,
                    RepetitionType = repetition,
                    NumChildren = 1,
                    ConvertedType = ConvertedType.List,
                    LogicalType = new LogicalType { Kind = LogicalType.List },
                });
                elements.Add(new SchemaElement { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 });
                elements.Add(Leaf("element", field.Type, Repetition.Required));
            }
            else
            {
                elements.Add(Leaf(field.Name, field.Type, repetition));
            }
        }

        return elements;
    }

    /// <summary>
    /// Reads the schema tree. Supported top-level columns: primitive REQUIRED/OPTIONAL leaves; LIST
    /// groups in the three-level layout (<c>repeated group { element }</c>) or the two-level legacy
    /// layout (<c>repeated primitive</c>); a bare repeated primitive (a non-null list).
    /// </summary>
    public static (ParquetSchema Schema, ColumnDescriptor[] Columns) FromElements(IReadOnlyList<SchemaElement> elements)
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

        var fields = new List<ParquetField>(topCount);
        var columns = new List<ColumnDescriptor>(topCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var index = 1;
        for (var c = 0; c < topCount; c++)
        {
            if (index >= elements.Count)
            {
                ThrowHelper.Format($"the schema root declares {topCount} columns but the schema ends after {c}");
            }

            var column = ReadTopLevel(elements, ref index);
            if (!names.Add(column.Field.Name))
            {
                ThrowHelper.Format($"the schema has two columns named '{column.Field.Name}'");
            }

            fields.Add(column.Field);
            columns.Add(column);
        }

        if (index != elements.Count)
        {
            ThrowHelper.Format($"the schema has {elements.Count - index} elements that belong to no column");
        }

        return (new ParquetSchema(fields), columns.ToArray());
    }

    private static ColumnDescriptor ReadTopLevel(IReadOnlyList<SchemaElement> elements, ref int index)
    {
        var top = elements[index++];
        var name = top.Name;
        if (string.IsNullOrEmpty(name))
        {
            ThrowHelper.Format("a column has an empty name");
        }

        if (top.NumChildren is null or 0)
        {
            var (type, physical) = LeafType(top, name);
            return top.RepetitionType switch
            {
                Repetition.Required or null => Flat(name, type, physical, nullable: false),
                Repetition.Optional => Flat(name, type, physical, nullable: true),
                Repetition.Repeated => List(name, type, physical, [name], listOptional: false, elementOptional: false),
                _ => ThrowHelper.Format<ColumnDescriptor>($"column '{name}' has unknown repetition {(int)top.RepetitionType}"),
            };
        }

        var isList = top.LogicalType?.Kind == LogicalType.List || top.ConvertedType == ConvertedType.List;
        if (!isList || top.NumChildren != 1 || top.RepetitionType == Repetition.Repeated)
        {
            ThrowHelper.NotSupported($"Column '{name}' is a nested group that is not a LIST of primitives; Weft reads flat columns and lists of primitives only.");
        }

        var listOptional = top.RepetitionType == Repetition.Optional;
        if (index >= elements.Count)
        {
            ThrowHelper.Format($"list column '{name}' has no child element");
        }

        var repeated = elements[index++];
        if (repeated.RepetitionType != Repetition.Repeated)
        {
            ThrowHelper.Format($"list column '{name}': the child of the LIST group is not repeated");
        }

        if (repeated.NumChildren is null or 0)
        {
            // Two-level legacy layout: the repeated field is the element.
            var (type, physical) = LeafType(repeated, name);
            return List(name, type, physical, [name, repeated.Name], listOptional, elementOptional: false);
        }

        if (repeated.NumChildren != 1 || index >= elements.Count || elements[index].NumChildren is > 0)
        {
            ThrowHelper.NotSupported($"List column '{name}' has elements that are not primitives; Weft reads lists of primitives only.");
        }

        var element = elements[index++];
        if (element.RepetitionType == Repetition.Repeated)
        {
            ThrowHelper.NotSupported($"List column '{name}' has a repeated element; Weft reads lists of primitives only.");
        }

        var (elementType, elementPhysical) = LeafType(element, name);
        return List(
            name,
            elementType,
            elementPhysical,
            [name, repeated.Name, element.Name],
            listOptional,
            elementOptional: element.RepetitionType == Repetition.Optional);
    }

    private static ColumnDescriptor Flat(string name, ParquetType type, PhysicalType physical, bool nullable) => new()
    {
        Field = new ParquetField(name, type, nullable),
        Physical = physical,
        Path = [name],
        MaxDefinitionLevel = nullable ? 1 : 0,
    };

    private static ColumnDescriptor List(
        string name, ParquetType type, PhysicalType physical, string[] path, bool listOptional, bool elementOptional)
    {
        var present = listOptional ? 1 : 0;
        return new ColumnDescriptor
        {
            Field = new ParquetField(name, type, listOptional, IsList: true),
            Physical = physical,
            Path = path,
            ListPresentLevel = present,
            ElementSlotLevel = present + 1,
            MaxDefinitionLevel = present + 1 + (elementOptional ? 1 : 0),
            MaxRepetitionLevel = 1,
        };
    }

    private static (ParquetType Type, PhysicalType Physical) LeafType(SchemaElement leaf, string column)
    {
        var logical = leaf.LogicalType;
        var converted = leaf.ConvertedType;
        switch (leaf.Type)
        {
            case PhysicalType.Boolean:
                return (ParquetType.Boolean, PhysicalType.Boolean);
            case PhysicalType.Int32:
                if ((logical is null || (logical.Kind == LogicalType.Integer && logical.IsSigned))
                    && converted is null or ConvertedType.Int8 or ConvertedType.Int16 or ConvertedType.Int32)
                {
                    return (ParquetType.Int32, PhysicalType.Int32);
                }

                break;
            case PhysicalType.Int64:
                if (logical is { Kind: LogicalType.Timestamp })
                {
                    if (logical.TimeUnit == 2)
                    {
                        return (ParquetType.TimestampMicros, PhysicalType.Int64);
                    }

                    break;
                }

                if (logical is null && converted == ConvertedType.TimestampMicros)
                {
                    return (ParquetType.TimestampMicros, PhysicalType.Int64);
                }

                if ((logical is null || (logical.Kind == LogicalType.Integer && logical.IsSigned))
                    && converted is null or ConvertedType.Int64)
                {
                    return (ParquetType.Int64, PhysicalType.Int64);
                }

                break;
            case PhysicalType.Float:
                return (ParquetType.Float, PhysicalType.Float);
            case PhysicalType.Double:
                return (ParquetType.Double, PhysicalType.Double);
            case PhysicalType.ByteArray:
                if (logical?.Kind is LogicalType.String or LogicalType.Enum or LogicalType.Json
                    || converted is ConvertedType.Utf8 or ConvertedType.Enum or ConvertedType.Json)
                {
                    return (ParquetType.String, PhysicalType.ByteArray);
                }

                break;
            case null:
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
