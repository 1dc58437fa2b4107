// JwtIssuer: mints HS256 JSON Web Tokens that sluice's JWT check accepts
// (docs/integration/auth-jwt.md; Red5 Pro's JWT plugin claims), with HMACSHA256.
//
// A JWT is base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(secret,
// first two parts)), without '=' padding. sluice requires `exp`; it checks `iss` and `aud`
// when auth.jwt_issuer / auth.jwt_audience are set, and applies `roles`
// ("red5-publisher" may publish and play, "red5-subscriber" may play), `red5-transport`,
// `red5-room`, `app`, `stream` (patterns with '*') and `action`. The secret is
// auth.jwt_secret, at least 32 bytes, shared only between sluice and this issuer.
//
// Clients pass the token as `?token=<JWT>` on the stream name or the app, or as RTMP
// connect arguments ("jwt", "jwt", token).
//
// Run:  JWT_SECRET=... mono out/JwtIssuer.exe publisher|subscriber [--stream 'cam*'] [--app live]
//           [--room room1] [--sub studio-7] [--ttl 3600]
// Environment: JWT_SECRET (auth.jwt_secret); JWT_ISSUER, JWT_AUDIENCE when sluice sets
// auth.jwt_issuer / auth.jwt_audience.
using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;

public static class JwtIssuer
{
    static string B64Url(byte[] data)
    {
        return Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Signs the claims with HS256; returns the compact token.</summary>
    public static string Mint(byte[] secret, Dictionary<string, object> claims)
    {
        if (secret.Length < 32)
            throw new ArgumentException("the HS256 secret must be at least 32 bytes");
        string header = B64Url(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));
        string payload = B64Url(Encoding.UTF8.GetBytes(Json.Write(claims)));
        string signingInput = header + "." + payload;
        using (var h = new HMACSHA256(secret))
            return signingInput + "." + B64Url(h.ComputeHash(Encoding.ASCII.GetBytes(signingInput)));
    }

    /// <summary>
    /// The claims for one publisher or player: role "publisher" or "subscriber", valid for
    /// ttlSeconds from now; optional claims are left out when null.
    /// </summary>
    public static Dictionary<string, object> Claims(string sub, string role, long ttlSeconds, string issuer,
                                                    string audience, string app, string stream, string room)
    {
        long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds;
        var c = new Dictionary<string, object>();
        c["sub"] = sub;
        c["iat"] = now;
        c["exp"] = now + ttlSeconds;
        if (issuer != null) c["iss"] = issuer;
        if (audience != null) c["aud"] = audience;
        c["roles"] = role == "publisher" ? "red5-publisher" : "red5-subscriber";
        if (app != null) c["app"] = app;
        if (stream != null) c["stream"] = stream;
        if (room != null) c["red5-room"] = room;
        return c;
    }

    static string Opt(string[] args, string name, string def)
    {
        for (int i = 0; i + 1 < args.Length; i++)
            if (args[i] == "--" + name)
                return args[i + 1];
        return def;
    }

    static string Env(string name)
    {
        string v = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(v) ? null : v;
    }

    public static int Main(string[] a)
    {
        if (a.Length < 1 || (a[0] != "publisher" && a[0] != "subscriber")) {
            Console.Error.WriteLine("usage: JwtIssuer publisher|subscriber [--stream S] [--app A] [--room R] [--sub S] [--ttl N]");
            return 2;
        }
        var claims = Claims(Opt(a, "sub", "user-1"), a[0], long.Parse(Opt(a, "ttl", "3600")),
                            Env("JWT_ISSUER"), Env("JWT_AUDIENCE"),
                            Opt(a, "app", null), Opt(a, "stream", null), Opt(a, "room", null));
        try {
            Console.WriteLine(Mint(Encoding.UTF8.GetBytes(Env("JWT_SECRET") ?? ""), claims));
        } catch (ArgumentException e) {
            Console.Error.WriteLine("error: JWT_SECRET: " + e.Message);
            return 2;
        }
        return 0;
    }
}
