// The topology's optional `security:` section (docs/security.md): where the
// replicas' certificates are (mTLS between replicas, TLS for everyone) and
// how callers are authenticated (static tokens, JWTs). Absent, the mesh is
// plaintext and open, as before. Paths are kept as written; the process that
// reads them resolves them against the topology file's directory
// (src/security/config.ts), so parsing stays pure.
import { Collector, describe, isObj } from './format.js';
import type { SecuritySpec } from './types.js';

const TOP = ['tls', 'auth', 'quotas'];
const LIMIT_KEYS = ['submitsPerSecond', 'burst', 'queuedTasks'];
const TLS = ['dir', 'ca', 'cert', 'key', 'reloadIntervalMs'];
const AUTH = ['tokens', 'jwt'];
const JWT = ['hs256SecretFile', 'rs256PublicKeyFile', 'issuer', 'audience'];

export function parseSecurity(raw: unknown, c: Collector): SecuritySpec | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObj(raw)) {
    c.add('field "security"', `must be a mapping, got ${describe(raw)}`);
    return undefined;
  }
  c.keys('field "security"', raw, TOP);
  const str = (where: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v !== '') return v;
    c.add(`field "security.${where}"`, `must be a non-empty string, got ${describe(v)}`);
    return undefined;
  };
  let tls: SecuritySpec['tls'];
  if (raw.tls !== undefined) {
    const t = raw.tls;
    if (!isObj(t)) c.add('field "security.tls"', `must be a mapping, got ${describe(t)}`);
    else {
      c.keys('field "security.tls"', t, TLS);
      const dir = str('tls.dir', t.dir);
      const ca = str('tls.ca', t.ca) ?? (dir && `${dir}/ca.pem`);
      const cert = str('tls.cert', t.cert) ?? (dir && `${dir}/{cell}-{replica}.pem`);
      const key = str('tls.key', t.key) ?? (dir && `${dir}/{cell}-{replica}.key`);
      let reloadIntervalMs = 5000;
      if (t.reloadIntervalMs !== undefined) {
        if (
          typeof t.reloadIntervalMs !== 'number' ||
          !Number.isSafeInteger(t.reloadIntervalMs) ||
          t.reloadIntervalMs < 100
        )
          c.add(
            'field "security.tls.reloadIntervalMs"',
            `must be an integer >= 100, got ${describe(t.reloadIntervalMs)}`,
          );
        else reloadIntervalMs = t.reloadIntervalMs;
      }
      if (!ca || !cert || !key) c.add('field "security.tls"', 'needs "dir", or all of "ca", "cert" and "key"');
      else tls = { ca, cert, key, reloadIntervalMs };
    }
  }
  let auth: SecuritySpec['auth'];
  if (raw.auth !== undefined) {
    const a = raw.auth;
    if (!isObj(a)) c.add('field "security.auth"', `must be a mapping, got ${describe(a)}`);
    else {
      c.keys('field "security.auth"', a, AUTH);
      const tokens = str('auth.tokens', a.tokens);
      let jwt: NonNullable<SecuritySpec['auth']>['jwt'];
      if (a.jwt !== undefined) {
        if (!isObj(a.jwt)) c.add('field "security.auth.jwt"', `must be a mapping, got ${describe(a.jwt)}`);
        else {
          c.keys('field "security.auth.jwt"', a.jwt, JWT);
          const j = {
            hs256SecretFile: str('auth.jwt.hs256SecretFile', a.jwt.hs256SecretFile),
            rs256PublicKeyFile: str('auth.jwt.rs256PublicKeyFile', a.jwt.rs256PublicKeyFile),
            issuer: str('auth.jwt.issuer', a.jwt.issuer),
            audience: str('auth.jwt.audience', a.jwt.audience),
          };
          if (!j.hs256SecretFile && !j.rs256PublicKeyFile)
            c.add('field "security.auth.jwt"', 'needs "hs256SecretFile" or "rs256PublicKeyFile"');
          else jwt = j;
        }
      }
      if (!tokens && !a.jwt) c.add('field "security.auth"', 'needs "tokens" or "jwt"');
      auth = { ...(tokens ? { tokens } : {}), ...(jwt ? { jwt } : {}) };
      // Bearer tokens in plaintext are readable by anyone on the path: never.
      if (raw.tls === undefined)
        c.add('field "security.auth"', 'needs "security.tls": tokens are never sent in plaintext');
    }
  }
  const quotas = parseQuotas(raw.quotas, c);
  if (!tls && !auth && !quotas) return undefined;
  return { ...(tls ? { tls } : {}), ...(auth ? { auth } : {}), ...(quotas ? { quotas } : {}) };
}

type Limits = NonNullable<NonNullable<SecuritySpec['quotas']>['default']>;

/** `quotas: { default: LIMITS, tenants: { name: LIMITS } }`; LIMITS has submitsPerSecond, burst, queuedTasks. */
function parseQuotas(raw: unknown, c: Collector): SecuritySpec['quotas'] {
  if (raw === undefined || raw === null) return undefined;
  if (!isObj(raw)) {
    c.add('field "security.quotas"', `must be a mapping, got ${describe(raw)}`);
    return undefined;
  }
  c.keys('field "security.quotas"', raw, ['default', 'tenants']);
  const limits = (where: string, v: unknown): Limits | undefined => {
    if (!isObj(v)) {
      c.add(`field "security.quotas.${where}"`, `must be a mapping of ${LIMIT_KEYS.join(', ')}, got ${describe(v)}`);
      return undefined;
    }
    c.keys(`field "security.quotas.${where}"`, v, LIMIT_KEYS);
    const out: Record<string, number> = {};
    for (const k of LIMIT_KEYS) {
      const x = v[k];
      if (x === undefined) continue;
      const ok =
        typeof x === 'number' &&
        (k === 'submitsPerSecond' ? x > 0 && Number.isFinite(x) : Number.isSafeInteger(x) && x >= 1);
      if (!ok)
        c.add(
          `field "security.quotas.${where}.${k}"`,
          `must be a positive ${k === 'submitsPerSecond' ? 'number' : 'integer'}, got ${describe(x)}`,
        );
      else out[k] = x;
    }
    return out;
  };
  const def = raw.default === undefined ? undefined : limits('default', raw.default);
  let tenants: Record<string, Limits> | undefined;
  if (raw.tenants !== undefined) {
    if (!isObj(raw.tenants))
      c.add('field "security.quotas.tenants"', `must be a mapping of tenant: limits, got ${describe(raw.tenants)}`);
    else {
      tenants = {};
      for (const [name, v] of Object.entries(raw.tenants)) {
        const l = limits(`tenants.${name}`, v);
        if (l) tenants[name] = l;
      }
    }
  }
  return { ...(def ? { default: def } : {}), ...(tenants ? { tenants } : {}) };
}
