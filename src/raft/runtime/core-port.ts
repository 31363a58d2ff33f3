// The runtime's view of the pure core (src/raft/core RawNode). Declared here so
// the runtime can be driven by a fake in unit tests and so the dependency is
// this short method list, not the core's internals.
import type { Status } from '../core/raft.js';
import type { ConfChange, ConfState, Message, NodeId, ProposeResult, RaftConfig, Ready } from '../core/types.js';

export interface RaftCore {
  tick(): void;
  step(msg: Message): void;
  propose(data: Uint8Array): ProposeResult;
  proposeConfChange(cc: ConfChange): ProposeResult;
  applyConfChange(cc: ConfChange): ConfState;
  transferLeader(to: NodeId): void;
  readIndex(context: string): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  /** The configuration in force and, on the leader, each member's progress. */
  status(): Status;
}

export type CoreFactory = (config: RaftConfig) => RaftCore;
