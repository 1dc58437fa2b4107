// SluiceApiClient: a client of sluice's Server API (Red5 Pro's /api/v1; docs/openapi.yaml),
// with System.Net.HttpWebRequest (Debian's mono-mcs has no System.Net.Http; on .NET,
// HttpClient works the same way). Each method makes one request and returns the `data`
// of Red5's envelope {status, code, data, timestamp}; an error envelope (or any non-2xx)
// throws SluiceApiException with the HTTP status and sluice's message.
//
// The token goes in the Authorization header (`Bearer`), not in the URL, so it stays out
// of access logs. It is api.access_token, or the one sluice generated into
// {data_dir}/api_token.
//
// As a command-line tool (API_URL, default http://127.0.0.1:5080, and API_TOKEN from the
// environment; each command prints the returned data as JSON):
//   mono out/SluiceApiClient.exe streams live
//   mono out/SluiceApiClient.exe clients live
//   mono out/SluiceApiClient.exe kick live <clientId>
//   mono out/SluiceApiClient.exe record-start live stream1 [saveas]
//   mono out/SluiceApiClient.exe record-stop live stream1
//   mono out/SluiceApiClient.exe invoke live <method> [json-array-of-params]
//   mono out/SluiceApiClient.exe invoke-client live <clientId> <method> [json-array-of-params]
// An error prints "error: HTTP <status>: <sluice's message>" and exits 1.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Text;

/// <summary>A refused call: the HTTP status and sluice's error message.</summary>
public sealed class SluiceApiException : Exception
{
    public readonly int Status;

    public SluiceApiException(int status, string message) : base("HTTP " + status + ": " + message)
    {
        Status = status;
    }
}

public sealed class SluiceApiClient
{
    const int MaxReplyBytes = Json.MaxChars;

    readonly string baseUrl;
    readonly string token;

    /// <summary>baseUrl: "http://host:5080" (http.port) or "https://host:5443"; token: the API token.</summary>
    public SluiceApiClient(string baseUrl, string token)
    {
        this.baseUrl = baseUrl.TrimEnd('/');
        this.token = token;
    }

    /// <summary>Names of the streams being published in the app.</summary>
    public List<object> ListStreams(string app)
    {
        return (List<object>)Call("GET", "/api/v1/applications/" + Seg(app) + "/streams", null);
    }

    /// <summary>The app's connected clients (each with its "id").</summary>
    public List<object> ListClients(string app)
    {
        return (List<object>)Call("GET", "/api/v1/applications/" + Seg(app) + "/clients", null);
    }

    /// <summary>Disconnects one client; returns the client as it was.</summary>
    public object KickClient(string app, string clientId)
    {
        return Call("DELETE", "/api/v1/applications/" + Seg(app) + "/clients/" + Seg(clientId), null);
    }

    /// <summary>Starts recording a live stream (saveas: a file name, or null for the stream's).</summary>
    public object StartRecording(string app, string stream, string saveas)
    {
        string q = saveas == null ? "" : "?saveas=" + Uri.EscapeDataString(saveas);
        return Call("GET", "/api/v1/applications/" + Seg(app) + "/streams/" + Seg(stream) + "/action/startrecord" + q, null);
    }

    /// <summary>Stops a recording started with StartRecording.</summary>
    public object StopRecording(string app, string stream)
    {
        return Call("GET", "/api/v1/applications/" + Seg(app) + "/streams/" + Seg(stream) + "/action/stoprecord", null);
    }

    /// <summary>Calls a method on one connected client; returns {client, status, value}.</summary>
    public object InvokeClient(string app, string clientId, string method, List<object> args, int timeoutMs)
    {
        string body = Json.Write(Json.Obj("method", method, "params", args, "timeout_ms", timeoutMs));
        return Call("POST", "/api/v1/applications/" + Seg(app) + "/clients/" + Seg(clientId) + "/invoke", body);
    }

