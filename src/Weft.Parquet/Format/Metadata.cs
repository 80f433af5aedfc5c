namespace Weft.Parquet.Format;

// Parquet's Thrift structures (parquet.thrift), limited to the fields Weft reads or writes.
// Unknown fields are skipped on read. Enum values are the Thrift numbers.

internal enum PhysicalType
{
    Boolean = 0,
    Int32 = 1,
    Int64 = 2,
    Int96 = 3,
    Float = 4,
    Double = 5,
    ByteArray = 6,
    FixedLenByteArray = 7,
}

internal enum Repetition
{
    Required = 0,
    Optional = 1,
    Repeated = 2,
}

internal enum ConvertedType
{
    Utf8 = 0,
    Map = 1,
    MapKeyValue = 2,
    List = 3,
    Enum = 4,
    Decimal = 5,
    Date = 6,
    TimeMillis = 7,
    TimeMicros = 8,
    TimestampMillis = 9,
    TimestampMicros = 10,
    UInt8 = 11,
    UInt16 = 12,
    UInt32 = 13,
    UInt64 = 14,
    Int8 = 15,
    Int16 = 16,
    Int32 = 17,
    Int64 = 18,
    Json = 19,
}

internal enum PageEncoding
{
    Plain = 0,
    PlainDictionary = 2,
    Rle = 3,
    BitPacked = 4,
    DeltaBinaryPacked = 5,
    DeltaLengthByteArray = 6,
    DeltaByteArray = 7,
    RleDictionary = 8,
    ByteStreamSplit = 9,
}

internal enum CompressionCodec
{
    Uncompressed = 0,
    Snappy = 1,
    Gzip = 2,
    Lzo = 3,
    Brotli = 4,
    Lz4 = 5,
    Zstd = 6,
    Lz4Raw = 7,
}

internal enum PageType
{
    DataPage = 0,
    IndexPage = 1,
    DictionaryPage = 2,
    DataPageV2 = 3,
}

/// <summary>The LogicalType union, reduced to what Weft maps.</summary>
internal sealed class LogicalType
{
    public const short String = 1;
    public const short Map = 2;
    public const short List = 3;
    public const short Enum = 4;
    public const short Decimal = 5;
    public const short Date = 6;
    public const short Time = 7;
    public const short Timestamp = 8;
    public const short Integer = 10;
    public const short Json = 12;

    /// <summary>The union member's field id (1 STRING, 3 LIST, 5 DECIMAL, 7 TIME, 8 TIMESTAMP, 10 INTEGER, …).</summary>
    public short Kind { get; init; }

    public bool IsAdjustedToUtc { get; init; }

    /// <summary>TimeUnit union member (TIMESTAMP, TIME): 1 MILLIS, 2 MICROS, 3 NANOS.</summary>
    public short TimeUnit { get; init; }

    /// <summary>DECIMAL: digits after the point.</summary>
    public int Scale { get; init; }

    /// <summary>DECIMAL: digits in all.</summary>
    public int Precision { get; init; }

    public int BitWidth { get; init; }

    public bool IsSigned { get; init; } = true;

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        var inner = w.StructField(Kind);
        switch (Kind)
        {
            case Timestamp or Time:
            {
                w.BoolField(1, IsAdjustedToUtc);
                var unit = w.StructField(2);
                var member = w.StructField(TimeUnit);
                w.EndStruct(member);
                w.EndStruct(unit);
                break;
            }

            case Integer:
                w.ByteField(1, (sbyte)BitWidth);
                w.BoolField(2, IsSigned);
                break;
            case Decimal:
                w.I32Field(1, Scale);
                w.I32Field(2, Precision);
                break;
        }

