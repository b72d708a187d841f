/**
 * Checks a JSON value against a JSON Schema (the subset zod's `toJSONSchema` writes: types,
 * properties and required, additional properties, items and tuples, enums and constants, string
 * lengths and patterns, number bounds, anyOf/oneOf/allOf/not, local `$ref`s), so the invoke form
 * can point at a mistake before anything is sent. The server checks the input again with the
 * handler's own schema; a keyword this does not know is not checked here.
 */

/** One reason a value does not fit: where (`$.user.email`) and what. */
export interface SchemaIssue {
  path: string;
  message: string;
}

type Schema = boolean | Record<string, unknown>;

const MAX_DEPTH = 64;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function fits(type: string, v: unknown): boolean {
  const t = typeOf(v);
  return t === type || (type === 'number' && t === 'integer');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function at(path: string, key: string | number): string {
  return typeof key === 'number'
    ? `${path}[${key}]`
    : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;
}

/** Resolves a local reference (`#`, `#/$defs/Name`). */
function deref(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref
    .slice(1)
    .split('/')
    .filter((s) => s !== '')) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return typeof node === 'boolean' || (typeof node === 'object' && node !== null)
    ? (node as Schema)
    : undefined;
}

function check(
  schema: Schema,
  v: unknown,
  path: string,
  root: Schema,
  depth: number,
  out: SchemaIssue[],
): void {
  if (schema === true) return;
  if (schema === false) {
    out.push({ path, message: 'no value is allowed here' });
    return;
  }
  if (depth > MAX_DEPTH) return;
  const s = schema;
  const sub = (x: unknown, value: unknown, p: string, o = out): void => {
    if (typeof x === 'boolean' || (typeof x === 'object' && x !== null))
      check(x as Schema, value, p, root, depth + 1, o);
  };
  if (typeof s['$ref'] === 'string') {
    const target = deref(root, s['$ref']);
    if (target !== undefined) check(target, v, path, root, depth + 1, out);
  }
  const type = s['type'];
  if (typeof type === 'string' || Array.isArray(type)) {
    const types = (Array.isArray(type) ? type : [type]) as string[];
    if (!types.some((t) => fits(t, v))) {
      out.push({ path, message: `expected ${types.join(' or ')}, got ${typeOf(v)}` });
      return;
    }
  }
  if (Array.isArray(s['enum']) && !s['enum'].some((e) => JSON.stringify(e) === JSON.stringify(v)))
    out.push({ path, message: `expected one of ${JSON.stringify(s['enum'])}` });
  if ('const' in s && JSON.stringify(s['const']) !== JSON.stringify(v))
    out.push({ path, message: `expected ${JSON.stringify(s['const'])}` });
  if (typeof v === 'string') {
    const len = [...v].length;
    if (typeof s['minLength'] === 'number' && len < s['minLength'])
      out.push({ path, message: `at least ${plural(s['minLength'], 'character')}` });
    if (typeof s['maxLength'] === 'number' && len > s['maxLength'])
      out.push({ path, message: `at most ${plural(s['maxLength'], 'character')}` });
    if (typeof s['pattern'] === 'string') {
      let re: RegExp | undefined;
      try {
        re = new RegExp(s['pattern'], 'u');
      } catch {
        re = undefined; // a pattern this browser cannot read: the server checks it
      }
      if (re && !re.test(v)) out.push({ path, message: `does not match ${s['pattern']}` });
    }
  }
  if (typeof v === 'number') {
    const n = (k: string): number | undefined => (typeof s[k] === 'number' ? s[k] : undefined);
    if (n('minimum') !== undefined && v < n('minimum')!)
      out.push({ path, message: `at least ${n('minimum')}` });
    if (n('maximum') !== undefined && v > n('maximum')!)
      out.push({ path, message: `at most ${n('maximum')}` });
    if (n('exclusiveMinimum') !== undefined && v <= n('exclusiveMinimum')!)
      out.push({ path, message: `more than ${n('exclusiveMinimum')}` });
    if (n('exclusiveMaximum') !== undefined && v >= n('exclusiveMaximum')!)
      out.push({ path, message: `less than ${n('exclusiveMaximum')}` });
  }
  if (Array.isArray(v)) {
    if (typeof s['minItems'] === 'number' && v.length < s['minItems'])
      out.push({ path, message: `at least ${plural(s['minItems'], 'item')}` });
    if (typeof s['maxItems'] === 'number' && v.length > s['maxItems'])
      out.push({ path, message: `at most ${plural(s['maxItems'], 'item')}` });
    const prefix = Array.isArray(s['prefixItems']) ? (s['prefixItems'] as unknown[]) : [];
    v.forEach((item, i) => {
      if (i < prefix.length) sub(prefix[i], item, at(path, i));
      else if (s['items'] !== undefined) sub(s['items'], item, at(path, i));
    });
  }
  if (typeOf(v) === 'object') {
    const obj = v as Record<string, unknown>;
    const props =
      typeof s['properties'] === 'object' && s['properties'] !== null
        ? (s['properties'] as Record<string, unknown>)
        : {};
    if (Array.isArray(s['required']))
      for (const name of s['required'] as unknown[])
        if (typeof name === 'string' && !Object.hasOwn(obj, name))
          out.push({ path: at(path, name), message: 'required' });
    for (const [name, value] of Object.entries(obj)) {
      if (Object.hasOwn(props, name)) sub(props[name], value, at(path, name));
      else if (s['additionalProperties'] === false)
        out.push({ path: at(path, name), message: 'not allowed here' });
      else if (s['additionalProperties'] !== undefined)
        sub(s['additionalProperties'], value, at(path, name));
      if (s['propertyNames'] !== undefined) sub(s['propertyNames'], name, at(path, name));
    }
  }
  if (Array.isArray(s['allOf'])) for (const x of s['allOf'] as unknown[]) sub(x, v, path);
  for (const k of ['anyOf', 'oneOf'] as const) {
    if (!Array.isArray(s[k])) continue;
    const options = s[k] as unknown[];
    const tries = options.map((x) => {
      const o: SchemaIssue[] = [];
      sub(x, v, path, o);
      return o;
    });
    const ok = tries.filter((t) => t.length === 0).length;
    if (ok === 0) {
      // The closest option's reasons read better than "no option fits".
      const best = tries.reduce((a, b) => (b.length < a.length ? b : a), tries[0] ?? []);
      out.push(...(best.length > 0 ? best : [{ path, message: 'fits none of the options' }]));
    } else if (k === 'oneOf' && ok > 1)
      out.push({ path, message: 'fits more than one of the options' });
  }
  if (s['not'] !== undefined) {
    const o: SchemaIssue[] = [];
    sub(s['not'], v, path, o);
    if (o.length === 0) out.push({ path, message: 'must not fit the excluded schema' });
  }
}

/** The reasons `value` does not fit `schema` (none: it fits, as far as this can tell). */
export function validate(schema: unknown, value: unknown): SchemaIssue[] {
  if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null)) return [];
  const out: SchemaIssue[] = [];
  check(schema as Schema, value, '$', schema as Schema, 0, out);
  return out;
}
