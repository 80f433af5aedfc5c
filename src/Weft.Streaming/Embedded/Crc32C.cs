using System.Buffers.Binary;
using System.Numerics;

namespace Weft.Streaming.Embedded;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and Kafka's
/// record batches. <see cref="BitOperations.Crc32C(uint, ulong)"/> uses the SSE4.2 / ARMv8 CRC
/// instructions where the processor has them and a table otherwise.
/// </summary>
internal static class Crc32C
{
    /// <summary>The register value before any byte is fed (the standard pre-inversion).</summary>
    public const uint Seed = 0xFFFF_FFFFu;

    /// <summary>The CRC-32C of <paramref name="data"/>: <c>Finish(Append(Seed, data))</c>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));

    /// <summary>Feeds <paramref name="data"/> into a running register value (start from <see cref="Seed"/>).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= sizeof(ulong))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }

        if (data.Length >= sizeof(uint))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt32LittleEndian(data));
            data = data[sizeof(uint)..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }

    /// <summary>The final inversion that turns a register value into the CRC.</summary>
    public static uint Finish(uint crc) => ~crc;
}
