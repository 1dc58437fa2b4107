/*
 * RpcHandler: the business server behind `apps.<app>.rpc_url` (docs/integration/rpc.md).
 *
 * A client's NetConnection.call("room.join", responder, "lobby") that no plugin handler
 * takes reaches sluice's business URL as
 *   POST {"app":"live","session":"S9YD7FMFXK9WG","method":"room.join","params":["lobby"],
 *         "username":"alice"}
 * (Red5's POST /api/v1/applications/{app}/invoke takes the same route, with session and
 * username null). A 2xx answer with a JSON body is the result the caller gets (_result);
 * anything else fails the call (_error "The business server answered HTTP 404.").
 * sluice never retries a call, so methods with side effects should be idempotent.
 *
 * Methods here: room.join(room) -> {room, user, members}; room.leave(room) -> {room,
 * members}; math.sum(numbers...) -> {sum}; server.time() -> {now}. Anything else -> 404.
 *
 * Run:  java -cp out RpcHandler --port 8081
 * sluice: apps.live.rpc_url: http://127.0.0.1:8081/rpc
 */
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

public final class RpcHandler {
    static final int MAX_BODY = 1 << 20; // sluice caps a call's JSON at 1 MB

    /** One call as sluice sends it. */
    record Call(String app, String session, String method, List<Object> params, String username) {}

    /** A method: takes the call, returns the result (any JSON value), or throws. */
    interface Method {
        Object invoke(Call c);
    }

    private final Map<String, Method> methods = new ConcurrentHashMap<>();
    private final Map<String, Set<String>> rooms = new ConcurrentHashMap<>();

    RpcHandler() {
        methods.put("room.join", c -> {
            String room = String.valueOf(c.params().isEmpty() ? "lobby" : c.params().get(0));
            Set<String> members = rooms.computeIfAbsent(room, k -> ConcurrentHashMap.newKeySet());
            members.add(c.username() != null ? c.username() : c.session());
            return Json.obj("room", room, "user", c.username(), "members", members.size());
        });
        methods.put("room.leave", c -> {
            String room = String.valueOf(c.params().isEmpty() ? "lobby" : c.params().get(0));
            Set<String> members = rooms.getOrDefault(room, Set.of());
            members.remove(c.username() != null ? c.username() : c.session());
            return Json.obj("room", room, "members", members.size());
        });
        methods.put("math.sum", c -> {
            double sum = 0;
            for (Object p : c.params()) {
                if (!(p instanceof Number))
                    throw new IllegalArgumentException("math.sum takes numbers");
                sum += ((Number) p).doubleValue();
            }
            return Json.obj("sum", sum);
        });
        methods.put("server.time", c -> Json.obj("now", System.currentTimeMillis()));
    }

    /** POST /rpc: 200 with the result, 404 for an unknown method, 400 for bad input. */
    @SuppressWarnings("unchecked")
    void handle(HttpExchange ex) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            Http.send(ex, 405, null);
            return;
        }
        Call call;
        try {
            Map<String, Object> b = Json.parseObject(new String(Http.readBody(ex, MAX_BODY), StandardCharsets.UTF_8));
            Object params = b.get("params");
            call = new Call(Json.str(b, "app", null), Json.str(b, "session", null), Json.str(b, "method", ""),
                            params instanceof List ? (List<Object>) params : List.of(),
                            Json.str(b, "username", null));
        } catch (Http.TooBig e) {
            Http.send(ex, 413, null);
            return;
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("error", e.getMessage())));
            return;
        }
        Method m = methods.get(call.method());
        System.out.printf("call %s from %s (%s) in %s%n", call.method(), call.session(), call.username(), call.app());
        if (m == null) {
            Http.send(ex, 404, Json.write(Json.obj("error", "no such method")));
            return;
        }
        Object result;
        try {
            result = m.invoke(call);
        } catch (RuntimeException e) {
            Http.send(ex, 400, Json.write(Json.obj("error", e.getMessage())));
            return;
        }
        Http.send(ex, 200, Json.write(result));
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(Http.opt(args, "port", "8081"));
        String host = Http.opt(args, "host", "127.0.0.1");
        HttpServer server = Http.server(host, port);
        server.createContext("/rpc", new RpcHandler()::handle);
        server.start();
        System.out.printf("rpc handler listening on http://%s:%d/rpc%n", host, port);
    }
}
