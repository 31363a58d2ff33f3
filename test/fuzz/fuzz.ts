// The fuzzer's plan and verdict. For every method reflection lists on a
// replica, a seeded set of cases (inputs from ./inputs.ts, call shapes from
// ./calls.ts), run with bounded concurrency; each outcome is judged:
//
//   - no status within deadline + margin: left unanswered;
//   - UNKNOWN: a handler threw something the mesh did not map;
//   - INTERNAL for well-formed input (INTERNAL is grpc-js's answer to bytes it
//     cannot decode, so malformed input may get it);
//   - UNIMPLEMENTED for well-formed input: reflection listed a method the
//     replica does not serve;
//   - DEADLINE_EXCEEDED where an answer is owed: a unary call, a client stream
//     the client half-closed, a bidi stream the client half-closed at once.
//     Streams the server may hold open (Watch, Connect after a hello, a link)
//     may run to their deadline; a few admin calls wait by contract.
import * as grpc from '@grpc/grpc-js';
import { Rng } from '../../src/util/rng.js';
import { runCase, type CallTimes, type FuzzCase, type Outcome, type Scenario } from './calls.js';
import { InputMaker, type Input } from './inputs.js';
import type { FuzzMethod } from './reflect.js';

/**
 * Calls that wait past a short deadline by contract: AddReplica waits for the
 * learner to catch up (up to 30 s), TransferLeader for the new leader (5 s).
 */
export const LONG_RUNNING = new Set(['/meshlb.v1.AdminService/AddReplica', '/meshlb.v1.AdminService/TransferLeader']);

export interface Target {
  /** A name for the report, e.g. "node /r/z/n1". */
  readonly name: string;
  readonly address: string;
  readonly methods: readonly FuzzMethod[];
}

export interface Finding {
  readonly target: string;
  readonly method: string;
  readonly scenario: Scenario;
  readonly inputs: string;
  readonly code: string;
  readonly details: string;
  readonly ms: number;
  readonly why: string;
  /** The first bytes of the first message, hex. */
  readonly sample: string;
  /** Every message whole, base64 (for the JSON file; replay with ./calls.ts). */
  readonly messages: readonly string[];
}

export interface FuzzReport {
  readonly calls: number;
  /** Deadline misses under load that were answered in time when run again alone (not failures). */
  readonly slowUnderLoad: Finding[];
  readonly byCode: Record<string, number>;
  readonly byMethod: Record<string, number>;
  readonly findings: Finding[];
  readonly ms: number;
}

const NO_ANSWER = 'no answer within its deadline';
const UNANSWERED = 'left unanswered past deadline + margin';
const RAW_MALFORMED: Scenario[] = ['raw-huge-prefix', 'raw-compressed-flag', 'raw-short-frame'];

/** The cases for one target: `rounds` x a base set per method, in a seeded order. */
export function planCases(
  target: Target,
  rng: Rng,
  dictionary: readonly string[],
  rounds: number,
  hints: ReadonlyMap<string, readonly string[]> = new Map(),
): FuzzCase[] {
  const make = new InputMaker(rng.fork(), dictionary, hints);
  const cases: FuzzCase[] = [];
  const add = (method: FuzzMethod, scenario: Scenario, messages: Input[]) =>
    cases.push({ target: target.name, address: target.address, method, scenario, messages });
  for (let round = 0; round < rounds; round++) {
    for (const m of target.methods) {
      const good = () => make.wellFormed(m.input);
      const bad = () => make.malformed(m.input);
      const mixed = (n: number) => Array.from({ length: n }, () => (rng.chance(0.5) ? good() : bad()));
      const goods = (n: number) => Array.from({ length: n }, good);
      switch (m.shape) {
        case 'unary':
        case 'server-streaming': {
          for (let i = 0; i < 14; i++) add(m, 'send', [good()]);
          for (let i = 0; i < 8; i++) add(m, 'send', [bad()]);
          add(m, 'raw-split', [make.wellFormed(m.input)]);
          add(m, rng.pick(RAW_MALFORMED), [good()]);
          if (m.shape === 'server-streaming') {
            for (let i = 0; i < 3; i++) add(m, 'stop-reading', [good()]);
            for (let i = 0; i < 2; i++) add(m, 'cancel', [good()]);
          }
          break;
        }
        case 'client-streaming':
        case 'bidi': {
          for (let i = 0; i < 6; i++) add(m, 'send', goods(rng.int(1, 6)));
          for (let i = 0; i < 6; i++) add(m, 'send', mixed(rng.int(1, 12)));
          for (let i = 0; i < 2; i++) add(m, 'half-close-at-once', []);
          for (let i = 0; i < 2; i++) add(m, 'cancel', mixed(rng.int(1, 4)));
          add(m, 'raw-split', [make.wellFormed(m.input)]);
          add(m, rng.pick(RAW_MALFORMED), [good()]);
          if (m.shape === 'bidi') {
            // Streams that never read: a few messages, or a flood of plain ones that each want an answer.
            for (let i = 0; i < 2; i++) add(m, 'stop-reading', goods(rng.int(1, 4)));
            add(
              m,
              'stop-reading',
              Array.from({ length: 300 }, () => ({
                bytes: make.message(m.input, 0, true),
                wellFormed: true,
                kind: 'plain',
              })),
            );
          }
          break;
        }
      }
    }
  }
  return rng.shuffle(cases);
}

