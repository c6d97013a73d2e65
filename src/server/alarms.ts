import { AlarmType } from "../gen/etcdserverpb/rpc_pb.js";
import type { Backend } from "../mvcc/backend.js";

export interface Alarm {
  memberId: bigint;
  type: AlarmType;
}

/** Raised alarms, persisted in the backend's `alarm` bucket so that they survive restarts. */
export class Alarms {
  private readonly raised = new Map<string, Alarm>();

  constructor(private readonly backend: Backend) {
    this.reload();
  }

  /** Loads the alarms from the backend again (replaced by a snapshot). */
  reload(): void {
    this.raised.clear();
    this.backend.forEach("alarm", (key) => {
      const alarm = { memberId: key.readBigUInt64BE(0), type: key.readUInt32BE(8) as AlarmType };
      this.raised.set(key.toString("hex"), alarm);
    });
  }

  list(): Alarm[] {
    return [...this.raised.values()].sort((a, b) => (a.memberId === b.memberId ? a.type - b.type : a.memberId < b.memberId ? -1 : 1));
  }

  has(type: AlarmType): boolean {
    return this.list().some((alarm) => alarm.type === type);
  }

  /** Inside a backend write. Returns false when it was already raised. */
  activate(alarm: Alarm): boolean {
    const key = alarmKey(alarm);
    if (this.raised.has(key.toString("hex"))) return false;
    this.raised.set(key.toString("hex"), alarm);
    this.backend.put("alarm", key, new Uint8Array(0));
    return true;
  }

  /** Inside a backend write. Returns false when it was not raised. */
  deactivate(alarm: Alarm): boolean {
    const key = alarmKey(alarm);
    if (!this.raised.delete(key.toString("hex"))) return false;
    this.backend.delete("alarm", key);
    return true;
  }
}

function alarmKey(alarm: Alarm): Buffer {
  const key = Buffer.allocUnsafe(12);
  key.writeBigUInt64BE(alarm.memberId, 0);
  key.writeUInt32BE(alarm.type, 8);
  return key;
}

export { AlarmType };