        w.EndStruct(inner);
        w.EndStruct(outer);
    }

    public static LogicalType? Read(ref ThriftCompactReader r)
    {
        LogicalType? result = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var type))
        {
            if (type != CompactType.Struct)
            {
                r.Skip(type);
                continue;
            }

            switch (id)
            {
                case Timestamp or Time:
                    result = ReadTimestamp(ref r, id);
                    break;
                case Decimal:
                    result = ReadDecimal(ref r);
                    break;
                case Integer:
                    result = ReadInteger(ref r);
                    break;
                default:
                    r.Skip(type);
                    result = new LogicalType { Kind = id };
                    break;
            }
        }

        return result;
    }

    /// <summary>TimestampType and TimeType share their layout: isAdjustedToUTC, then the unit.</summary>
    private static LogicalType ReadTimestamp(ref ThriftCompactReader r, short kind)
    {
        bool? utc = null;
        short unit = 0;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1:
                    utc = r.ReadBoolField(type);
                    break;
                case 2:
                {
                    r.ExpectStruct(type);
                    short unitLast = 0;
                    while (r.ReadFieldHeader(ref unitLast, out var unitId, out var unitType))
                    {
                        unit = unitId;
                        r.Skip(unitType);
                    }

                    break;
                }

                default:
                    r.Skip(type);
                    break;
            }
        }

        if (utc is null || unit == 0)
        {
            r.Throw(kind == Time ? "TimeType is missing isAdjustedToUTC or unit" : "TimestampType is missing isAdjustedToUTC or unit");
        }

        return new LogicalType { Kind = kind, IsAdjustedToUtc = utc.Value, TimeUnit = unit };
    }

    private static LogicalType ReadDecimal(ref ThriftCompactReader r)
    {
        int? scale = null, precision = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1:
                    scale = r.ReadI32(type);
                    break;
                case 2:
                    precision = r.ReadI32(type);
                    break;
                default:
                    r.Skip(type);
                    break;
            }
        }

        if (scale is null || precision is null)
        {
            r.Throw("DecimalType is missing scale or precision");
        }

        return new LogicalType { Kind = Decimal, Scale = scale.Value, Precision = precision.Value };
    }

    private static LogicalType ReadInteger(ref ThriftCompactReader r)
    {
        int? width = null;
        var signed = true;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1:
                    width = r.ReadI32(type);
                    break;
                case 2:
                    signed = r.ReadBoolField(type);
                    break;
                default:
                    r.Skip(type);
                    break;
            }
        }

        return new LogicalType { Kind = Integer, BitWidth = width ?? r.Throw<int>("IntType is missing bitWidth"), IsSigned = signed };
    }
}

internal sealed class SchemaElement
{
    public PhysicalType? Type { get; init; }

    public int? TypeLength { get; init; }

    public Repetition? RepetitionType { get; init; }

    public required string Name { get; init; }

    public int? NumChildren { get; init; }

    public ConvertedType? ConvertedType { get; init; }

    public LogicalType? LogicalType { get; init; }

    /// <summary>ConvertedType DECIMAL's scale (the LogicalType repeats it when present).</summary>
    public int? Scale { get; init; }

    /// <summary>ConvertedType DECIMAL's precision.</summary>
    public int? Precision { get; init; }

    /// <summary>The field id another writer gave the element (Iceberg, Delta column mapping by id).</summary>
    public int? FieldId { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        if (Type is { } t)
        {
            w.I32Field(1, (int)t);
        }

        if (TypeLength is { } length)
        {
            w.I32Field(2, length);
        }

        if (RepetitionType is { } rep)
        {
            w.I32Field(3, (int)rep);
        }

        w.StringField(4, Name);
        if (NumChildren is { } n)
        {
            w.I32Field(5, n);
        }

        if (ConvertedType is { } ct)
        {
            w.I32Field(6, (int)ct);
        }

        if (Scale is { } scale)
        {
            w.I32Field(7, scale);
        }

        if (Precision is { } precision)
        {
            w.I32Field(8, precision);
        }

        if (FieldId is { } fieldId)
        {
            w.I32Field(9, fieldId);
        }

        if (LogicalType is { } lt)
        {
            w.FieldBegin(10, CompactType.Struct);
            lt.Write(w);
        }

        w.EndStruct(outer);
    }

