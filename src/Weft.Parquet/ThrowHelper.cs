using System.Diagnostics.CodeAnalysis;

namespace Weft.Parquet;

/// <summary>Throw helpers that keep throwing out of hot methods.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void Format(string problem) => throw new ParquetFormatException(problem);

    [DoesNotReturn]
    public static T Format<T>(string problem) => throw new ParquetFormatException(problem);

    [DoesNotReturn]
    public static void NotSupported(string problem) => throw new NotSupportedException(problem);

    [DoesNotReturn]
    public static T NotSupported<T>(string problem) => throw new NotSupportedException(problem);

    [DoesNotReturn]
    public static (ParquetType, global::Weft.Parquet.Format.PhysicalType, global::Weft.Parquet.Columns.LeafStorage) NotSupportedType(string column, global::Weft.Parquet.Format.SchemaElement leaf) =>
        throw new NotSupportedException(
            $"Column '{column}' has physical type {PhysicalName(leaf.Type)} with logical type {LogicalName(leaf.LogicalType)} " +
            $"(converted type {ConvertedName(leaf.ConvertedType)}); Weft reads BOOLEAN, signed and unsigned INT32 and INT64, FLOAT, DOUBLE, " +
            "UTF-8 BYTE_ARRAY, TIMESTAMP (MILLIS, MICROS or NANOS), INT96 timestamps, DATE, TIME (MILLIS, MICROS or NANOS) " +
            "and DECIMAL (as INT32, INT64, BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY).");

    private static readonly string[] PhysicalNames = ["BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"];

    private static readonly string[] LogicalNames = ["", "STRING", "MAP", "LIST", "ENUM", "DECIMAL", "DATE", "TIME", "TIMESTAMP", "", "INTEGER", "UNKNOWN", "JSON", "BSON", "UUID", "FLOAT16", "VARIANT", "GEOMETRY", "GEOGRAPHY"];

    private static readonly string[] ConvertedNames =
    [
        "UTF8", "MAP", "MAP_KEY_VALUE", "LIST", "ENUM", "DECIMAL", "DATE", "TIME_MILLIS", "TIME_MICROS", "TIMESTAMP_MILLIS", "TIMESTAMP_MICROS",
        "UINT_8", "UINT_16", "UINT_32", "UINT_64", "INT_8", "INT_16", "INT_32", "INT_64", "JSON", "BSON", "INTERVAL",
    ];

    // The format's own names, so a message reads like the file's schema in any other tool.
    private static string PhysicalName(global::Weft.Parquet.Format.PhysicalType? type) =>
        type is { } t && (int)t >= 0 && (int)t < PhysicalNames.Length ? PhysicalNames[(int)t] : $"#{(int?)type}";

    private static string LogicalName(global::Weft.Parquet.Format.LogicalType? logical) => logical is null ? "none"
        : logical.Kind > 0 && logical.Kind < LogicalNames.Length && LogicalNames[logical.Kind].Length > 0 ? LogicalNames[logical.Kind]
        : $"#{logical.Kind}";

    private static string ConvertedName(global::Weft.Parquet.Format.ConvertedType? converted) => converted is not { } c ? "none"
        : (int)c >= 0 && (int)c < ConvertedNames.Length ? ConvertedNames[(int)c] : $"#{(int)c}";
}
