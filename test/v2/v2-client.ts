/**
 * A small v2 keys client for the tests: requests as curl sends them (form
 * bodies), answers kept as status, the headers that matter and the body,
 * with store indexes made relative to the server's first index, so that two
 * servers whose stores started at different indexes compare.
 */
export interface V2Answer {
  status: number;
  headers: Record<string, string | null>;
  body: unknown;
}

export interface V2Call {
  method: string;
  path: string;
  /** Query parameters; a value `{ relative: n }` is the server's base index plus n. */
  query?: Record<string, string | { relative: number }>;
  form?: Record<string, string | { relative: number }>;
  /** Stop waiting after this long (a watch that is still waiting is reported as such). */
  waitMs?: number;
}

/** How long, and how often, `start` waits for a server to decide its cluster version. */
const settleMaxMs = 15_000;
const settleStepMs = 100;

/** The fields of a v2 answer that hold store indexes. */
const indexFields = new Set(["modifiedIndex", "createdIndex", "index"]);

export class V2Client {
  /** The store index before the test's first request. */
  base = 0;

  constructor(readonly endpoint: string) {}

  /**
   * Reads the base index once the server's store is settled: etcd writes the
   * cluster version into its v2 store a few seconds after it starts, and
   * /version says "not_decided" until then.
   */
  async start(): Promise<void> {
    for (let waited = 0; waited < settleMaxMs; waited += settleStepMs) {
      const version = (await (await fetch(`http://${this.endpoint}/version`)).json()) as { etcdcluster?: string };
      if (version.etcdcluster !== "not_decided") break;
      await new Promise((resolve) => setTimeout(resolve, settleStepMs));
    }
    const answer = await fetch(`http://${this.endpoint}/v2/keys/`);
    await answer.text();
    this.base = Number(answer.headers.get("x-etcd-index"));
  }

  private value(value: string | { relative: number }): string {
    return typeof value === "string" ? value : String(this.base + value.relative);
  }

  async call(call: V2Call): Promise<V2Answer> {
    const query = new URLSearchParams(Object.entries(call.query ?? {}).map(([name, value]): [string, string] => [name, this.value(value)]));
    const url = `http://${this.endpoint}${call.path}${query.size > 0 ? `?${query}` : ""}`;
    const init: RequestInit = { method: call.method };
    if (call.form !== undefined) {
      init.body = new URLSearchParams(Object.entries(call.form).map(([name, value]): [string, string] => [name, this.value(value)])).toString();
      init.headers = { "Content-Type": "application/x-www-form-urlencoded" };
    }
    const controller = new AbortController();
    init.signal = controller.signal;
    const timer = call.waitMs === undefined ? undefined : setTimeout(() => controller.abort(), call.waitMs);
    try {
      const response = await fetch(url, init);
      let text: string;
      try {
        text = await response.text();
      } catch {
        text = "<still waiting>";
      }
      return { status: response.status, headers: this.headers(response), body: this.body(text) };
    } finally {
      clearTimeout(timer);
    }
  }

  private headers(response: Response): Record<string, string | null> {
    const index = response.headers.get("x-etcd-index");
    return {
      "content-type": response.headers.get("content-type"),
      "x-etcd-index": index === null ? null : String(Number(index) === 0 ? 0 : Number(index) - this.base),
      "x-raft-index": response.headers.get("x-raft-index") === null ? null : "present",
      "x-raft-term": response.headers.get("x-raft-term") === null ? null : "present",
      allow: response.headers.get("allow"),
    };
  }

  /** The body with indexes relative, TTLs and expirations masked (clock-dependent), listings in key order. */
  body(text: string): unknown {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return text;
    }
    const visit = (value: unknown): unknown => {
      if (Array.isArray(value)) {
        const items = value.map(visit);
        return items.every((item) => typeof item === "object" && item !== null && "key" in item) ? items.sort((a, b) => String((a as { key: string }).key).localeCompare(String((b as { key: string }).key))) : items;
      }
      if (typeof value !== "object" || value === null) return value;
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(value)) {
        if (indexFields.has(name) && typeof field === "number") out[name] = field === 0 ? 0 : field - this.base;
        else if (name === "key" && typeof field === "string") out[name] = field.replace(/\d{20}/g, (digits) => String(Number(digits) - this.base).padStart(20, "0"));
        else if (name === "expiration") out[name] = "<expiration>";
        else if (name === "ttl") out[name] = "<ttl>";
        else if (name === "cause" && typeof field === "string") out[name] = field.replace(/\d+/g, (digits) => (Number(digits) > this.base ? String(Number(digits) - this.base) : digits));
        else out[name] = visit(field);
      }
      return out;
    };
    return visit(json);
  }
}