    public static SchemaElement Read(ref ThriftCompactReader r)
    {
        PhysicalType? type = null;
        int? typeLength = null;
        Repetition? repetition = null;
        string? name = null;
        int? children = null;
        ConvertedType? converted = null;
        LogicalType? logical = null;
        int? scale = null, precision = null, fieldId = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    type = (PhysicalType)r.ReadI32(ft);
                    break;
                case 2:
                    typeLength = r.ReadI32(ft);
                    break;
                case 3:
                    repetition = (Repetition)r.ReadI32(ft);
                    break;
                case 4:
                    name = r.ReadString(ft);
                    break;
                case 5:
                    children = r.ReadI32(ft);
                    break;
                case 6:
                    converted = (ConvertedType)r.ReadI32(ft);
                    break;
                case 7:
                    scale = r.ReadI32(ft);
                    break;
                case 8:
                    precision = r.ReadI32(ft);
                    break;
                case 9:
                    fieldId = r.ReadI32(ft);
                    break;
                case 10:
                    r.ExpectStruct(ft);
                    logical = LogicalType.Read(ref r);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        return new SchemaElement
        {
            Type = type,
            TypeLength = typeLength,
            RepetitionType = repetition,
            Name = name ?? r.Throw<string>("SchemaElement is missing its name"),
            NumChildren = children,
            ConvertedType = converted,
            LogicalType = logical,
            Scale = scale,
            Precision = precision,
            FieldId = fieldId,
        };
    }
}

internal sealed class Statistics
{
    public byte[]? Max { get; init; }

    public byte[]? Min { get; init; }

    public long? NullCount { get; init; }

    public long? DistinctCount { get; init; }

    public byte[]? MaxValue { get; init; }

    public byte[]? MinValue { get; init; }

    public long? NanCount { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();

        // Weft's writer sets only the v2 fields; the legacy max / min are written when set (tests craft
        // parquet-mr's old files with them).
        if (Max is { } legacyMax)
        {
            w.BinaryField(1, legacyMax);
        }

        if (Min is { } legacyMin)
        {
            w.BinaryField(2, legacyMin);
        }

        if (NullCount is { } nulls)
        {
            w.I64Field(3, nulls);
        }

        if (MaxValue is { } max)
        {
            w.BinaryField(5, max);
        }

        if (MinValue is { } min)
        {
            w.BinaryField(6, min);
        }

        if (NanCount is { } nans)
        {
            w.I64Field(9, nans);
        }

        w.EndStruct(outer);
    }

    public static Statistics Read(ref ThriftCompactReader r)
    {
        byte[]? max = null, min = null, maxValue = null, minValue = null;
        long? nulls = null, distinct = null, nans = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    max = r.ReadBinary(ft).ToArray();
                    break;
                case 2:
                    min = r.ReadBinary(ft).ToArray();
                    break;
                case 3:
                    nulls = r.ReadI64(ft);
                    break;
                case 4:
                    distinct = r.ReadI64(ft);
                    break;
                case 5:
                    maxValue = r.ReadBinary(ft).ToArray();
                    break;
                case 6:
                    minValue = r.ReadBinary(ft).ToArray();
                    break;
                case 9:
                    nans = r.ReadI64(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        return new Statistics
        {
            Max = max,
            Min = min,
            NullCount = nulls,
            DistinctCount = distinct,
            MaxValue = maxValue,
            MinValue = minValue,
            NanCount = nans,
        };
    }
}

internal sealed class KeyValue
{
    public required string Key { get; init; }

    public string? Value { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.StringField(1, Key);
        if (Value is not null)
        {
            w.StringField(2, Value);
        }

        w.EndStruct(outer);
    }

    public static KeyValue Read(ref ThriftCompactReader r)
    {
        string? key = null, value = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    key = r.ReadString(ft);
                    break;
                case 2:
                    value = r.ReadString(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        return new KeyValue { Key = key ?? r.Throw<string>("KeyValue is missing its key"), Value = value };
    }
}

internal sealed class ColumnMetaData
{
    public PhysicalType Type { get; init; }

    public required IReadOnlyList<PageEncoding> Encodings { get; init; }

    public required IReadOnlyList<string> PathInSchema { get; init; }

    public CompressionCodec Codec { get; init; }

    public long NumValues { get; init; }

