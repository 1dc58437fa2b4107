/*
 * SluiceApi: a client of sluice's Server API (Red5 Pro's /api/v1; docs/openapi.yaml),
 * with java.net.http.HttpClient. Each method makes one request and returns the `data` of
 * Red5's envelope {status, code, data, timestamp}; an error envelope (or any non-2xx)
 * throws SluiceApi.ApiError with the HTTP status and sluice's message.
 *
 * The token goes in the Authorization header (`Bearer`), not in the URL, so it stays out
 * of access logs. It is api.access_token, or the one sluice generated into
 * {data_dir}/api_token.
 *
 * As a command-line tool (API_URL, default http://127.0.0.1:5080, and API_TOKEN from the
 * environment; each command prints the returned data as JSON):
 *   java -cp out SluiceApi streams live
 *   java -cp out SluiceApi clients live
 *   java -cp out SluiceApi kick live <clientId>
 *   java -cp out SluiceApi record-start live stream1 [saveas]
 *   java -cp out SluiceApi record-stop live stream1
 *   java -cp out SluiceApi invoke live <method> [json-array-of-params]
 *   java -cp out SluiceApi invoke-client live <clientId> <method> [json-array-of-params]
 * An error prints "error: HTTP <status>: <sluice's message>" and exits 1.
 */
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;

public final class SluiceApi {
    static final int MAX_REPLY_CHARS = Json.MAX_CHARS;

    /** A refused call: the HTTP status and sluice's error message. */
    public static final class ApiError extends IOException {
        private static final long serialVersionUID = 1L;
        public final int status;

        ApiError(int status, String message) {
            super("HTTP " + status + ": " + message);
            this.status = status;
        }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final String base;
    private final String token;

    /** base: "http://host:5080" (http.port) or "https://host:5443"; token: the API token. */
    public SluiceApi(String base, String token) {
        this.base = base.replaceAll("/+$", "");
        this.token = token;
    }

    /** Names of the streams being published in the app. */
    @SuppressWarnings("unchecked")
    public List<Object> listStreams(String app) throws IOException {
        return (List<Object>) call("GET", "/api/v1/applications/" + seg(app) + "/streams", null);
    }

    /** The app's connected clients (each with its "id"). */
    @SuppressWarnings("unchecked")
    public List<Object> listClients(String app) throws IOException {
        return (List<Object>) call("GET", "/api/v1/applications/" + seg(app) + "/clients", null);
    }

    /** Disconnects one client; returns the client as it was. */
    public Object kickClient(String app, String clientId) throws IOException {
        return call("DELETE", "/api/v1/applications/" + seg(app) + "/clients/" + seg(clientId), null);
    }

    /** Starts recording a live stream (saveas: file name without folder, or null for the stream's). */
    public Object startRecording(String app, String stream, String saveas) throws IOException {
        String q = saveas == null ? "" : "?saveas=" + URLEncoder.encode(saveas, StandardCharsets.UTF_8);
        return call("GET", "/api/v1/applications/" + seg(app) + "/streams/" + seg(stream) + "/action/startrecord" + q, null);
    }

    /** Stops a recording started with startRecording. */
    public Object stopRecording(String app, String stream) throws IOException {
        return call("GET", "/api/v1/applications/" + seg(app) + "/streams/" + seg(stream) + "/action/stoprecord", null);
    }

    /**
     * Calls a method on one connected client (an RTMP client's NetConnection.client, a
     * WebRTC SDK client's send handler) and returns {client, status, value}.
     */
    public Object invokeClient(String app, String clientId, String method, List<Object> params,
                               int timeoutMs) throws IOException {
        String body = Json.write(Json.obj("method", method, "params", params, "timeout_ms", timeoutMs));
        return call("POST", "/api/v1/applications/" + seg(app) + "/clients/" + seg(clientId) + "/invoke", body);
    }

    /** Calls an application method (a handler, else the app's rpc_url); returns its result. */
    public Object invokeApplication(String app, String method, List<Object> params) throws IOException {
        String body = Json.write(Json.obj("method", method, "parameters", params));
        return call("POST", "/api/v1/applications/" + seg(app) + "/invoke", body);
    }

    private Object call(String method, String path, String jsonBody) throws IOException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
            .timeout(Duration.ofSeconds(30))
            .header("Authorization", "Bearer " + token)
            .header("Accept", "application/json");
        if (jsonBody != null)
            b.header("Content-Type", "application/json")
             .method(method, HttpRequest.BodyPublishers.ofString(jsonBody));
        else
            b.method(method, HttpRequest.BodyPublishers.noBody());
        HttpResponse<String> r;
        try {
            r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        }
        if (r.body().length() > MAX_REPLY_CHARS)
            throw new ApiError(r.statusCode(), "reply too large");
        Map<String, Object> env;
        try {
            env = Json.parseObject(r.body());
        } catch (IllegalArgumentException e) {
            throw new ApiError(r.statusCode(), "reply is not JSON");
        }
        if (r.statusCode() / 100 != 2 || !"success".equals(env.get("status")))
            throw new ApiError(r.statusCode(), Json.str(env, "message", "error"));
        return env.get("data");
    }

    /** One URL path segment, percent-encoded ("a b" -> "a%20b"). */
    private static String seg(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    @SuppressWarnings("unchecked")
    private static List<Object> params(String[] a, int i) {
        return i < a.length ? (List<Object>) Json.parse(a[i]) : List.of();
    }

    public static void main(String[] a) throws IOException {
        String base = Http.env("API_URL", "http://127.0.0.1:5080");
        String token = Http.env("API_TOKEN", "");
        SluiceApi api = new SluiceApi(base, token);
        if (a.length < 2) {
            System.err.println("usage: SluiceApi streams|clients|kick|record-start|record-stop|invoke|invoke-client <app> ...");
            System.exit(2);
        }
        Object out;
        try {
            out = switch (a[0]) {
                case "streams" -> api.listStreams(a[1]);
                case "clients" -> api.listClients(a[1]);
                case "kick" -> api.kickClient(a[1], a[2]);
                case "record-start" -> api.startRecording(a[1], a[2], a.length > 3 ? a[3] : null);
                case "record-stop" -> api.stopRecording(a[1], a[2]);
                case "invoke-client" -> api.invokeClient(a[1], a[2], a[3], params(a, 4), 5000);
                case "invoke" -> api.invokeApplication(a[1], a[2], params(a, 3));
                default -> throw new IllegalArgumentException("unknown command " + a[0]);
            };
        } catch (IOException e) { // an ApiError, or no connection at all
            System.err.println("error: " + (e instanceof ApiError ? e.getMessage() : "cannot reach " + base + ": " + e));
            System.exit(1);
            return;
        }
        System.out.println(Json.write(out));
    }
}
