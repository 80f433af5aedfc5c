using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Weft.Serving.Http;

/// <summary>What /openapi.json says beyond the endpoints' own metadata: the title, the API key schemes, and the rules of the JSON shapes in OpenApiDocs.cs.</summary>
internal static class ApiDocument
{
    private const string BearerScheme = "bearer";
    private const string HeaderScheme = "api_key";

    public static void Configure(OpenApiOptions options)
    {
        options.AddDocumentTransformer((document, _, _) =>
        {
            // No servers: the paths are relative to where the document was fetched. The generator's
            // default named the request's Host header, which a client sets: a shared cache in front
            // could keep a copy pointing clients at any host.
            document.Servers = [];
            document.Info.Title = "Weft serving API";
            document.Info.Version = "v1";
            document.Info.Description = "Sequences on request with provenance (docs/serving.md). Every /v1 endpoint needs an API key: Authorization: Bearer <key>, or X-Api-Key: <key>.";
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "Authorization: Bearer <api key>; a tenant's keys are configured as SHA-256 digests in weft.json.",
            };
            document.Components.SecuritySchemes[HeaderScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "X-Api-Key", Description = "The same key in X-Api-Key, for clients that cannot set Authorization.",
            };

            // A T? object property becomes "oneOf: null or $ref" only once its schema is a component.
            foreach (var schema in (document.Components.Schemas ?? new Dictionary<string, IOpenApiSchema>()).Values.OfType<OpenApiSchema>())
            {
                OptionalIsAbsentNotNull(schema);
            }

            return Task.CompletedTask;
        });
        options.AddSchemaTransformer((schema, _, _) =>
        {
            OptionalIsAbsentNotNull(schema);
            return Task.CompletedTask;
        });

        // GET and HEAD of a route are one endpoint with one name: operation ids must be unique, and
        // client generators fail or overwrite one with the other on a repeat.
        options.AddOperationTransformer((operation, context, _) =>
        {
            if (string.Equals(context.Description.HttpMethod, "HEAD", StringComparison.OrdinalIgnoreCase) && operation.OperationId is { } id)
            {
                operation.OperationId = id + "Head";
            }

            return Task.CompletedTask;
        });
    }

    /// <summary>Marks an endpoint as needing a tenant's API key: either scheme will do, and without one it answers 401.</summary>
    public static RouteHandlerBuilder RequiresApiKey(this RouteHandlerBuilder endpoint) =>
        endpoint.Produces<ErrorDoc>(401).AddOpenApiOperationTransformer((operation, context, _) =>
        {
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(HeaderScheme, context.Document)] = [] },
            ];
            return Task.CompletedTask;
        });

    /// <summary>
    /// The read parameters' types as the endpoints read them. The handlers bind every parameter as a
    /// string, so that a bad value gets the API's own 400 naming it, which left each typed "string" in the
    /// document. <paramref name="required"/> names the query parameters without which the endpoint answers 400.
    /// </summary>
    public static RouteHandlerBuilder WithReadParameters(this RouteHandlerBuilder endpoint, params string[] required) =>
        endpoint.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>())
            {
                switch (parameter.Name)
                {
                    case "user_id":
                        parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int64" };
                        break;
                    case "limit":
                        parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "1" };
                        parameter.Description = "1 to the signal's max_length and serving.max_limit";
                        break;
                    case "lookback":
                        parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[0-9]+(ms|s|m|h|d)$" };
                        parameter.Description = "a duration, at most the signal's lookback";
                        break;
                    case "as_of" or "known_at":
                        parameter.Description = "ISO-8601: a date (its midnight UTC), or a date and time with an offset (Z or ±hh:mm)";
                        break;
                    case "columns":
                        parameter.Description = "comma-separated sequence columns";
                        break;
                }

                if (Array.IndexOf(required, parameter.Name) >= 0)
                {
                    parameter.Required = true;
                }
            }

            return Task.CompletedTask;
        });

    /// <summary>
    /// The endpoints leave an optional property out rather than write null, and the multi-get body
    /// refuses null; the generator reads the T? of an optional property as "may be null" (for an object,
    /// a oneOf of null and its schema).
    /// </summary>
    private static void OptionalIsAbsentNotNull(OpenApiSchema schema)
    {
        if (schema.Properties is null)
        {
            return;
        }

        foreach (var (name, property) in schema.Properties.ToList())
        {
            if (schema.Required?.Contains(name) == true)
            {
                continue;
            }

            if (property is OpenApiSchema { Type: { } type } inline)
            {
                inline.Type = type & ~JsonSchemaType.Null;
            }
            else if (property is OpenApiSchema { OneOf: [var first, var second] } && (IsNull(first) || IsNull(second)))
            {
                schema.Properties[name] = IsNull(first) ? second : first;
            }
        }

        static bool IsNull(IOpenApiSchema s) => s is OpenApiSchema { Type: JsonSchemaType.Null };
    }
}