    public long TotalUncompressedSize { get; init; }

    public long TotalCompressedSize { get; init; }

    public long DataPageOffset { get; set; }

    public long? DictionaryPageOffset { get; set; }

    public Statistics? Statistics { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, (int)Type);
        w.ListField(2, CompactType.I32, Encodings.Count);
        foreach (var e in Encodings)
        {
            w.I32((int)e);
        }

        w.ListField(3, CompactType.Binary, PathInSchema.Count);
        foreach (var p in PathInSchema)
        {
            w.String(p);
        }

        w.I32Field(4, (int)Codec);
        w.I64Field(5, NumValues);
        w.I64Field(6, TotalUncompressedSize);
        w.I64Field(7, TotalCompressedSize);
        w.I64Field(9, DataPageOffset);
        if (DictionaryPageOffset is { } dict)
        {
            w.I64Field(11, dict);
        }

        if (Statistics is { } stats)
        {
            w.FieldBegin(12, CompactType.Struct);
            stats.Write(w);
        }

        w.EndStruct(outer);
    }

    public static ColumnMetaData Read(ref ThriftCompactReader r)
    {
        PhysicalType? type = null;
        List<PageEncoding>? encodings = null;
        List<string>? path = null;
        CompressionCodec? codec = null;
        long? numValues = null, uncompressed = null, compressed = null, dataOffset = null, dictOffset = null;
        Statistics? stats = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    type = (PhysicalType)r.ReadI32(ft);
                    break;
                case 2:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    encodings = new List<PageEncoding>(count);
                    for (var i = 0; i < count; i++)
                    {
                        encodings.Add((PageEncoding)r.ReadI32(et));
                    }

                    break;
                }

                case 3:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    path = new List<string>(count);
                    for (var i = 0; i < count; i++)
                    {
                        path.Add(r.ReadString(et));
                    }

                    break;
                }

                case 4:
                    codec = (CompressionCodec)r.ReadI32(ft);
                    break;
                case 5:
                    numValues = r.ReadI64(ft);
                    break;
                case 6:
                    uncompressed = r.ReadI64(ft);
                    break;
                case 7:
                    compressed = r.ReadI64(ft);
                    break;
                case 9:
                    dataOffset = r.ReadI64(ft);
                    break;
                case 11:
                    dictOffset = r.ReadI64(ft);
                    break;
                case 12:
                    r.ExpectStruct(ft);
                    stats = Statistics.Read(ref r);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (type is null || path is null || codec is null || numValues is null || compressed is null || dataOffset is null)
        {
            r.Throw("ColumnMetaData is missing a required field (type, path_in_schema, codec, num_values, total_compressed_size or data_page_offset)");
        }

        return new ColumnMetaData
        {
            Type = type.Value,
            Encodings = encodings ?? [],
            PathInSchema = path,
            Codec = codec.Value,
            NumValues = numValues.Value,
            TotalUncompressedSize = uncompressed ?? 0,
            TotalCompressedSize = compressed.Value,
            DataPageOffset = dataOffset.Value,
            DictionaryPageOffset = dictOffset,
            Statistics = stats,
        };
    }
}

internal sealed class ColumnChunk
{
    public long FileOffset { get; init; }

    public required ColumnMetaData MetaData { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I64Field(2, FileOffset);
        w.FieldBegin(3, CompactType.Struct);
        MetaData.Write(w);
        w.EndStruct(outer);
    }

    public static ColumnChunk Read(ref ThriftCompactReader r)
    {
        long offset = 0;
        ColumnMetaData? meta = null;
        string? filePath = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    filePath = r.ReadString(ft);
                    break;
                case 2:
                    offset = r.ReadI64(ft);
                    break;
                case 3:
                    r.ExpectStruct(ft);
                    meta = ColumnMetaData.Read(ref r);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (filePath is not null)
        {
            r.Throw($"ColumnChunk refers to column data in another file ('{filePath}'), which is not supported");
        }

        return new ColumnChunk { FileOffset = offset, MetaData = meta ?? r.Throw<ColumnMetaData>("ColumnChunk is missing meta_data") };
    }
}

