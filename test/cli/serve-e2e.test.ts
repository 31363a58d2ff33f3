// The "done when" check for replicas: `meshlb serve` (the real binary, as a
// separate process) answers grpc.health.v1 Check and reflection list, its
// reflected descriptors build a strict registry, and SIGTERM stops it cleanly.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Supervisor } from '../../src/cli/supervisor.js';
import { checkHealth } from '../../src/cli/health-check.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, serveArgs } from '../helpers/process.js';

const require = createRequire(import.meta.url);
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const sup = new Supervisor();
afterAll(() => sup.stopAll(2000));

describe('meshlb serve (real process)', () => {
  it('answers health Check and reflection list; descriptors are strict-valid; SIGTERM exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-serve-'));
    const address = `127.0.0.1:${await freePort()}`;
    const topo = join(dir, 'topology.yaml');
    writeFileSync(topo, `name: one\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`);
    const proc = sup.start({
      name: 'serve',
      command: process.execPath,
      args: serveArgs(topo, '/', ['--data-dir', join(dir, 'data')]),
    });
    await waitFor(async () => (await checkHealth(address, '', 1000)) === 'SERVING', {
      timeoutMs: 30_000,
      what: 'serve SERVING',
    });
    expect(await checkHealth(address, 'meshlb.v1.TaskService')).toBe('SERVING');
    expect(await checkHealth(address, 'meshlb.v1.AdminService')).toBe('SERVING');

    const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', {
      includeDirs: [join(dirname(require.resolve('@grpc/reflection')), '..', 'proto')],
      keepCase: true,
      oneofs: true,
    });
    const Ctor = (grpc.loadPackageDefinition(def) as Any).grpc.reflection.v1.ServerReflection as typeof grpc.Client;
    const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Any;
    try {
      const call = client.ServerReflectionInfo();
      const answers: Any[] = [];
      const done = new Promise<void>((res, rej) => {
        call.on('data', (m: Any) => answers.push(m));
        call.on('error', rej);
        call.on('end', res);
      });
      call.write({ list_services: '*' });
      call.write({ file_containing_symbol: 'grpc.health.v1.Health' });
      call.write({ file_containing_symbol: 'meshlb.v1.TaskService' });
      call.end();
      await done;
      const services = (answers[0]!.list_services_response.service as Any[]).map((s) => s.name);
      expect(services).toEqual(
        expect.arrayContaining(['grpc.health.v1.Health', 'meshlb.v1.TaskService', 'meshlb.v1.AdminService']),
      );
      for (const a of answers.slice(1)) {
        const files = (a.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) =>
          fromBinary(FileDescriptorProtoSchema, b),
        );
        const byName = new Map(files.map((f) => [f.name, f]));
        expect(() => createFileRegistry(files[0]!, (n) => byName.get(n))).not.toThrow();
      }
    } finally {
      client.close();
    }
    await sup.stopAll(10_000);
    expect(await proc.exited).toBe(0);
  });
});
