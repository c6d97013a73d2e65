/** etcd's v2 error codes (the `errorCode` of a v2 error answer). */
export const V2Code = {
  KeyNotFound: 100,
  TestFailed: 101,
  NotFile: 102,
  NotDir: 104,
  NodeExist: 105,
  RootReadOnly: 107,
  DirNotEmpty: 108,
  PrevValueRequired: 201,
  TtlNaN: 202,
  IndexNaN: 203,
  InvalidField: 209,
  InvalidForm: 210,
  RefreshValue: 211,
  RefreshTtlRequired: 212,
  RaftInternal: 300,
  LeaderElect: 301,
  EventIndexCleared: 401,
} as const;

const messages: Record<number, string> = {
  100: "Key not found",
  101: "Compare failed",
  102: "Not a file",
  104: "Not a directory",
  105: "Key already exists",
  107: "Root is read only",
  108: "Directory not empty",
  201: "PrevValue is Required in POST form",
  202: "The given TTL in POST form is not a number",
  203: "The given index in POST form is not a number",
  209: "Invalid field",
  210: "Invalid POST form",
  211: "Value provided on refresh",
  212: "A TTL must be provided on refresh",
  300: "Raft Internal Error",
  301: "During Leader Election",
  401: "The event in requested index is outdated and cleared",
};

/** HTTP statuses etcd gives v2 errors; any other code is 400. */
const statuses: Record<number, number> = { 100: 404, 101: 412, 102: 403, 105: 412, 108: 403, 110: 401, 300: 500, 301: 500 };

/** A v2 error: code, etcd's message for it, the cause (usually a key), and the store index when it happened. */
export class V2Error extends Error {
  constructor(
    readonly errorCode: number,
    readonly errorCause: string,
    public index: number,
  ) {
    super(messages[errorCode] ?? "");
    this.name = "V2Error";
  }

  get status(): number {
    return statuses[this.errorCode] ?? 400;
  }

  /** The JSON etcd writes, fields in its order. */
  toJSON(): Record<string, unknown> {
    const json: Record<string, unknown> = { errorCode: this.errorCode, message: this.message };
    if (this.errorCause !== "") json["cause"] = this.errorCause;
    json["index"] = this.index;
    return json;
  }
}
