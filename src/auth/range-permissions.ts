import { Permission_Type, type Permission } from "../gen/authpb/auth_pb.js";

/** A key interval [begin, end); `end` undefined reaches past every key. */
interface Interval {
  begin: Buffer;
  end: Buffer | undefined;
}

export type Access = "read" | "write";

/**
 * The keys a user's roles open, as etcd's range permission cache holds them:
 * for reads and for writes, the union of the roles' permitted intervals. A
 * permission's empty range end stands for its one key, a range end of "\0"
 * for every key from it on. A request is permitted when its whole range lies
 * inside the union.
 */
export class RangePermissions {
  private readonly merged: Record<Access, Interval[]>;

  constructor(permissions: readonly Permission[]) {
    const intervals: Record<Access, Interval[]> = { read: [], write: [] };
    for (const permission of permissions) {
      const interval = toInterval(permission.key, permission.rangeEnd);
      if (permission.permType !== Permission_Type.WRITE) intervals.read.push(interval);
      if (permission.permType !== Permission_Type.READ) intervals.write.push(interval);
    }
    this.merged = { read: merge(intervals.read), write: merge(intervals.write) };
  }

  /** Whether `access` to [key, rangeEnd) (etcd's request encoding) is permitted. */
  permits(access: Access, key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const wanted = toInterval(key, rangeEnd);
    return this.merged[access].some((interval) => Buffer.compare(interval.begin, wanted.begin) <= 0 && (interval.end === undefined || (wanted.end !== undefined && Buffer.compare(wanted.end, interval.end) <= 0)));
  }
}

/** A key and range end as etcd encodes them, as an interval; a lone key is [key, key + "\0"). */
function toInterval(key: Uint8Array, rangeEnd: Uint8Array): Interval {
  const begin = Buffer.from(key);
  if (rangeEnd.length === 0) return { begin, end: Buffer.concat([begin, Buffer.from([0])]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { begin, end: undefined };
  const end = Buffer.from(rangeEnd);
  // A range end at or before its key: an empty interval, which opens nothing.
  if (Buffer.compare(end, begin) <= 0) return { begin, end: begin };
  return { begin, end };
}

/** The union of `intervals`, as disjoint intervals in key order. */
function merge(intervals: Interval[]): Interval[] {
  const sorted = intervals.filter((interval) => interval.end === undefined || Buffer.compare(interval.begin, interval.end) < 0).sort((a, b) => Buffer.compare(a.begin, b.begin));
  const merged: Interval[] = [];
  for (const interval of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && (last.end === undefined || Buffer.compare(interval.begin, last.end) <= 0)) {
      if (last.end !== undefined && (interval.end === undefined || Buffer.compare(interval.end, last.end) > 0)) last.end = interval.end;
    } else {
      merged.push({ begin: interval.begin, end: interval.end });
    }
  }
  return merged;
}
