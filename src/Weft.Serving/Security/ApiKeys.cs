using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Weft.Engine.Configuration;

namespace Weft.Serving.Security;

/// <summary>
/// Tenants by API key. weft.json stores only SHA-256 digests (<c>tenants[].api_keys_sha256</c>, hex); a
/// presented key is hashed and compared with every stored digest in constant time, always all of them,
/// so neither the comparison nor the search leaks how much of a key, or which tenant, matched.
/// </summary>
internal sealed class ApiKeys
{
    private readonly (byte[] Digest, string Tenant)[] _keys;

    public ApiKeys(IEnumerable<TenantConfig> tenants)
    {
        _keys = [.. tenants.SelectMany(t => t.ApiKeySha256.Select(hex => (Convert.FromHexString(hex), t.Name)))];
    }

    public int Count => _keys.Length;

    /// <summary>The key a request presents: <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>.</summary>
    public static string? Presented(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization[7..].Trim();
        }

        var header = request.Headers["X-Api-Key"].ToString();
        return header.Length > 0 ? header.Trim() : null;
    }

    /// <summary>The tenant whose key <paramref name="key"/> is, or null.</summary>
    public string? Authenticate(string? key)
    {
        if (string.IsNullOrEmpty(key) || key.Length > 4096)
        {
            return null;
        }

        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(key), digest);
        string? tenant = null;
        foreach (var (stored, name) in _keys)
        {
            // No early exit: every digest is compared whatever matched before.
            if (CryptographicOperations.FixedTimeEquals(stored, digest))
            {
                tenant = name;
            }
        }

        return tenant;
    }

    /// <summary>SHA-256 hex of a key: what to put in <c>api_keys_sha256</c>.</summary>
    public static string Digest(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
