/*
 * Http: the few helpers the business server's parts (RoundTripAuth, WebhookReceiver,
 * RpcHandler) share on top of the JDK's com.sun.net.httpserver.HttpServer: read a request
 * body with a size cap, answer JSON, read command-line options and the environment.
 */
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

final class Http {
    /** A hard cap on what we read from anyone (sluice's bodies are a few hundred bytes). */
    static final int MAX_BODY = 1 << 20;

    /** Thrown by readBody for a body over its cap; the caller answers 413. */
    static final class TooBig extends IOException {
        private static final long serialVersionUID = 1L;

        TooBig() {
            super("request body too large");
        }
    }

    /**
     * Reads the whole request body, at most max bytes (a peer must not make us hold more).
     * Works with Content-Length and with chunked bodies. Throws TooBig past the cap.
     */
    static byte[] readBody(HttpExchange ex, int max) throws IOException {
        String len = ex.getRequestHeaders().getFirst("Content-Length");
        if (len != null) {
            try {
                if (Long.parseLong(len.trim()) > max)
                    throw new TooBig();
            } catch (NumberFormatException e) {
                throw new IOException("bad Content-Length");
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        try (InputStream in = ex.getRequestBody()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                if (out.size() + n > max)
                    throw new TooBig();
                out.write(buf, 0, n);
            }
        }
        return out.toByteArray();
    }

    /** Answers status with a JSON body (or an empty body when json is null). */
    static void send(HttpExchange ex, int status, String json) throws IOException {
        byte[] data = json == null ? new byte[0] : json.getBytes(StandardCharsets.UTF_8);
        if (json != null)
            ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, data.length == 0 ? -1 : data.length);
        if (data.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(data);
            }
        }
        ex.close();
    }

    /** The value after "--name" on the command line, else def. */
    static String opt(String[] args, String name, String def) {
        for (int i = 0; i + 1 < args.length; i++)
            if (args[i].equals("--" + name))
                return args[i + 1];
        return def;
    }

    /** An environment variable, or def when it is unset or empty. */
    static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? def : v;
    }

    /** A server on host:port with a small thread pool (handlers may block on disk). */
    static HttpServer server(String host, int port) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(host, port), 64);
        s.setExecutor(Executors.newFixedThreadPool(4));
        return s;
    }
}
