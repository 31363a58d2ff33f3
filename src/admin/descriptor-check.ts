// The rules strict descriptor readers apply (Go's protodesc, which grpcurl
// uses), as a check over FileDescriptorProtos. Apart from descriptors.ts so
// the builder and the rules it must meet read separately: the tests run this
// check on our descriptors, on buf's, and on naive ones that must fail it.
// Why the rules matter: see ./reflection.ts.
import {
  FieldDescriptorProto_Label as Label,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { mapEntryName } from './descriptors.js';

/**
 * The rules strict descriptor readers (Go protodesc, which grpcurl uses) apply
 * and that naive descriptor output breaks. Returns one line per violation.
 */
export function validateFileDescriptors(files: readonly FileDescriptorProto[]): string[] {
  const problems: string[] = [];
  const types = new Map<string, 'message' | 'enum' | 'map'>();
  const fileOfType = new Map<string, string>();
  const collect = (file: FileDescriptorProto, scope: string, msgs: DescriptorProto[], enums: EnumDescriptorProto[]) => {
    for (const e of enums) {
      types.set(`${scope}.${e.name}`, 'enum');
      fileOfType.set(`${scope}.${e.name}`, file.name);
    }
    for (const m of msgs) {
      const n = `${scope}.${m.name}`;
      types.set(n, m.options?.mapEntry ? 'map' : 'message');
      fileOfType.set(n, file.name);
      collect(file, n, m.nestedType, m.enumType);
    }
  };
  for (const f of files) collect(f, f.package ? `.${f.package}` : '', f.messageType, f.enumType);
  const byName = new Map(files.map((f) => [f.name, f]));
  const checkRef = (file: FileDescriptorProto, where: string, typeName: string) => {
    if (!typeName.startsWith('.')) {
      problems.push(`${file.name}: ${where}: type name "${typeName}" is not fully qualified`);
      return;
    }
    const owner = fileOfType.get(typeName);
    if (!owner) problems.push(`${file.name}: ${where}: unresolved type ${typeName}`);
    else if (owner !== file.name && !file.dependency.includes(owner)) {
      problems.push(`${file.name}: ${where}: uses ${typeName} from ${owner}, which is not a dependency`);
    }
  };
  const checkMsg = (file: FileDescriptorProto, scope: string, m: DescriptorProto) => {
    const name = `${scope}.${m.name}`;
    for (const f of m.field) {
      const where = `field ${name}.${f.name}`;
      if (f.typeName) checkRef(file, where, f.typeName);
      const target = types.get(f.typeName);
      if (target === 'map') {
        const entry = m.nestedType.find((n) => `${name}.${n.name}` === f.typeName);
        if (!entry) problems.push(`${file.name}: ${where}: map entry ${f.typeName} is not nested in ${name}`);
        else {
          if (entry.name !== mapEntryName(f.name)) {
            problems.push(`${file.name}: ${where}: map entry is named ${entry.name}, want ${mapEntryName(f.name)}`);
          }
          const [k, v] = [entry.field.find((x) => x.number === 1), entry.field.find((x) => x.number === 2)];
          if (entry.field.length !== 2 || k?.name !== 'key' || v?.name !== 'value') {
            problems.push(`${file.name}: ${where}: map entry must have exactly key = 1 and value = 2`);
          }
        }
        if (f.label !== Label.REPEATED) problems.push(`${file.name}: ${where}: a map field must be repeated`);
      }
      if (Object.prototype.hasOwnProperty.call(f, 'oneofIndex') && f.oneofIndex >= m.oneofDecl.length) {
        problems.push(`${file.name}: ${where}: oneof index ${f.oneofIndex} out of range`);
      }
    }
    for (const n of m.nestedType) {
      if (n.options?.mapEntry) {
        const used = m.field.some((f) => f.typeName === `${name}.${n.name}`);
        if (!used) problems.push(`${file.name}: map entry ${name}.${n.name} has no map field`);
      }
      checkMsg(file, name, n);
    }
  };
  for (const file of files) {
    const scope = file.package ? `.${file.package}` : '';
    for (const d of file.dependency) if (!byName.has(d)) problems.push(`${file.name}: dependency ${d} is missing`);
    for (const m of file.messageType) checkMsg(file, scope, m);
    for (const s of file.service) {
      for (const m of s.method) {
        checkRef(file, `method ${scope}.${s.name}.${m.name} input`, m.inputType);
        checkRef(file, `method ${scope}.${s.name}.${m.name} output`, m.outputType);
      }
    }
  }
  return problems;
}
