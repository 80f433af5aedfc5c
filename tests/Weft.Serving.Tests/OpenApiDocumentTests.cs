using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Weft.Definitions;
using Xunit;

namespace Weft.Serving.Tests;

/// <summary>
/// /openapi.json against the running server: what the document lets a client send is what the
/// endpoints accept, and what they answer is what the document describes.
/// </summary>
public sealed class OpenApiDocumentTests
{
    private const string MultiGet = "/v1/signals/{signal}/sequences";

    [Fact]
    public async Task A_multi_get_body_gets_200_exactly_when_the_document_allows_it()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        var doc = await DocumentAsync(world);
        var schema = doc.GetProperty("paths").GetProperty(MultiGet).GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").GetProperty("schema");
        string asOf = Timestamps.Format(ServingWorld.Now);
        string[] bodies =
        [
            """{"user_ids":[1,2]}""",
            """{"user_ids":[]}""",
            $$"""{"user_ids":[1],"columns":["item_id"],"limit":3,"lookback":"1d","as_of":"{{asOf}}","known_at":"{{asOf}}"}""",
            """{"user_ids":["1"]}""",
            """{"user_ids":[1.5]}""",
            """{"user_ids":1}""",
            """{"user_ids":null}""",
            """{"columns":["item_id"]}""",
            """{"user_ids":[1],"limit":"3"}""",
            """{"user_ids":[1],"limit":2.5}""",
            """{"user_ids":[1],"limit":0}""",
            """{"user_ids":[1],"columns":null}""",
            """{"user_ids":[1],"columns":"item_id"}""",
            """{"user_ids":[1],"limit":null}""",
            """{"user_ids":[1],"lookback":null}""",
            """{"user_ids":[1],"as_of":null}""",
            """{"user_ids":[1],"known_at":null}""",
            """{"user_ids":[1],"as_of":1}""",
            """{"user_ids":[1],"other":1}""",
            """{"user_ids":[1],"consumer":"ranker"}""",
            """{"user_ids":[1],"consumer":null}""",
            """{"user_ids":[1],"consumer":3}""",
            """[1]""",
        ];

