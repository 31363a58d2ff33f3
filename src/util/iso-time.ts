// Formatting a time for people. Not a clock: modules that must not read the
// clock (src/mesh, see test/mesh/purity.test.ts) format times they were given.

/** `ms` (unix ms) as an ISO 8601 UTC string, e.g. 2026-12-06T09:14:03.250Z. */
export const isoTime = (ms: number): string => new Date(ms).toISOString();
