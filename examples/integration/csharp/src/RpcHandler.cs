// RpcHandler: the business server behind `apps.<app>.rpc_url` (docs/integration/rpc.md),
// as an ASP.NET-style handler.
//
// A client's NetConnection.call("sum", responder, 1, 2, 3) that no in-server handler
// takes reaches sluice's business URL as
//   POST {"app":"live","session":"S9YD7FMFXK9WG","method":"sum","params":[1,2,3],
//         "username":"alice"}
// (Red5's POST /api/v1/applications/{app}/invoke takes the same route, with session and
// username null). A 2xx answer with a JSON body is the result the caller gets (_result);
// anything else fails the call (_error "The business server answered HTTP 404.").
// sluice never retries a call, so act on each one exactly once.
//
// Methods here: sum(numbers...) -> {"sum": n}; whoami() -> {"app", "session", "username"}
// as sluice sent them. An unknown method answers 404, bad arguments 400.
//
// Served by BusinessServer on /rpc; sluice: apps.live.rpc_url: http://127.0.0.1:3000/rpc
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
    /// <summary>Your methods, by name. A method throws ArgumentException for bad arguments.</summary>
    static readonly Dictionary<string, Func<RpcCall, object>> Methods = new Dictionary<string, Func<RpcCall, object>> {
        { "sum", c => {
            double sum = 0;
            foreach (object p in c.Params) {
                if (!(p is long || p is double))
                    throw new ArgumentException("sum takes numbers");
                sum += Convert.ToDouble(p, CultureInfo.InvariantCulture);
            }
            return Json.Obj("sum", sum);
        } },
        { "whoami", c => Json.Obj("app", c.App, "session", c.Session, "username", c.Username) },
    };

    public bool IsReusable { get { return true; } }

    public void ProcessRequest(HttpListenerContext ctx)
    {
        if (ctx.Request.HttpMethod != "POST") {
            HandlerHost.WriteJson(ctx, 405, null);
            return;
        }
        Dictionary<string, object> b;
        try {
            b = Json.ParseObject(Encoding.UTF8.GetString(HandlerHost.ReadBody(ctx, HandlerHost.MaxBody)));
        } catch (FormatException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", e.Message)));
            return;
        }
        Func<RpcCall, object> m;
        if (!Methods.TryGetValue(Json.Str(b, "method", ""), out m)) {
            HandlerHost.WriteJson(ctx, 404, Json.Write(Json.Obj("error", "unknown method"))); // "... answered HTTP 404."
            return;
        }
        object p;
        b.TryGetValue("params", out p);
        if (!(p is List<object>)) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", "params must be an array")));
            return;
        }
        var call = new RpcCall {
            App = Json.Str(b, "app", null), Session = Json.Str(b, "session", null),
            Method = Json.Str(b, "method", ""), Username = Json.Str(b, "username", null),
            Params = (List<object>)p
        };
        object result;
        try {
            result = m(call);
        } catch (ArgumentException e) {
            HandlerHost.WriteJson(ctx, 400, Json.Write(Json.Obj("error", e.Message)));
            return;
        }
        string json = Json.Write(result);
        Console.WriteLine("rpc: {0} from {1} -> {2}", call.Method, call.Session, json);
        HandlerHost.WriteJson(ctx, 200, json);
    }
}
