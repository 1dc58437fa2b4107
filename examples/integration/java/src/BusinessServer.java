/*
 * BusinessServer: the business's side of sluice in one process: the round-trip auth
 * validator (part 1), the webhook receiver (part 2) and the RPC handler (part 5) on one
 * port, with the JDK's HttpServer. Parts 3 and 4 (SluiceApi, JwtIssuer) are command-line
 * tools and classes to call from your own code.
 *
 * Run:  WEBHOOK_SECRET='same as webhooks.secret' java -cp out BusinessServer
 * Environment: PORT (3000), BIND (127.0.0.1), WEBHOOK_SECRET, DB (events.jsonl).
 */
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

public final class BusinessServer {
    public static void main(String[] args) throws IOException {
        String secret = Http.env("WEBHOOK_SECRET", "");
        if (secret.isEmpty())
            System.out.println("warning: WEBHOOK_SECRET is not set: every webhook is refused");
        String bind = Http.env("BIND", "127.0.0.1");
        int port = Integer.parseInt(Http.env("PORT", "3000"));
        WebhookReceiver.EventStore store = new WebhookReceiver.EventStore(Path.of(Http.env("DB", "events.jsonl")));

        RoundTripAuth rta = new RoundTripAuth();
        WebhookReceiver hooks = new WebhookReceiver(secret.getBytes(StandardCharsets.UTF_8), 300, store);
        RpcHandler rpc = new RpcHandler();

        HttpServer server = Http.server(bind, port);
        server.createContext("/validateCredentials", rta::validate);
        server.createContext("/invalidateCredentials", rta::invalidate);
        server.createContext("/webhook", hooks::handle);
        server.createContext("/rpc", rpc::handle);
        server.start();
        System.out.printf("listening on http://%s:%d (%d events stored)%n", bind, port, store.size());
    }
}
