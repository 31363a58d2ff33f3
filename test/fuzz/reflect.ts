// The fuzzer learns what a replica serves the way grpcurl does: server
// reflection (grpc.reflection.v1) lists the services, then the file
// descriptors of each come back as FileDescriptorProtos, decoded and linked
// into a registry with @bufbuild/protobuf. Nothing here reads the repository's
// .proto files: a method missing from reflection is a method never fuzzed.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { create, createFileRegistry, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';

const require = createRequire(import.meta.url);

export type MethodShape = 'unary' | 'server-streaming' | 'client-streaming' | 'bidi';

export interface FuzzMethod {
  /** Fully qualified service name. */
  readonly service: string;
  /** The gRPC path, /pkg.Service/Method. */
  readonly path: string;
  readonly shape: MethodShape;
  readonly input: DescMessage;
}

interface ReflectionAnswer {
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionCall = grpc.ClientDuplexStream<Record<string, string>, ReflectionAnswer>;

function reflectionClient(address: string): grpc.Client & {
  ServerReflectionInfo(opts: grpc.CallOptions): ReflectionCall;
} {
  const dir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: typeof grpc.Client } } };
  };
  const Ctor = pkg.grpc.reflection.v1.ServerReflection;
  return new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & {
    ServerReflectionInfo(opts: grpc.CallOptions): ReflectionCall;
  };
}

/** One reflection stream: ask in turn, each answer read before the next request. */
class Asker {
  private readonly answers: ReflectionAnswer[] = [];
  private waiting: ((a: ReflectionAnswer) => void) | undefined;
  private failed: Error | undefined;

  constructor(private readonly call: ReflectionCall) {
    call.on('data', (a: ReflectionAnswer) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(a);
      else this.answers.push(a);
    });
    call.on('error', (err: Error) => {
      this.failed = err;
    });
  }

  ask(req: Record<string, string>): Promise<ReflectionAnswer> {
    if (this.failed) return Promise.reject(this.failed);
    this.call.write(req);
    const ready = this.answers.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.call.once('error', reject);
    });
  }
}

/** Every method of every service the replica at `address` lists through reflection. */
export async function reflectMethods(address: string, timeoutMs = 10_000): Promise<FuzzMethod[]> {
  const client = reflectionClient(address);
  const call = client.ServerReflectionInfo({ deadline: Date.now() + timeoutMs });
  try {
    const asker = new Asker(call);
    const listed = await asker.ask({ list_services: '' });
    const services = (listed.list_services_response?.service ?? []).map((s) => s.name);
    const files = new Map<string, FileDescriptorProto>();
    const take = (a: ReflectionAnswer) => {
      for (const b of a.file_descriptor_response?.file_descriptor_proto ?? []) {
        const f = fromBinary(FileDescriptorProtoSchema, b);
        files.set(f.name, f);
      }
    };
    for (const s of services) take(await asker.ask({ file_containing_symbol: s }));
    // Reflection answers a file with its dependencies; ask for any it left out.
    for (let missing = missingDeps(files); missing.length; missing = missingDeps(files)) {
      for (const name of missing) {
        const a = await asker.ask({ file_by_filename: name });
        if (a.error_response) throw new Error(`reflection has no file ${name}: ${a.error_response.error_message}`);
        take(a);
      }
    }
    call.end();
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(files) }));
    const methods: FuzzMethod[] = [];
    for (const name of services) {
      const svc = registry.getService(name);
      if (!svc) throw new Error(`reflection lists ${name} but no file defines it`);
      for (const m of svc.methods) {
        methods.push({ service: name, path: `/${name}/${m.name}`, shape: shapeOf(m.methodKind), input: m.input });
      }
    }
    return methods;
  } finally {
    call.cancel();
    client.close();
  }
}

function missingDeps(files: ReadonlyMap<string, FileDescriptorProto>): string[] {
  const out = new Set<string>();
  for (const f of files.values()) for (const d of f.dependency) if (!files.has(d)) out.add(d);
  return [...out];
}

/** The files ordered so that each comes after what it imports (createFileRegistry needs that). */
function dependenciesFirst(files: ReadonlyMap<string, FileDescriptorProto>): FileDescriptorProto[] {
  const out: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (f: FileDescriptorProto) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const d of f.dependency) {
      const dep = files.get(d);
      if (dep) visit(dep);
    }
    out.push(f);
  };
  for (const f of files.values()) visit(f);
  return out;
}

function shapeOf(kind: string): MethodShape {
  switch (kind) {
    case 'unary':
      return 'unary';
    case 'server_streaming':
      return 'server-streaming';
    case 'client_streaming':
      return 'client-streaming';
    default:
      return 'bidi';
  }
}
