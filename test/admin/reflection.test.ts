// Proves the reflection fix: what a real gRPC client gets from
// ServerReflectionInfo builds a strict registry (@bufbuild/protobuf's
// createFileRegistry) and passes the protodesc map-entry rules, for every
// service including grpc.health.v1.Health, and a call made only from reflected
// descriptors (what grpcurl does) works. It also shows the trap is real: the
// descriptors @grpc/proto-loader produces for health.proto fail both checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { create, createFileRegistry, fromBinary, toBinary, toJson, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { startReplicaServer, type ReplicaServer } from '../../src/admin/grpc-server.js';
import { buildFileDescriptors, mapEntryName, validateFileDescriptors } from '../../src/admin/reflection.js';
import { AdminServiceService } from '../../src/gen/meshlb/v1/admin.js';
import { AgentServiceService } from '../../src/gen/meshlb/v1/agent.js';
import { LinkServiceService } from '../../src/gen/meshlb/v1/link.js';
import { RaftServiceService } from '../../src/gen/meshlb/v1/raft.js';
import { TaskServiceService } from '../../src/gen/meshlb/v1/task.js';

const require = createRequire(import.meta.url);
const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const reflectionProtoDir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function reflectionClient(address: string, version: 'v1' | 'v1alpha') {
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [reflectionProtoDir],
    keepCase: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as Any;
  const Ctor = pkg.grpc.reflection[version].ServerReflection as typeof grpc.Client;
  return new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Any;
}

/** Send requests on one ServerReflectionInfo stream, collect one response per request. */
async function reflect(client: Any, requests: Any[]): Promise<Any[]> {
  const call = client.ServerReflectionInfo();
  const out: Any[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (m: Any) => out.push(m));
    call.on('error', reject);
    call.on('end', resolve);
  });
  for (const r of requests) call.write(r);
  call.end();
  await done;
  return out;
}

function registryFrom(files: FileDescriptorProto[]): FileRegistry {
  const byName = new Map(files.map((f) => [f.name, f]));
  const root = files[0]!;
  return createFileRegistry(root, (name) => byName.get(name));
}

// Every meshlb.v1 service, so each one's descriptors are checked; a dummy implementation is enough here.
const served = [
  TaskServiceService,
  AgentServiceService,
  LinkServiceService,
  AdminServiceService,
  RaftServiceService,
].map((d) => ({
  definition: d as unknown as grpc.ServiceDefinition,
  implementation: {} as grpc.UntypedServiceImplementation,
}));