/** Why `o` fails the case, or undefined when it is an acceptable answer. */
export function judge(c: FuzzCase, o: Outcome): string | undefined {
  const wellFormed = c.messages.every((m) => m.wellFormed) && !RAW_MALFORMED.includes(c.scenario);
  if (o.code === null) return UNANSWERED;
  if (o.code === grpc.status.UNKNOWN) return 'UNKNOWN status';
  if (o.code === grpc.status.INTERNAL && wellFormed) return 'INTERNAL for well-formed input';
  if (o.code === grpc.status.UNIMPLEMENTED && wellFormed) return 'UNIMPLEMENTED for a reflected method';
  if (o.code === grpc.status.DEADLINE_EXCEEDED && owesAnswer(c) && !LONG_RUNNING.has(c.method.path)) return NO_ANSWER;
  return undefined;
}

function owesAnswer(c: FuzzCase): boolean {
  if (c.scenario === 'cancel' || c.scenario === 'stop-reading') return false;
  if (c.method.shape === 'unary' || c.method.shape === 'client-streaming') return true;
  // A bidi stream half-closed before any message: the server has nothing to serve.
  return c.method.shape === 'bidi' && c.scenario === 'half-close-at-once';
}

function describe(inputs: readonly Input[]): string {
  const kinds = inputs.map((i) => `${i.kind}${i.wellFormed ? '' : '!'}:${i.bytes.length}`);
  return kinds.length > 6 ? `${kinds.slice(0, 6).join(' ')} …(${kinds.length})` : kinds.join(' ');
}

/** Run every case with at most `concurrency` in flight; one grpc-js channel per target and lane. */
export async function runCases(cases: readonly FuzzCase[], times: CallTimes, concurrency: number): Promise<FuzzReport> {
  const started = Date.now();
  const clients = new Map<string, grpc.Client>();
  // Streams that never read get their own connection, so HTTP/2 flow control they exhaust stalls no other case.
  const clientFor = (c: FuzzCase) => {
    const key = `${c.address}|${c.scenario === 'stop-reading' ? 'stalled' : 'ok'}`;
    let client = clients.get(key);
    if (!client) {
      client = new grpc.Client(c.address, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 64 << 20,
        'grpc.max_send_message_length': 64 << 20,
      });
      clients.set(key, client);
    }
    return client;
  };
  const byCode: Record<string, number> = {};
  const byMethod: Record<string, number> = {};
  const failed: Array<{ c: FuzzCase; f: Finding }> = [];
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i]!;
      const o = await runCase(clientFor(c), c, times);
      const code = codeName(o);
      byCode[code] = (byCode[code] ?? 0) + 1;
      byMethod[c.method.path] = (byMethod[c.method.path] ?? 0) + 1;
      const why = judge(c, o);
      if (why) failed.push({ c, f: finding(c, o, why) });
    }
  };
  const findings: Finding[] = [];
  const slowUnderLoad: Finding[] = [];
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
    // Every replica and the fuzzer share one event loop: under 48 calls of up to
    // megabytes each, a deadline can pass while the answer waits its turn. Such a
    // miss counts only if the case, run again alone, misses again (a hang on
    // these inputs does: they are the same bytes).
    for (const { c, f } of failed) {
      if (f.why !== NO_ANSWER && f.why !== UNANSWERED) {
        findings.push(f);
        continue;
      }
      const o = await runCase(clientFor(c), c, times);
      const why = judge(c, o);
      if (why) findings.push(finding(c, o, `${why} (again when run alone)`));
      else slowUnderLoad.push(f);
    }
  } finally {
    for (const c of clients.values()) c.close();
  }
  return { calls: cases.length, slowUnderLoad, byCode, byMethod, findings, ms: Date.now() - started };
}

const codeName = (o: Outcome): string => (o.code === null ? 'NONE' : grpc.status[o.code]);

function finding(c: FuzzCase, o: Outcome, why: string): Finding {
  return {
    target: c.target,
    method: c.method.path,
    scenario: c.scenario,
    inputs: describe(c.messages),
    code: codeName(o),
    details: o.details,
    ms: o.ms,
    why,
    sample: Buffer.from(c.messages[0]?.bytes.subarray(0, 32) ?? []).toString('hex'),
    messages: c.messages.map((m) => Buffer.from(m.bytes).toString('base64')),
  };
}
