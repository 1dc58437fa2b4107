// BusinessServer: the business's side of sluice in one process: the round-trip auth
// validator (part 1), the webhook receiver (part 2) and the RPC handler (part 5), four
// ASP.NET-style handlers on one port (the table below is what web.config's <handlers>
// section would say). Parts 3 and 4 (SluiceApiClient, JwtIssuer) are command-line tools
// and classes to call from your own code.
//
// Run:  WEBHOOK_SECRET='same as webhooks.secret' mono out/BusinessServer.exe
// Environment: PORT (3000), BIND (127.0.0.1), WEBHOOK_SECRET, DB (events.jsonl).
using System;
using System.Text;

public static class BusinessServer
{
    public static void Main(string[] args)
    {
        string secret = HandlerHost.Env("WEBHOOK_SECRET", "");
        if (secret.Length == 0)
            Console.WriteLine("warning: WEBHOOK_SECRET is not set: every webhook is refused");
        string bind = HandlerHost.Env("BIND", "127.0.0.1");
        int port = int.Parse(HandlerHost.Env("PORT", "3000"));
        var store = new EventStore(HandlerHost.Env("DB", "events.jsonl"));
        var credentials = new CredentialStore();

        var server = new HandlerHost(bind, port);
        server.Map("/validateCredentials", new ValidateCredentialsHandler(credentials));
        server.Map("/invalidateCredentials", new InvalidateCredentialsHandler(credentials));
        server.Map("/webhook", new SluiceWebhookHandler(Encoding.UTF8.GetBytes(secret), 300, store));
        server.Map("/rpc", new SluiceRpcHandler());
        server.Start();
        Console.WriteLine("listening on http://{0}:{1} ({2} events stored)", bind, port, store.Count);
        HandlerHost.Wait();
    }
}