internal sealed class RowGroup
{
    public required IReadOnlyList<ColumnChunk> Columns { get; init; }

    public long TotalByteSize { get; init; }

    public long NumRows { get; init; }

    public long? FileOffset { get; init; }

    public long? TotalCompressedSize { get; init; }

    public short? Ordinal { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.ListField(1, CompactType.Struct, Columns.Count);
        foreach (var c in Columns)
        {
            c.Write(w);
        }

        w.I64Field(2, TotalByteSize);
        w.I64Field(3, NumRows);
        if (FileOffset is { } fo)
        {
            w.I64Field(5, fo);
        }

        if (TotalCompressedSize is { } tcs)
        {
            w.I64Field(6, tcs);
        }

        if (Ordinal is { } ord)
        {
            w.FieldBegin(7, CompactType.I16);
            w.I32(ord);
        }

        w.EndStruct(outer);
    }

    public static RowGroup Read(ref ThriftCompactReader r)
    {
        List<ColumnChunk>? columns = null;
        long? totalBytes = null, numRows = null, fileOffset = null, totalCompressed = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    r.ExpectStruct(et);
                    columns = new List<ColumnChunk>(count);
                    for (var i = 0; i < count; i++)
                    {
                        columns.Add(ColumnChunk.Read(ref r));
                    }

                    break;
                }

                case 2:
                    totalBytes = r.ReadI64(ft);
                    break;
                case 3:
                    numRows = r.ReadI64(ft);
                    break;
                case 5:
                    fileOffset = r.ReadI64(ft);
                    break;
                case 6:
                    totalCompressed = r.ReadI64(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (columns is null || numRows is null)
        {
            r.Throw("RowGroup is missing columns or num_rows");
        }

        return new RowGroup
        {
            Columns = columns,
            TotalByteSize = totalBytes ?? 0,
            NumRows = numRows.Value,
            FileOffset = fileOffset,
            TotalCompressedSize = totalCompressed,
        };
    }
}

internal sealed class FileMetaData
{
    public int Version { get; init; } = 1;

    public required IReadOnlyList<SchemaElement> Schema { get; init; }

    public long NumRows { get; init; }

    public required IReadOnlyList<RowGroup> RowGroups { get; init; }

    public IReadOnlyList<KeyValue>? KeyValueMetadata { get; init; }

    public string? CreatedBy { get; init; }

    /// <summary>On write: how many leaf columns get a TYPE_ORDER column order.</summary>
    public int ColumnOrderCount { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, Version);
        w.ListField(2, CompactType.Struct, Schema.Count);
        foreach (var s in Schema)
        {
            s.Write(w);
        }

        w.I64Field(3, NumRows);
        w.ListField(4, CompactType.Struct, RowGroups.Count);
        foreach (var g in RowGroups)
        {
            g.Write(w);
        }

        if (KeyValueMetadata is { Count: > 0 } kv)
        {
            w.ListField(5, CompactType.Struct, kv.Count);
            foreach (var pair in kv)
            {
                pair.Write(w);
            }
        }

        if (CreatedBy is not null)
        {
            w.StringField(6, CreatedBy);
        }

        if (ColumnOrderCount > 0)
        {
            // ColumnOrder is a union; TYPE_ORDER (field 1) is an empty struct.
            w.ListField(7, CompactType.Struct, ColumnOrderCount);
            for (var i = 0; i < ColumnOrderCount; i++)
            {
                var union = w.BeginStruct();
                var member = w.StructField(1);
                w.EndStruct(member);
                w.EndStruct(union);
            }
        }

