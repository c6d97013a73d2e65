import type * as http from "node:http";
import { create } from "@bufbuild/protobuf";
import { RequestSchema, type Request } from "../gen/etcdserverpb/etcdserver_pb.js";
import type { EtcdServer } from "../server/member.js";
import { v2KeysPrefix } from "../server/v2-keys.js";
import { V2Code, V2Error } from "../v2store/errors.js";
import type { V2Event } from "../v2store/event.js";
import type { NodeJson } from "../v2store/node.js";

/** The path of the keys API; the rest of the URL path is the key. */
export const keysPath = "/v2/keys";

/** A parsed keys request: etcd's Request, and whether a write's answer leaves out the nodes. */
interface KeysRequest {
  request: Request;
  noValueOnSuccess: boolean;
}

/** Go's strconv.ParseBool. */
function parseGoBool(text: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return undefined;
}

/** Reads the form as Go's ParseForm does: the urlencoded body of a PUT or POST first, then the query. */
export function readForm(request: http.IncomingMessage, body: string): Map<string, string[]> {
  const form = new Map<string, string[]>();
  const add = (params: URLSearchParams) => {
    for (const [name, value] of params) form.set(name, [...(form.get(name) ?? []), value]);
  };
  const contentType = String(request.headers["content-type"] ?? "").split(";")[0]!.trim();
  if ((request.method === "PUT" || request.method === "POST") && contentType === "application/x-www-form-urlencoded") add(new URLSearchParams(body));
  add(new URLSearchParams((request.url ?? "").split("?")[1] ?? ""));
  return form;
}

/** etcd's parseKeyRequest: the form's fields, checked in etcd's order with its error codes and causes. */
export function parseKeysRequest(method: string, key: string, form: Map<string, string[]>, nowMs: number): KeysRequest {
  const first = (name: string) => form.get(name)?.[0];
  const invalid = (code: number, cause: string) => new V2Error(code, cause, 0);
  const uint = (name: string): bigint => {
    const text = first(name);
    if (text === undefined) return 0n;
    if (!/^[0-9]+$/.test(text) || BigInt(text) >= 1n << 64n) throw invalid(V2Code.IndexNaN, `invalid value for "${name}"`);
    return BigInt(text);
  };
  const bool = (name: string): boolean => {
    const text = first(name);
    if (text === undefined) return false;
    const value = parseGoBool(text);
    if (value === undefined) throw invalid(V2Code.InvalidField, `invalid value for "${name}"`);
    return value;
  };
  const prevIndex = uint("prevIndex");
  const waitIndex = uint("waitIndex");
  const [recursive, sorted, wait, dir, quorum, stream] = ["recursive", "sorted", "wait", "dir", "quorum", "stream"].map(bool) as [boolean, boolean, boolean, boolean, boolean, boolean];
  if (wait && method !== "GET") throw invalid(V2Code.InvalidField, '"wait" can only be used with GET requests');
  const prevValue = first("prevValue") ?? "";
  if (form.has("prevValue") && prevValue === "") throw invalid(V2Code.PrevValueRequired, '"prevValue" cannot be empty');
  const noValueOnSuccess = bool("noValueOnSuccess");
  let ttlSeconds: bigint | undefined;
  if ((first("ttl") ?? "") !== "") {
    const text = first("ttl")!;
    if (!/^[0-9]+$/.test(text) || BigInt(text) >= 1n << 64n) throw invalid(V2Code.TtlNaN, 'invalid value for "ttl"');
    ttlSeconds = BigInt(text);
  }
  let prevExist: boolean | undefined;
  if (form.has("prevExist")) {
    prevExist = parseGoBool(first("prevExist")!);
    if (prevExist === undefined) throw invalid(V2Code.InvalidField, "invalid value for prevExist");
  }
  let refresh: boolean | undefined;
  if (form.has("refresh")) {
    refresh = parseGoBool(first("refresh")!);
    if (refresh === undefined) throw invalid(V2Code.InvalidField, "invalid value for refresh");
    if (refresh && form.has("value") && first("value") !== "") throw invalid(V2Code.RefreshValue, "A value was provided on a refresh");
    if (refresh && ttlSeconds === undefined) throw invalid(V2Code.RefreshTtlRequired, "No TTL value set");
  }
  const request = create(RequestSchema, {
    Method: method === "GET" && quorum ? "QGET" : method,
    Path: joinPath(v2KeysPrefix, key),
    Val: first("value") ?? "",
    Dir: dir,
    PrevValue: prevValue,
    PrevIndex: prevIndex,
    Wait: wait,
    Since: waitIndex,
    Recursive: recursive,
    Sorted: sorted,
    Quorum: quorum,
    Stream: stream,
  });
  if (prevExist !== undefined) request.PrevExist = prevExist;
  if (refresh !== undefined) request.Refresh = refresh;
  if (ttlSeconds !== undefined) request.Expiration = (BigInt(nowMs) + ttlSeconds * 1000n) * 1_000_000n;
  return { request, noValueOnSuccess };
}

/** Go's path.Join of the prefix and the key (cleaned). */
function joinPath(prefix: string, key: string): string {
  const parts: string[] = [];
  for (const part of `${prefix}/${key}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function trimNode(node: NodeJson | undefined): void {
  if (node === undefined) return;
  if (node.key !== undefined) {
    node.key = node.key.startsWith(v2KeysPrefix) ? node.key.slice(v2KeysPrefix.length) : node.key;
    if (node.key === "") delete node.key;
  }
  for (const child of node.nodes ?? []) trimNode(child);
}

/** An event as the keys API shows it: keys without the store's "/1", fields in etcd's order. */
export function eventJson(event: V2Event, noValueOnSuccess = false): string {
  const copy = structuredClone(event);
  trimNode(copy.node);
  trimNode(copy.prevNode);
  const json: Record<string, unknown> = { action: copy.action };
  const hideNodes = noValueOnSuccess && ["set", "compareAndSwap", "create", "update"].includes(copy.action);
  if (!hideNodes) {
    json["node"] = copy.node;
    if (copy.prevNode !== undefined) json["prevNode"] = copy.prevNode;
  }
  return `${JSON.stringify(json)}\n`;
}

/** Writes a v2 error as etcd does: X-Etcd-Index, its status, the JSON and a newline. */
export function writeV2Error(response: http.ServerResponse, error: V2Error, headers: Record<string, string>): void {
  const cause = error.errorCause.startsWith(`${v2KeysPrefix}/`) || error.errorCause === v2KeysPrefix ? error.errorCause.slice(v2KeysPrefix.length) : error.errorCause;
  const trimmed = new V2Error(error.errorCode, cause, error.index);
  const body = `${JSON.stringify(trimmed.toJSON())}\n`;
  response.writeHead(error.status, { ...headers, "Content-Type": "application/json", "X-Etcd-Index": String(error.index), "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}

/** The answer headers every keys answer carries. */
export function raftHeaders(server: EtcdServer): Record<string, string> {
  return { "X-Raft-Index": String(server.commitIndex), "X-Raft-Term": String(server.term) };
}
