#!/usr/bin/env node
// Part 4: a JWT issuer for publish/play tokens (HS256; docs/integration/auth-jwt.md).
//
//   JWT_SECRET='same as auth.jwt_secret' node issue_token.js publisher --stream cam1
//   node issue_token.js subscriber --stream 'cam*' --ttl 600 --sub viewer-42
//
// Prints the token. Clients pass it as `?token=<JWT>` on the stream name
// (rtmp://host/app/cam1?token=...) or as Red5's connect arguments "jwt", "jwt", <token>.
// Optional: JWT_ISSUER / JWT_AUDIENCE (when sluice sets auth.jwt_issuer / jwt_audience).
"use strict";
const crypto = require("crypto");
const { parseArgs } = require("util");

const ROLES = { publisher: "red5-publisher", subscriber: "red5-subscriber" };

const b64url = (buf) => Buffer.from(buf).toString("base64url");

// A compact HS256 JWS with the claims sluice checks: exp (required), roles
// (red5-publisher may publish and play, red5-subscriber may play), and optionally
// stream (a name or pattern with *), app, red5-room, iss, aud.
function issueToken(secret, role, { sub = "user-1", stream, app, room, ttl = 3600, issuer, audience,
                                    now = Math.floor(Date.now() / 1000) } = {}) {
  if (Buffer.byteLength(secret || "") < 32) throw new Error("use a secret of at least 32 bytes");
  if (!Object.hasOwn(ROLES, role)) throw new Error("role is publisher or subscriber");
  const claims = { sub, iat: now, exp: now + ttl, roles: ROLES[role] };
  if (stream) claims.stream = stream;
  if (app) claims.app = app;
  if (room) claims["red5-room"] = room;
  if (issuer) claims.iss = issuer;
  if (audience) claims.aud = audience;
  const signingInput = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." +
    b64url(JSON.stringify(claims));
  const sig = crypto.createHmac("sha256", secret).update(signingInput).digest();
  return signingInput + "." + b64url(sig);
}

function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { sub: { type: "string" }, stream: { type: "string" }, app: { type: "string" },
                 room: { type: "string" }, ttl: { type: "string" } },
    });
  } catch (e) {
    console.error(e.message);
    return 2;
  }
  const { values: o, positionals: [role] } = parsed;
  try {
    console.log(issueToken(process.env.JWT_SECRET, role, {
      sub: o.sub, stream: o.stream, app: o.app, room: o.room,
      ttl: o.ttl ? Number(o.ttl) : undefined,
      issuer: process.env.JWT_ISSUER, audience: process.env.JWT_AUDIENCE,
    }));
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  return 0;
}

module.exports = { issueToken };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
