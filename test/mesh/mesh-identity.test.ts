// Mesh identity over real gRPC on loopback: two meshes (topologies "alpha" and
// "beta" with the same cells) whose addresses overlap must refuse each other.
// A child of beta pointed at alpha's root is refused (FAILED_PRECONDITION
// naming both meshes, one log line at alpha) and never linked, while alpha's
// own child links there; a link hello for another cell is refused the same
// way; an agent expecting beta is refused by alpha's node with a helloRefused
// event, while agents expecting alpha (or any mesh) are welcomed and told
// which mesh they joined.
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/index.js';
import {
  LinkServiceClient,
  LinkServiceService,
  type OpenRequest,
  type OpenResponse,
} from '../../src/gen/meshlb/v1/link.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { LIMITS } from '../../src/util/limits.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 4242);

const topology = (name: string) =>
  parseTopology(`
name: ${name}
defaults: { summaryIntervalMs: 100, linkTimeoutMs: 1000 }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells:
  name: /
  children:
    - name: eu
      children: [{ name: z1, children: [{ name: n1 }] }]
    - name: us
      children: [{ name: z2 }]
`);
const ALPHA = topology('alpha');
const BETA = topology('beta');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A logger that keeps every line (JSON) for the test to read. */
function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

async function start(
  topology: typeof ALPHA,
  cell: string,
  opts: { parent?: string; log?: Logger } = {},
): Promise<Replica> {
  const r = new Replica({
    topology,
    cell,
    host: '127.0.0.1',
    port: 0,
    seed: SEED,
    ...(opts.log ? { log: opts.log } : {}),
    ...(cell === '/' ? {} : { parentAddresses: () => (opts.parent ? [opts.parent] : []) }),
  });
  await r.start();
  cleanups.push(() => r.close(0));
  return r;
}