        w.EndStruct(outer);
    }

    public static FileMetaData Read(ref ThriftCompactReader r)
    {
        int? version = null;
        List<SchemaElement>? schema = null;
        long? numRows = null;
        List<RowGroup>? rowGroups = null;
        List<KeyValue>? kv = null;
        string? createdBy = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    version = r.ReadI32(ft);
                    break;
                case 2:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    r.ExpectStruct(et);
                    schema = new List<SchemaElement>(count);
                    for (var i = 0; i < count; i++)
                    {
                        schema.Add(SchemaElement.Read(ref r));
                    }

                    break;
                }

                case 3:
                    numRows = r.ReadI64(ft);
                    break;
                case 4:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    r.ExpectStruct(et);
                    rowGroups = new List<RowGroup>(count);
                    for (var i = 0; i < count; i++)
                    {
                        rowGroups.Add(RowGroup.Read(ref r));
                    }

                    break;
                }

                case 5:
                {
                    var count = r.ReadListHeader(ft, out var et);
                    r.ExpectStruct(et);
                    kv = new List<KeyValue>(count);
                    for (var i = 0; i < count; i++)
                    {
                        kv.Add(KeyValue.Read(ref r));
                    }

                    break;
                }

                case 6:
                    createdBy = r.ReadString(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (version is null || schema is null || numRows is null || rowGroups is null)
        {
            r.Throw("FileMetaData is missing a required field (version, schema, num_rows or row_groups)");
        }

        return new FileMetaData
        {
            Version = version.Value,
            Schema = schema,
            NumRows = numRows.Value,
            RowGroups = rowGroups,
            KeyValueMetadata = kv,
            CreatedBy = createdBy,
        };
    }
}

internal sealed class DataPageHeader
{
    public int NumValues { get; init; }

    public PageEncoding Encoding { get; init; }

    public PageEncoding DefinitionLevelEncoding { get; init; }

    public PageEncoding RepetitionLevelEncoding { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, NumValues);
        w.I32Field(2, (int)Encoding);
        w.I32Field(3, (int)DefinitionLevelEncoding);
        w.I32Field(4, (int)RepetitionLevelEncoding);
        w.EndStruct(outer);
    }

    public static DataPageHeader Read(ref ThriftCompactReader r)
    {
        int? numValues = null, encoding = null, defEncoding = null, repEncoding = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    numValues = r.ReadI32(ft);
                    break;
                case 2:
                    encoding = r.ReadI32(ft);
                    break;
                case 3:
                    defEncoding = r.ReadI32(ft);
                    break;
                case 4:
                    repEncoding = r.ReadI32(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (numValues is null || encoding is null || defEncoding is null || repEncoding is null)
        {
            r.Throw("DataPageHeader is missing a required field");
        }

        return new DataPageHeader
        {
            NumValues = numValues.Value,
            Encoding = (PageEncoding)encoding.Value,
            DefinitionLevelEncoding = (PageEncoding)defEncoding.Value,
            RepetitionLevelEncoding = (PageEncoding)repEncoding.Value,
        };
    }
}

internal sealed class DataPageHeaderV2
{
    public int NumValues { get; init; }

    public int NumNulls { get; init; }

    public int NumRows { get; init; }

    public PageEncoding Encoding { get; init; }

    public int DefinitionLevelsByteLength { get; init; }

    public int RepetitionLevelsByteLength { get; init; }

    public bool IsCompressed { get; init; } = true;

    /// <summary>Weft's writer emits v1 pages; this exists so tests can build v2 pages.</summary>
    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, NumValues);
        w.I32Field(2, NumNulls);
        w.I32Field(3, NumRows);
        w.I32Field(4, (int)Encoding);
        w.I32Field(5, DefinitionLevelsByteLength);
        w.I32Field(6, RepetitionLevelsByteLength);
        w.BoolField(7, IsCompressed);
        w.EndStruct(outer);
    }

    public static DataPageHeaderV2 Read(ref ThriftCompactReader r)
    {
        int? numValues = null, numNulls = null, numRows = null, encoding = null, defLength = null, repLength = null;
        var compressed = true;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    numValues = r.ReadI32(ft);
                    break;
                case 2:
                    numNulls = r.ReadI32(ft);
                    break;
                case 3:
                    numRows = r.ReadI32(ft);
                    break;
                case 4:
                    encoding = r.ReadI32(ft);
                    break;
                case 5:
                    defLength = r.ReadI32(ft);
                    break;
                case 6:
                    repLength = r.ReadI32(ft);
                    break;
                case 7:
                    compressed = r.ReadBoolField(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (numValues is null || numNulls is null || numRows is null || encoding is null || defLength is null || repLength is null)
        {
            r.Throw("DataPageHeaderV2 is missing a required field");
        }

        return new DataPageHeaderV2
        {
            NumValues = numValues.Value,
            NumNulls = numNulls.Value,
            NumRows = numRows.Value,
            Encoding = (PageEncoding)encoding.Value,
            DefinitionLevelsByteLength = defLength.Value,
            RepetitionLevelsByteLength = repLength.Value,
            IsCompressed = compressed,
        };
    }
}

