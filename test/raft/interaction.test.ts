// Golden scenario scripts (in the manner of etcd's testdata): each file in
// testdata/ is a list of commands, each followed by `----` and the exact output
// it must produce, then a blank line. Run with UPDATE_GOLDEN=1 to rewrite the
// expected output after an intended behaviour change (then review the diff).
//
// Commands (node ids are strings; "1 2 | 3" style partitions):
//   add-nodes N [pre-vote] [check-quorum] [max-size=B] [max-inflight=K] [seed=S]
//   campaign ID | propose ID DATA | propose-conf-change ID add-voter|add-learner|remove NODE
//   transfer-leader FROM TO | read-index ID CTX | add-node ID | restart ID
//   tick ID N | tick-election ID | tick-heartbeat ID
//   deliver-msgs [ID...]  (one round: what is queued now, optionally only to IDs)
//   drop-msgs | stabilize | partition A.. | B.. | isolate ID | heal
//   snapshot ID  (snapshot the applied state and compact the log)
//   status [ID...] | log ID | applied ID

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Cluster, fmtEntry, fmtMessage, text } from './core/cluster.js';
import type { ConfChangeType } from '../../src/raft/core/types.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface Block {
  readonly command: string;
  readonly expected: string;
  readonly comments: string[];
}

function parse(src: string): Block[] {
  const blocks: Block[] = [];
  const lines = src.split('\n');
  let comments: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#') || line.trim() === '') {
      if (line.startsWith('#')) comments.push(line);
      continue;
    }
    const command = line;
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 2}: expected ---- after "${command}"`);
    const out: string[] = [];
    i += 2;
    while (i < lines.length && lines[i] !== '') out.push(lines[i++]!);
    blocks.push({ command, expected: out.join('\n'), comments });
    comments = [];
  }
  return blocks;
}

function render(blocks: Array<Block & { actual: string }>): string {
  return blocks.map((b) => [...b.comments, b.command, '----', b.actual].join('\n')).join('\n\n') + '\n';
}

class Interpreter {
  private c: Cluster | undefined;
  private electionTick = 10;
  private heartbeatTick = 1;

  private get cluster(): Cluster {
    if (!this.c) throw new Error('add-nodes first');
    return this.c;
  }

  run(command: string): string {
    const [cmd, ...args] = command.split(/\s+/);
    const out: string[] = [];
    if (this.c) this.c.trace = out;
    const c = () => this.cluster;
    switch (cmd) {
      case 'add-nodes': {
        const n = Number(args[0]);
        const opt = (k: string) => args.find((a) => a.startsWith(`${k}=`))?.split('=')[1];
        const ids = Array.from({ length: n }, (_, i) => String(i + 1));
        this.c = new Cluster(ids, {
          preVote: args.includes('pre-vote'),
          checkQuorum: args.includes('check-quorum'),
          maxSizePerMsg: opt('max-size') ? Number(opt('max-size')) : 1 << 20,
          maxInflight: opt('max-inflight') ? Number(opt('max-inflight')) : 256,
          seed: opt('seed') ? Number(opt('seed')) : 1,
          electionTick: this.electionTick,
          heartbeatTick: this.heartbeatTick,
        });
        this.c.trace = out;
        out.push(...ids.map((id) => this.statusLine(id)));
        break;
      }
      case 'campaign':
        c().campaign(args[0]!);
        break;
      case 'propose': {
        const r = c().propose(args[0]!, args.slice(1).join(' '));
        out.unshift(`result: ${JSON.stringify(r)}`);
        break;
      }
      case 'propose-conf-change': {
        const kind = { 'add-voter': 'addVoter', 'add-learner': 'addLearner', remove: 'removeNode' }[args[1]!];
        if (!kind) throw new Error(`bad conf change ${args[1]}`);
        const r = c()
          .node(args[0]!)
          .proposeConfChange({ type: kind as ConfChangeType, node: args[2]!, context: '' });
        c().process(args[0]!);
        out.unshift(`result: ${JSON.stringify(r)}`);
        break;
      }
      case 'transfer-leader':
        c().node(args[0]!).transferLeader(args[1]!);
        c().process(args[0]!);
        break;
      case 'read-index':
        c().node(args[0]!).readIndex(args[1]!);
        c().process(args[0]!);
        break;
      case 'add-node':
        c().addEmpty(args[0]!);
        break;
      case 'restart':
        c().restart(args[0]!);
        break;
      case 'tick':
        c().tick(args[0]!, Number(args[1]));
        break;
      case 'tick-heartbeat':
        c().tick(args[0]!, this.heartbeatTick);
        break;
      case 'tick-election': {
        // A follower ticks until its randomized timeout fires (< 2*electionTick); a leader one electionTick.
        const id = args[0]!;
        const node = c().node(id);
        if (node.status().role === 'leader') c().tick(id, this.electionTick);
        else {
          const term = node.status().term;
          const role = node.status().role;
          for (let i = 0; i < 2 * this.electionTick; i++) {
            c().tick(id);
            const s = node.status();
            if (s.role !== role || s.term !== term) break;
          }
        }
        break;
      }
      case 'deliver-msgs':
        c().deliver(args.length > 0 ? (m) => args.includes(m.to) : undefined);
        break;
      case 'drop-msgs':
        for (const m of c().queue) out.push(`drop ${fmtMessage(m)}`);
        c().queue = [];
        break;
      case 'stabilize':
        c().stabilize();
        break;
      case 'partition': {
        const bar = args.indexOf('|');
        c().partition(args.slice(0, bar), args.slice(bar + 1));
        break;
      }
      case 'isolate':
        c().isolate(args[0]!);
        break;
      case 'heal':
        c().heal();
        break;
      case 'snapshot': {
        const m = c().get(args[0]!);
        const st = m.node.status();
        m.storage.createSnapshot(st.applied, m.conf, new TextEncoder().encode(m.applied.map(text).join(',')));
        m.storage.compact(st.applied);
        out.push(`${args[0]} snapshot at ${st.applied}, log now [${m.storage.firstIndex()}, ${m.storage.lastIndex()}]`);
        break;
      }
      case 'status':
        for (const id of args.length > 0 ? args : [...c().members.keys()]) out.push(this.statusLine(id));
        break;
      case 'log':
        out.push(`${args[0]}: ${c().log(args[0]!).map(fmtEntry).join(', ')}`);
        break;
      case 'applied':
        out.push(`${args[0]}: ${c().get(args[0]!).applied.map(text).join(', ')}`);
        break;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
    if (this.c) this.c.trace = undefined;
    return out.length === 0 ? 'ok' : out.join('\n');
  }

  private statusLine(id: string): string {
    const s = this.cluster.node(id).status();
    const conf = `voters=${s.conf.voters.join(',')}${s.conf.learners.length ? ` learners=${s.conf.learners.join(',')}` : ''}`;
    const prog =
      s.role === 'leader'
        ? ' progress=' +
          Object.entries(s.progress)
            .filter(([p]) => p !== id)
            .map(([p, x]) => `${p}:${x.state}/${x.match}/${x.next}`)
            .join(',')
        : '';
    return `${id}: ${s.role} term=${s.term} leader=${s.leader || '-'} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${conf}${prog}`;
  }
}

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('raft golden scenarios', () => {
  it('has scenario files', () => expect(files.length).toBeGreaterThanOrEqual(8));
  for (const file of files) {
    it(file, () => {
      const path = join(DIR, file);
      const src = readFileSync(path, 'utf8');
      const blocks = parse(src);
      const interp = new Interpreter();
      const done = blocks.map((b) => ({ ...b, actual: interp.run(b.command) }));
      const rendered = render(done);
      if (UPDATE) {
        writeFileSync(path, rendered);
        return;
      }
      for (const b of done) expect(b.actual, `${file}: ${b.command}`).toBe(b.expected);
    });
  }
});
