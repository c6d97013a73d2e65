import type { BackendView, BucketName } from "../mvcc/backend.js";
import { decodeMember } from "../server/membership.js";
import type { BucketSource } from "./bbolt-writer.js";

/**
 * tetcd's backend as etcd 3.4's buckets hold it. Most records are stored
 * byte for byte as etcd stores them (`key`, `lease`, `members_removed`, the
 * compaction and consistent-index records of `meta`); the rest are turned
 * into etcd's encodings here: members as etcd's JSON, alarm keys as
 * `AlarmMember` messages. tetcd's own meta records (the applied term, the raft
 * configuration, the member's ids) are left out, and the buckets etcd 3.4
 * fills at its first start get what it puts there.
 */
export const etcdBucketNames = ["alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta"] as const;

/** The meta records etcd 3.4 keeps, which tetcd keeps in the same encoding. */
const etcdMetaKeys = new Set(["consistent_index", "scheduledCompactRev", "finishedCompactRev"]);

/** The cluster version etcd 3.4 records, which tetcd's API level is. */
export const clusterVersion = "3.4.0";

type BucketRecord = { key: Buffer; value: Buffer };

export function etcdBucketSources(view: BackendView): BucketSource[] {
  const fromBackend = (bucket: BucketName, convert: (record: BucketRecord) => BucketRecord | undefined = (record) => record): (() => Iterable<BucketRecord>) =>
    function* () {
      for (const record of view.records(bucket)) {
        const converted = convert(record);
        if (converted !== undefined) yield converted;
      }
    };
  const sorted = (records: () => Iterable<BucketRecord>) => () => [...records()].sort((a, b) => Buffer.compare(a.key, b.key));
  const auth = (): BucketRecord[] => {
    const records = [...view.records("auth")];
    // etcd 3.4 records auth revision 1 at its first start.
    if (!records.some(({ key }) => key.toString() === "authRevision")) records.push({ key: Buffer.from("authRevision"), value: uint64(1n) });
    return records.sort((a, b) => Buffer.compare(a.key, b.key));
  };
  const sources: Record<(typeof etcdBucketNames)[number], () => Iterable<BucketRecord>> = {
    alarm: sorted(fromBackend("alarm", ({ key }) => ({ key: alarmMember(key.readBigUInt64BE(0), key.readUInt32BE(8)), value: Buffer.alloc(0) }))),
    auth,
    authRoles: fromBackend("authRoles"),
    authUsers: fromBackend("authUsers"),
    cluster: () => [{ key: Buffer.from("clusterVersion"), value: Buffer.from(clusterVersion) }],
    key: fromBackend("key"),
    lease: fromBackend("lease"),
    members: fromBackend("members", ({ key, value }) => ({ key, value: Buffer.from(memberJson(value)) })),
    members_removed: fromBackend("members_removed"),
    meta: fromBackend("meta", (record) => (etcdMetaKeys.has(record.key.toString("latin1")) ? record : undefined)),
  };
  return etcdBucketNames.map((name) => ({ name, records: sources[name] }));
}

function uint64(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(value);
  return bytes;
}

function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(64, value);
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return bytes;
}

/** etcdserverpb.AlarmMember: memberID = 1, alarm = 2 (proto3: zero fields left out). */
export function alarmMember(memberId: bigint, alarm: number): Buffer {
  const bytes: number[] = [];
  if (memberId !== 0n) bytes.push(0x08, ...varint(memberId));
  if (alarm !== 0) bytes.push(0x10, ...varint(BigInt(alarm)));
  return Buffer.from(bytes);
}

/** A member as etcd's membership store saves it: Go's JSON of its Member struct, the id a bare uint64. */
export function memberJson(stored: Buffer): string {
  const member = decodeMember(stored);
  const fields = [`"id":${member.id.toString()}`, `"peerURLs":${JSON.stringify(member.peerUrls)}`];
  if (member.isLearner) fields.push(`"isLearner":true`);
  if (member.name !== "") fields.push(`"name":${JSON.stringify(member.name)}`);
  if (member.clientUrls.length > 0) fields.push(`"clientURLs":${JSON.stringify(member.clientUrls)}`);
  return `{${fields.join(",")}}`;
}
