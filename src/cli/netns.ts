// Real network partitions between real processes, with Linux network namespaces
// and nothing but iproute2 (`ip`): no iptables, no nft, no tc. One
// implementation for `meshlb sim --netns` and the partition tests
// (test/e2e/*-netns.test.ts, through test/helpers/netns.ts).
//
// Layout of one NetnsLab (every name carries the creating process's pid and a
// random suffix, so parallel runs never collide):
//
//   root ns (this process)              hub ns: bridge br0            member ns "a", "b", ...
//   mlb<sfx> 10.X.Y.254/24  <--veth-->  h0   (port)                   eth0 10.X.Y.(2+i)/24
//                                       m<i> (port)  <--veth-->       (one per member)
//
// The subnet 10.X.Y.0/24 is drawn at random from 10.200-254.x and checked
// against the root namespace's routes. Member namespaces have only the
// connected /24 route: no default route, no NAT, no forwarding out of the hub
// (a fresh namespace has ip_forward off), so no packet can leave the machine.
// The root namespace gets one veth with an address in the subnet so this
// process (and what it starts outside the lab) is a client/observer of every
// member; partitions only ever cut links between members, never the observer's.
//
// Partitions are `blackhole` routes to the peer's /32 inside the member
// namespaces (both sides of a cut). Established TCP connections are not reset:
// their segments are discarded and retransmitted until the route is removed, as
// in a real partition; new connections fail at once. heal() removes every
// such route.
//
// Cleanup: close() kills every process started with spawn(), then deletes the
// namespaces (deleting the hub destroys every veth pair, including the root
// one). A synchronous process 'exit' handler does the same if this process
// dies first, and create() sweeps leftovers of dead creators.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const IP = 'ip';
const PREFIX = 'mlbt';

export interface NetnsProbe {
  ok: boolean;
  reason: string;
}

let probed: NetnsProbe | undefined;

