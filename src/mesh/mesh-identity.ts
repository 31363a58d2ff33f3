// Mesh identity in the hellos. Every link, agent and Raft hello names the mesh
// (topology `name` and `id`) and the cell it expects to reach, so two meshes
// whose addresses overlap (two topologies on one machine, a stale address
// list) refuse each other instead of quietly linking: FAILED_PRECONDITION
// naming both sides, and the refusing replica logs it (failStream).
//
// An empty field is not checked: peers that predate these fields, and hand-made
// clients (grpcurl), name nothing; meshlb itself always names all of them.
import { status } from '@grpc/grpc-js';
import type { Topology } from '../topology/types.js';
import { MeshError } from '../util/errors.js';
import { clip } from '../util/limits.js';

// Kept here for the callers that quote hellos (parent-link.ts); the helper lives in src/util.
export { clip };

export interface MeshIdentity {
  readonly name: string;
  readonly id: string;
}

export function meshOf(t: Topology): MeshIdentity {
  return { name: t.name, id: t.id };
}

/** What a hello claims: its mesh, and the cell it expects to reach here (all may be empty). */
export interface HelloClaim {
  readonly mesh: string;
  readonly meshId: string;
  readonly cell: string;
}

/** Where the hello arrived: this replica's mesh and cell. */
export interface HelloTarget {
  readonly mesh: MeshIdentity;
  readonly cell: string;
  readonly replicaId: string;
}

function describeMesh(name: string, id: string): string {
  if (name && id) return `mesh ${clip(name)} (id ${clip(id)})`;
  return name ? `mesh ${clip(name)}` : `mesh id ${clip(id)}`;
}

/**
 * The refusal of a hello from another mesh or for another cell, or undefined
 * when it may proceed. `who` names the caller, e.g. `link from cell "/eu"`.
 */
export function refuseHello(who: string, claim: HelloClaim, here: HelloTarget): MeshError | undefined {
  const { mesh } = here;
  if ((claim.mesh && claim.mesh !== mesh.name) || (claim.meshId && claim.meshId !== mesh.id)) {
    return new MeshError(
      status.FAILED_PRECONDITION,
      `${who} refused: it is for ${describeMesh(claim.mesh, claim.meshId)}, ` +
        `but replica ${here.replicaId} is in ${describeMesh(mesh.name, mesh.id)}; check the addresses it was given`,
    );
  }
  if (claim.cell && claim.cell !== here.cell) {
    return new MeshError(
      status.FAILED_PRECONDITION,
      `${who} refused: it expects cell ${clip(claim.cell)}, ` +
        `but replica ${here.replicaId} serves cell ${clip(here.cell)} of mesh ${clip(mesh.name)}; check the addresses it was given`,
    );
  }
  return undefined;
}
