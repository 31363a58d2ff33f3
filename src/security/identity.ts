// Who a replica certificate says it is. Every replica certificate the mesh
// CA signs carries one URI subject alternative name naming the mesh (its id)
// and the replica:
//
//   meshlb://<mesh id>/<cell path>?replica=<n>     e.g. meshlb://example-8ac1/eu/west-1a?replica=2
//
// Links and Raft streams are authenticated by this name, not by tokens: a
// parent takes a link only from a replica of one of its children, a replica
// takes a Raft stream only from a replica of its own cell, and a child or a
// Raft peer accepts a server only if it is a replica of the cell it dialled.
// DNS and IP names stay in the certificate for ordinary hostname checks.
import type { PeerCertificate } from 'node:tls';

export const IDENTITY_SCHEME = 'meshlb:';

export interface ReplicaIdentity {
  readonly meshId: string;
  /** The cell path, "/" for the root. */
  readonly cell: string;
  readonly replica: number;
}

/** The URI SAN for a replica: meshlb://<mesh id><cell path>?replica=<n>. */
export function identityUri(id: ReplicaIdentity): string {
  return `meshlb://${id.meshId}${id.cell}?replica=${id.replica}`;
}

/** The identity a URI names, or undefined when it is not a meshlb replica URI. */
export function parseIdentityUri(uri: string): ReplicaIdentity | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  if (u.protocol !== IDENTITY_SCHEME || !u.host) return undefined;
  const replica = Number(u.searchParams.get('replica'));
  if (!Number.isInteger(replica) || replica < 1) return undefined;
  const cell = u.pathname === '' ? '/' : u.pathname;
  return { meshId: u.host, cell, replica };
}

/**
 * The replica identities a certificate's subjectaltname lists (Node's form:
 * "DNS:localhost, IP Address:127.0.0.1, URI:meshlb://..."). Node quotes an
 * entry holding a comma or quote; ours hold neither, so those are skipped.
 */
export function identitiesOf(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): ReplicaIdentity[] {
  const san = cert?.subjectaltname;
  if (!san) return [];
  const out: ReplicaIdentity[] = [];
  for (const part of san.split(', ')) {
    if (!part.startsWith('URI:')) continue;
    const id = parseIdentityUri(part.slice(4));
    if (id) out.push(id);
  }
  return out;
}

/** "/eu/west-1a#2 of mesh example-8ac1": for status messages and logs. */
export function describeIdentity(id: ReplicaIdentity): string {
  return `${id.cell}#${id.replica} of mesh ${id.meshId}`;
}

/**
 * The identity in `cert` that is a replica of one of `cells` in mesh
 * `meshId`, or undefined. The caller says why it wanted one.
 */
export function replicaOf(
  cert: Pick<PeerCertificate, 'subjectaltname'> | undefined,
  meshId: string,
  cells: readonly string[],
): ReplicaIdentity | undefined {
  return identitiesOf(cert).find((id) => id.meshId === meshId && cells.includes(id.cell));
}
