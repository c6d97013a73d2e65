/**
 * Pending linearizable reads in safe mode. Each read is tagged with the commit
 * index at the time it arrived and waits until a quorum answers a heartbeat
 * that carries its context; then it and every read queued before it are served.
 */
import type { Message, NodeId } from "./messages.js";

export interface ReadState {
  /** The commit index to wait for before serving the read. */
  index: number;
  /** The context given to readIndex(), echoed back to match the request. */
  requestContext: Uint8Array;
}

export interface ReadIndexStatus {
  request: Message;
  index: number;
  acks: Set<NodeId>;
}

export function contextKey(context: Uint8Array): string {
  let key = "";
  for (const byte of context) key += byte.toString(16).padStart(2, "0");
  return key;
}

/** A MsgReadIndex carries its context as the data of its single entry. */
export function requestContext(request: Message): Uint8Array {
  return request.entries[0]!.data;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a read; a request with a context already pending is ignored. */
  addRequest(index: number, request: Message): void {
    const key = contextKey(requestContext(request));
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat acknowledgement; returns the acks so far, or undefined if unknown. */
  receiveAck(from: NodeId, context: Uint8Array): Set<NodeId> | undefined {
    const status = this.pending.get(contextKey(context));
    if (status === undefined) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /** Releases the read with this context and every read queued before it. */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(context);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const released = this.queue.slice(0, position + 1).map((k) => this.pending.get(k)!);
    for (const k of this.queue.slice(0, position + 1)) this.pending.delete(k);
    this.queue = this.queue.slice(position + 1);
    return released;
  }

  lastPendingRequestContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : requestContext(this.pending.get(key)!.request);
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
