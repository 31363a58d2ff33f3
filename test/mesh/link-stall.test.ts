// A parent cell whose own event loop stalled, on virtual time (its ticks called
// by hand): after the stall every child link is past linkTimeoutMs on the wall
// clock although the children kept sending (their messages wait unread in the
// socket). Of each stall only a quarter timeout counts as silence
// (stall-clock.ts), so neither the tick after it nor one after a second stall
// ends a healthy link; a link still silent a timeout of ticks on time later,
// and a quarter timeout after it was suspected, is ended.
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
        sendNumbers: false,
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
  return { vs, cell, links, ended, open, keepalive };
}

describe('child links after a stall of the parent (virtual time, ticks by hand)', () => {
  /** Ticks on time (every 10 ms) after `from` up to `to`; n1 sends a summary every 100 ms, n2 nothing. */
  const onTime = (z: ReturnType<typeof zone>, from: number, to: number): void => {
    for (let t = from + 10; t <= to; t += 10) {
      z.vs.advanceTo(t);
      z.links.tick(t);
      if ((t - from) % 100 === 0) z.keepalive('/r/z/n1');
    }
  };

  it('a stall ends nothing; a link silent a timeout after it, less the quarter timeout the stall counts, is ended', () => {
    const z = zone();
    z.open('/r/z/n1');
    z.open('/r/z/n2');
    expect(z.links.links.size).toBe(2);
    const t0 = z.vs.now();
    z.links.tick(t0);
    // Stalled for 1 s: both links past the timeout on the wall clock; of the stall, a quarter timeout counts.
    z.vs.advanceTo(t0 + 1000);
    z.links.tick(t0 + 1000);
    // One loop turn later (10 ms), before the loop read what the children wrote after the stall.
    z.vs.advanceTo(t0 + 1010);
    z.links.tick(t0 + 1010);
    expect(z.ended.size).toBe(0);
    expect(z.links.links.size).toBe(2);
    // n1's summary is read, and every 100 ms after; n2 stays silent: past the timeout at +1300 (100 ms of the
    // stall and 300 after it), suspected, and ended a quarter timeout later.
    z.keepalive('/r/z/n1');
    onTime(z, t0 + 1010, t0 + 1400);
    expect(z.ended.size).toBe(0);
    onTime(z, t0 + 1400, t0 + 1410);
    expect([...z.ended.keys()]).toEqual(['/r/z/n2']);
    expect(z.ended.get('/r/z/n2')).toMatch(/no message for/);
    expect(z.links.stats.timedOut).toBe(1);
    expect([...z.links.links.keys()]).toEqual(['/r/z/n1']);
  });

  it('a second stall right after the first ends nothing either (judged on the wall clock, both links died)', () => {
    const z = zone();
    z.open('/r/z/n1');
    z.open('/r/z/n2');
    const t0 = z.vs.now();
    z.links.tick(t0);
    // Stalled for 1 s, one tick, stalled again for 150 ms (more than a quarter timeout): nothing read between.
    z.vs.advanceTo(t0 + 1000);
    z.links.tick(t0 + 1000);
    z.vs.advanceTo(t0 + 1150);
    z.links.tick(t0 + 1150);
    expect(z.ended.size).toBe(0);
    expect(z.links.links.size).toBe(2);
    // The children's messages are read; both links live on through many timeouts of ticks on time.
    z.keepalive('/r/z/n1');
    z.keepalive('/r/z/n2');
    for (let t = t0 + 1150; t < t0 + 3150; t += 100) {
      onTime(z, t, t + 100);
      z.keepalive('/r/z/n2');
    }
    expect(z.ended.size).toBe(0);
    expect(z.links.stats.timedOut).toBe(0);
  });

  it('one clock for the parent link and the child links: a stall the parent link ticked first still counts here', () => {
    const z = zone();
    z.open('/r/z/n1');
    const t0 = z.vs.now();
    z.cell.linkStalls.tick(t0);
    z.links.tick(t0);
    // Stalled for 1 s; in the cell's sweep the parent link ticks the shared clock first, at the same time.
    z.vs.advanceTo(t0 + 1000);
    z.cell.linkStalls.tick(t0 + 1000);
    z.links.tick(t0 + 1000);
    z.vs.advanceTo(t0 + 1010);
    z.cell.linkStalls.tick(t0 + 1010);
    z.links.tick(t0 + 1010);
    expect(z.ended.size).toBe(0);
    expect(z.cell.linkStalls.silence(t0, t0 + 1010)).toBe(1010 - (1000 - TIMEOUT / 4));
  });
});