describe('server reflection', () => {
  let srv: ReplicaServer;
  let v1: Any;
  beforeAll(async () => {
    srv = await startReplicaServer({ host: '127.0.0.1', port: 0, services: served });
    v1 = reflectionClient(srv.address, 'v1');
  });
  afterAll(async () => {
    v1?.close();
    await srv?.close(100);
  });

  it('lists health, reflection and the meshlb.v1 services served (here all of them)', async () => {
    const [res] = await reflect(v1, [{ host: '', list_services: '*' }]);
    const names = (res!.list_services_response.service as Any[]).map((s) => s.name as string);
    expect(names.sort()).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'meshlb.v1.AdminService',
      'meshlb.v1.AgentService',
      'meshlb.v1.LinkService',
      'meshlb.v1.RaftService',
      'meshlb.v1.TaskService',
    ]);
  });

  it('serves descriptors a strict registry accepts, for every service', async () => {
    const [list] = await reflect(v1, [{ list_services: '' }]);
    const services = (list!.list_services_response.service as Any[]).map((s) => s.name as string);
    const answers = await reflect(
      v1,
      services.map((s) => ({ file_containing_symbol: s })),
    );
    expect(answers).toHaveLength(services.length);
    answers.forEach((a, i) => {
      expect(a.error_response, `error for ${services[i]}`).toBeUndefined();
      const files = (a.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      );
      expect(validateFileDescriptors(files), services[i]).toEqual([]);
      const reg = registryFrom(files); // throws on an invalid descriptor
      expect(reg.getService(services[i]!), services[i]).toBeDefined();
    });
  });

  it('renders the health List map field as protoc does (StatusesEntry, map_entry)', async () => {
    const [a] = await reflect(v1, [{ file_containing_symbol: 'grpc.health.v1.HealthListResponse' }]);
    const files = (a!.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    const health = files.find((f) => f.name === 'grpc/health/v1/health.proto')!;
    const resp = health.messageType.find((m) => m.name === 'HealthListResponse')!;
    expect(resp.nestedType.map((n) => [n.name, n.options?.mapEntry])).toEqual([['StatusesEntry', true]]);
    expect(resp.field[0]!.typeName).toBe('.grpc.health.v1.HealthListResponse.StatusesEntry');
    const reg = registryFrom(files);
    expect(reg.getMessage('grpc.health.v1.HealthListResponse')!.field.statuses!.fieldKind).toBe('map');
  });

  it('serves dependencies with a file, and answers by file name and method symbol', async () => {
    const [bySym, byFile, byMethod, missing] = await reflect(v1, [
      { file_containing_symbol: 'meshlb.v1.AdminService' },
      { file_by_filename: 'meshlb/v1/agent.proto' },
      { file_containing_symbol: 'meshlb.v1.TaskService.Submit' },
      { file_containing_symbol: 'meshlb.v1.Nope' },
    ]);
    const names = (r: Any) =>
      (r.file_descriptor_response.file_descriptor_proto as Buffer[]).map(
        (b) => fromBinary(FileDescriptorProtoSchema, b).name,
      );
    expect(names(bySym!)).toEqual(['meshlb/v1/admin.proto', 'meshlb/v1/link.proto', 'meshlb/v1/task.proto']);
    expect(names(byFile!)).toEqual(['meshlb/v1/agent.proto', 'meshlb/v1/task.proto']);
    expect(names(byMethod!)).toEqual(['meshlb/v1/task.proto']);
    expect(missing!.error_response.error_code).toBe(grpc.status.NOT_FOUND);
  });

  it('also speaks v1alpha (older grpcurl)', async () => {
    const alpha = reflectionClient(srv.address, 'v1alpha');
    try {
      const [res] = await reflect(alpha, [{ list_services: '*' }]);
      expect((res!.list_services_response.service as Any[]).map((s) => s.name)).toContain('grpc.health.v1.Health');
    } finally {
      alpha.close();
    }
  });

  it('calls Health/Check using only reflected descriptors (as grpcurl does)', async () => {
    const [a] = await reflect(v1, [{ file_containing_symbol: 'grpc.health.v1.Health' }]);
    const files = (a!.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    const reg = registryFrom(files);
    const svc = reg.getService('grpc.health.v1.Health')!;
    const check = svc.methods.find((m) => m.name === 'Check')!;
    const client = new grpc.Client(srv.address, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<Any>((resolve, reject) =>
        client.makeUnaryRequest(
          `/${svc.typeName}/${check.name}`,
          (m: Any) => Buffer.from(toBinary(check.input, create(check.input, m))),
          (b: Buffer) => fromBinary(check.output, b),
          { service: '' },
          (err, v) => (err ? reject(err) : resolve(v as Any)),
        ),
      );
      expect(res.status).toBe(1); // SERVING
    } finally {
      client.close();
    }
  });
});

