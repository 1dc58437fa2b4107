// Part 1: the round-trip auth validator (the business side of sluice's Round Trip
// Authentication, Red5 Pro's RoundTripAuthValidator; docs/integration/auth-roundtrip.md).
//
// sluice POSTs, before every publish and every play in an app with `auth_roundtrip: true`:
//   {"username": "...", "password": "...", "token": "...",
//    "type": "publisher" | "subscriber", "streamID": "stream1"}
// to /validateCredentials and admits the client when we answer 2xx {"result": true}; when
// an admitted client leaves it POSTs the same body to /invalidateCredentials.
"use strict";
const crypto = require("crypto");

// Your user store. Here: alice may publish and play, bob may only play.
const USERS = {
  alice: { password: "alice-pass", publish: true },
  bob: { password: "bob-pass", publish: false },
};

// Who is admitted right now: "username type streamID" -> count. A real service keeps
// this in its database (e.g. to limit concurrent viewers per account).
const online = new Map();

function sameSecret(a, b) {
  // Constant time: no timing leak about how much of the password matched.
  const ha = crypto.createHash("sha256").update(String(a)).digest();
  const hb = crypto.createHash("sha256").update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

function allowed(body) {
  const user = Object.hasOwn(USERS, body.username) ? USERS[body.username] : null;
  if (!user || !sameSecret(user.password, body.password ?? "")) return false;
  if (body.type === "publisher" && !user.publish) return false;
  return body.type === "publisher" || body.type === "subscriber";
}

// POST /validateCredentials -> [HTTP status, JSON answer]
function validate(body) {
  const ok = allowed(body);
  if (ok) {
    const key = `${body.username} ${body.type} ${body.streamID}`;
    online.set(key, (online.get(key) || 0) + 1);
  }
  // Never log the password or the token.
  console.log(`validate: ${body.username} ${body.type} ${body.streamID} -> ${ok ? "yes" : "no"}`);
  return [200, { result: ok }]; // optionally "url": a signed URL sluice keeps on the admission
}

// POST /invalidateCredentials: an admitted client left (the answer is only logged).
function invalidate(body) {
  const key = `${body.username} ${body.type} ${body.streamID}`;
  const n = online.get(key) || 0;
  if (n > 1) online.set(key, n - 1);
  else online.delete(key);
  console.log(`invalidate: ${key}`);
  return [200, { result: true }];
}

module.exports = { validate, invalidate, online, USERS };
