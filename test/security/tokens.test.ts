// Tokens and JWTs with no network, and the guard's method table against the
// services a replica serves (a method nobody placed would be refused).
import { generateKeyPairSync, createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AdminServiceService } from '../../src/gen/meshlb/v1/admin.js';
import { AgentServiceService } from '../../src/gen/meshlb/v1/agent.js';
import { LinkServiceService } from '../../src/gen/meshlb/v1/link.js';
import { RaftServiceService } from '../../src/gen/meshlb/v1/raft.js';
import { TaskServiceService } from '../../src/gen/meshlb/v1/task.js';
import { METHODS } from '../../src/security/guard.js';
import { signJwt, verifyJwt, type JwtKeys } from '../../src/security/jwt.js';
import { AuthError, Authenticator, parseTokens, sha256Hex } from '../../src/security/tokens.js';

const NOW = Date.UTC(2026, 0, 1);
const exp = NOW / 1000 + 600;

describe('the guard covers every method', () => {
  it('each method of TaskService, AgentService, AdminService, LinkService and RaftService has a rule', () => {
    const services = [
      TaskServiceService,
      AgentServiceService,
      AdminServiceService,
      LinkServiceService,
      RaftServiceService,
    ];
    const paths = services.flatMap((s) => Object.values(s).map((m) => m.path));
    expect(paths.filter((p) => !(p in METHODS))).toEqual([]);
  });
});

describe('static tokens', () => {
  it('parses hashes or plain tokens, and says which entry is wrong', () => {
    const t = parseTokens(
      `tokens:\n  - { principal: a, sha256: ${sha256Hex('token-a-0123456789')}, roles: [submitter], tenants: [x] }\n  - { principal: b, token: token-b-0123456789, roles: [agent] }\n`,
      'f',
    );
    expect(t.get(sha256Hex('token-a-0123456789'))?.name).toBe('a');
    expect(t.get(sha256Hex('token-b-0123456789'))?.roles).toEqual(new Set(['agent']));
    expect(() => parseTokens('tokens:\n  - { principal: a, token: short, roles: [agent] }\n', 'f')).toThrow(
      /tokens\[0\].*16\+/,
    );
    expect(() => parseTokens('tokens:\n  - { principal: a, token: token-b-0123456789, roles: [root] }\n', 'f')).toThrow(
      /"roles" must list some of agent, submitter, admin-read, admin-write/,
    );
    expect(() => parseTokens('nope: 1\n', 'f')).toThrow(/expected "tokens:"/);
  });

  it('refuses a missing, malformed or oversize authorization value with a reason, never echoing it', () => {
    const auth = new Authenticator({ jwt: { hs256Secret: Buffer.from('s') }, reloadIntervalMs: 0, now: () => NOW });
    const why = (v: string | undefined) => {
      try {
        auth.authenticate(v);
        return '';
      } catch (e) {
        expect(e).toBeInstanceOf(AuthError);
        return (e as Error).message;
      }
    };
    expect(why(undefined)).toContain('no bearer token');
    expect(why('Basic dXNlcjpwYXNz')).toContain('must be "Bearer <token>"');
    expect(why(`Bearer ${'x'.repeat(9000)}`)).toContain('over 8192 characters');
    expect(why('Bearer secret-looking-thing')).toBe('not a valid JWT');
    expect(why('Bearer secret-looking-thing')).not.toContain('secret-looking-thing');
  });
});

describe('JWTs', () => {
  const hs: JwtKeys = { hs256Secret: Buffer.from('k'.repeat(32)), issuer: 'iss', audience: 'meshlb' };
  const claims = { sub: 'svc', roles: ['submitter', 'nonsense'], tenants: ['acme'], iss: 'iss', aud: ['meshlb'], exp };

  it('HS256: roles (unknown ones dropped) and tenants; iss, aud, exp and nbf checked', () => {
    const p = verifyJwt(signJwt(claims, { hs256Secret: hs.hs256Secret! }), hs, NOW);
    expect(p).toMatchObject({ name: 'svc', via: 'jwt' });
    expect([...p.roles]).toEqual(['submitter']);
    expect([...p.tenants]).toEqual(['acme']);
    const bad = (c: Record<string, unknown>) => () =>
      verifyJwt(signJwt({ ...claims, ...c }, { hs256Secret: hs.hs256Secret! }), hs, NOW);
    expect(bad({ iss: 'other' })).toThrow(/issuer/);
    expect(bad({ aud: 'other' })).toThrow(/audience/);
    expect(bad({ exp: undefined })).toThrow(/no "exp"/);
    expect(bad({ exp: NOW / 1000 - 31 })).toThrow(/expired/);
    expect(bad({ exp: NOW / 1000 - 29 })).not.toThrow(); // 30 s of skew
    expect(bad({ nbf: NOW / 1000 + 60 })).toThrow(/not valid before/);
    expect(bad({ sub: '' })).toThrow(/"sub"/);
  });

  it('RS256 with the public key; `none` and algorithm confusion are refused', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs: JwtKeys = { rs256PublicKey: publicKey };
    expect(verifyJwt(signJwt({ sub: 'r', exp }, { rs256PrivateKey: privateKey }), rs, NOW).name).toBe('r');
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${enc({ alg: 'none' })}.${enc({ sub: 'r', roles: ['admin-write'], exp })}.`;
    expect(() => verifyJwt(none, rs, NOW)).toThrow(/algorithm "none" is not accepted here \(accepted: RS256\)/);
    // HS256 "signed" with the public key's PEM as the secret: only RS256 is configured, so it is refused.
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const forged = signJwt(
      { sub: 'r', roles: ['admin-write'], exp },
      { hs256Secret: createSecretKey(Buffer.from(pem)).export() },
    );
    expect(() => verifyJwt(forged, rs, NOW)).toThrow(/HS256.*not accepted/);
    const tampered = signJwt({ sub: 'r', exp }, { rs256PrivateKey: privateKey }).replace(
      /\.[^.]+\./,
      `.${enc({ sub: 'root', exp })}.`,
    );
    expect(() => verifyJwt(tampered, rs, NOW)).toThrow(/signature does not verify/);
  });
});
