// RoundTripAuth: the business server's side of sluice's Round Trip Authentication (Red5
// Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md), as two ASP.NET-style
// handlers.
//
// Before a client publishes or plays in an app with `auth_roundtrip: true`, sluice POSTs
//   {"username":"alice","password":"...","token":"","type":"publisher","streamID":"stream1"}
// to auth.roundtrip_validate_url and admits the client when the answer is {"result": true}.
// When an admitted client leaves, it POSTs the same body to auth.roundtrip_invalidate_url.
//
// The policy here: a table of users (replace it with your accounts, hashed passwords):
// alice may publish and play, bob may only play. Passwords are compared in constant time
// and never logged. `online` counts the clients currently admitted, what a real service
// would use for billing or for "who is live".
//
// Served by BusinessServer on /validateCredentials and /invalidateCredentials; sluice:
//   auth.roundtrip_validate_url: http://127.0.0.1:3000/validateCredentials
//   auth.roundtrip_invalidate_url: http://127.0.0.1:3000/invalidateCredentials
using System;
using System.Collections.Generic;
using System.Net;
using System.Text;

/// <summary>The users and the admitted clients, shared by both handlers.</summary>
public sealed class CredentialStore
{
    sealed class User
    {
        public string Password;
        public bool MayPublish;
    }

    /// <summary>Your user store. Here: alice may publish and play, bob may only play.</summary>
    static readonly Dictionary<string, User> Users = new Dictionary<string, User> {
        { "alice", new User { Password = "alice-pass", MayPublish = true } },
        { "bob", new User { Password = "bob-pass", MayPublish = false } },
    };

    // Admitted clients: "username type streamID" -> how many (a client may be admitted twice).
    readonly Dictionary<string, int> online = new Dictionary<string, int>();

    /// <summary>Does this body name a user, with the right password, allowed this type?</summary>
    public bool Allowed(Dictionary<string, object> body)
    {
        User u;
        if (!Users.TryGetValue(Json.Str(body, "username", ""), out u))
            return false;
        if (!FixedTimeEquals(u.Password, Json.Str(body, "password", "")))
            return false;
        string type = Json.Str(body, "type", "");
        return type == "subscriber" || (type == "publisher" && u.MayPublish);
    }

    public void Admit(Dictionary<string, object> body)
    {
        lock (online) {
            int n;
            online.TryGetValue(Key(body), out n);
            online[Key(body)] = n + 1;
        }
    }

    public void Leave(Dictionary<string, object> body)
    {
        lock (online) {
            int n;
            if (online.TryGetValue(Key(body), out n) && n > 1)
                online[Key(body)] = n - 1;
            else
                online.Remove(Key(body));
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
            return Json.ParseObject(Encoding.UTF8.GetString(HandlerHost.ReadBody(ctx, HandlerHost.MaxBody)));
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
        // Never log the password or the token.
        Console.WriteLine("validate: {0} {1} {2} -> {3}", Json.Str(body, "username", ""),
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
        store.Leave(body);
        Console.WriteLine("invalidate: {0} {1} {2}", Json.Str(body, "username", ""),
                          Json.Str(body, "type", ""), Json.Str(body, "streamID", ""));
        HandlerHost.WriteJson(ctx, 200, Json.Write(Json.Obj("result", true)));
    }
}
