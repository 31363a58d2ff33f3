export * from './ports.js';
export { LmdbStorage, type LmdbStorageOptions } from './lmdb-storage.js';
export { FileSnapshotStore } from './snapshot-store.js';
export { MemoryLogStore, MemorySnapshotStore, type MemoryLogStoreOptions } from './memory-store.js';
