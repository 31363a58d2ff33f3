export * from './ports.js';
export { LmdbStorage, type LmdbStorageOptions } from './lmdb-storage.js';
export { FileSnapshotStore, MemorySnapshotStore, readSnapshotFile } from './snapshot-store.js';
