// Progress output of the long-running commands (dev, submit, agent-sim): on a
// terminal one live line, rewritten in place; piped or redirected to a file,
// plain lines, so logs and CI output hold no carriage returns.
export interface Progress {
  /** Show this progress text. */
  line(text: string): void;
  /** End the live line (a newline after it), before a summary or an error is printed. */
  done(): void;
}

/** Progress on `stream` (default stderr): a live `\r` line when it is a TTY, else one line per update. */
export function progressTo(
  stream: NodeJS.WriteStream = process.stderr,
  live: boolean = stream.isTTY === true,
): Progress {
  let open = false;
  return {
    line(text) {
      if (!live) {
        stream.write(`${text}\n`);
        return;
      }
      // \x1b[K clears what a longer previous line left behind.
      stream.write(`\r${text}\x1b[K`);
      open = true;
    },
    done() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}

/** Progress through a line sink (tests, embedding): always plain lines. */
export function progressLines(sink: (line: string) => void): Progress {
  return { line: sink, done: () => undefined };
}
