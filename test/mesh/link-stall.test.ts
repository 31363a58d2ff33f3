// A parent cell whose own event loop stalled, on virtual time (its ticks called
// by hand): after the stall every child link is past linkTimeoutMs although
// the children kept sending (their messages wait unread in the socket). The
// first tick only suspects; a tick one loop turn later, before the loop has
// read what the children wrote after the stall, must not end a healthy link.
// A link still silent a quarter timeout after the suspicion is ended.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { OpenRequest } from '../../src/gen/meshlb/v1/link.js';
import { Cell } from '../../src/mesh/cell.js';
import { ChildLinks } from '../../src/mesh/child-links.js';
import { meshOf } from '../../src/mesh/mesh-identity.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';

const TIMEOUT = 400;

function zone() {
  const topo = parseTopology(
    chainTopologyYaml({
      name: 'stall',
      nodes: ['n1', 'n2'],
      basePort: 7960,
      defaults: { summaryIntervalMs: 100, linkTimeoutMs: TIMEOUT },
    }),
  );
  const spec = topo.byPath.get('/r/z')!;
  const vs = new VirtualScheduler(1_000_000);
  const cell = new Cell(topo, spec, 1, { scheduler: vs, seed: 1, log: pino({ level: 'silent' }) });
  const links = new ChildLinks(cell, spec.children, meshOf(topo));
  cell.attach({ children: links }); // not started: no ticks but ours
  const ended = new Map<string, string>();
  const calls = new Map<string, EventEmitter>();
  const open = (child: string): void => {
    const call = new EventEmitter() as EventEmitter & Record<string, unknown>;
    call.write = (_m: unknown, cb?: () => void) => (cb?.(), true);
    call.end = () => undefined;
    call.getPeer = () => child;
    call.on('error', (e: { details?: string; message?: string }) => ended.set(child, e.details ?? e.message ?? ''));
    calls.set(child, call);
    links.open(call as never);
    send(child, {
      $case: 'hello',
      value: {
        cell: child,
        replicaId: '1',
        term: 1,
        holding: [],
        mesh: topo.name,
        meshId: meshOf(topo).id,
        parentCell: spec.path,
      },
    });
  };
  const send = (child: string, msg: OpenRequest['msg']): void =>
    void calls.get(child)!.emit('data', OpenRequest.fromPartial({ msg }));
  const keepalive = (child: string): void =>
    send(child, {
      $case: 'summary',
      value: { cell: child, seq: 1, kinds: [], healthyAgents: 0, successEwma: 1 } as never,
    });
  return { vs, links, ended, open, keepalive };
}

describe('child links after a stall of the parent (virtual time, ticks by hand)', () => {
  it('a tick right after the suspecting one ends nothing; a link silent a quarter timeout on is ended', () => {
    const z = zone();
    z.open('/r/z/n1');
    z.open('/r/z/n2');
    expect(z.links.links.size).toBe(2);
    const t0 = z.vs.now();
    // Stalled for 1 s: both links past the timeout, suspected only.
    z.vs.advanceTo(t0 + 1000);
    z.links.tick(t0 + 1000);
    expect(z.ended.size).toBe(0);
    // One loop turn later (10 ms), before the loop read what the children wrote after the stall.
    z.vs.advanceTo(t0 + 1010);
    z.links.tick(t0 + 1010);
    expect(z.ended.size).toBe(0);
    expect(z.links.links.size).toBe(2);
    // n1's summary is read; n2 stays silent and is ended a quarter timeout after the suspicion.
    z.keepalive('/r/z/n1');
    z.vs.advanceTo(t0 + 1000 + TIMEOUT / 4);
    z.links.tick(t0 + 1000 + TIMEOUT / 4);
    expect([...z.ended.keys()]).toEqual(['/r/z/n2']);
    expect(z.ended.get('/r/z/n2')).toMatch(/no message for/);
    expect(z.links.stats.timedOut).toBe(1);
    expect([...z.links.links.keys()]).toEqual(['/r/z/n1']);
  });
});