describe('the trap this avoids', () => {
  it('a naive @grpc/reflection setup serves health descriptors that fail the strict checks', async () => {
    const healthPath = (require('grpc-health-check') as { protoPath: string }).protoPath;
    const { ReflectionService } = await import('@grpc/reflection');
    const server = new grpc.Server();
    new ReflectionService(protoLoader.loadSync(healthPath, {})).addToServer(server);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const client = reflectionClient(`127.0.0.1:${port}`, 'v1');
    try {
      const [a] = await reflect(client, [{ file_containing_symbol: 'grpc.health.v1.Health' }]);
      const naive = (a!.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      );
      expect(validateFileDescriptors(naive).join('\n')).toMatch(
        /not fully qualified|named Statuses, want StatusesEntry/,
      );
      expect(() => registryFrom(naive)).toThrow();
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
  it('our own descriptors pass', () => {
    const files = buildFileDescriptors();
    expect(validateFileDescriptors(files)).toEqual([]);
    expect(files.map((f) => f.name)).toContain('grpc/health/v1/health.proto');
    // round-trips through the wire format unchanged
    for (const f of files)
      expect(fromBinary(FileDescriptorProtoSchema, toBinary(FileDescriptorProtoSchema, f)).name).toBe(f.name);
  });
  it('our descriptors equal what buf (a protoc-compatible compiler) builds, for every meshlb proto and health.proto', () => {
    const buf = join(repo, 'node_modules', '.bin', 'buf');
    const build = (args: string[]) => {
      const out = join(mkdtempSync(join(tmpdir(), 'meshlb-buf-')), 'image.binpb');
      const r = spawnSync(buf, ['build', ...args, '-o', out, '--exclude-source-info'], { cwd: repo, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return fromBinary(FileDescriptorSetSchema, readFileSync(out)).file;
    };
    const ours = new Map(buildFileDescriptors().map((f) => [f.name, f]));
    const json = (f: FileDescriptorProto) => toJson(FileDescriptorProtoSchema, f);
    const mesh = build([]);
    expect(mesh.length).toBeGreaterThanOrEqual(4);
    for (const f of mesh) {
      expect(ours.has(f.name), f.name).toBe(true);
      expect(json(ours.get(f.name)!), f.name).toEqual(json(f));
    }
    const healthDir = join(dirname((require('grpc-health-check') as { protoPath: string }).protoPath), '..', '..');
    const [health] = build([healthDir]);
    // same content; we serve it under its canonical path and without the java/go/csharp file options
    health!.name = 'grpc/health/v1/health.proto';
    health!.options = undefined;
    expect(json(ours.get('grpc/health/v1/health.proto')!)).toEqual(json(health!));
  });

  it('renders maps, proto3 optional, oneofs, reserved, nested enums and well-known imports exactly as buf does', () => {
    const dir = join(repo, 'test', 'admin', 'fixtures', 'protos');
    const out = join(mkdtempSync(join(tmpdir(), 'meshlb-buf-')), 'x.binpb');
    const r = spawnSync(join(repo, 'node_modules', '.bin', 'buf'), ['build', dir, '-o', out, '--exclude-source-info'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const reference = fromBinary(FileDescriptorSetSchema, readFileSync(out)).file;
    const ours = buildFileDescriptors([{ includeDir: dir, files: ['x/v1/x.proto'] }]);
    expect(ours.map((f) => f.name)).toEqual(['google/protobuf/timestamp.proto', 'x/v1/y.proto', 'x/v1/x.proto']);
    expect(validateFileDescriptors(ours)).toEqual([]);
    for (const name of ['x/v1/x.proto', 'x/v1/y.proto']) {
      const a = ours.find((f) => f.name === name)!;
      const b = reference.find((f) => f.name === name)!;
      expect(toJson(FileDescriptorProtoSchema, a), name).toEqual(toJson(FileDescriptorProtoSchema, b));
    }
    const reg = registryFrom([...ours].reverse());
    const outer = reg.getMessage('x.v1.Outer')!;
    expect(outer.field.inners!.fieldKind).toBe('map');
    expect(outer.field.perKindColors!.fieldKind).toBe('map');
    expect(outer.field.at!.message?.typeName).toBe('google.protobuf.Timestamp');
  });

  it('the validator catches a misnamed map entry', () => {
    const files = buildFileDescriptors();
    const health = files.find((f) => f.name === 'grpc/health/v1/health.proto')!;
    const resp = health.messageType.find((m) => m.name === 'HealthListResponse')!;
    resp.nestedType[0]!.name = 'Statuses';
    resp.field[0]!.typeName = '.grpc.health.v1.HealthListResponse.Statuses';
    expect(validateFileDescriptors(files).join('\n')).toMatch(/map entry is named Statuses, want StatusesEntry/);
    expect(mapEntryName('per_kind_slots')).toBe('PerKindSlotsEntry');
  });
});