internal sealed class DictionaryPageHeader
{
    public int NumValues { get; init; }

    public PageEncoding Encoding { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, NumValues);
        w.I32Field(2, (int)Encoding);
        w.EndStruct(outer);
    }

    public static DictionaryPageHeader Read(ref ThriftCompactReader r)
    {
        int? numValues = null, encoding = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    numValues = r.ReadI32(ft);
                    break;
                case 2:
                    encoding = r.ReadI32(ft);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (numValues is null || encoding is null)
        {
            r.Throw("DictionaryPageHeader is missing a required field");
        }

        return new DictionaryPageHeader { NumValues = numValues.Value, Encoding = (PageEncoding)encoding.Value };
    }
}

internal sealed class PageHeader
{
    public PageType Type { get; init; }

    public int UncompressedPageSize { get; init; }

    public int CompressedPageSize { get; init; }

    public DataPageHeader? DataPageHeader { get; init; }

    public DictionaryPageHeader? DictionaryPageHeader { get; init; }

    public DataPageHeaderV2? DataPageHeaderV2 { get; init; }

    public void Write(ThriftCompactWriter w)
    {
        var outer = w.BeginStruct();
        w.I32Field(1, (int)Type);
        w.I32Field(2, UncompressedPageSize);
        w.I32Field(3, CompressedPageSize);
        if (DataPageHeader is { } data)
        {
            w.FieldBegin(5, CompactType.Struct);
            data.Write(w);
        }

        if (DictionaryPageHeader is { } dict)
        {
            w.FieldBegin(7, CompactType.Struct);
            dict.Write(w);
        }

        if (DataPageHeaderV2 is { } v2)
        {
            w.FieldBegin(8, CompactType.Struct);
            v2.Write(w);
        }

        w.EndStruct(outer);
    }

    public static PageHeader Read(ref ThriftCompactReader r)
    {
        int? type = null, uncompressed = null, compressed = null;
        DataPageHeader? data = null;
        DictionaryPageHeader? dict = null;
        DataPageHeaderV2? dataV2 = null;
        short last = 0;
        while (r.ReadFieldHeader(ref last, out var id, out var ft))
        {
            switch (id)
            {
                case 1:
                    type = r.ReadI32(ft);
                    break;
                case 2:
                    uncompressed = r.ReadI32(ft);
                    break;
                case 3:
                    compressed = r.ReadI32(ft);
                    break;
                case 5:
                    r.ExpectStruct(ft);
                    data = DataPageHeader.Read(ref r);
                    break;
                case 7:
                    r.ExpectStruct(ft);
                    dict = DictionaryPageHeader.Read(ref r);
                    break;
                case 8:
                    r.ExpectStruct(ft);
                    dataV2 = DataPageHeaderV2.Read(ref r);
                    break;
                default:
                    r.Skip(ft);
                    break;
            }
        }

        if (type is null || uncompressed is null || compressed is null)
        {
            r.Throw("PageHeader is missing type, uncompressed_page_size or compressed_page_size");
        }

        if (uncompressed.Value < 0 || compressed.Value < 0)
        {
            r.Throw($"PageHeader has a negative page size ({uncompressed.Value} uncompressed, {compressed.Value} compressed)");
        }

        return new PageHeader
        {
            Type = (PageType)type.Value,
            UncompressedPageSize = uncompressed.Value,
            CompressedPageSize = compressed.Value,
            DataPageHeader = data,
            DictionaryPageHeader = dict,
            DataPageHeaderV2 = dataV2,
        };
    }
}
