// RoundTripAuth: the business server's side of sluice's Round Trip Authentication (Red5
// Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md), as two ASP.NET-style
// handlers.
//
// Before a client publishes or plays in an app with `auth_roundtrip: true`, sluice POSTs
//   {"username":"alice","password":"...","token":"","type":"publisher","streamID":"stream1"}
// to auth.roundtrip_validate_url and admits the client when the answer is {"result": true}.
// When an admitted client leaves, it POSTs the same body to auth.roundtrip_invalidate_url.
//
// The policy here: a users file with one "name password role" line per user, role
// `publisher` (may publish and play) or `subscriber` (may only play). Passwords are
// compared in constant time and never logged. `Online` holds the clients currently
// admitted, what a real service would use for billing or for "who is live".
//
// Run:  mono RoundTripAuth.exe --port 3000 --users users.txt
// sluice: auth.roundtrip_validate_url: http://127.0.0.1:3000/validateCredentials
//         auth.roundtrip_invalidate_url: http://127.0.0.1:3000/invalidateCredentials
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Text;

/// <summary>The users and the set of admitted clients, shared by both handlers.</summary>
public sealed class CredentialStore
{
    sealed class User
    {
        public string Password;
        public bool MayPublish;
    }

    readonly Dictionary<string, User> users = new Dictionary<string, User>();
    readonly HashSet<string> online = new HashSet<string>();

    /// <summary>Reads "name password role" lines; '#' starts a comment.</summary>
    public CredentialStore(string usersFile)
    {
        foreach (string raw in File.ReadAllLines(usersFile, Encoding.UTF8)) {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith("#"))
                continue;
            string[] f = line.Split((char[])null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 3)
                throw new InvalidDataException("users file: expected 'name password role': " + f[0]);
            users[f[0]] = new User { Password = f[1], MayPublish = f[2] == "publisher" };
        }
    }

    public int UserCount { get { return users.Count; } }

    /// <summary>Does this body name a user, with the right password, allowed this type?</summary>
    public bool Allowed(Dictionary<string, object> body)
    {
        User u;
        if (!users.TryGetValue(Json.Str(body, "username", ""), out u))
            return false;
        if (!FixedTimeEquals(u.Password, Json.Str(body, "password", "")))
            return false;
        string type = Json.Str(body, "type", "");
        return type == "subscriber" || (type == "publisher" && u.MayPublish);
    }

    public void Admit(Dictionary<string, object> body) { lock (online) online.Add(Key(body)); }

    public int Leave(Dictionary<string, object> body)
    {
        lock (online) {
            online.Remove(Key(body));
            return online.Count;
        }
    }

    static string Key(Dictionary<string, object> b)
    {
        return Json.Str(b, "username", "") + " " + Json.Str(b, "type", "") + " " + Json.Str(b, "streamID", "");
    }

    /// <summary>Compares in time independent of where the strings differ.</summary>
    static bool FixedTimeEquals(string a, string b)
    {
        byte[] x = Encoding.UTF8.GetBytes(a), y = Encoding.UTF8.GetBytes(b);
        int diff = x.Length ^ y.Length;
        for (int i = 0; i < x.Length && i < y.Length; i++)
            diff |= x[i] ^ y[i];
        return diff == 0;
    }

    /// <summary>The POSTed JSON object, or null after answering 405/400 itself.</summary>
    public static Dictionary<string, object> ReadJson(HttpListenerContext ctx)
    {
        if (ctx.Request.HttpMethod != "POST") {
            HandlerHost.WriteJson(ctx, 405, null);
            return null;
        }
        try {
            return Json.ParseObject(Encoding.UTF8.GetString(HandlerHost.ReadBody(ctx, 16 * 1024)));
        } catch (FormatException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("result", false, "error", e.Message)));
            return null;
        }
    }
}

/// <summary>POST /validateCredentials: answers {"result": true|false}.</summary>
public sealed class ValidateCredentialsHandler : IHttpHandler
{
    readonly CredentialStore store;

    public ValidateCredentialsHandler(CredentialStore store) { this.store = store; }

    public bool IsReusable { get { return true; } }

    public void ProcessRequest(HttpListenerContext ctx)
    {
        var body = CredentialStore.ReadJson(ctx);
        if (body == null)
            return;
        bool ok = store.Allowed(body);
        if (ok)
            store.Admit(body);
        Console.WriteLine("validate {0} {1} {2} -> {3}", Json.Str(body, "username", ""),
                          Json.Str(body, "type", ""), Json.Str(body, "streamID", ""), ok ? "yes" : "no");
        // A signed playback URL could be returned as "url"; sluice keeps it on the admission.
        HandlerHost.WriteJson(ctx, 200, Json.Write(Json.Obj("result", ok)));
    }
}

/// <summary>POST /invalidateCredentials: an admitted client left.</summary>
public sealed class InvalidateCredentialsHandler : IHttpHandler
{
    readonly CredentialStore store;

    public InvalidateCredentialsHandler(CredentialStore store) { this.store = store; }

    public bool IsReusable { get { return true; } }

    public void ProcessRequest(HttpListenerContext ctx)
    {
        var body = CredentialStore.ReadJson(ctx);
        if (body == null)
            return;
        int left = store.Leave(body);
        Console.WriteLine("invalidate {0} {1} {2} ({3} online)", Json.Str(body, "username", ""),
                          Json.Str(body, "type", ""), Json.Str(body, "streamID", ""), left);
        HandlerHost.WriteJson(ctx, 200, Json.Write(Json.Obj("result", true)));
    }
}

public static class RoundTripAuth
{
    public static void Main(string[] args)
    {
        string host = HandlerHost.Opt(args, "host", "127.0.0.1");
        int port = int.Parse(HandlerHost.Opt(args, "port", "3000"));
        var store = new CredentialStore(HandlerHost.Opt(args, "users", "users.txt"));
        var server = new HandlerHost(host, port);
        server.Map("/validateCredentials", new ValidateCredentialsHandler(store));
        server.Map("/invalidateCredentials", new InvalidateCredentialsHandler(store));
        server.Start();
        Console.WriteLine("round trip auth listening on http://{0}:{1} ({2} users)", host, port, store.UserCount);
        HandlerHost.Wait();
    }
}
