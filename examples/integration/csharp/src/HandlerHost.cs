// HandlerHost: ASP.NET-style HTTP handlers on System.Net.HttpListener.
//
// The handlers of these examples are shaped as ASP.NET's: a class implementing
// IHttpHandler (IsReusable, ProcessRequest(context)) mapped to a path, as web.config's
// <handlers> section maps an .ashx. Debian's mono-mcs has no System.Web, so the interface
// below mirrors System.Web.IHttpHandler with HttpListenerContext in place of HttpContext;
// in an ASP.NET project, change the context type (ctx.Request.InputStream,
// ctx.Request.Headers, ctx.Response.StatusCode read the same) and register the handler
// in web.config instead of with HandlerHost.Map.
//
// HandlerHost also has the two helpers every handler needs: read the request body with a
// size cap (a peer must not make us hold more) and answer JSON.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Text;
using System.Threading;

/// <summary>System.Web.IHttpHandler's shape, on HttpListener.</summary>
public interface IHttpHandler
{
    bool IsReusable { get; }
    void ProcessRequest(HttpListenerContext context);
}

/// <summary>Thrown by ReadBody past its cap; the host answers 413.</summary>
public sealed class RequestTooLargeException : Exception
{
    public RequestTooLargeException() : base("request body too large") { }
}

public sealed class HandlerHost
{
    /// <summary>A hard cap on what we read from anyone (sluice's bodies are a few hundred bytes).</summary>
    public const int MaxBody = 1 << 20;

    readonly HttpListener listener = new HttpListener();
    readonly Dictionary<string, IHttpHandler> routes = new Dictionary<string, IHttpHandler>();

    /// <summary>A host for http://host:port/; nothing listens until Start.</summary>
    public HandlerHost(string host, int port)
    {
        listener.Prefixes.Add("http://" + host + ":" + port + "/");
    }

    /// <summary>Routes an exact path ("/validateCredentials") to a handler.</summary>
    public void Map(string path, IHttpHandler handler)
    {
        routes[path] = handler;
    }

    /// <summary>Listens and serves each request on the thread pool; returns at once.</summary>
    public void Start()
    {
        listener.Start();
        var t = new Thread(() => {
            while (listener.IsListening) {
                HttpListenerContext ctx;
                try {
                    ctx = listener.GetContext();
                } catch (HttpListenerException) {
                    return; // stopped
                }
                ThreadPool.QueueUserWorkItem(_ => Serve(ctx));
            }
        });
        t.IsBackground = true;
        t.Start();
    }

    void Serve(HttpListenerContext ctx)
    {
        try {
            IHttpHandler h;
            if (!routes.TryGetValue(ctx.Request.Url.AbsolutePath, out h)) {
                WriteJson(ctx, 404, Json.Write(Json.Obj("error", "not found")));
                return;
            }
            h.ProcessRequest(ctx);
        } catch (RequestTooLargeException) {
            WriteJson(ctx, 413, null);
        } catch (Exception e) {
            Console.Error.WriteLine("handler failed: " + e.Message);
            try { WriteJson(ctx, 500, null); } catch (Exception) { }
        }
    }

    /// <summary>The whole request body, at most max bytes; throws RequestTooLargeException past it.</summary>
    public static byte[] ReadBody(HttpListenerContext ctx, int max)
    {
        if (ctx.Request.ContentLength64 > max)
            throw new RequestTooLargeException();
        var buf = new byte[8192];
        using (var ms = new MemoryStream()) {
            int n;
            while ((n = ctx.Request.InputStream.Read(buf, 0, buf.Length)) > 0) {
                if (ms.Length + n > max)
                    throw new RequestTooLargeException();
                ms.Write(buf, 0, n);
            }
            return ms.ToArray();
        }
    }

    /// <summary>Answers status with a JSON body (or none when json is null) and closes the response.</summary>
    public static void WriteJson(HttpListenerContext ctx, int status, string json)
    {
        ctx.Response.StatusCode = status;
        if (json != null) {
            byte[] data = Encoding.UTF8.GetBytes(json);
            ctx.Response.ContentType = "application/json";
            ctx.Response.ContentLength64 = data.Length;
            ctx.Response.OutputStream.Write(data, 0, data.Length);
        } else {
            ctx.Response.ContentLength64 = 0;
        }
        ctx.Response.Close();
    }

    /// <summary>An environment variable, or def when it is unset or empty.</summary>
    public static string Env(string name, string def)
    {
        string v = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(v) ? def : v;
    }

    /// <summary>Blocks the main thread for ever (the server runs on background threads).</summary>
    public static void Wait()
    {
        Thread.Sleep(Timeout.Infinite);
    }
}
