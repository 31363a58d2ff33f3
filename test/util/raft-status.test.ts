// The product's two adapters to the Raft library: its errors become a gRPC
// status in one place, and the product's pino logger is the library's logger.
import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  ApplyError,
  NotLeaderError,
  OverloadedError,
  ShuttingDownError,
  TimeoutError,
  type RaftLogger,
} from '../../src/raft/index.js';
import { MeshError, notFound } from '../../src/util/errors.js';
import { toMeshError } from '../../src/util/raft-status.js';

describe('toMeshError', () => {
  it('maps each runtime error to one gRPC status, with the leader hint', () => {
    const nl = toMeshError(new NotLeaderError('n2', '127.0.0.1:5000'));
    expect(nl.code).toBe(status.FAILED_PRECONDITION);
    expect(nl.details).toEqual({ 'meshlb-leader': 'n2', 'meshlb-leader-address': '127.0.0.1:5000' });
    expect(toMeshError(new TimeoutError('x', 5)).code).toBe(status.DEADLINE_EXCEEDED);
    expect(toMeshError(new ShuttingDownError()).code).toBe(status.UNAVAILABLE);
    expect(toMeshError(new OverloadedError('full', 50)).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(toMeshError(new Error('boom')).code).toBe(status.INTERNAL);
  });

  it('carries the retry hint, keeps the cause, and passes a MeshError through', () => {
    expect(toMeshError(new OverloadedError('full', 50)).details).toEqual({ 'meshlb-retry-after-ms': '50' });
    const applyErr = new ApplyError(9, new Error('bad'));
    const mapped = toMeshError(applyErr);
    expect([mapped.code, mapped.cause]).toEqual([status.INTERNAL, applyErr]);
    const mesh = notFound('x');
    expect(toMeshError(mesh)).toBe(mesh);
    expect(toMeshError('plain')).toBeInstanceOf(MeshError);
  });
});

describe("the product's logger as a RaftLogger", () => {
  it('is accepted structurally and writes the library lines', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log: RaftLogger = pino({ level: 'debug' }, sink).child({ component: 'raft' });
    log.warn({ peer: 'n2' }, 'raft stream down');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ component: 'raft', peer: 'n2', msg: 'raft stream down' });
  });
});
