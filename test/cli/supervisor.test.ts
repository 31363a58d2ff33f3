import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Supervisor } from '../../src/cli/supervisor.js';
import { waitFor } from '../helpers/wait.js';
import { alive } from '../helpers/process.js';

const idle = (name: string) => ({ name, command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] });

let sup: Supervisor | undefined;
afterEach(async () => {
  await sup?.stopAll(500);
  sup = undefined;
});

describe('Supervisor', () => {
  it('starts, kills -9, restarts and stops everything, leaving no process behind', async () => {
    const unexpected: string[] = [];
    sup = new Supervisor({ onUnexpectedExit: (n) => unexpected.push(n) });
    const a = sup.start(idle('a'));
    sup.start(idle('b'));
    await waitFor(() => a.child.pid, { what: 'pid of a' });
    const firstPid = a.child.pid!;
    await sup.kill('a');
    expect(alive(firstPid)).toBe(false);
    expect(sup.get('a').running).toBe(false);
    const again = sup.restart('a');
    expect(again.starts).toBe(2);
    expect(again.child.pid).not.toBe(firstPid);
    expect(sup.pids()).toHaveLength(2);
    await sup.stopAll(2000);
    expect(sup.everPids).toHaveLength(3);
    for (const pid of sup.everPids) expect(alive(pid)).toBe(false);
    expect(unexpected).toEqual([]); // kills and stops are expected
  });

  it('reports a child that dies on its own, but not a job that ends', async () => {
    const unexpected: Array<[string, number]> = [];
    sup = new Supervisor({ onUnexpectedExit: (n, c) => unexpected.push([n, c]) });
    const crash = sup.start({ name: 'crash', command: process.execPath, args: ['-e', 'process.exit(7)'] });
    const job = sup.start({
      name: 'job',
      command: process.execPath,
      args: ['-e', 'console.log(JSON.stringify({ok:1}))'],
      captureStdout: true,
      job: true,
    });
    expect(await crash.exited).toBe(7);
    expect(await job.exited).toBe(0);
    expect(JSON.parse(job.stdout)).toEqual({ ok: 1 });
    expect(unexpected).toEqual([['crash', 7]]);
  });

  it('SIGKILLs children that ignore SIGTERM after the grace period', async () => {
    sup = new Supervisor();
    const stubborn = sup.start({
      name: 'stubborn',
      command: process.execPath,
      args: ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
      captureStdout: true,
    });
    await waitFor(() => stubborn.stdout.includes('ready'), { what: 'stubborn child ready' });
    await sup.stopAll(200);
    expect(alive(stubborn.child.pid!)).toBe(false);
    expect(await stubborn.exited).toBe(128 + 9);
  });

  it('pauses and resumes (SIGSTOP/SIGCONT), and stopAll wakes a paused child to stop it', async () => {
    sup = new Supervisor();
    const p = sup.start({
      name: 'ticker',
      command: process.execPath,
      args: ['-e', 'let n = 0; setInterval(() => console.log(n++), 20)'],
      captureStdout: true,
    });
    await waitFor(() => p.stdout.length > 0, { what: 'ticks' });
    sup.pause('ticker');
    expect(p.paused).toBe(true);
    sup.resume('ticker');
    const before = p.stdout.length;
    await waitFor(() => p.stdout.length > before, { what: 'ticks after resume' });
    sup.pause('ticker');
    await sup.stopAll(2000);
    expect(alive(p.child.pid!)).toBe(false);
  });

  it('stops its children on SIGINT through the installed handler', async () => {
    sup = new Supervisor();
    const s = sup;
    s.start(idle('x'));
    let stopped = false;
    const before = process.listeners('SIGINT');
    s.installSignalHandlers(() => {
      void s.stopAll(1000).then(() => {
        stopped = true;
      });
    });
    const added = process.listeners('SIGINT').filter((l) => !before.includes(l));
    expect(added).toHaveLength(1);
    expect(process.listeners('SIGTERM')).toContain(added[0]);
    // call it as the signal would, without signalling the test worker itself
    (added[0] as (sig: NodeJS.Signals) => void)('SIGINT');
    await waitFor(() => stopped, { what: 'stop after SIGINT' });
    for (const pid of s.everPids) expect(alive(pid)).toBe(false);
    expect(process.listeners('SIGINT')).not.toContain(added[0]); // uninstalled by stopAll
  });

  it('kills -9 synchronously what is left at process exit', async () => {
    sup = new Supervisor();
    const p = sup.start(idle('y'));
    await waitFor(() => p.child.pid, { what: 'pid' });
    sup.killAllSync();
    await p.exited;
    expect(alive(p.child.pid!)).toBe(false);
  });

  it('a child stops when its supervisor is killed -9 (its parent pipe closes)', async () => {
    const host = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/orphan-host.ts', import.meta.url))],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    host.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    let childPid = 0;
    try {
      childPid = await waitFor(() => Number(out.split('\n')[0]) || undefined, {
        timeoutMs: 30_000,
        what: 'the child watching its parent pipe',
      });
      expect(alive(childPid)).toBe(true);
      host.kill('SIGKILL');
      // Without the pipe the child would live on, orphaned, until killed by hand.
      await waitFor(() => !alive(childPid), { timeoutMs: 10_000, what: `child ${childPid} to stop` });
    } finally {
      if (host.exitCode === null) host.kill('SIGKILL');
      if (childPid && alive(childPid)) process.kill(childPid, 'SIGKILL');
    }
  });
});
