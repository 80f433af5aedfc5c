namespace Weft.Parquet;

/// <summary>
/// The logical column types Weft reads and writes. Each maps to one Parquet physical type:
/// <see cref="Boolean"/> BOOLEAN, <see cref="Int32"/> INT32, <see cref="Int64"/> INT64,
/// <see cref="Float"/> FLOAT, <see cref="Double"/> DOUBLE, <see cref="String"/> BYTE_ARRAY with the
/// STRING logical type (UTF-8), and <see cref="TimestampMicros"/> INT64 with
/// TIMESTAMP(isAdjustedToUTC = true, unit = MICROS).
/// </summary>
public enum ParquetType
{
    /// <summary>BOOLEAN; values are <see cref="bool"/>.</summary>
    Boolean,

    /// <summary>INT32; values are <see cref="int"/>.</summary>
    Int32,

    /// <summary>INT64; values are <see cref="long"/>.</summary>
    Int64,

    /// <summary>FLOAT; values are <see cref="float"/>.</summary>
    Float,

    /// <summary>DOUBLE; values are <see cref="double"/>.</summary>
    Double,

    /// <summary>BYTE_ARRAY (STRING / UTF8); values are <see cref="string"/>.</summary>
    String,

    /// <summary>
    /// INT64 TIMESTAMP(UTC, MICROS); values are <see cref="long"/> microseconds since the Unix epoch.
    /// On read, TIMESTAMP(MICROS) columns that are not UTC-adjusted (DuckDB's plain TIMESTAMP) map here too.
    /// </summary>
    TimestampMicros,
}
