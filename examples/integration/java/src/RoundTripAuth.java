/*
 * RoundTripAuth: the business server's side of sluice's Round Trip Authentication (Red5
 * Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md).
 *
 * Before a client publishes or plays in an app with `auth_roundtrip: true`, sluice POSTs
 *   {"username":"alice","password":"...","token":"","type":"publisher","streamID":"stream1"}
 * to auth.roundtrip_validate_url and admits the client when the answer is {"result": true}.
 * When an admitted client leaves, it POSTs the same body to auth.roundtrip_invalidate_url.
 *
 * The policy here: a table of users (replace it with your accounts, hashed passwords):
 * alice may publish and play, bob may only play. Passwords are compared in constant time
 * and never logged. `online` counts the clients currently admitted, what a real service
 * would use for billing or for "who is live".
 *
 * Served by BusinessServer on /validateCredentials and /invalidateCredentials; sluice:
 *   auth.roundtrip_validate_url: http://127.0.0.1:3000/validateCredentials
 *   auth.roundtrip_invalidate_url: http://127.0.0.1:3000/invalidateCredentials
 */
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class RoundTripAuth {
    record User(String password, boolean mayPublish) {}

    /** Your user store. Here: alice may publish and play, bob may only play. */
    static final Map<String, User> USERS = Map.of(
        "alice", new User("alice-pass", true),
        "bob", new User("bob-pass", false));

    /** Admitted clients: "username type streamID" -> how many (a client may be admitted twice). */
    private final Map<String, Integer> online = new ConcurrentHashMap<>();

    /** The decision: does this body name a user, with the right password, allowed this type? */
    boolean allowed(Map<String, Object> body) {
        User u = USERS.get(Json.str(body, "username", ""));
        if (u == null)
            return false;
        byte[] want = u.password().getBytes(StandardCharsets.UTF_8);
        byte[] got = Json.str(body, "password", "").getBytes(StandardCharsets.UTF_8);
        if (!MessageDigest.isEqual(want, got)) // constant time
            return false;
        String type = Json.str(body, "type", "");
        return type.equals("subscriber") || (type.equals("publisher") && u.mayPublish());
    }

    private static String key(Map<String, Object> body) {
        return Json.str(body, "username", "") + " " + Json.str(body, "type", "") + " "
            + Json.str(body, "streamID", "");
    }

    /** POST /validateCredentials: answers {"result": true|false}. */
    void validate(HttpExchange ex) throws IOException {
        Map<String, Object> body = readJson(ex);
        if (body == null)
            return;
        boolean ok = allowed(body);
        if (ok)
            online.merge(key(body), 1, Integer::sum);
        // Never log the password or the token.
        System.out.printf("validate: %s %s %s -> %s%n", Json.str(body, "username", ""),
                          Json.str(body, "type", ""), Json.str(body, "streamID", ""), ok ? "yes" : "no");
        // A signed playback URL could be returned as "url"; sluice keeps it on the admission.
        Http.send(ex, 200, Json.write(Json.obj("result", ok)));
    }

    /** POST /invalidateCredentials: the admitted client left. */
    void invalidate(HttpExchange ex) throws IOException {
        Map<String, Object> body = readJson(ex);
        if (body == null)
            return;
        online.computeIfPresent(key(body), (k, n) -> n > 1 ? n - 1 : null);
        System.out.printf("invalidate: %s %s %s%n", Json.str(body, "username", ""),
                          Json.str(body, "type", ""), Json.str(body, "streamID", ""));
        Http.send(ex, 200, Json.write(Json.obj("result", true)));
    }

    /** The POSTed JSON object, or null after answering 405/413/400 itself. */
    private static Map<String, Object> readJson(HttpExchange ex) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            Http.send(ex, 405, null);
            return null;
        }
        try {
            return Json.parseObject(new String(Http.readBody(ex, Http.MAX_BODY), StandardCharsets.UTF_8));
        } catch (Http.TooBig e) {
            Http.send(ex, 413, null);
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("result", false, "error", e.getMessage())));
        }
        return null;
    }
}
