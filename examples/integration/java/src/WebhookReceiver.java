/*
 * WebhookReceiver: receives sluice's webhooks (docs/integration/webhooks.md), checks
 * X-Sluice-Signature, and stores each event once, keyed by its delivery id.
 *
 * The signature:  X-Sluice-Signature: sha256=hex(HMAC-SHA256(webhooks.secret,
 *                                      X-Sluice-Timestamp + "." + raw body))
 * computed over the body bytes as received (never over re-serialised JSON), compared in
 * constant time, with the timestamp (Unix seconds, fresh on every attempt) no more than
 * 300 seconds (BusinessServer's setting) from our clock, so that a captured request cannot
 * be replayed later.
 *
 * Deliveries are at least once: sluice retries until it gets a 2xx, and may send the same
 * delivery again after a crash or a redeliver through its API. So the store is keyed by
 * the delivery id (payload "id" = X-Sluice-Delivery): the event is written, and flushed to
 * disk, before we answer 2xx; a delivery whose id is already stored is answered 2xx too
 * (so sluice stops sending it) and dropped.
 *
 * The store is an append-only file of JSON lines, {"id", "received", "event"}, with the
 * set of ids kept in memory and rebuilt from the file at start. A database with a unique
 * key on the id does the same job (INSERT ... ON CONFLICT DO NOTHING).
 *
 * Served by BusinessServer on /webhook (the store in $DB, default events.jsonl); sluice:
 *   webhooks.url: http://127.0.0.1:3000/webhook, webhooks.secret: $WEBHOOK_SECRET.
 */
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class WebhookReceiver {
    static final int MAX_ID_CHARS = 200;      // "<node>-<event_seq>-<endpoint index>"

    /** Verifies a delivery's signature; true only for a fresh, correctly signed request. */
    static boolean verify(byte[] secret, String timestamp, String signature, byte[] body,
                          long toleranceSeconds) {
        if (secret.length == 0 || timestamp == null || signature == null || !timestamp.matches("[0-9]{1,12}"))
            return false;
        long now = System.currentTimeMillis() / 1000;
        if (Math.abs(now - Long.parseLong(timestamp)) > toleranceSeconds)
            return false;
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            mac.update(timestamp.getBytes(StandardCharsets.US_ASCII));
            mac.update((byte) '.');
            mac.update(body);
            String want = "sha256=" + HexFormat.of().formatHex(mac.doFinal());
            return MessageDigest.isEqual(want.getBytes(StandardCharsets.US_ASCII),
                                         signature.getBytes(StandardCharsets.US_ASCII));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The idempotent event store: an append-only JSON-lines file plus the ids in memory. */
    static final class EventStore {
        private final Path file;
        private final Set<String> ids = new HashSet<>();

        EventStore(Path file) throws IOException {
            this.file = file;
            if (!Files.exists(file))
                return;
            // A crash in the middle of a write leaves a last line without its newline. That
            // event was never acknowledged (sluice sends it again), so the torn line is cut off.
            byte[] all = Files.readAllBytes(file);
            int end = all.length;
            while (end > 0 && all[end - 1] != '\n')
                end--;
            if (end < all.length) {
                System.out.printf("store: dropping a torn last line (%d bytes)%n", all.length - end);
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    ch.truncate(end);
                }
            }
            for (String line : new String(all, 0, end, StandardCharsets.UTF_8).split("\n"))
                if (!line.isBlank())
                    ids.add(Json.str(Json.parseObject(line), "id", ""));
        }

        /**
         * Stores the event under its delivery id. Returns false (and stores nothing) when
         * that id is already stored. The line is on disk (fsync) when this returns true.
         */
        synchronized boolean add(String id, Map<String, Object> event) throws IOException {
            if (ids.contains(id))
                return false;
            String line = Json.write(Json.obj("id", id, "received", System.currentTimeMillis(),
                                              "event", event)) + "\n";
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
                                                   StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                ch.write(ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
                ch.force(true);
            }
            ids.add(id);
            return true;
        }

        synchronized int size() {
            return ids.size();
        }
    }

    private final byte[] secret;   // empty: every delivery is refused
    private final long toleranceSeconds;
    private final EventStore store;

    WebhookReceiver(byte[] secret, long toleranceSeconds, EventStore store) {
        this.secret = secret;
        this.toleranceSeconds = toleranceSeconds;
        this.store = store;
    }

    /** POST /webhook: 401 unsigned or stale, 400 not an event, else 200 (stored or duplicate). */
    void handle(HttpExchange ex) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            Http.send(ex, 405, null);
            return;
        }
        byte[] body;
        try {
            body = Http.readBody(ex, Http.MAX_BODY);
        } catch (Http.TooBig e) {
            Http.send(ex, 413, null);
            return;
        }
        String ts = ex.getRequestHeaders().getFirst("X-Sluice-Timestamp");
        String sig = ex.getRequestHeaders().getFirst("X-Sluice-Signature");
        if (!verify(secret, ts, sig, body, toleranceSeconds)) {
            System.out.println("webhook: refused (bad or missing signature)");
            Http.send(ex, 401, Json.write(Json.obj("error", "bad signature")));
            return;
        }
        Map<String, Object> event;
        try {
            event = Json.parseObject(new String(body, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            Http.send(ex, 400, Json.write(Json.obj("error", e.getMessage())));
            return;
        }
        String id = Json.str(event, "id", ex.getRequestHeaders().getFirst("X-Sluice-Delivery"));
        if (id == null || id.isEmpty() || id.length() > MAX_ID_CHARS) {
            Http.send(ex, 400, Json.write(Json.obj("error", "no delivery id")));
            return;
        }
        boolean stored = store.add(id, event);
        System.out.printf("webhook: %s %s %s%s%n", id, Json.str(event, "event", ""), Json.str(event, "guid", ""),
                          stored ? "" : " (duplicate, dropped)");
        Http.send(ex, 200, Json.write(Json.obj("stored", stored))); // any 2xx acknowledges, duplicates too
    }
}
