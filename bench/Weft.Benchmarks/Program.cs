using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Weft.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/Weft.Benchmarks -- --filter '*'</c> (any BenchmarkDotNet
/// arguments). Benchmarks run in process, because BenchmarkDotNet's generated projects would not build
/// under the repository's central package management, with a short job (3 warm-ups, 3 iterations).
/// </summary>
internal static class Program
{
    public static void Main(string[] args)
    {
        var config = DefaultConfig.Instance
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortRun-InProcess"))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.JoinSummary);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
