// WebhookReceiver: receives sluice's webhooks (docs/integration/webhooks.md) in an
// ASP.NET-style handler, checks X-Sluice-Signature, and stores each event once, keyed by
// its delivery id.
//
// The signature:  X-Sluice-Signature: sha256=hex(HMAC-SHA256(webhooks.secret,
//                                      X-Sluice-Timestamp + "." + raw body))
// computed over the body bytes as received (never over re-serialised JSON), compared in
// constant time, with the timestamp (Unix seconds, fresh on every attempt) no more than
// 300 seconds (BusinessServer's setting) from our clock, so that a captured request cannot
// be replayed later.
//
// Deliveries are at least once: sluice retries until it gets a 2xx, and may send the same
// delivery again after a crash or a redeliver through its API. So the store is keyed by the
// delivery id (payload "id" = X-Sluice-Delivery): the event is written, and flushed to
// disk, before we answer 2xx; a delivery whose id is already stored is answered 2xx too (so
// sluice stops sending it) and dropped.
//
// The store is an append-only file of JSON lines, {"id", "received", "event"}, with the set
// of ids kept in memory and rebuilt from the file at start. A database with a unique key on
// the id does the same job (INSERT ... ON CONFLICT DO NOTHING).
//
// Served by BusinessServer on /webhook (the store in $DB, default events.jsonl); sluice:
//   webhooks.url: http://127.0.0.1:3000/webhook, webhooks.secret: $WEBHOOK_SECRET.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

/// <summary>The idempotent event store: an append-only JSON-lines file plus the ids in memory.</summary>
public sealed class EventStore
{
    readonly string path;
    readonly HashSet<string> ids = new HashSet<string>();

    public EventStore(string path)
    {
        this.path = path;
        if (!File.Exists(path))
            return;
        // A crash in the middle of a write leaves a last line without its newline. That event
        // was never acknowledged (sluice sends it again), so the torn line is cut off.
        byte[] all = File.ReadAllBytes(path);
        int end = all.Length;
        while (end > 0 && all[end - 1] != (byte)'\n')
            end--;
        if (end < all.Length) {
            Console.WriteLine("store: dropping a torn last line ({0} bytes)", all.Length - end);
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
                f.SetLength(end);
        }
        foreach (string line in Encoding.UTF8.GetString(all, 0, end).Split('\n'))
            if (line.Trim().Length > 0)
                ids.Add(Json.Str(Json.ParseObject(line), "id", ""));
    }

    public int Count { get { lock (ids) return ids.Count; } }

    /// <summary>
    /// Stores the event under its delivery id. Returns false (and stores nothing) when that
    /// id is already stored. The line is on disk (flushed through to the device) when this
    /// returns true.
    /// </summary>
    public bool Add(string id, Dictionary<string, object> ev)
    {
        lock (ids) {
            if (ids.Contains(id))
                return false;
            long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds;
            byte[] line = Encoding.UTF8.GetBytes(Json.Write(Json.Obj("id", id, "received", now, "event", ev)) + "\n");
            using (var f = new FileStream(path, FileMode.Append, FileAccess.Write)) {
                f.Write(line, 0, line.Length);
                f.Flush(true);
            }
            ids.Add(id);
            return true;
        }
    }
}

/// <summary>POST /webhook: 401 unsigned or stale, 400 not an event, else 200 (stored or duplicate).</summary>
public sealed class SluiceWebhookHandler : IHttpHandler
{
    public const int MaxIdChars = 200;    // "<node>-<event_seq>-<endpoint index>"

    readonly byte[] secret;   // empty: every delivery is refused
    readonly long toleranceSeconds;
    readonly EventStore store;

    public SluiceWebhookHandler(byte[] secret, long toleranceSeconds, EventStore store)
    {
        this.secret = secret;
        this.toleranceSeconds = toleranceSeconds;
        this.store = store;
    }

    public bool IsReusable { get { return true; } }

    /// <summary>True only for a fresh, correctly signed request.</summary>
    public static bool Verify(byte[] secret, string timestamp, string signature, byte[] body, long toleranceSeconds)
    {
        if (secret.Length == 0 || timestamp == null || signature == null || !Regex.IsMatch(timestamp, "^[0-9]{1,12}$"))
            return false;
        long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds;
        if (Math.Abs(now - long.Parse(timestamp)) > toleranceSeconds)
            return false;
        byte[] prefix = Encoding.ASCII.GetBytes(timestamp + ".");
        byte[] message = new byte[prefix.Length + body.Length];
        Buffer.BlockCopy(prefix, 0, message, 0, prefix.Length);
        Buffer.BlockCopy(body, 0, message, prefix.Length, body.Length);
        byte[] mac;
        using (var h = new HMACSHA256(secret))
            mac = h.ComputeHash(message);
        string want = "sha256=" + BitConverter.ToString(mac).Replace("-", "").ToLowerInvariant();
        // Constant time: every byte is looked at whatever the first difference.
        byte[] a = Encoding.ASCII.GetBytes(want), b = Encoding.ASCII.GetBytes(signature);
        int diff = a.Length ^ b.Length;
        for (int i = 0; i < a.Length && i < b.Length; i++)
            diff |= a[i] ^ b[i];
        return diff == 0;
    }

    public void ProcessRequest(HttpListenerContext ctx)
    {
        if (ctx.Request.HttpMethod != "POST") {
            HandlerHost.WriteJson(ctx, 405, null);
            return;
        }
        byte[] body = HandlerHost.ReadBody(ctx, HandlerHost.MaxBody);
        string ts = ctx.Request.Headers["X-Sluice-Timestamp"];
        string sig = ctx.Request.Headers["X-Sluice-Signature"];
        if (!Verify(secret, ts, sig, body, toleranceSeconds)) {
            Console.WriteLine("webhook: refused (bad or missing signature)");
            HandlerHost.WriteJson(ctx, 401, Json.Write(Json.Obj("error", "bad signature")));
            return;
        }
        Dictionary<string, object> ev;
        try {
            ev = Json.ParseObject(Encoding.UTF8.GetString(body));
        } catch (FormatException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", e.Message)));
            return;
        }
        string id = Json.Str(ev, "id", ctx.Request.Headers["X-Sluice-Delivery"]);
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdChars) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", "no delivery id")));
            return;
        }
        bool stored = store.Add(id, ev);
        Console.WriteLine("webhook: {0} {1} {2}{3}", id, Json.Str(ev, "event", ""), Json.Str(ev, "guid", ""),
                          stored ? "" : " (duplicate, dropped)");
        HandlerHost.WriteJson(ctx, 200, Json.Write(Json.Obj("stored", stored))); // any 2xx acknowledges, duplicates too
    }
}
