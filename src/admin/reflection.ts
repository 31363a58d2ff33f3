// gRPC server reflection (grpc.reflection.v1 and v1alpha) with descriptors a
// strict descriptor library accepts, so `grpcurl -plaintext HOST:PORT list`,
// `describe` and calls by name work with no .proto files.
//
// Why not @grpc/reflection as is: it serves what @grpc/proto-loader emits
// (protobufjs' descriptor output), which merges files per package into
// synthetic files, leaves type names relative ("Statuses") and names map
// entries after the field instead of `<Field>Entry`. Strict readers (grpcurl
// 1.9 via Go's protodesc) reject grpc.health.v1.HealthListResponse for that,
// and then nothing in the file works, Health/Check included.
//
// So ./descriptors.ts builds FileDescriptorProtos from the .proto sources as
// protoc would; here we check them with @bufbuild/protobuf's createFileRegistry
// plus validateFileDescriptors (./descriptor-check.ts: the protodesc rules the
// trap is about), and serve the reflection protocol from that registry.
// test/admin/reflection.test.ts proves it over a real gRPC connection, and that the descriptors equal what
// buf (a protoc-compatible compiler) builds from the same files.
import * as grpc from '@grpc/grpc-js';
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type FileRegistry,
  type MessageShape,
} from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { validateFileDescriptors } from './descriptor-check.js';
import { buildFileDescriptors } from './descriptors.js';

export { buildFileDescriptors, jsonName, mapEntryName } from './descriptors.js';
export { validateFileDescriptors } from './descriptor-check.js';
export { defaultProtoSources, repoProtoDir, type ProtoSource } from './proto-sources.js';

/** Everything reflection serves, built and checked once per process. */
export interface DescriptorPool {
  readonly files: readonly FileDescriptorProto[];
  readonly encoded: ReadonlyMap<string, Uint8Array>;
  readonly registry: FileRegistry;
  /** Fully qualified symbol (no leading dot) → file name. */
  readonly symbols: ReadonlyMap<string, string>;
  /** Every service, fully qualified. */
  readonly services: readonly string[];
}

let pool: DescriptorPool | undefined;

export function descriptorPool(): DescriptorPool {
  pool ??= makePool(buildFileDescriptors());
  return pool;
}

export function makePool(files: FileDescriptorProto[]): DescriptorPool {
  const problems = validateFileDescriptors(files);
  if (problems.length) throw new Error(`invalid descriptors:\n${problems.join('\n')}`);
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  const symbols = new Map<string, string>();
  const services: string[] = [];
  const addMsg = (file: string, scope: string, m: DescriptorProto) => {
    const n = scope ? `${scope}.${m.name}` : m.name;
    symbols.set(n, file);
    for (const f of m.field) symbols.set(`${n}.${f.name}`, file);
    for (const o of m.oneofDecl) symbols.set(`${n}.${o.name}`, file);
    for (const e of m.enumType) addEnum(file, n, e);
    for (const nested of m.nestedType) addMsg(file, n, nested);
  };
  const addEnum = (file: string, scope: string, e: EnumDescriptorProto) => {
    const n = scope ? `${scope}.${e.name}` : e.name;
    symbols.set(n, file);
    // enum values live in the enclosing scope
    for (const v of e.value) symbols.set(scope ? `${scope}.${v.name}` : v.name, file);
  };
  for (const f of files) {
    for (const m of f.messageType) addMsg(f.name, f.package, m);
    for (const e of f.enumType) addEnum(f.name, f.package, e);
    for (const s of f.service) {
      const n = f.package ? `${f.package}.${s.name}` : s.name;
      symbols.set(n, f.name);
      services.push(n);
      for (const m of s.method) symbols.set(`${n}.${m.name}`, f.name);
    }
  }
  return {
    files,
    encoded: new Map(files.map((f) => [f.name, toBinary(FileDescriptorProtoSchema, f)])),
    registry,
    symbols,
    services: services.sort(),
  };
}

