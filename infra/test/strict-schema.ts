/**
 * Strict validation of Kubernetes objects against the schemas of the kubernetes-models packages.
 *
 * The API server drops fields it does not know unless the client asks for strict field validation,
 * so a misspelt field (`livenesProbe`), or one put at the wrong level, silently does nothing on a
 * cluster, or at best fails the deployment. The
 * kubernetes-models packages ship their schemas compiled into ajv validators, and Kubernetes'
 * schemas do not forbid additional properties: their validation alone accepts unknown fields.
 *
 * But a compiled validator reads each property its schema declares for an object
 * (`data.livenessProbe`, present or not), and every key of a map (`additionalProperties`: labels, a
 * ConfigMap's data, a KEDA trigger's metadata), whose value it validates. So the validator runs on
 * proxies of the object's parts that record the keys read: a key of a part that the validator read
 * other keys of, but not that one, is a field the part's schema does not know. A part it read no key
 * of is free-form (a schema without `properties`, e.g. x-kubernetes-preserve-unknown-fields) and
 * takes any field.
 */

/** A model's validate method (e.g. `Deployment.prototype.validate`): throws what is wrong with `this`. */
export type ValidateThis = (this: unknown) => void;

interface Part {
  /** The part's JSON pointer in the object ('' for the object itself). */
  path: string;
  keys: string[];
  read: Set<string>;
}

/**
 * What is wrong with `object` by `validate`: its validation error, if any, then each field its schema
 * does not know, as `unknown field <JSON pointer>` (e.g. `unknown field /spec/template/spec/containers/0/livenesProbe`).
 */
export function schemaProblemsOf(validate: ValidateThis, object: object): string[] {
  const parts: Part[] = [];
  const tracked = (value: unknown, path: string): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => tracked(item, `${path}/${i}`));
    if (value === null || typeof value !== 'object') return value;
    const read = new Set<string>();
    parts.push({ path, keys: Object.keys(value), read });
    const entries = Object.entries(value).map(([key, v]) => [key, tracked(v, `${path}/${pointerToken(key)}`)]);
    return new Proxy(Object.fromEntries(entries) as object, {
      get(target, key, receiver) {
        if (typeof key === 'string') read.add(key);
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
  };

  const problems: string[] = [];
  try {
    validate.call(tracked(object, ''));
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  }
  for (const { path, keys, read } of parts) {
    if (read.size === 0) continue;
    for (const key of keys.filter((k) => !read.has(k))) problems.push(`unknown field ${path}/${pointerToken(key)}`);
  }
  return problems;
}

/** A key as a JSON pointer token (RFC 6901). */
const pointerToken = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');
