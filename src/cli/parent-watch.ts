// A child of `meshlb sim` stops when the process supervising it is gone, even
// when that process died by kill -9 and could not stop it (the Supervisor's
// own teardown runs only on an exit it sees). The Supervisor hands each child
// one end of a pipe as fd 3 and names it in MESHLB_PARENT_FD; the child never
// reads anything from it, so its end only ever closes: when the parent's end
// closes with the parent. The child then stops as on SIGTERM (a replica drains,
// an agent-sim finishes its tasks), so nothing outlives the run holding ports.
import { Socket } from 'node:net';

export const PARENT_FD_ENV = 'MESHLB_PARENT_FD';

/** Watch the parent's pipe named in the environment; false when there is none. */
export function watchParent(
  env: NodeJS.ProcessEnv = process.env,
  onGone: () => void = () => process.kill(process.pid, 'SIGTERM'),
): boolean {
  const fd = Number(env[PARENT_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return false;
  // Not inherited by what this process starts: the pipe is this process's alone.
  delete env[PARENT_FD_ENV];
  let pipe: Socket;
  try {
    pipe = new Socket({ fd, readable: true, writable: false });
  } catch {
    return false; // not a pipe (a stale variable): nothing to watch
  }
  let gone = false;
  const fire = (): void => {
    if (gone) return;
    gone = true;
    onGone();
  };
  pipe.on('end', fire).on('close', fire).on('error', fire);
  pipe.resume();
  // The watch alone must not keep the process alive.
  pipe.unref();
  return true;
}
