// Who is calling, and what they may do. A principal comes from a bearer token
// (tokens.ts: a static token or a JWT) or, for replicas, from their
// certificate (identity.ts); the guard (guard.ts) decides per method.

export const ROLES = ['agent', 'submitter', 'admin-read', 'admin-write'] as const;
export type Role = (typeof ROLES)[number];

/** Every tenant: a principal whose tenants are `*` may submit and read for any. */
export const ANY_TENANT = '*';

export interface Principal {
  /** A name for logs and messages (a token's `principal`, a JWT's `sub`). Never the secret. */
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  /** Tenants it may submit for and read; may hold ANY_TENANT. */
  readonly tenants: ReadonlySet<string>;
  readonly via: 'token' | 'jwt';
}

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

export function mayUseTenant(p: Principal, tenant: string): boolean {
  return p.tenants.has(ANY_TENANT) || p.tenants.has(tenant);
}

/** "alice (roles submitter; tenants acme, beta)": for refusals. */
export function describePrincipal(p: Principal): string {
  const tenants = [...p.tenants];
  return `${p.name} (roles ${[...p.roles].join(', ') || 'none'}; tenants ${tenants.length ? tenants.join(', ') : 'none'})`;
}
