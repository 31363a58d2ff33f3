// FileDescriptorProtos for the protos a replica serves, built from the .proto
// sources (proto-sources.ts) the way protoc builds them; descriptor-check.ts
// holds the checks strict readers apply. Why this exists and how it is
// proven: see ./reflection.ts.
//
// protobufjs (proto-loader's parser) reads the files; we emit one descriptor
// per source file under its real import path, fully qualified type names, map
// entries as protoc makes them (nested `<CamelField>Entry`, map_entry=true,
// key=1, value=2), proto3 optional as synthetic oneofs placed last, json_name,
// reserved ranges and names, and `dependency` listing the files referenced.
// Well-known types (google/protobuf/*) come from @bufbuild/protobuf's
// canonical embedded descriptors.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { create } from '@bufbuild/protobuf';
import * as wkt from '@bufbuild/protobuf/wkt';
import {
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as FType,
  FileDescriptorProtoSchema,
  MethodDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { defaultProtoSources, type ProtoSource } from './proto-sources.js';

const require = createRequire(import.meta.url);
// protobufjs is @grpc/proto-loader's parser; resolve it through proto-loader so
// we use exactly the copy it depends on.
const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs') as typeof import('protobufjs');

// protobufjs scalar type names → descriptor types.
const SCALARS: Record<string, FType> = {
  double: FType.DOUBLE,
  float: FType.FLOAT,
  int64: FType.INT64,
  uint64: FType.UINT64,
  int32: FType.INT32,
  fixed64: FType.FIXED64,
  fixed32: FType.FIXED32,
  bool: FType.BOOL,
  string: FType.STRING,
  bytes: FType.BYTES,
  uint32: FType.UINT32,
  sfixed32: FType.SFIXED32,
  sfixed64: FType.SFIXED64,
  sint32: FType.SINT32,
  sint64: FType.SINT64,
};

/** protoc's json_name: lowerCamelCase of the field name. */
export function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** protoc's map entry name: `foo_bar` → `FooBarEntry`. */
export function mapEntryName(field: string): string {
  const camel = field
    .split('_')
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
  return `${camel}Entry`;
}

type PbObject = import('protobufjs').ReflectionObject;
type PbType = import('protobufjs').Type;
type PbEnum = import('protobufjs').Enum;
type PbService = import('protobufjs').Service;
type PbField = import('protobufjs').Field;

const fq = (o: PbObject) => o.fullName; // protobufjs full names start with "."

/**
 * Build one FileDescriptorProto per source file, in dependency order (every
 * file after the files it depends on).
 */
export function buildFileDescriptors(sources: ProtoSource[] = defaultProtoSources()): FileDescriptorProto[] {
  const root = new protobuf.Root();
  const fileName = new Map<string, string>(); // absolute path → descriptor file name
  const dirs = sources.map((s) => s.includeDir);
  root.resolvePath = (origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const d of [...dirs, origin ? dirname(origin) : ''].filter(Boolean)) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  const abs: string[] = [];
  for (const s of sources) {
    for (const f of s.files) {
      const p = join(s.includeDir, f);
      abs.push(p);
    }
  }
  root.loadSync(abs, { keepCase: true });
  root.resolveAll();
  const nameOf = (filename: string | null): string => {
    if (!filename) throw new Error('protobufjs object without a file name');
    const known = fileName.get(filename);
    if (known) return known;
    for (const s of sources) {
      const rel = relative(s.includeDir, filename).split(sep).join('/');
      if (!rel.startsWith('..') && !isAbsolute(rel)) {
        const name = s.rename?.[rel] ?? rel;
        fileName.set(filename, name);
        return name;
      }
    }
    throw new Error(`proto file ${filename} is outside every include dir`);
  };

  // Group top-level definitions by file, keeping the package of each.
  interface FileAcc {
    pkg: string;
    messages: DescriptorProto[];
    enums: EnumDescriptorProto[];
    services: PbService[];
    deps: Set<string>;
    options?: Record<string, unknown>;
  }
  const files = new Map<string, FileAcc>();
  const acc = (obj: PbObject): FileAcc => {
    const name = nameOf(obj.filename);
    let f = files.get(name);
    if (!f) {
      const pkg = obj.parent && obj.parent !== root ? fq(obj.parent).slice(1) : '';
      f = { pkg, messages: [], enums: [], services: [], deps: new Set() };
      files.set(name, f);
    }
    return f;
  };
  const ref = (from: FileAcc, self: string, target: PbObject) => {
    const wellKnown = WKT_BY_TYPE().get(fq(target).slice(1));
    if (wellKnown) {
      from.deps.add(wellKnown.proto.name);
      return;
    }
    const depName = nameOf(topLevel(target).filename);
    if (depName !== self) from.deps.add(depName);
  };
  const topLevel = (o: PbObject): PbObject => {
    let cur = o;
    while (cur.parent && cur.parent instanceof protobuf.Type) cur = cur.parent;
    return cur;
  };

  const enumProto = (e: PbEnum): EnumDescriptorProto =>
    create(EnumDescriptorProtoSchema, {
      name: e.name,
      value: Object.entries(e.values).map(([name, number]) => ({ name, number })),
      ...(e.options?.allow_alias ? { options: { allowAlias: true } } : {}),
    });

  const messageProto = (t: PbType, file: FileAcc, self: string): DescriptorProto => {
    const msg = create(DescriptorProtoSchema, { name: t.name });
    // Real oneofs first, synthetic (proto3 optional) ones last, as protoc orders them.
    const oneofs = t.oneofsArray;
    const isSynthetic = (o: (typeof oneofs)[number]) =>
      o.fieldsArray.length === 1 && o.fieldsArray[0]!.options?.proto3_optional === true;
    const ordered = [...oneofs.filter((o) => !isSynthetic(o)), ...oneofs.filter(isSynthetic)];
    msg.oneofDecl = ordered.map((o) => ({ $typeName: 'google.protobuf.OneofDescriptorProto', name: o.name }) as never);
    // Declared nested types first, then map entries (protoc puts an entry where
    // its field is declared; the order carries no meaning, this is the usual layout).
    const mapEntries: DescriptorProto[] = [];
    for (const field of t.fieldsArray) {
      const f = fieldProto(field, file, self, mapEntries);
      if (field.partOf) {
        f.oneofIndex = ordered.indexOf(field.partOf);
        if (isSynthetic(field.partOf)) f.proto3Optional = true;
      }
      msg.field.push(f);
    }
    for (const nested of t.nestedArray) {
      if (nested instanceof protobuf.Type) msg.nestedType.push(messageProto(nested, file, self));
      else if (nested instanceof protobuf.Enum) msg.enumType.push(enumProto(nested));
    }
    msg.nestedType.push(...mapEntries);
    for (const r of t.reserved ?? []) {
      if (typeof r === 'string') msg.reservedName.push(r);
      else
        msg.reservedRange.push({
          $typeName: 'google.protobuf.DescriptorProto.ReservedRange',
          start: r[0]!,
          end: r[1]! + 1,
        } as never);
    }
    return msg;
  };

  const fieldProto = (
    field: PbField,
    file: FileAcc,
    self: string,
    mapEntries: DescriptorProto[],
  ): FieldDescriptorProto => {
    const f = create(FieldDescriptorProtoSchema, {
      name: field.name,
      number: field.id,
      jsonName: jsonName(field.name),
    });
    const setType = (target: FieldDescriptorProto, typeName: string, resolved: PbObject | null) => {
      if (resolved instanceof protobuf.Type) {
        target.type = FType.MESSAGE;
        target.typeName = fq(resolved);
        ref(file, self, resolved);
      } else if (resolved instanceof protobuf.Enum) {
        target.type = FType.ENUM;
        target.typeName = fq(resolved);
        ref(file, self, resolved);
      } else {
        const s = SCALARS[typeName];
        if (s === undefined) throw new Error(`${field.fullName}: unknown type ${typeName}`);
        target.type = s;
      }
    };
    if (field instanceof protobuf.MapField) {
      const entryName = mapEntryName(field.name);
      const entry = create(DescriptorProtoSchema, { name: entryName, options: { mapEntry: true } });
      const key = create(FieldDescriptorProtoSchema, {
        name: 'key',
        number: 1,
        label: Label.OPTIONAL,
        jsonName: 'key',
      });
      setType(key, field.keyType, null);
      const value = create(FieldDescriptorProtoSchema, {
        name: 'value',
        number: 2,
        label: Label.OPTIONAL,
        jsonName: 'value',
      });
      setType(value, field.type, field.resolvedType);
      entry.field.push(key, value);
      mapEntries.push(entry);
      f.label = Label.REPEATED;
      f.type = FType.MESSAGE;
      f.typeName = `${fq(field.parent!)}.${entryName}`;
      return f;
    }
    f.label = field.repeated ? Label.REPEATED : field.required ? Label.REQUIRED : Label.OPTIONAL;
    setType(f, field.type, field.resolvedType);
    return f;
  };

  const walk = (ns: PbObject): void => {
    const nested = (ns as import('protobufjs').Namespace).nestedArray ?? [];
    for (const o of nested) {
      if (o instanceof protobuf.Type) {
        const file = acc(o);
        file.messages.push(messageProto(o, file, nameOf(o.filename)));
      } else if (o instanceof protobuf.Enum) {
        acc(o).enums.push(enumProto(o));
      } else if (o instanceof protobuf.Service) {
        const file = acc(o);
        file.services.push(o);
        for (const m of o.methodsArray) {
          m.resolve();
          ref(file, nameOf(o.filename), m.resolvedRequestType!);
          ref(file, nameOf(o.filename), m.resolvedResponseType!);
        }
      } else if (o instanceof protobuf.Namespace) {
        // google.protobuf: protobufjs' bundled copies; we serve the canonical descriptors instead
        if (fq(o) !== '.google.protobuf') walk(o);
      }
    }
  };
  walk(root);

  const built = new Map<string, FileDescriptorProto>();
  // Well-known types we reference, with their own imports, as @bufbuild/protobuf embeds them.
  const addWkt = (name: string) => {
    if (built.has(name)) return;
    const f = WKT_BY_FILE().get(name);
    if (!f) throw new Error(`unknown well-known file ${name}`);
    built.set(name, f.proto);
    for (const d of f.proto.dependency) addWkt(d);
  };
  for (const f of files.values()) for (const d of f.deps) if (d.startsWith('google/protobuf/')) addWkt(d);
  for (const [name, f] of files) {
    built.set(
      name,
      create(FileDescriptorProtoSchema, {
        name,
        package: f.pkg,
        dependency: [...f.deps].sort(),
        messageType: f.messages,
        enumType: f.enums,
        service: f.services.map((s) =>
          create(ServiceDescriptorProtoSchema, {
            name: s.name,
            method: s.methodsArray.map((m) =>
              create(MethodDescriptorProtoSchema, {
                name: m.name,
                inputType: fq(m.resolvedRequestType!),
                outputType: fq(m.resolvedResponseType!),
                ...(m.requestStream ? { clientStreaming: true } : {}),
                ...(m.responseStream ? { serverStreaming: true } : {}),
              }),
            ),
          }),
        ),
        syntax: 'proto3',
      }),
    );
  }
  // Dependency order.
  const out: FileDescriptorProto[] = [];
  const done = new Set<string>();
  const visit = (name: string, stack: string[]): void => {
    if (done.has(name)) return;
    if (stack.includes(name)) throw new Error(`import cycle: ${[...stack, name].join(' → ')}`);
    const f = built.get(name);
    if (!f) throw new Error(`missing dependency ${name}`);
    for (const d of f.dependency) visit(d, [...stack, name]);
    done.add(name);
    out.push(f);
  };
  for (const name of [...built.keys()].sort()) visit(name, []);
  return out;
}

type GenFileT = (typeof wkt)['file_google_protobuf_timestamp'];
let wktByType: Map<string, GenFileT> | undefined;
let wktByFile: Map<string, GenFileT> | undefined;

/** google.protobuf.* type name → its file, from @bufbuild/protobuf's embedded descriptors. */
function WKT_BY_TYPE(): Map<string, GenFileT> {
  if (!wktByType) {
    wktByType = new Map();
    for (const f of WKT_BY_FILE().values()) {
      const add = (typeName: string) => wktByType!.set(typeName, f);
      const walkMsg = (m: GenFileT['messages'][number]) => {
        add(m.typeName);
        m.nestedMessages.forEach(walkMsg);
        m.nestedEnums.forEach((e) => add(e.typeName));
      };
      f.messages.forEach(walkMsg);
      f.enums.forEach((e) => add(e.typeName));
    }
  }
  return wktByType;
}

function WKT_BY_FILE(): Map<string, GenFileT> {
  wktByFile ??= new Map(
    Object.entries(wkt)
      .filter(([k]) => k.startsWith('file_google_protobuf_'))
      .map(([, f]) => [(f as GenFileT).proto.name, f as GenFileT]),
  );
  return wktByFile;
}