    /// <summary>Calls an application method (a handler, else the app's rpc_url); returns its result.</summary>
    public object InvokeApplication(string app, string method, List<object> args)
    {
        string body = Json.Write(Json.Obj("method", method, "parameters", args));
        return Call("POST", "/api/v1/applications/" + Seg(app) + "/invoke", body);
    }

    object Call(string method, string path, string jsonBody)
    {
        var req = (HttpWebRequest)WebRequest.Create(baseUrl + path);
        req.Method = method;
        req.Proxy = null; // sluice's API is on your network: no http_proxy detour
        req.ServicePoint.Expect100Continue = false; // send the body at once, no 100-continue wait
        req.Timeout = 30000;
        req.Accept = "application/json";
        req.Headers["Authorization"] = "Bearer " + token;
        if (jsonBody != null) {
            byte[] data = Encoding.UTF8.GetBytes(jsonBody);
            req.ContentType = "application/json";
            req.ContentLength = data.Length;
            using (Stream s = req.GetRequestStream())
                s.Write(data, 0, data.Length);
        }
        HttpWebResponse resp;
        try {
            resp = (HttpWebResponse)req.GetResponse();
        } catch (WebException e) {
            resp = e.Response as HttpWebResponse; // 4xx/5xx still carry Red5's error envelope
            if (resp == null)
                throw new SluiceApiException(0, e.Message);
        }
        using (resp) {
            int status = (int)resp.StatusCode;
            string text = ReadCapped(resp.GetResponseStream(), status);
            Dictionary<string, object> env;
            try {
                env = Json.ParseObject(text);
            } catch (FormatException) {
                throw new SluiceApiException(status, "reply is not JSON");
            }
            object st;
            env.TryGetValue("status", out st);
            if (status / 100 != 2 || !"success".Equals(st))
                throw new SluiceApiException(status, Json.Str(env, "message", "error"));
            object data;
            env.TryGetValue("data", out data);
            return data;
        }
    }

    static string ReadCapped(Stream s, int status)
    {
        var buf = new byte[8192];
        using (var ms = new MemoryStream()) {
            int n;
            while ((n = s.Read(buf, 0, buf.Length)) > 0) {
                if (ms.Length + n > MaxReplyBytes)
                    throw new SluiceApiException(status, "reply too large");
                ms.Write(buf, 0, n);
            }
            return Encoding.UTF8.GetString(ms.ToArray());
        }
    }

    /// <summary>One URL path segment, percent-encoded.</summary>
    static string Seg(string s) { return Uri.EscapeDataString(s); }

    static List<object> Params(string[] a, int i)
    {
        return i < a.Length ? (List<object>)Json.Parse(a[i]) : new List<object>();
    }

    public static int Main(string[] a)
    {
        string url = Environment.GetEnvironmentVariable("API_URL");
        string token = Environment.GetEnvironmentVariable("API_TOKEN") ?? "";
        if (string.IsNullOrEmpty(url))
            url = "http://127.0.0.1:5080";
        var api = new SluiceApiClient(url, token);
        if (a.Length < 2) {
            Console.Error.WriteLine("usage: SluiceApiClient streams|clients|kick|record-start|record-stop|invoke|invoke-client <app> ...");
            return 2;
        }
        object result;
        try {
            switch (a[0]) {
            case "streams": result = api.ListStreams(a[1]); break;
            case "clients": result = api.ListClients(a[1]); break;
            case "kick": result = api.KickClient(a[1], a[2]); break;
            case "record-start": result = api.StartRecording(a[1], a[2], a.Length > 3 ? a[3] : null); break;
            case "record-stop": result = api.StopRecording(a[1], a[2]); break;
            case "invoke-client": result = api.InvokeClient(a[1], a[2], a[3], Params(a, 4), 5000); break;
            case "invoke": result = api.InvokeApplication(a[1], a[2], Params(a, 3)); break;
            default: Console.Error.WriteLine("unknown command " + a[0]); return 2;
            }
        } catch (SluiceApiException e) {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
        Console.WriteLine(Json.Write(result));
        return 0;
    }
}
