/** A node as v2 answers show it (etcd's NodeExtern); absent fields are left out. */
export interface NodeJson {
  key?: string;
  dir?: true;
  value?: string;
  nodes?: NodeJson[];
  expiration?: string;
  ttl?: number;
  modifiedIndex?: number;
  createdIndex?: number;
}

/**
 * One node of the v2 tree: a key with a value, or a directory of children.
 * `expireAtMs` is absolute (from the request that set it), so that every
 * member expires the same nodes at the same SYNC entry.
 */
export class V2Node {
  readonly children: Map<string, V2Node> | undefined;
  value: string;
  expireAtMs: number | undefined;

  constructor(
    readonly path: string,
    public createdIndex: number,
    public modifiedIndex: number,
    readonly parent: V2Node | undefined,
    kind: { dir: true } | { value: string },
    expireAtMs?: number,
  ) {
    this.children = "dir" in kind ? new Map() : undefined;
    this.value = "dir" in kind ? "" : kind.value;
    this.expireAtMs = expireAtMs;
  }

  get isDir(): boolean {
    return this.children !== undefined;
  }

  get name(): string {
    return this.path.slice(this.path.lastIndexOf("/") + 1);
  }

  /** Hidden nodes (names starting with "_") are left out of listings. */
  get isHidden(): boolean {
    return this.name.startsWith("_");
  }

  /** etcd's expiration and remaining TTL in whole seconds, rounded up. */
  expiration(nowMs: number): { expiration?: string; ttl?: number } {
    if (this.expireAtMs === undefined) return {};
    const remainingMs = this.expireAtMs - nowMs;
    const ttl = Math.trunc(remainingMs / 1000) + (remainingMs % 1000 > 0 ? 1 : 0);
    // Go leaves a zero TTL out (an expired node's).
    return ttl === 0 ? { expiration: rfc3339Nano(this.expireAtMs) } : { expiration: rfc3339Nano(this.expireAtMs), ttl };
  }

  /** The node as answers show it; a directory lists its visible children when `recursive`, one level deep otherwise only when `listChildren`. */
  toJson(nowMs: number, options: { recursive: boolean; sorted: boolean; listChildren?: boolean }): NodeJson {
    const json: NodeJson = { key: this.path };
    if (this.isDir) {
      json.dir = true;
      if (options.recursive || options.listChildren === true) {
        const nodes = [...this.children!.values()].filter((child) => !child.isHidden).map((child) => child.toJson(nowMs, { recursive: options.recursive, sorted: options.sorted }));
        if (options.sorted) nodes.sort((a, b) => (a.key! < b.key! ? -1 : a.key! > b.key! ? 1 : 0));
        if (nodes.length > 0) json.nodes = nodes;
      }
    } else {
      json.value = this.value;
    }
    Object.assign(json, this.expiration(nowMs));
    if (this.modifiedIndex !== 0) json.modifiedIndex = this.modifiedIndex;
    if (this.createdIndex !== 0) json.createdIndex = this.createdIndex;
    return json;
  }
}

/** Go's time.RFC3339Nano of a UTC time: trailing zeros of the fraction dropped. */
export function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString();
  const [seconds, fraction = ""] = iso.slice(0, -1).split(".");
  const trimmed = fraction.replace(/0+$/, "");
  return `${seconds}${trimmed === "" ? "" : `.${trimmed}`}Z`;
}
