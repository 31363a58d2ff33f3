// Signed JWTs (RFC 7519) checked with node:crypto: HS256 with a shared secret
// or RS256 with an RSA public key, whichever are configured; never `none`,
// never an algorithm the key was not configured for (a token cannot pick its
// own verification). `exp` is required, `nbf` and `iat` honoured, `iss` and
// `aud` compared when configured; 30 s of clock skew is allowed.
//
// Claims the mesh reads: `sub` (the principal's name), `roles` (array of
// agent, submitter, admin-read, admin-write; others ignored), `tenants`
// (array of tenant names, or ["*"]).
import { createHmac, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { isRole, type Principal, type Role } from './principal.js';

export interface JwtKeys {
  readonly hs256Secret?: Buffer;
  readonly rs256PublicKey?: KeyObject;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
}

const SKEW_S = 30;

/** Looks like a JWS compact serialization (three base64url parts, a JSON header). */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export function rsaPublicKey(pem: Buffer): KeyObject {
  const k = createPublicKey(pem);
  if (k.asymmetricKeyType !== 'rsa') throw new Error(`an RS256 key must be RSA, got ${k.asymmetricKeyType}`);
  return k;
}

function json(part: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new JwtError(`the JWT ${what} is not base64url JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new JwtError(`the JWT ${what} is not an object`);
  return v as Record<string, unknown>;
}

export class JwtError extends Error {
  override name = 'JwtError';
}

/** The principal a JWT names, or JwtError saying why not (never quoting the token). */
export function verifyJwt(token: string, keys: JwtKeys, nowMs: number): Principal {
  const [h, p, s] = token.split('.') as [string, string, string];
  const header = json(h, 'header');
  const signed = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  const alg = header.alg;
  if (alg === 'HS256' && keys.hs256Secret) {
    const want = createHmac('sha256', keys.hs256Secret).update(signed).digest();
    if (sig.length !== want.length || !timingSafeEqual(sig, want))
      throw new JwtError('the JWT signature does not verify');
  } else if (alg === 'RS256' && keys.rs256PublicKey) {
    if (!verify('RSA-SHA256', signed, keys.rs256PublicKey, sig))
      throw new JwtError('the JWT signature does not verify');
  } else {
    const ok = [keys.hs256Secret ? 'HS256' : '', keys.rs256PublicKey ? 'RS256' : ''].filter(Boolean).join(', ');
    throw new JwtError(
      `the JWT algorithm ${JSON.stringify(String(alg)).slice(0, 20)} is not accepted here (accepted: ${ok})`,
    );
  }
  const c = json(p, 'payload');
  const now = nowMs / 1000;
  if (typeof c.exp !== 'number') throw new JwtError('the JWT has no "exp" (expiry): tokens must expire');
  if (now > c.exp + SKEW_S) throw new JwtError(`the JWT expired at ${new Date(c.exp * 1000).toISOString()}`);
  if (typeof c.nbf === 'number' && now < c.nbf - SKEW_S)
    throw new JwtError(`the JWT is not valid before ${new Date(c.nbf * 1000).toISOString()}`);
  if (keys.issuer !== undefined && c.iss !== keys.issuer)
    throw new JwtError(`the JWT issuer is not ${JSON.stringify(keys.issuer)}`);
  if (keys.audience !== undefined) {
    const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
    if (!aud.includes(keys.audience))
      throw new JwtError(`the JWT audience does not include ${JSON.stringify(keys.audience)}`);
  }
  if (typeof c.sub !== 'string' || c.sub === '' || c.sub.length > 256)
    throw new JwtError('the JWT has no "sub" (1-256 characters) naming the principal');
  const roles = new Set<Role>(Array.isArray(c.roles) ? c.roles.filter(isRole) : []);
  const tenants = new Set<string>(
    Array.isArray(c.tenants) ? c.tenants.filter((t): t is string => typeof t === 'string' && t.length <= 128) : [],
  );
  return { name: c.sub, roles, tenants, via: 'jwt' };
}

/** A signed HS256 or RS256 JWT (tests, and `meshlb token` style tooling). */
export function signJwt(
  claims: Record<string, unknown>,
  key: { hs256Secret: Buffer } | { rs256PrivateKey: KeyObject },
): string {
  const alg = 'hs256Secret' in key ? 'HS256' : 'RS256';
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg, typ: 'JWT' })}.${enc(claims)}`;
  const sig =
    'hs256Secret' in key
      ? createHmac('sha256', key.hs256Secret).update(body).digest()
      : sign('RSA-SHA256', Buffer.from(body), key.rs256PrivateKey);
  return `${body}.${sig.toString('base64url')}`;
}