describe('mesh identity', () => {
  it('gives two meshes distinct ids derived from their names', () => {
    expect(ALPHA.id).not.toBe(BETA.id);
    expect(topology('alpha').id).toBe(ALPHA.id);
  });

  it("a child of another mesh pointed at a parent's address is refused and never linked", async () => {
    const a = capture();
    const b = capture();
    const root = await start(ALPHA, '/', { log: a.log });
    const stranger = await start(BETA, '/eu', { parent: root.address, log: b.log });

    const refusal = await waitFor(() => a.lines.find((l) => l.includes('link: refused')), {
      what: "alpha's root to refuse beta's /eu",
    });
    const line = JSON.parse(refusal) as { code: number; err: string };
    expect(line.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(line.err).toBe(
      `link from cell "/eu" refused: it is for mesh "beta" (id "${BETA.id}"), ` +
        `but replica /#1 is in mesh "alpha" (id "${ALPHA.id}"); check the addresses it was given`,
    );
    // The child says so too, once, and keeps retrying (its topology may be fixed).
    await waitFor(() => b.lines.some((l) => l.includes('parent refused the link')), { what: 'beta to log it' });
    await waitFor(() => stranger.cell.parent!.stats.opened >= 2, { what: 'beta to try again' });

    // Alpha's own /eu links to the same root, in the meantime.
    const own = await start(ALPHA, '/eu', { parent: root.address });
    await waitFor(() => own.cell.parent!.connected, { what: "alpha's /eu to link" });
    expect([...root.cell.children!.links.keys()]).toEqual(['/eu']);

    // Beta's child never linked: no welcome seen there, and the refusal was said once.
    expect(stranger.cell.parent!.connected).toBe(false);
    expect(b.lines.some((l) => l.includes('linked to parent'))).toBe(false);
    expect(b.lines.filter((l) => l.includes('parent refused the link'))).toHaveLength(1);
    expect(a.lines.filter((l) => l.includes('child linked'))).toHaveLength(1);
  });

  it('a child leaves a parent whose welcome names another mesh (a parent that does not check hellos)', async () => {
    const hellos: OpenRequest[] = [];
    const server = new grpc.Server();
    server.addService(LinkServiceService, {
      open: (call: grpc.ServerDuplexStream<OpenRequest, OpenResponse>) => {
        call.on('error', () => {});
        call.on('data', (m: OpenRequest) => {
          if (m.msg?.$case !== 'hello') return;
          hellos.push(m);
          const welcome = { parentCell: '/', replicaId: '/#1', leader: true, leaderId: '/#1' };
          call.write({ msg: { $case: 'welcome', value: { ...welcome, mesh: 'beta', meshId: BETA.id } } });
        });
      },
    });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    cleanups.push(() => void server.forceShutdown());
    const c = capture();
    const child = await start(ALPHA, '/eu', { parent: `127.0.0.1:${port}`, log: c.log });
    await waitFor(() => hellos.length >= 2, { what: 'the child to leave and come back' });
    expect(hellos[0]!.msg).toMatchObject({
      $case: 'hello',
      value: { cell: '/eu', mesh: 'alpha', meshId: ALPHA.id, parentCell: '/' },
    });
    expect(child.cell.parent!.connected).toBe(false);
    expect(c.lines.some((l) => l.includes('linked to parent'))).toBe(false);
    expect(c.lines.find((l) => l.includes('parent link: bad message'))).toContain(
      `welcome from \\"/#1\\" refused: it is for mesh \\"beta\\" (id \\"${BETA.id}\\"), but replica /eu#1 is in mesh \\"alpha\\"`,
    );
  });

  it('a link hello for another parent cell is refused, and caller input in the refusal is clipped', async () => {
    const root = await start(ALPHA, '/');
    const client = new LinkServiceClient(root.address, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const refuse = (hello: Partial<Extract<OpenRequest['msg'], { $case: 'hello' }>['value']>) =>
      new Promise<grpc.StatusObject>((resolve) => {
        const call = client.open();
        call.on('error', () => {});
        call.on('status', resolve);
        call.write({
          msg: {
            $case: 'hello',
            value: {
              cell: '/eu',
              replicaId: 'x',
              term: 0,
              holding: [],
              mesh: '',
              meshId: '',
              parentCell: '',
              sendNumbers: false,
              ...hello,
            },
          },
        });
      });

    const wrongCell = await refuse({ mesh: 'alpha', meshId: ALPHA.id, parentCell: '/us' });
    expect(wrongCell.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(wrongCell.details).toBe(
      'link from cell "/eu" refused: it expects cell "/us", but replica /#1 serves cell "/" of mesh "alpha"; ' +
        'check the addresses it was given',
    );

    // Names up to their limit are refused naming both sides, clipped; longer ones are INVALID_ARGUMENT.
    const long = 'x'.repeat(LIMITS.meshName);
    const longer = await refuse({ mesh: long, meshId: long, parentCell: '/' });
    expect(longer.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(longer.details.length).toBeLessThan(800);
    expect(longer.details).toContain(`mesh "alpha" (id "${ALPHA.id}")`);
    const farCell = await refuse({ mesh: 'alpha', meshId: ALPHA.id, parentCell: 'y'.repeat(LIMITS.cellPath) });
    expect(farCell.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(farCell.details).toContain(`it expects cell "${'y'.repeat(200)}…"`);
    const huge = 'x'.repeat(10_000);
    const over = await refuse({ mesh: huge, meshId: huge, parentCell: '/' });
    expect(over.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(over.details.length).toBeLessThan(800);
    expect(over.details).toContain(`hello.mesh is 10000 characters, over the limit of ${LIMITS.meshName}`);

    // Right mesh and cell: linked (welcomed), the welcome naming the mesh.
    const call = client.open();
    call.on('error', () => {});
    const welcome = new Promise((resolve) =>
      call.on('data', (m: OpenResponse) => {
        if (m.msg?.$case === 'welcome') resolve(m.msg.value);
      }),
    );
    call.write({
      msg: {
        $case: 'hello',
        value: {
          cell: '/eu',
          replicaId: 'x',
          term: 0,
          holding: [],
          mesh: 'alpha',
          meshId: ALPHA.id,
          parentCell: '/',
          sendNumbers: false,
        },
      },
    });
    expect(await welcome).toMatchObject({ parentCell: '/', mesh: 'alpha', meshId: ALPHA.id });
    call.cancel();
  });

  it('an agent expecting another mesh (or node cell) is refused with a helloRefused event; others learn the mesh from the welcome', async () => {
    const node = await start(ALPHA, '/eu/z1/n1');
    const agent = (agentId: string, opts: { mesh?: string; nodeCell?: string } = {}) => {
      const a = new Agent({
        address: node.address,
        agentId,
        slots: 1,
        backoff: { initialMs: 20, maxMs: 100 },
        ...opts,
      });
      a.handle('k', () => undefined);
      cleanups.push(() => a.close());
      return a;
    };

    const stranger = agent('b1', { mesh: 'beta' });
    const refusals: { code: number; codeName?: string; details: string; address: string }[] = [];
    stranger.on('helloRefused', (r) => refusals.push(r));
    void stranger.start();
    await waitFor(() => refusals.length >= 2, { what: 'the agent to be refused (twice: it retries)' });
    expect(refusals[0]).toEqual({
      code: grpc.status.FAILED_PRECONDITION,
      codeName: 'FAILED_PRECONDITION',
      details:
        `agent "b1" refused: it is for mesh "beta", but replica /eu/z1/n1#1 is in mesh "alpha" (id "${ALPHA.id}"); ` +
        'check the addresses it was given',
      address: node.address,
    });
    expect(stranger.stats.connects).toBe(0);
    expect(node.cell.agents!.byId.has('b1')).toBe(false);

    const lost = agent('c1', { nodeCell: '/eu/z1/n9' });
    const cellRefusal = new Promise<{ details: string }>((resolve) => lost.once('helloRefused', resolve));
    void lost.start();
    expect((await cellRefusal).details).toContain('it expects cell "/eu/z1/n9", but replica /eu/z1/n1#1 serves');

    for (const a of [agent('a1', { mesh: 'alpha', nodeCell: '/eu/z1/n1' }), agent('any')]) {
      await a.start();
      expect(a.welcome).toMatchObject({ nodeCell: '/eu/z1/n1', mesh: 'alpha', meshId: ALPHA.id });
    }
    expect([...node.cell.agents!.byId.keys()].sort()).toEqual(['a1', 'any']);
  });
});