/** A grpc-js method definition whose messages are (de)serialized by @bufbuild/protobuf. */
function bidi<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b) => fromBinary(input, b),
    responseSerialize: (m) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b) => fromBinary(output, b),
  };
}

/** The transitive dependencies of `name`, the file itself first. */
function withDeps(p: DescriptorPool, name: string): Uint8Array[] {
  const byName = new Map(p.files.map((f) => [f.name, f]));
  const order: string[] = [];
  const visit = (n: string) => {
    if (order.includes(n)) return;
    order.push(n);
    for (const d of byName.get(n)?.dependency ?? []) visit(d);
  };
  visit(name);
  return order.map((n) => p.encoded.get(n)!);
}

type Json = Record<string, unknown>;

/** Answer one ServerReflectionRequest (as a plain object in the bufbuild shape). */
export function answerReflection(
  p: DescriptorPool,
  req: { host: string; messageRequest: { case?: string; value?: unknown } },
): Json {
  const err = (code: grpc.status, message: string) => ({
    case: 'errorResponse',
    value: { errorCode: code, errorMessage: message },
  });
  const r = req.messageRequest;
  let messageResponse: Json;
  switch (r.case) {
    case 'listServices':
      messageResponse = { case: 'listServicesResponse', value: { service: p.services.map((name) => ({ name })) } };
      break;
    case 'fileByFilename': {
      const name = String(r.value);
      messageResponse = p.encoded.has(name)
        ? { case: 'fileDescriptorResponse', value: { fileDescriptorProto: withDeps(p, name) } }
        : err(grpc.status.NOT_FOUND, `file not found: ${name}`);
      break;
    }
    case 'fileContainingSymbol': {
      const sym = String(r.value).replace(/^\./, '');
      const file = p.symbols.get(sym);
      messageResponse = file
        ? { case: 'fileDescriptorResponse', value: { fileDescriptorProto: withDeps(p, file) } }
        : err(grpc.status.NOT_FOUND, `symbol not found: ${sym}`);
      break;
    }
    case 'fileContainingExtension': {
      const v = r.value as { containingType: string; extensionNumber: number };
      messageResponse = err(grpc.status.NOT_FOUND, `no extension ${v.extensionNumber} of ${v.containingType}`);
      break;
    }
    case 'allExtensionNumbersOfType': {
      const t = String(r.value).replace(/^\./, '');
      messageResponse = p.symbols.has(t)
        ? { case: 'allExtensionNumbersResponse', value: { baseTypeName: t, extensionNumber: [] } }
        : err(grpc.status.NOT_FOUND, `type not found: ${t}`);
      break;
    }
    default:
      messageResponse = err(grpc.status.UNIMPLEMENTED, `unsupported reflection request ${String(r.case)}`);
  }
  return { validHost: req.host, originalRequest: req, messageResponse };
}

/** grpc.reflection.v1 and v1alpha ServerReflection services, ready for Server.addService. */
export function reflectionServices(p: DescriptorPool = descriptorPool()): Array<{
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}> {
  return ['grpc.reflection.v1', 'grpc.reflection.v1alpha'].map((pkg) => {
    const input = p.registry.getMessage(`${pkg}.ServerReflectionRequest`)!;
    const output = p.registry.getMessage(`${pkg}.ServerReflectionResponse`)!;
    const definition = {
      ServerReflectionInfo: bidi(`/${pkg}.ServerReflection/ServerReflectionInfo`, input, output),
    } as grpc.ServiceDefinition;
    const implementation: grpc.UntypedServiceImplementation = {
      ServerReflectionInfo: (
        call: grpc.ServerDuplexStream<MessageShape<typeof input>, MessageShape<typeof output>>,
      ) => {
        call.on('data', (req) => {
          const answer = answerReflection(p, req as never);
          call.write(create(output, answer as never));
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined); // a client going away is not our error
      },
    };
    return { definition, implementation };
  });
}

/** The proto names reflection serves, e.g. for docs and tests. */
export function servedFiles(p: DescriptorPool = descriptorPool()): string[] {
  return p.files.map((f) => f.name);
}
