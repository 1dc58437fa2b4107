/*
 * RpcHandler: the business server behind `apps.<app>.rpc_url` (docs/integration/rpc.md).
 *
 * A client's NetConnection.call("sum", responder, 1, 2, 3) that no in-server handler
 * takes reaches sluice's business URL as
 *   POST {"app":"live","session":"S9YD7FMFXK9WG","method":"sum","params":[1,2,3],
 *         "username":"alice"}
 * (Red5's POST /api/v1/applications/{app}/invoke takes the same route, with session and
 * username null). A 2xx answer with a JSON body is the result the caller gets (_result);
 * anything else fails the call (_error "The business server answered HTTP 404.").
 * sluice never retries a call, so act on each one exactly once.
 *
 * Methods here: sum(numbers...) -> {"sum": n}; whoami() -> {"app", "session", "username"}
 * as sluice sent them. An unknown method answers 404, bad arguments 400.
 *
 * Served by BusinessServer on /rpc; sluice: apps.live.rpc_url: http://127.0.0.1:3000/rpc
 */
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

public final class RpcHandler {
    /** One call as sluice sends it. */
    record Call(String app, String session, String method, List<Object> params, String username) {}

    /** A method: takes the call, returns the result (any JSON value), or throws IllegalArgumentException. */
    interface Method {
        Object invoke(Call c);
    }

    /** Your methods, by name. */
    static final Map<String, Method> METHODS = Map.of(
        "sum", c -> {
            double sum = 0;
            for (Object p : c.params()) {
                if (!(p instanceof Number))
                    throw new IllegalArgumentException("sum takes numbers");
                sum += ((Number) p).doubleValue();
            }
            return Json.obj("sum", sum);
        },
        "whoami", c -> Json.obj("app", c.app(), "session", c.session(), "username", c.username()));

    /** POST /rpc: 200 with the result, 404 for an unknown method, 400 for bad input. */
    @SuppressWarnings("unchecked")
    void handle(HttpExchange ex) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            Http.send(ex, 405, null);
            return;
        }
        Map<String, Object> b;
        try {
            b = Json.parseObject(new String(Http.readBody(ex, Http.MAX_BODY), StandardCharsets.UTF_8));
        } catch (Http.TooBig e) {
            Http.send(ex, 413, null);
            return;
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("error", e.getMessage())));
            return;
        }
        Method m = METHODS.get(Json.str(b, "method", ""));
        if (m == null) {
            Http.send(ex, 404, Json.write(Json.obj("error", "unknown method"))); // "... answered HTTP 404."
            return;
        }
        if (!(b.get("params") instanceof List)) {
            Http.send(ex, 400, Json.write(Json.obj("error", "params must be an array")));
            return;
        }
        Call call = new Call(Json.str(b, "app", null), Json.str(b, "session", null), Json.str(b, "method", ""),
                             (List<Object>) b.get("params"), Json.str(b, "username", null));
        Object result;
        try {
            result = m.invoke(call);
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("error", e.getMessage())));
            return;
        }
        String json = Json.write(result);
        System.out.printf("rpc: %s from %s -> %s%n", call.method(), call.session(), json);
        Http.send(ex, 200, json);
    }
}
