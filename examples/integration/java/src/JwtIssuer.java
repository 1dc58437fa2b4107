/*
 * JwtIssuer: mints HS256 JSON Web Tokens that sluice's JWT check accepts
 * (docs/integration/auth-jwt.md; Red5 Pro's JWT plugin claims).
 *
 * A JWT is base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(secret,
 * first two parts)), without '=' padding. sluice requires `exp`; it checks `iss` and `aud`
 * when auth.jwt_issuer / auth.jwt_audience are set, and applies `roles`
 * ("red5-publisher" may publish and play, "red5-subscriber" may play), `red5-transport`,
 * `red5-room`, `app`, `stream` (patterns with '*') and `action`. The secret is
 * auth.jwt_secret, at least 32 bytes, shared only between sluice and this issuer.
 *
 * Clients pass the token as `?token=<JWT>` on the stream name or the app, or as RTMP
 * connect arguments ("jwt", "jwt", token).
 *
 * Run:  JWT_SECRET=... java -cp out JwtIssuer publisher|subscriber [--stream 'cam*'] [--app live]
 *           [--room room1] [--sub studio-7] [--ttl 3600]
 * Environment: JWT_SECRET (auth.jwt_secret); JWT_ISSUER, JWT_AUDIENCE when sluice sets
 * auth.jwt_issuer / auth.jwt_audience.
 */
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class JwtIssuer {
    private static final Base64.Encoder B64URL = Base64.getUrlEncoder().withoutPadding();

    /** Signs the claims with HS256; returns the compact token. */
    public static String mint(byte[] secret, Map<String, Object> claims) {
        if (secret.length < 32)
            throw new IllegalArgumentException("the HS256 secret must be at least 32 bytes");
        String header = B64URL.encodeToString("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".getBytes(StandardCharsets.UTF_8));
        String payload = B64URL.encodeToString(Json.write(claims).getBytes(StandardCharsets.UTF_8));
        String signingInput = header + "." + payload;
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            byte[] sig = mac.doFinal(signingInput.getBytes(StandardCharsets.US_ASCII));
            return signingInput + "." + B64URL.encodeToString(sig);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The claims for one publisher or player: role "publisher" or "subscriber", valid for
     * ttlSeconds from now; optional claims are left out when null.
     */
    public static Map<String, Object> claims(String sub, String role, long ttlSeconds, String issuer,
                                             String audience, String app, String stream, String room) {
        long now = System.currentTimeMillis() / 1000;
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("sub", sub);
        c.put("iat", now);
        c.put("exp", now + ttlSeconds);
        if (issuer != null)
            c.put("iss", issuer);
        if (audience != null)
            c.put("aud", audience);
        c.put("roles", role.equals("publisher") ? "red5-publisher" : "red5-subscriber");
        if (app != null)
            c.put("app", app);
        if (stream != null)
            c.put("stream", stream);
        if (room != null)
            c.put("red5-room", room);
        return c;
    }

    public static void main(String[] a) {
        if (a.length < 1 || !(a[0].equals("publisher") || a[0].equals("subscriber"))) {
            System.err.println("usage: JwtIssuer publisher|subscriber [--stream S] [--app A] [--room R] [--sub S] [--ttl N]");
            System.exit(2);
        }
        byte[] secret = Http.env("JWT_SECRET", "").getBytes(StandardCharsets.UTF_8);
        Map<String, Object> c = claims(Http.opt(a, "sub", "user-1"), a[0], Long.parseLong(Http.opt(a, "ttl", "3600")),
                                       Http.env("JWT_ISSUER", null), Http.env("JWT_AUDIENCE", null),
                                       Http.opt(a, "app", null), Http.opt(a, "stream", null), Http.opt(a, "room", null));
        try {
            System.out.println(mint(secret, c));
        } catch (IllegalArgumentException e) {
            System.err.println("error: JWT_SECRET: " + e.getMessage());
            System.exit(2);
        }
    }
}
