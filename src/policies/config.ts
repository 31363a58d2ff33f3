// Config parsing helpers shared by the policy files. Config comes from YAML
// written by people, so every error names the policy, the key and what was
// expected, and unknown keys are errors (a typo must not silently fall back to
// a default).

export class PolicyConfigError extends Error {
  constructor(
    readonly policy: string,
    message: string,
  ) {
    super(`policy ${policy}: ${message}`);
    this.name = 'PolicyConfigError';
  }
}

/** Checks `raw` is undefined/null or a plain object with only `allowed` keys. */
export function configObject(
  policy: string,
  raw: unknown,
  allowed: readonly string[],
): Readonly<Record<string, unknown>> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PolicyConfigError(policy, `config must be an object, got ${describe(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const known = allowed.length ? allowed.join(', ') : '(none)';
      throw new PolicyConfigError(policy, `unknown config key "${key}"; known keys: ${known}`);
    }
  }
  return obj;
}

export interface NumberRule {
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
}

export function numberKey(
  policy: string,
  obj: Readonly<Record<string, unknown>>,
  key: string,
  def: number,
  rule: NumberRule = {},
): number {
  const v = obj[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new PolicyConfigError(policy, `"${key}" must be a finite number, got ${describe(v)}`);
  }
  if (rule.integer && !Number.isInteger(v)) {
    throw new PolicyConfigError(policy, `"${key}" must be an integer, got ${v}`);
  }
  if (rule.min !== undefined && v < rule.min) {
    throw new PolicyConfigError(policy, `"${key}" must be >= ${rule.min}, got ${v}`);
  }
  if (rule.max !== undefined && v > rule.max) {
    throw new PolicyConfigError(policy, `"${key}" must be <= ${rule.max}, got ${v}`);
  }
  return v;
}

export function stringListKey(
  policy: string,
  obj: Readonly<Record<string, unknown>>,
  key: string,
  def: readonly string[],
): readonly string[] {
  const v = obj[key];
  if (v === undefined) return def;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) {
    throw new PolicyConfigError(policy, `"${key}" must be a list of non-empty strings, got ${describe(v)}`);
  }
  return [...(v as string[])];
}

/** Weights: non-negative numbers that must not all be zero. */
export function weightKeys<K extends string>(
  policy: string,
  obj: Readonly<Record<string, unknown>>,
  defaults: Readonly<Record<K, number>>,
): Readonly<Record<K, number>> {
  const out = {} as Record<K, number>;
  let sum = 0;
  for (const k of Object.keys(defaults) as K[]) {
    out[k] = numberKey(policy, obj, k, defaults[k], { min: 0 });
    sum += out[k];
  }
  if (sum <= 0) throw new PolicyConfigError(policy, `weights must not all be zero`);
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
