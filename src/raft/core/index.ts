// The pure Raft core's public entry: what a driver (runtime, simulator) needs.
export * from './types.js';
export { RawNode, type Status, type PeerStatus } from './raft.js';
export { MemoryStorage } from './memory-storage.js';
export { encodeConfChange, decodeConfChange, applyToConf, confEquals, ConfChangeDecodeError } from './confchange.js';
export type { TestingKnobs } from './core.js';