        foreach (var body in bodies)
        {
            using var parsed = JsonDocument.Parse(body);
            var problems = new List<string>();
            Validate(doc, schema, parsed.RootElement, "body", closed: false, problems);
            var response = await client.PostAsync("v1/signals/engagement/sequences", new StringContent(body, Encoding.UTF8, "application/json"));
            string answer = await response.Content.ReadAsStringAsync();

            response.StatusCode.Should().Be(problems.Count == 0 ? HttpStatusCode.OK : HttpStatusCode.BadRequest,
                $"the document {(problems.Count == 0 ? "allows" : "refuses")} {body} ({string.Join("; ", problems)}); the server said {answer}");
        }
    }

    [Fact]
    public async Task Events_the_ingest_endpoint_accepts_are_ones_the_document_allows()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        var doc = await DocumentAsync(world);
        var schema = doc.GetProperty("paths").GetProperty("/v1/events").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").GetProperty("schema");
        string time = Timestamps.Format(ServingWorld.Now - ServingWorld.Hour);
        string[] bodies =
        [
            $$"""[{"event_id":"d1","user_id":1,"event_type":"save","event_time":"{{time}}","item_id":4}]""",
            $$"""[{"event_id":"d2","user_id":1,"event_type":"save","event_time":"{{time}}","ingest_time":"{{time}}","tenant":"home-feed","item_id":4}]""",
            $$"""{"event_id":"d3","user_id":1,"event_type":"save","event_time":"{{time}}","item_id":4}""",
        ];

        foreach (var body in bodies)
        {
            using var parsed = JsonDocument.Parse(body);
            var problems = new List<string>();
            Validate(doc, schema, parsed.RootElement, "body", closed: false, problems);
            var response = await client.PostAsync("v1/events", Json(body));

            response.StatusCode.Should().Be(HttpStatusCode.Accepted, body);
            problems.Should().BeEmpty($"the server accepts {body}");
        }

        // NDJSON is text of one event object per line, not an array (a generated client sent one and got 400).
        var content = doc.GetProperty("paths").GetProperty("/v1/events").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        foreach (var lines in new[] { "application/x-ndjson", "application/jsonl" })
        {
            content.GetProperty(lines).GetProperty("schema").GetProperty("type").GetString().Should().Be("string", lines);
            string ndjson = $$"""{"event_id":"n1","user_id":1,"event_type":"save","event_time":"{{time}}","item_id":4}""" + "\n" + $$"""{"event_id":"n2","user_id":2,"event_type":"save","event_time":"{{time}}","item_id":5}""";
            (await client.PostAsync("v1/events", new StringContent(ndjson, Encoding.UTF8, lines))).StatusCode.Should().Be(HttpStatusCode.Accepted, lines);
        }
    }

    [Fact]
    public async Task Every_answer_of_a_server_running_the_stream_is_what_the_document_describes()
    {
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(120, seed: 5));
        await world.StartAsync();
        using var client = world.Client();
        using var anonymous = world.Client(key: null);
        var doc = await DocumentAsync(world);
        const string sequence = "/v1/signals/{signal}/users/{user_id}/sequence";
        var click = new RawEvent("oa-1", 3, "click", ServingWorld.Now - ServingWorld.Hour, ServingWorld.Now - ServingWorld.Hour, 4, 900);

        var answers = new List<(string Path, string Method, HttpResponseMessage Response)>
        {
            (sequence, "get", await client.GetAsync("v1/signals/engagement/users/3/sequence")),
            (sequence, "get", await client.GetAsync("v1/signals/engagement/users/3/sequence?columns=item_id&limit=2")),
            (sequence, "get", await client.GetAsync("v1/signals/engagement/users/3/sequence?limit=abc")),
            (sequence, "get", await client.GetAsync("v1/signals/engagement/users/3/sequence?limit=999")),
            (sequence, "get", await client.GetAsync("v1/signals/nope/users/3/sequence")),
            (sequence, "get", await anonymous.GetAsync("v1/signals/engagement/users/3/sequence")),
            (MultiGet, "post", await client.PostAsync("v1/signals/engagement/sequences", Json("""{"user_ids":[3,4,999]}"""))),
            (MultiGet, "post", await client.PostAsync("v1/signals/engagement/sequences", Json("""{"user_ids":[3"""))),
            (MultiGet, "post", await client.PostAsync("v1/signals/engagement/sequences", Json("""{"user_ids":[3],"limit":999}"""))),
            ("/v1/signals", "get", await client.GetAsync("v1/signals")),
            ("/v1/status", "get", await client.GetAsync("v1/status")),
            ("/v1/events", "post", await client.PostAsync("v1/events", Json("[" + click.Json() + "]"))),
            ("/v1/events", "post", await client.PostAsync("v1/events", Json("""[{"event_type":"like"}]"""))),
        };

        // A second read of the same user is a cache hit: the cache's rendered_* counters appear.
        await client.GetAsync("v1/signals/engagement/users/3/sequence");
        answers.Add(("/v1/status", "get", await client.GetAsync("v1/status")));

        await ExpectDescribedAsync(doc, answers);
        answers.Select(a => (int)a.Response.StatusCode).Distinct().Should().BeEquivalentTo([200, 202, 400, 401, 404], "every kind of answer was checked");
    }

    [Fact]
    public async Task Every_answer_during_a_migration_is_what_the_document_describes()
    {
        await using var legacy = await Weft.Tests.Legacy.LegacyServer.StartAsync();
        await using var world = new ServingWorld();
        await world.StreamAsync(ServingWorld.Events(60, seed: 36));
        await HybridSequenceTests.SetLegacyAsync(world, $$"""{ "endpoint": "{{legacy.Url}}", "endpoint_timeout": "20s" }""");
        await HybridSequenceTests.CutOverAsync(world, "click", "ranker", 10);
        await using (var store = await Weft.Migration.MigrationStore.OpenAsync(Path.Combine(world.Root, "migration.db")))
        {
            await store.RecordOutcomeAsync("engagement", "click", "ranker", new Weft.Migration.EvidenceInput(Weft.Migration.MigrationStore.OutcomeKind, true, "held", "{}"), "test");
        }

        await world.StartAsync();
        using var client = world.Client();
        var doc = await DocumentAsync(world);
        const string sequence = "/v1/signals/{signal}/users/{user_id}/sequence";
        var answers = new List<(string Path, string Method, HttpResponseMessage Response)>
        {
            ("/v1/status", "get", await client.GetAsync("v1/status")),
            (sequence, "get", await client.GetAsync(HybridSequenceTests.Url(3, "ranker"))),
            ("/v1/signals/{signal}/users/{user_id}/routes", "get", await client.GetAsync("v1/signals/engagement/users/3/routes?consumer=ranker")),
            (MultiGet, "post", await client.PostAsync("v1/signals/engagement/sequences", Json("""{"user_ids":[3,4],"consumer":"ranker"}"""))),
        };
        legacy.FailWith = 503;
        for (int i = 0; i < Weft.Migration.LegacyEndpoint.OpenAfter; i++)
        {
            answers.Add((sequence, "get", await client.GetAsync(HybridSequenceTests.Url(3, "ranker"))));
        }

        answers.Add(("/v1/status", "get", await client.GetAsync("v1/status"))); // the breaker open, its last failure named

        (await ServingWorld.JsonAsync(answers[0].Response)).GetProperty("signals")[0].TryGetProperty("migration", out _).Should().BeTrue("the status under test carries the migration");
        await ExpectDescribedAsync(doc, answers);
        answers.Select(a => (int)a.Response.StatusCode).Distinct().Should().BeEquivalentTo([200, 502]);
    }

    [Fact]
    public async Task Every_answer_of_a_server_running_no_stream_is_what_the_document_describes()
    {
        await using var world = new ServingWorld(serving: """{ "urls": "http://127.0.0.1:0", "stream": "off" }""");
        await world.StartAsync();
        using var client = world.Client();
        var doc = await DocumentAsync(world);

        await ExpectDescribedAsync(doc,
        [
            ("/v1/status", "get", await client.GetAsync("v1/status")),
            ("/v1/events", "post", await client.PostAsync("v1/events", Json("[]"))),
            (MultiGet, "post", await client.PostAsync("v1/signals/engagement/sequences", Json("""{"user_ids":[3]}"""))),
        ]);
    }

    [Fact]
    public async Task The_operations_that_answer_401_without_a_key_declare_the_schemes_that_carry_one()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var anonymous = world.Client(key: null);
        using var client = world.Client();
        var doc = await DocumentAsync(world);
        var schemes = doc.GetProperty("components").TryGetProperty("securitySchemes", out var s) ? s : default;
        schemes.ValueKind.Should().Be(JsonValueKind.Object, "the document names how to present a key");
        schemes.EnumerateObject().Should().Contain(p => p.Value.GetProperty("type").GetString() == "http" && p.Value.GetProperty("scheme").GetString() == "bearer");

        int secured = 0;
        foreach (var path in doc.GetProperty("paths").EnumerateObject().Where(p => p.Name != "/openapi.json"))
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                string url = path.Name.TrimStart('/').Replace("{signal}", "engagement", StringComparison.Ordinal).Replace("{user_id}", "1", StringComparison.Ordinal);
                var declared = operation.Value.TryGetProperty("security", out var security)
                    ? security.EnumerateArray().SelectMany(r => r.EnumerateObject().Select(x => x.Name)).ToList()
                    : [];
                declared.Should().BeSubsetOf(schemes.EnumerateObject().Select(x => x.Name), $"{operation.Name} {path.Name} names declared schemes");
                var without = await SendAsync(anonymous, operation.Name, url);
                without.StatusCode.Should().Be(declared.Count > 0 ? HttpStatusCode.Unauthorized : HttpStatusCode.OK,
                    $"{operation.Name} {path.Name} declares {(declared.Count > 0 ? string.Join(", ", declared) : "no key")}");
                (await SendAsync(client, operation.Name, url)).StatusCode.Should().NotBe(HttpStatusCode.Unauthorized, $"{operation.Name} {path.Name} with a key");
                secured += declared.Count > 0 ? 1 : 0;
            }
        }

        secured.Should().Be(10, "status, signals, sequence and routes (GET and HEAD), multi-get and events");

        // Each declared scheme carries a key the server takes.
        foreach (var scheme in schemes.EnumerateObject())
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/signals");
            if (scheme.Value.GetProperty("type").GetString() == "http")
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(scheme.Value.GetProperty("scheme").GetString()!, ServingWorld.HomeKey);
            }
            else
            {
                scheme.Value.GetProperty("in").GetString().Should().Be("header");
                request.Headers.Add(scheme.Value.GetProperty("name").GetString()!, ServingWorld.HomeKey);
            }

            (await anonymous.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.OK, $"scheme {scheme.Name}");
        }
    }

    [Fact]
    public async Task No_number_in_the_document_may_be_a_string()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        var doc = await DocumentAsync(world);
        var loose = new List<string>();

        void Walk(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.Array)
                {
                    var kinds = type.EnumerateArray().Select(t => t.GetString()).ToList();
                    if (kinds.Contains("string") && (kinds.Contains("integer") || kinds.Contains("number")))
                    {
                        loose.Add(path);
                    }
                }

                foreach (var p in e.EnumerateObject())
                {
                    Walk(p.Value, path + "/" + p.Name);
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    Walk(item, path + "/" + i++.ToString(CultureInfo.InvariantCulture));
                }
            }
        }

        Walk(doc, "#");

        loose.Should().BeEmpty("the endpoints read and write numbers as JSON numbers only");
    }

    /// <summary>The read parameters carry the types the endpoints read them as (they bind strings, to answer a bad value with their own 400), and a parameter without which an endpoint answers 400 is required.</summary>
    [Fact]
    public async Task The_read_parameters_are_typed_and_required_as_the_endpoints_read_them()
    {
        await using var world = new ServingWorld();
        await world.StartAsync();
        using var client = world.Client();
        var paths = (await DocumentAsync(world)).GetProperty("paths");
        Dictionary<string, JsonElement> Parameters(string path) =>
            paths.GetProperty(path).GetProperty("get").GetProperty("parameters").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);

        var sequence = Parameters("/v1/signals/{signal}/users/{user_id}/sequence");
        var routes = Parameters("/v1/signals/{signal}/users/{user_id}/routes");

        foreach (var parameters in new[] { sequence, routes })
        {
            parameters["user_id"].GetProperty("schema").GetProperty("type").GetString().Should().Be("integer");
            parameters["user_id"].GetProperty("schema").GetProperty("format").GetString().Should().Be("int64");
        }

        sequence["limit"].GetProperty("schema").GetProperty("type").GetString().Should().Be("integer");
        var pattern = new System.Text.RegularExpressions.Regex(sequence["lookback"].GetProperty("schema").GetProperty("pattern").GetString()!);
        sequence["as_of"].GetProperty("description").GetString().Should().Contain("offset");
        sequence.Values.Where(p => p.GetProperty("in").GetString() == "query").Select(p => p.TryGetProperty("required", out var r) && r.GetBoolean())
            .Should().OnlyContain(required => !required, "every query parameter of a read has a default");
        routes["consumer"].GetProperty("required").GetBoolean().Should().BeTrue();

        const string url = "v1/signals/engagement/users/1";
        foreach (var lookback in new[] { "1d", "90m", "1 d", "1w", "d" })
        {
            var status = (await client.GetAsync($"{url}/sequence?lookback={Uri.EscapeDataString(lookback)}")).StatusCode;
            (status == HttpStatusCode.OK).Should().Be(pattern.IsMatch(lookback), $"lookback '{lookback}' answered {status}");
        }

        (await client.GetAsync($"{url}/routes")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "consumer is required");
        (await client.GetAsync($"{url}/routes?consumer=ranker")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync("v1/signals/engagement/users/1.5/sequence")).StatusCode.Should().Be(HttpStatusCode.BadRequest, "user_id is an integer");
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> DocumentAsync(ServingWorld world)
    {
        using var client = world.Client(key: null);
        return await ServingWorld.JsonAsync(await client.GetAsync("openapi.json"));
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, string method, string url) => method switch
    {
        "get" => client.GetAsync(url),
        "head" => client.SendAsync(new HttpRequestMessage(HttpMethod.Head, url)),
        "post" => client.PostAsync(url, Json(url.EndsWith("events", StringComparison.Ordinal) ? "[]" : "{}")),
        _ => throw new InvalidOperationException($"no request for {method}"),
    };

    /// <summary>Each answer's status is documented for its operation, and its body holds to that status's schema, with no undeclared property.</summary>
    private static async Task ExpectDescribedAsync(JsonElement doc, IEnumerable<(string Path, string Method, HttpResponseMessage Response)> answers)
    {
        var problems = new List<string>();
        foreach (var (path, method, response) in answers)
        {
            string status = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
            string text = await response.Content.ReadAsStringAsync();
            string where = $"{method.ToUpperInvariant()} {path} {status}";
            if (!doc.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses").TryGetProperty(status, out var documented))
            {
                problems.Add($"{where}: status not documented ({text})");
                continue;
            }

            using var body = JsonDocument.Parse(text);
            var before = problems.Count;
            Validate(doc, documented.GetProperty("content").GetProperty("application/json").GetProperty("schema"), body.RootElement, where, closed: true, problems);
            if (problems.Count > before)
            {
                problems.Add($"{where} answered {text}");
            }
        }

        problems.Should().BeEmpty();
    }

    /// <summary>
    /// The part of JSON Schema the document uses: $ref, oneOf (a nullable object is null or its $ref),
    /// type (with int32 / int64 formats), minimum, maximum, required, properties, additionalProperties, items. <paramref name="closed"/> treats
    /// a property the schema does not declare as a problem even where the schema would allow it.
    /// </summary>
    private static void Validate(JsonElement doc, JsonElement schema, JsonElement value, string at, bool closed, List<string> problems)
    {
        if (schema.TryGetProperty("$ref", out var reference))
        {
            schema = doc.GetProperty("components").GetProperty("schemas").GetProperty(reference.GetString()!["#/components/schemas/".Length..]);
        }

        if (schema.TryGetProperty("oneOf", out var alternatives))
        {
            var each = alternatives.EnumerateArray().Select(alternative =>
            {
                var found = new List<string>();
                Validate(doc, alternative, value, at, closed, found);
                return found;
            }).ToList();
            int matched = each.Count(found => found.Count == 0);
            if (matched != 1)
            {
                problems.Add($"{at}: {value.GetRawText()} matches {matched} of the {each.Count} oneOf alternatives");
                problems.AddRange(each.SelectMany(found => found));
            }

            return;
        }

        if (schema.TryGetProperty("type", out var type))
        {
            string? format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
            var kinds = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (!kinds.Any(kind => IsKind(value, kind, format)))
            {
                problems.Add($"{at}: {value.GetRawText()} is not {string.Join(" or ", kinds)}{(format is null ? "" : $" ({format})")}");
                return;
            }
        }

        if (value.ValueKind == JsonValueKind.Number)
        {
            if (schema.TryGetProperty("minimum", out var min) && value.GetDecimal() < min.GetDecimal())
            {
                problems.Add($"{at}: {value.GetRawText()} is below the minimum {min.GetRawText()}");
            }

            if (schema.TryGetProperty("maximum", out var max) && value.GetDecimal() > max.GetDecimal())
            {
                problems.Add($"{at}: {value.GetRawText()} is above the maximum {max.GetRawText()}");
            }
        }

        if (value.ValueKind == JsonValueKind.Object)
        {
            var properties = schema.TryGetProperty("properties", out var p) ? p : default;
            if (schema.TryGetProperty("required", out var required))
            {
                foreach (var name in required.EnumerateArray().Select(r => r.GetString()!).Where(name => !value.TryGetProperty(name, out _)))
                {
                    problems.Add($"{at}: required property '{name}' is absent");
                }
            }

            var additional = schema.TryGetProperty("additionalProperties", out var a) ? a : default;
            foreach (var property in value.EnumerateObject())
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(property.Name, out var declared))
                {
                    Validate(doc, declared, property.Value, $"{at}.{property.Name}", closed, problems);
                }
                else if (additional.ValueKind == JsonValueKind.Object)
                {
                    Validate(doc, additional, property.Value, $"{at}.{property.Name}", closed, problems);
                }
                else if (closed || additional.ValueKind == JsonValueKind.False)
                {
                    problems.Add($"{at}: property '{property.Name}' is not declared");
                }
            }
        }

        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var item in value.EnumerateArray())
            {
                Validate(doc, items, item, $"{at}[{i++}]", closed, problems);
            }
        }
    }

    private static bool IsKind(JsonElement value, string kind, string? format) => kind switch
    {
        "null" => value.ValueKind == JsonValueKind.Null,
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "string" => value.ValueKind == JsonValueKind.String,
        "array" => value.ValueKind == JsonValueKind.Array,
        "object" => value.ValueKind == JsonValueKind.Object,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && format switch
        {
            "int32" => value.TryGetInt32(out _),
            "int64" => value.TryGetInt64(out _),
            _ => value.TryGetDecimal(out var d) && decimal.Truncate(d) == d,
        },
        _ => throw new InvalidOperationException($"the validator does not know type '{kind}'"),
    };
}
