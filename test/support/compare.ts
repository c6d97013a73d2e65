import { toJson, type DescMessage } from "@bufbuild/protobuf";
import type { CallResult } from "./client.js";

/**
 * A call's outcome in a form to compare across servers: the response as proto3
 * JSON without the header's cluster id, member id and raft term, or the error's
 * gRPC code and message.
 */
export function comparable(result: CallResult<unknown>, responseSchema: DescMessage): Record<string, unknown> {
  if (!result.ok) return { code: result.code, message: result.message };
  const json = toJson(responseSchema, result.response as never) as Record<string, unknown>;
  const header = json["header"] as Record<string, unknown> | undefined;
  if (header !== undefined) {
    delete header["clusterId"];
    delete header["memberId"];
    delete header["raftTerm"];
  }
  return json;
}
