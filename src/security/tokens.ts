// Bearer tokens: `authorization: Bearer <token>` on every call. A token is a
// JWT (jwt.ts) when JWT keys are configured and it looks like one, else a
// static token looked up in the tokens file by its SHA-256:
//
//   tokens:
//     - principal: ci-submitter          # the name logs and messages use
//       sha256: 9f86d0818...             # hex SHA-256 of the token (the file holds no secret)
//       roles: [submitter]               # agent, submitter, admin-read, admin-write
//       tenants: [acme]                  # or ["*"]
//
// (`token: <plain text>` instead of sha256 is accepted too, for throwaway
// setups.) The file is re-read when its mtime or size changes, so a token is
// revoked or added without a restart; a file that no longer parses keeps the
// previous table and logs one warning.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import type { Logger } from '../util/log.js';
import { looksLikeJwt, verifyJwt, JwtError, type JwtKeys } from './jwt.js';
import { isRole, ROLES, type Principal, type Role } from './principal.js';

/** Longest authorization value read (a JWT with many tenants fits; a header past it is refused). */
export const MAX_TOKEN_CHARS = 8192;

export const sha256Hex = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Parse a tokens file's text: digest -> principal. Throws naming the entry at fault. */
export function parseTokens(text: string, source: string): Map<string, Principal> {
  const doc: unknown = parse(text);
  const list = (doc as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list)) throw new Error(`${source}: expected "tokens:" with a list of entries`);
  const out = new Map<string, Principal>();
  list.forEach((e: unknown, i) => {
    const where = `${source}: tokens[${i}]`;
    if (typeof e !== 'object' || e === null) throw new Error(`${where}: must be a mapping`);
    const o = e as Record<string, unknown>;
    if (typeof o.principal !== 'string' || !o.principal) throw new Error(`${where}: "principal" must be a name`);
    let digest: string;
    if (typeof o.sha256 === 'string' && /^[0-9a-fA-F]{64}$/.test(o.sha256)) digest = o.sha256.toLowerCase();
    else if (typeof o.token === 'string' && o.token.length >= 16) digest = sha256Hex(o.token);
    else throw new Error(`${where}: needs "sha256" (64 hex digits) or "token" (16+ characters)`);
    const roles = o.roles;
    if (!Array.isArray(roles) || roles.length === 0 || !roles.every(isRole))
      throw new Error(`${where}: "roles" must list some of ${ROLES.join(', ')}`);
    const tenants = o.tenants ?? [];
    if (!Array.isArray(tenants) || !tenants.every((t) => typeof t === 'string'))
      throw new Error(`${where}: "tenants" must be a list of tenant names (or ["*"])`);
    if (out.has(digest)) throw new Error(`${where}: the same token is listed twice`);
    out.set(digest, {
      name: o.principal,
      roles: new Set(roles as Role[]),
      tenants: new Set(tenants as string[]),
      via: 'token',
    });
  });
  return out;
}

/** Why a call is not authenticated (becomes UNAUTHENTICATED with this message). */
export class AuthError extends Error {
  override name = 'AuthError';
}

export interface AuthenticatorOptions {
  readonly tokensFile?: string;
  readonly jwt?: JwtKeys;
  /** How often the tokens file's mtime is checked (ms, default 5000; 0 = never). */
  readonly reloadIntervalMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

export class Authenticator {
  private table = new Map<string, Principal>();
  private stamp = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: AuthenticatorOptions) {
    if (!o.tokensFile && !o.jwt) throw new Error('an authenticator needs a tokens file or JWT keys');
    if (o.tokensFile) {
      this.table = this.read(o.tokensFile);
      const every = o.reloadIntervalMs ?? 5000;
      if (every > 0) {
        this.timer = setInterval(() => this.reload(), every);
        this.timer.unref();
      }
    }
  }

  /** Principals in the tokens file now. */
  get size(): number {
    return this.table.size;
  }

  /** The principal behind an `authorization` value; AuthError says why none. */
  authenticate(authorization: string | undefined): Principal {
    if (authorization === undefined || authorization === '')
      throw new AuthError('no bearer token: send the metadata "authorization: Bearer <token>"');
    if (authorization.length > MAX_TOKEN_CHARS)
      throw new AuthError(`the authorization value is over ${MAX_TOKEN_CHARS} characters`);
    const m = /^Bearer +(\S+)$/i.exec(authorization);
    if (!m) throw new AuthError('the authorization metadata must be "Bearer <token>"');
    const token = m[1]!;
    if (this.o.jwt && looksLikeJwt(token)) {
      try {
        return verifyJwt(token, this.o.jwt, (this.o.now ?? Date.now)());
      } catch (err) {
        if (err instanceof JwtError) throw new AuthError(err.message);
        throw err;
      }
    }
    const p = this.table.get(sha256Hex(token));
    if (!p) throw new AuthError(this.o.tokensFile ? 'unknown token' : 'not a valid JWT');
    return p;
  }

  /** Re-read the tokens file if it changed. */
  reload(): void {
    const file = this.o.tokensFile;
    if (!file) return;
    let stamp: string;
    try {
      const s = statSync(file);
      stamp = `${s.mtimeMs}:${s.size}`;
    } catch {
      return; // missing mid-replace: look again next time
    }
    if (stamp === this.stamp) return;
    try {
      this.table = this.read(file);
      this.o.log?.info({ file, principals: this.table.size }, 'tokens reloaded');
    } catch (err) {
      this.stamp = stamp;
      this.o.log?.warn(
        { err: (err as Error).message },
        'tokens file changed but does not parse; keeping the previous tokens',
      );
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private read(file: string): Map<string, Principal> {
    const s = statSync(file);
    const table = parseTokens(readFileSync(file, 'utf8'), file);
    this.stamp = `${s.mtimeMs}:${s.size}`;
    return table;
  }
}
