using System.Runtime.InteropServices;

namespace Weft.Streaming.Kafka;

/// <summary>
/// Finds and loads the native librdkafka, once, and only when something Kafka is created (a source,
/// a producer or a mock cluster): code paths without Kafka never touch it, so Weft runs on machines
/// that lack the library.
/// </summary>
/// <remarks>
/// <para>
/// Weft pins Confluent.Kafka 1.9.3 against the system librdkafka (Debian 12: librdkafka1 2.0.2;
/// Confluent.Kafka 2.x needs newer symbols) instead of the librdkafka.redist package. Confluent.Kafka
/// 1.9.3 binds through <c>[DllImport("librdkafka")]</c>, which the runtime alone resolves only to
/// <c>librdkafka.so</c> (the development symlink), and its own <c>Library.Load(path)</c> needs
/// <c>libdl.so</c> (also a development file). So Weft loads the library itself through the dynamic
/// loader's search (the <c>ld.so</c> cache, no architecture directory written down) and hands the
/// handle to Confluent.Kafka through a DllImport resolver on its assembly.
/// </para>
/// <para>Search order: an explicit path (option or <c>WEFT_LIBRDKAFKA</c>), then <c>librdkafka.so.1</c>,
/// <c>librdkafka.so</c>, <c>librdkafka.dylib</c>, <c>librdkafka.dll</c>. The first load wins for the
/// life of the process.</para>
/// </remarks>
internal static class LibRdKafka
{
    /// <summary>Environment variable that names the librdkafka file to load.</summary>
    public const string PathVariable = "WEFT_LIBRDKAFKA";

    private static readonly Lock Gate = new();
    private static nint s_handle;
    private static string? s_loadedFrom;

    /// <summary>Where the loaded library came from (as given to the loader), or null before the first load.</summary>
    public static string? LoadedFrom => Volatile.Read(ref s_loadedFrom);

    /// <summary>Loads librdkafka if it is not loaded yet and returns its handle.</summary>
    /// <param name="explicitPath">A file to load instead of searching; null to search.</param>
    /// <exception cref="DllNotFoundException">No librdkafka could be loaded; the message says how to install it.</exception>
    public static nint EnsureLoaded(string? explicitPath = null)
    {
        var handle = Volatile.Read(ref s_handle);
        if (handle != 0)
        {
            return handle;
        }

        lock (Gate)
        {
            if (s_handle != 0)
            {
                return s_handle;
            }

            var tried = new List<string>();
            foreach (var candidate in Candidates(explicitPath))
            {
                tried.Add(candidate);
                if (NativeLibrary.TryLoad(candidate, out handle))
                {
                    RegisterWithConfluent(handle);
                    s_loadedFrom = candidate;
                    Volatile.Write(ref s_handle, handle);
                    return handle;
                }
            }

            throw new DllNotFoundException(
                $"librdkafka could not be loaded (tried {string.Join(", ", tried)}). Kafka sources need the system librdkafka " +
                $"(Debian: apt-get install librdkafka1, or librdkafka-dev); or name the file with KafkaSourceOptions.LibrdkafkaPath " +
                $"or the {PathVariable} environment variable.");
        }
    }

    /// <summary>The address of an exported librdkafka function (for the mock-cluster API, which Confluent.Kafka does not wrap).</summary>
    public static nint Export(string name)
    {
        var handle = EnsureLoaded();
        return NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new EntryPointNotFoundException($"librdkafka ({LoadedFrom}) does not export {name}; it was built without the mock cluster.");
    }

    private static IEnumerable<string> Candidates(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            yield return explicitPath;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            yield return fromEnvironment;
        }

        yield return "librdkafka.so.1";
        yield return "librdkafka.so";
        yield return "librdkafka.dylib";
        yield return "librdkafka.dll";
    }

    private static void RegisterWithConfluent(nint handle)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(
                typeof(Confluent.Kafka.Library).Assembly,
                (name, _, _) => name == "librdkafka" ? handle : 0);
        }
        catch (InvalidOperationException)
        {
            // The host registered its own resolver for Confluent.Kafka: it knows where its librdkafka is.
        }
    }
}
