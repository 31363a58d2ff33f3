// Benchmark result files: bench/results/<name>-<timestamp>.json with enough
// about the machine to compare runs honestly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

export function machineInfo(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGb: Math.round(os.totalmem() / 2 ** 30),
  };
}

/** Write `data` (plus machine info and time) and return the file path. */
export function writeResults(name: string, data: Record<string, unknown>): string {
  fs.mkdirSync(resultsDir, { recursive: true });
  const ts = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(resultsDir, `${name}-${ts}.json`);
  fs.writeFileSync(
    file,
    `${JSON.stringify({ name, at: new Date().toISOString(), machine: machineInfo(), ...data }, null, 2)}\n`,
  );
  return file;
}

/** Write `text` next to a results file: `<results file without .json><suffix>` (e.g. '-sweep.svg'); returns its path. */
export function writeBeside(resultsFile: string, suffix: string, text: string): string {
  const file = resultsFile.replace(/\.json$/, suffix);
  fs.writeFileSync(file, text);
  return file;
}
