using System.Reflection;
using FluentAssertions;
using Weft.Streaming.Kafka;
using Xunit;

namespace Weft.Streaming.Tests.Kafka;

public sealed class KafkaSourceOptionsTests
{
    private static readonly KafkaSourceOptions Valid = new() { BootstrapServers = "127.0.0.1:9092", Topics = ["events"], GroupId = "weft" };

    public static TheoryData<string, KafkaSourceOptions> InvalidOptions => new()
    {
        { "BootstrapServers", Valid with { BootstrapServers = " " } },
        { "Topics", Valid with { Topics = [] } },
        { "Topics", Valid with { Topics = ["events", "bad topic!"] } },
        { "GroupId", Valid with { GroupId = "" } },
        { "ChannelCapacity", Valid with { ChannelCapacity = 0 } },
        { "AutoOffsetReset", Valid with { AutoOffsetReset = "middle" } },
        { "PollTimeout", Valid with { PollTimeout = TimeSpan.Zero } },
        { "PauseAfter", Valid with { PauseAfter = TimeSpan.FromMilliseconds(-1) } },
        { "PauseAfter", Valid with { PauseAfter = TimeSpan.FromMinutes(6) } },
        { "RebalanceTimeout", Valid with { RebalanceTimeout = TimeSpan.FromMilliseconds(999) } },
        { "RebalanceTimeout", Valid with { RebalanceTimeout = TimeSpan.FromMinutes(11) } },
        { "CloseTimeout", Valid with { CloseTimeout = TimeSpan.FromMilliseconds(999) } },
        { "CloseTimeout", Valid with { CloseTimeout = TimeSpan.FromMinutes(11) } },
        { "Config[enable.auto.commit]", Valid with { Config = new Dictionary<string, string> { ["enable.auto.commit"] = "true" } } },
        { "Config[group.id]", Valid with { Config = new Dictionary<string, string> { ["group.id"] = "other" } } },
        { "Config[dotnet.consumer.consume.result.fields]", Valid with { Config = new Dictionary<string, string> { ["dotnet.consumer.consume.result.fields"] = "all" } } },
    };

    [Fact]
    public void Defaults_are_valid_once_the_required_options_are_set()
    {
        Valid.Validate();
        Valid.ChannelCapacity.Should().Be(KafkaSourceOptions.DefaultChannelCapacity);
        Valid.AutoOffsetReset.Should().Be("earliest");
        Valid.PollTimeout.Should().Be(KafkaSourceOptions.DefaultPollTimeout);
        Valid.PauseAfter.Should().Be(KafkaSourceOptions.DefaultPauseAfter);
        Valid.CloseTimeout.Should().Be(KafkaSourceOptions.DefaultCloseTimeout);
        Valid.RebalanceTimeout.Should().Be(KafkaSourceOptions.DefaultRebalanceTimeout);
    }

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Validation_names_the_bad_option(string option, KafkaSourceOptions options)
    {
        var validate = options.Validate;
        validate.Should().Throw<ArgumentException>().Where(e => e.ParamName == option && e.Message.Contains($"KafkaSourceOptions.{option}", StringComparison.Ordinal));
    }

    [Fact]
    public void Secret_looking_settings_are_redacted_when_the_options_are_logged()
    {
        var options = Valid with { Config = new Dictionary<string, string> { ["sasl.password"] = "hunter2", ["fetch.max.bytes"] = "1048576" } };
        var text = options.ToString();
        text.Should().NotContain("hunter2").And.Contain("sasl.password=***").And.Contain("fetch.max.bytes=1048576");
    }

    [Fact]
    public async Task Opening_with_a_setting_librdkafka_rejects_fails_with_the_setting_named()
    {
        var options = Valid with { Config = new Dictionary<string, string> { ["fetch.max.bytes"] = "lots" } };
        var open = async () => await KafkaSource.OpenAsync(options);
        (await open.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("fetch.max.bytes");
    }

    [Fact]
    public void No_public_member_of_Weft_Streaming_exposes_a_Confluent_Kafka_type()
    {
        // Callers that never use Kafka must be able to compile and run against Weft.Streaming without
        // Confluent.Kafka or librdkafka being loaded.
        var leaks = typeof(IEventSource).Assembly.GetExportedTypes()
            .SelectMany(t => t.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .SelectMany(m => TypesOf(m).Select(x => (Member: $"{t.Name}.{m.Name}", Type: x))))
            .Where(p => p.Type.Assembly.GetName().Name == "Confluent.Kafka")
            .Select(p => $"{p.Member}: {p.Type}")
            .ToList();
        leaks.Should().BeEmpty();
    }

    private static IEnumerable<Type> TypesOf(MemberInfo member) => member switch
    {
        MethodInfo m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType).SelectMany(Flatten),
        PropertyInfo p => Flatten(p.PropertyType),
        FieldInfo f => Flatten(f.FieldType),
        ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType).SelectMany(Flatten),
        EventInfo e => Flatten(e.EventHandlerType!),
        _ => [],
    };

    private static IEnumerable<Type> Flatten(Type type) =>
        type.IsGenericType ? type.GetGenericArguments().SelectMany(Flatten).Prepend(type)
        : type.HasElementType ? Flatten(type.GetElementType()!).Prepend(type)
        : [type];
}
