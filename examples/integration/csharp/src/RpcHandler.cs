// RpcHandler: the business server behind `apps.<app>.rpc_url` (docs/integration/rpc.md),
// as an ASP.NET-style handler.
//
// A client's NetConnection.call("room.join", responder, "lobby") that no plugin handler
// takes reaches sluice's business URL as
//   POST {"app":"live","session":"S9YD7FMFXK9WG","method":"room.join","params":["lobby"],
//         "username":"alice"}
// (Red5's POST /api/v1/applications/{app}/invoke takes the same route, with session and
// username null). A 2xx answer with a JSON body is the result the caller gets (_result);
// anything else fails the call (_error "The business server answered HTTP 404.").
// sluice never retries a call, so methods with side effects should be idempotent.
//
// Methods here: room.join(room) -> {room, user, members}; room.leave(room) -> {room,
// members}; math.sum(numbers...) -> {sum}; server.time() -> {now}. Anything else -> 404.
//
// Run:  mono RpcHandler.exe --port 8081
// sluice: apps.live.rpc_url: http://127.0.0.1:8081/rpc
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net;
using System.Text;

/// <summary>One call as sluice sends it.</summary>
public sealed class RpcCall
{
    public string App, Session, Method, Username;
    public List<object> Params;
}

/// <summary>POST /rpc: 200 with the result, 404 for an unknown method, 400 for bad input.</summary>
public sealed class SluiceRpcHandler : IHttpHandler
{
    public const int MaxBody = 1 << 20; // sluice caps a call's JSON at 1 MB

    readonly Dictionary<string, Func<RpcCall, object>> methods = new Dictionary<string, Func<RpcCall, object>>();
    readonly Dictionary<string, HashSet<string>> rooms = new Dictionary<string, HashSet<string>>();

    public SluiceRpcHandler()
    {
        methods["room.join"] = c => {
            string room = c.Params.Count > 0 ? Convert.ToString(c.Params[0], CultureInfo.InvariantCulture) : "lobby";
            lock (rooms) {
                HashSet<string> members;
                if (!rooms.TryGetValue(room, out members))
                    rooms[room] = members = new HashSet<string>();
                members.Add(c.Username ?? c.Session);
                return Json.Obj("room", room, "user", c.Username, "members", members.Count);
            }
        };
        methods["room.leave"] = c => {
            string room = c.Params.Count > 0 ? Convert.ToString(c.Params[0], CultureInfo.InvariantCulture) : "lobby";
            lock (rooms) {
                HashSet<string> members;
                if (rooms.TryGetValue(room, out members))
                    members.Remove(c.Username ?? c.Session);
                return Json.Obj("room", room, "members", members == null ? 0 : members.Count);
            }
        };
        methods["math.sum"] = c => {
            double sum = 0;
            foreach (object p in c.Params) {
                if (!(p is long || p is double))
                    throw new ArgumentException("math.sum takes numbers");
                sum += Convert.ToDouble(p, CultureInfo.InvariantCulture);
            }
            return Json.Obj("sum", sum);
        };
        methods["server.time"] = c => Json.Obj("now",
            (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds);
    }

    public bool IsReusable { get { return true; } }

    public void ProcessRequest(HttpListenerContext ctx)
    {
        if (ctx.Request.HttpMethod != "POST") {
            HandlerHost.WriteJson(ctx, 405, null);
            return;
        }
        RpcCall call;
        try {
            var b = Json.ParseObject(Encoding.UTF8.GetString(HandlerHost.ReadBody(ctx, MaxBody)));
            object p;
            b.TryGetValue("params", out p);
            call = new RpcCall {
                App = Json.Str(b, "app", null), Session = Json.Str(b, "session", null),
                Method = Json.Str(b, "method", ""), Username = Json.Str(b, "username", null),
                Params = p as List<object> ?? new List<object>()
            };
        } catch (FormatException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", e.Message)));
            return;
        }
        Console.WriteLine("call {0} from {1} ({2}) in {3}", call.Method, call.Session, call.Username, call.App);
        Func<RpcCall, object> m;
        if (!methods.TryGetValue(call.Method, out m)) {
            HandlerHost.WriteJson(ctx, 404, Json.Write(Json.Obj("error", "no such method")));
            return;
        }
        object result;
        try {
            result = m(call);
        } catch (ArgumentException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", e.Message)));
            return;
        }
        HandlerHost.WriteJson(ctx, 200, Json.Write(result));
    }
}

public static class RpcHandler
{
    public static void Main(string[] args)
    {
        string host = HandlerHost.Opt(args, "host", "127.0.0.1");
        int port = int.Parse(HandlerHost.Opt(args, "port", "8081"));
        var server = new HandlerHost(host, port);
        server.Map("/rpc", new SluiceRpcHandler());
        server.Start();
        Console.WriteLine("rpc handler listening on http://{0}:{1}/rpc", host, port);
        HandlerHost.Wait();
    }
}
