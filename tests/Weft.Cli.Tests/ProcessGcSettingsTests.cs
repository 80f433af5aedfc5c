using System.Text.Json;
using FluentAssertions;
using Xunit;

namespace Weft.Cli.Tests;

/// <summary>
/// The garbage-collector settings the weft executable ships in its runtimeconfig.json (build/WeftProcessGc.props): the
/// streaming figures in docs/PERFORMANCE.md depend on them, and they reach the runtime only through
/// the executable's runtimeconfig.json.
/// </summary>
public sealed class ProcessGcSettingsTests
{
    private static JsonElement ConfigProperties()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "weft.runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    [Fact]
    public void The_runtimeconfig_of_weft_selects_the_server_collector()
    {
        ConfigProperties().GetProperty("System.GC.Server").GetBoolean().Should().BeTrue();
    }

    [Fact]
    public void The_runtimeconfig_keeps_the_collectors_heaps_instead_of_adapting_them_to_the_process_size()
    {
        ConfigProperties().GetProperty("System.GC.DynamicAdaptationMode").GetInt32().Should().Be(0);
    }

    [Fact]
    public void The_runtimeconfig_starts_a_micro_batchs_arrays_in_generation_zero_not_on_the_large_object_heap()
    {
        // 10,000 records of 32 bytes, or encoded elements of 40: the default batch's biggest arrays.
        const int defaultBatchArrayBytes = 10_000 * 40;
        ConfigProperties().GetProperty("System.GC.LOHThreshold").GetInt64().Should().BeGreaterThan(defaultBatchArrayBytes);
    }

    [Fact]
    public void The_runtimeconfig_starts_the_column_arrays_of_a_million_row_group_in_generation_zero_too()
    {
        // A row group of 1,048,576 rows (Weft's writer's default) decodes into 8 MB arrays of int64 values.
        const long millionRowColumnBytes = 1_048_576L * sizeof(long);
        ConfigProperties().GetProperty("System.GC.LOHThreshold").GetInt64().Should().BeGreaterThan(millionRowColumnBytes);
    }

    [Fact]
    public void The_runtimeconfig_has_the_collector_compact_the_old_generation_rather_than_grow_the_heap()
    {
        ConfigProperties().GetProperty("System.GC.ConserveMemory").GetInt32().Should().Be(7);
    }
}