/** Can this process make namespaces, bridges and veths? Cached; leaves nothing behind. */
export function probeNetns(): NetnsProbe {
  if (probed) return probed;
  if (process.platform !== 'linux')
    return (probed = { ok: false, reason: `network namespaces need Linux (platform is ${process.platform})` });
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return (probed = { ok: false, reason: `network namespaces need root (uid is ${process.getuid()})` });
  }
  const ns = `${PREFIX}-${process.pid}-probe${randomBytes(3).toString('hex')}`;
  try {
    run(['netns', 'add', ns]);
    run(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    run(['-n', ns, 'route', 'add', 'blackhole', '10.255.255.1/32']);
    probed = { ok: true, reason: '' };
  } catch (err) {
    probed = { ok: false, reason: `\`ip netns\` does not work here: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    try {
      run(['netns', 'del', ns]);
    } catch {
      // never created
    }
  }
  return probed;
}

function run(args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

function tryRun(args: string[]): void {
  try {
    run(args);
  } catch {
    // best effort (cleanup)
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete namespaces left behind by test processes that no longer exist (e.g. a SIGKILLed runner). */
export function sweepStale(): void {
  let list: string;
  try {
    list = run(['netns', 'list']);
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = /^mlbt-(\d+)-/.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    // Its processes outlived the runner: kill them first, or the namespace lives on without a name.
    try {
      for (const pid of run(['netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
    } catch {
      // no pids
    }
    tryRun(['netns', 'del', name]);
  }
}

export interface Member {
  readonly name: string;
  /** The namespace's name (for `ip netns exec`). */
  readonly ns: string;
  /** Its address in the lab subnet. */
  readonly ip: string;
}

export interface LabProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything it wrote (stdout and stderr), for failure reports. */
  output(): string;
  readonly exited: Promise<number>;
  running(): boolean;
}

const live = new Set<NetnsLab>();
let exitHookInstalled = false;
let signalHooksInstalled = false;
const cleanAll = () => {
  for (const lab of live) lab.closeSync();
};
/**
 * Clean up on process exit and, unless the caller handles them (the sim's
 * supervisor stops its processes first, then closes the lab), on SIGINT,
 * SIGTERM and SIGHUP: clean, then re-raise so the process still dies of it.
 */
function installExitHook(signals: boolean): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', cleanAll);
  }
  if (!signals || signalHooksInstalled) return;
  signalHooksInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanAll();
      process.kill(process.pid, sig);
    });
  }
}

export interface NetnsLabOptions {
  /** Install SIGINT/SIGTERM/SIGHUP handlers that clean up and re-raise (default true). */
  handleSignals?: boolean;
}

export class NetnsLab {
  readonly id: string;
  readonly hub: string;
  readonly subnet: string;
  /** The root namespace's (the test process's) address in the subnet. */
  readonly hostIp: string;
  private readonly rootVeth: string;
  private readonly members = new Map<string, Member>();
  /** "a|b" -> installed (both directions). */
  private readonly cuts = new Set<string>();
  private readonly procs: LabProcess[] = [];
  private closed = false;

  private constructor(names: readonly string[]) {
    const sfx = randomBytes(3).toString('hex');
    this.id = `${PREFIX}-${process.pid}-${sfx}`;
    this.hub = `${this.id}-hub`;
    this.rootVeth = `mlb${sfx}`;
    this.subnet = pickSubnet();
    this.hostIp = `${this.subnet}.254`;
    names.forEach((n, i) => {
      if (!/^[a-z0-9]{1,12}$/.test(n)) throw new Error(`member name ${JSON.stringify(n)}: use 1-12 of [a-z0-9]`);
      this.members.set(n, { name: n, ns: `${this.id}-${n}`, ip: `${this.subnet}.${2 + i}` });
    });
  }

  /** Make the namespaces, the bridge and the veths; every member can reach every other and the host. */
  static create(names: readonly string[], opts: NetnsLabOptions = {}): NetnsLab {
    if (names.length < 1 || names.length > 200) throw new Error('1..200 members');
    const gate = probeNetns();
    if (!gate.ok) throw new Error(gate.reason);
    installExitHook(opts.handleSignals ?? true);
    sweepStale();
    const lab = new NetnsLab(names);
    live.add(lab);
    try {
      lab.build();
    } catch (err) {
      lab.closeSync();
      throw err;
    }
    return lab;
  }

  private build(): void {
    const hub = this.hub;
    run(['netns', 'add', hub]);
    run(['-n', hub, 'link', 'set', 'lo', 'up']);
    run(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['-n', hub, 'link', 'set', 'br0', 'up']);
    let i = 0;
    for (const m of this.members.values()) {
      run(['netns', 'add', m.ns]);
      run(['-n', m.ns, 'link', 'set', 'lo', 'up']);
      const port = `m${i++}`;
      run(['-n', hub, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', m.ns]);
      run(['-n', hub, 'link', 'set', port, 'master', 'br0']);
      run(['-n', hub, 'link', 'set', port, 'up']);
      run(['-n', m.ns, 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0']);
      run(['-n', m.ns, 'link', 'set', 'eth0', 'up']);
    }
    // The observer link: one veth into the root namespace (the test process's own).
    run(['-n', hub, 'link', 'add', 'h0', 'type', 'veth', 'peer', 'name', this.rootVeth, 'netns', String(process.pid)]);
    run(['-n', hub, 'link', 'set', 'h0', 'master', 'br0']);
    run(['-n', hub, 'link', 'set', 'h0', 'up']);
    run(['addr', 'add', `${this.hostIp}/24`, 'dev', this.rootVeth]);
    run(['link', 'set', this.rootVeth, 'up']);
  }

  member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  get names(): string[] {
    return [...this.members.keys()];
  }

  /** Cut the link between a and b, both directions (blackhole routes in both namespaces). */
  partition(a: string, b: string): void {
    if (a === b) throw new Error('partition needs two members');
    const [x, y] = [a, b].sort() as [string, string];
    const key = `${x}|${y}`;
    if (this.cuts.has(key)) return;
    const mx = this.member(x);
    const my = this.member(y);
    run(['-n', mx.ns, 'route', 'add', 'blackhole', `${my.ip}/32`]);
    run(['-n', my.ns, 'route', 'add', 'blackhole', `${mx.ip}/32`]);
    this.cuts.add(key);
  }

  /** Cut a from every other member (the host keeps its link to a). */
  isolate(a: string): void {
    for (const b of this.members.keys()) if (b !== a) this.partition(a, b);
  }

  /** Remove every cut. */
  heal(): void {
    for (const key of [...this.cuts]) {
      const [x, y] = key.split('|') as [string, string];
      const mx = this.member(x);
      const my = this.member(y);
      tryRun(['-n', mx.ns, 'route', 'del', 'blackhole', `${my.ip}/32`]);
      tryRun(['-n', my.ns, 'route', 'del', 'blackhole', `${mx.ip}/32`]);
      this.cuts.delete(key);
    }
  }

  /** The cuts in force, as "a|b" pairs (for failure reports). */
  get partitions(): string[] {
    return [...this.cuts];
  }

  /**
   * The argv prefix that runs a command inside a member's namespace (`ip netns
   * exec NS`, which execs: the pid is the command's, so signals reach it). For
   * callers that supervise processes themselves (meshlb sim); close() does not
   * know those processes: stop them before closing the lab.
   */
  execPrefix(member: string): { command: string; args: string[] } {
    return { command: IP, args: ['netns', 'exec', this.member(member).ns] };
  }

  /** Start `command args` inside a member's namespace (`ip netns exec`, which execs: the pid is the command's). */
  spawn(
    member: string,
    name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = process.env,
  ): LabProcess {
    if (this.closed) throw new Error('lab is closed');
    const m = this.member(member);
    const child = spawn(IP, ['netns', 'exec', m.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const keep = (d: Buffer) => {
      out += d.toString('utf8');
      if (out.length > 200_000) out = out.slice(-100_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0)));
      child.once('error', () => resolve(127));
    });
    const p: LabProcess = {
      name,
      child,
      output: () => out,
      exited,
      running: () => child.exitCode === null && child.signalCode === null,
    };
    this.procs.push(p);
    return p;
  }

  /** SIGKILL one process and wait for it to be gone. */
  async kill(p: LabProcess): Promise<void> {
    if (!p.running()) return;
    p.child.kill('SIGKILL');
    await p.exited;
  }

  /** Kill every process, then delete every namespace and link. Idempotent. */
  async close(): Promise<void> {
    for (const p of this.procs) if (p.running()) p.child.kill('SIGKILL');
    await Promise.race([Promise.all(this.procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5_000))]);
    this.closeSync();
  }

  /** Synchronous cleanup (process exit handler): kill -9 everything, delete the namespaces. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.procs) {
      try {
        if (p.running()) p.child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    for (const m of this.members.values()) tryRun(['netns', 'del', m.ns]);
    tryRun(['netns', 'del', this.hub]);
    tryRun(['link', 'del', this.rootVeth]); // normally gone with the hub
    live.delete(this);
  }

  /** What is left of this lab on the machine: namespaces and the root veth (for the cleanup test). */
  leftovers(): string[] {
    const left: string[] = [];
    const list = run(['netns', 'list']);
    for (const line of list.split('\n')) {
      const name = line.trim().split(/\s+/)[0] ?? '';
      if (name.startsWith(this.id)) left.push(`netns ${name}`);
    }
    try {
      run(['link', 'show', this.rootVeth]);
      left.push(`link ${this.rootVeth}`);
    } catch {
      // gone
    }
    return left;
  }
}

/** A /24 in 10.200.0.0-10.254.255.0 that no route in the root namespace covers. */
function pickSubnet(): string {
  const routes = run(['-4', 'route', 'show', 'table', 'all']);
  const addrs = run(['-4', '-o', 'addr', 'show']);
  for (let i = 0; i < 200; i++) {
    const b = randomBytes(2);
    const s = `10.${200 + (b[0]! % 55)}.${b[1]!}`;
    if (!routes.includes(`${s}.`) && !addrs.includes(`${s}.`) && !overlapsWide(routes, s)) return s;
  }
  throw new Error('no free 10.x test subnet found');
}

/** Does a route wider than /24 (e.g. 10.0.0.0/8) cover the subnet s? */
function overlapsWide(routes: string, s: string): boolean {
  const [a, b, c] = s.split('.').map(Number) as [number, number, number];
  const addr = ((a << 24) | (b << 16) | (c << 8)) >>> 0;
  for (const m of routes.matchAll(/(?:^|\s)(\d+\.\d+\.\d+\.\d+)\/(\d+)/g)) {
    const len = Number(m[2]);
    if (len === 0 || len > 24) continue;
    const [p, q, r, t] = m[1]!.split('.').map(Number) as [number, number, number, number];
    const net = ((p << 24) | (q << 16) | (r << 8) | t) >>> 0;
    const mask = (0xffffffff << (32 - len)) >>> 0;
    if ((addr & mask) === (net & mask)) return true;
  }
  return false;
}
