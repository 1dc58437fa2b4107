/*
 * RoundTripAuth: the business server's side of sluice's Round Trip Authentication (Red5
 * Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md).
 *
 * Before a client publishes or plays in an app with `auth_roundtrip: true`, sluice POSTs
 *   {"username":"alice","password":"...","token":"","type":"publisher","streamID":"stream1"}
 * to auth.roundtrip_validate_url and admits the client when the answer is {"result": true}.
 * When an admitted client leaves, it POSTs the same body to auth.roundtrip_invalidate_url.
 *
 * The policy here: a users file with one "name password role" line per user, role
 * `publisher` (may publish and play) or `subscriber` (may only play). Passwords are
 * compared in constant time and never logged. The set of clients currently admitted
 * (`online`) is what a real service would use for billing or for "who is live".
 *
 * Run:  java -cp out RoundTripAuth --port 3000 --users users.txt
 * sluice: auth.roundtrip_validate_url: http://127.0.0.1:3000/validateCredentials
 *         auth.roundtrip_invalidate_url: http://127.0.0.1:3000/invalidateCredentials
 */
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

public final class RoundTripAuth {
    static final int MAX_BODY = 16 * 1024; // sluice's bodies are a few hundred bytes

    record User(String password, boolean mayPublish) {}

    private final Map<String, User> users;
    private final Set<String> online = ConcurrentHashMap.newKeySet();

    RoundTripAuth(Map<String, User> users) {
        this.users = users;
    }

    /** Reads "name password role" lines; '#' starts a comment. */
    static Map<String, User> loadUsers(Path file) throws IOException {
        Map<String, User> out = new HashMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#"))
                continue;
            String[] f = line.split("\\s+");
            if (f.length != 3)
                throw new IOException("users file: expected 'name password role': " + f[0]);
            out.put(f[0], new User(f[1], f[2].equals("publisher")));
        }
        return out;
    }

    /** The decision: does this body name a user, with the right password, allowed this type? */
    boolean allowed(Map<String, Object> body) {
        User u = users.get(Json.str(body, "username", ""));
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
            online.add(key(body));
        System.out.printf("validate %s %s %s -> %s%n", Json.str(body, "username", ""),
                          Json.str(body, "type", ""), Json.str(body, "streamID", ""), ok ? "yes" : "no");
        // A signed playback URL could be returned as "url"; sluice keeps it on the admission.
        Http.send(ex, 200, Json.write(Json.obj("result", ok)));
    }

    /** POST /invalidateCredentials: the admitted client left. */
    void invalidate(HttpExchange ex) throws IOException {
        Map<String, Object> body = readJson(ex);
        if (body == null)
            return;
        online.remove(key(body));
        System.out.printf("invalidate %s %s %s (%d online)%n", Json.str(body, "username", ""),
                          Json.str(body, "type", ""), Json.str(body, "streamID", ""), online.size());
        Http.send(ex, 200, Json.write(Json.obj("result", true)));
    }

    /** The POSTed JSON object, or null after answering 405/413/400 itself. */
    private static Map<String, Object> readJson(HttpExchange ex) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            Http.send(ex, 405, null);
            return null;
        }
        try {
            return Json.parseObject(new String(Http.readBody(ex, MAX_BODY), StandardCharsets.UTF_8));
        } catch (Http.TooBig e) {
            Http.send(ex, 413, null);
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("result", false, "error", e.getMessage())));
        }
        return null;
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(Http.opt(args, "port", "3000"));
        String host = Http.opt(args, "host", "127.0.0.1");
        Map<String, User> users = loadUsers(Path.of(Http.opt(args, "users", "users.txt")));
        RoundTripAuth rta = new RoundTripAuth(users);
        HttpServer server = Http.server(host, port);
        server.createContext("/validateCredentials", rta::validate);
        server.createContext("/invalidateCredentials", rta::invalidate);
        server.start();
        System.out.printf("round trip auth listening on http://%s:%d (%d users)%n", host, port, users.size());
    }
}
