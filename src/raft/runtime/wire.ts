// Conversion between the core's Message and the wire RaftMessage. Kept apart
// from the transport so it can be table-tested without sockets.
import {
  RaftEntryType,
  RaftMessageType,
  RaftRole,
  type RaftEntry,
  type RaftMessage,
} from '../../gen/meshlb/v1/raft.js';
import { EntryType, type Entry, type Message, type MessageType, type Role, type SnapshotMeta } from '../core/types.js';

const TO_WIRE: Record<MessageType, RaftMessageType> = {
  prop: RaftMessageType.RAFT_MESSAGE_TYPE_PROP,
  app: RaftMessageType.RAFT_MESSAGE_TYPE_APP,
  appResp: RaftMessageType.RAFT_MESSAGE_TYPE_APP_RESP,
  preVote: RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE,
  preVoteResp: RaftMessageType.RAFT_MESSAGE_TYPE_PRE_VOTE_RESP,
  vote: RaftMessageType.RAFT_MESSAGE_TYPE_VOTE,
  voteResp: RaftMessageType.RAFT_MESSAGE_TYPE_VOTE_RESP,
  heartbeat: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT,
  heartbeatResp: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT_RESP,
  snap: RaftMessageType.RAFT_MESSAGE_TYPE_SNAP,
  timeoutNow: RaftMessageType.RAFT_MESSAGE_TYPE_TIMEOUT_NOW,
  readIndex: RaftMessageType.RAFT_MESSAGE_TYPE_READ_INDEX,
  readIndexResp: RaftMessageType.RAFT_MESSAGE_TYPE_READ_INDEX_RESP,
};
const FROM_WIRE = new Map<RaftMessageType, MessageType>(Object.entries(TO_WIRE).map(([k, v]) => [v, k as MessageType]));

export const ROLE_TO_WIRE: Record<Role, RaftRole> = {
  follower: RaftRole.RAFT_ROLE_FOLLOWER,
  preCandidate: RaftRole.RAFT_ROLE_PRE_CANDIDATE,
  candidate: RaftRole.RAFT_ROLE_CANDIDATE,
  leader: RaftRole.RAFT_ROLE_LEADER,
};

function entryToWire(e: Entry): RaftEntry {
  return {
    term: e.term,
    index: e.index,
    type:
      e.type === EntryType.ConfChange
        ? RaftEntryType.RAFT_ENTRY_TYPE_CONF_CHANGE
        : RaftEntryType.RAFT_ENTRY_TYPE_NORMAL,
    data: e.data as Buffer,
  };
}

function entryFromWire(e: RaftEntry): Entry {
  if (e.type !== RaftEntryType.RAFT_ENTRY_TYPE_NORMAL && e.type !== RaftEntryType.RAFT_ENTRY_TYPE_CONF_CHANGE) {
    throw new Error(`raft wire: bad entry type ${e.type}`);
  }
  const type = e.type === RaftEntryType.RAFT_ENTRY_TYPE_CONF_CHANGE ? EntryType.ConfChange : EntryType.Normal;
  return { term: e.term, index: e.index, type, data: e.data };
}

/** Encode a message; a snap message's data is NOT included (it travels in chunks). */
export function messageToWire(m: Message): RaftMessage {
  return {
    type: TO_WIRE[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToWire),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    hintTerm: m.hintTerm,
    snapshot: m.snapshot
      ? { index: m.snapshot.meta.index, term: m.snapshot.meta.term, conf: { ...m.snapshot.meta.conf } }
      : undefined,
    context: m.context,
  } as RaftMessage;
}

/** Decode; throws on a malformed message (the caller drops it). `snapData` completes a snap message. */
export function messageFromWire(w: RaftMessage, snapData?: Uint8Array): Message {
  const type = FROM_WIRE.get(w.type);
  if (!type) throw new Error(`raft wire: bad message type ${w.type}`);
  let snapshot: Message['snapshot'];
  if (w.snapshot) {
    const meta: SnapshotMeta = {
      index: w.snapshot.index,
      term: w.snapshot.term,
      conf: { voters: w.snapshot.conf?.voters ?? [], learners: w.snapshot.conf?.learners ?? [] },
    };
    snapshot = { meta, data: snapData ?? new Uint8Array(0) };
  }
  const m: Message = {
    type,
    from: w.from,
    to: w.to,
    term: w.term,
    logTerm: w.logTerm,
    index: w.index,
    entries: w.entries.map(entryFromWire),
    commit: w.commit,
    reject: w.reject,
    rejectHint: w.rejectHint,
    ...(w.hintTerm !== undefined ? { hintTerm: w.hintTerm } : {}),
    ...(snapshot ? { snapshot } : {}),
    ...(w.context !== undefined ? { context: w.context } : {}),
  };
  return m;
}
