import { create, type DescMessage, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { AuthStore, AuthInfo } from "../auth/auth-store.js";
import type { SimpleTokens } from "../auth/simple-tokens.js";
import type { InternalRaftRequest } from "../gen/etcdserverpb/raft_internal_pb.js";
import {
  AuthDisableResponseSchema,
  AuthEnableResponseSchema,
  AuthenticateResponseSchema,
  AuthRoleAddResponseSchema,
  AuthRoleDeleteResponseSchema,
  AuthRoleGetResponseSchema,
  AuthRoleGrantPermissionResponseSchema,
  AuthRoleListResponseSchema,
  AuthRoleRevokePermissionResponseSchema,
  AuthUserAddResponseSchema,
  AuthUserChangePasswordResponseSchema,
  AuthUserDeleteResponseSchema,
  AuthUserGetResponseSchema,
  AuthUserGrantRoleResponseSchema,
  AuthUserListResponseSchema,
  AuthUserRevokeRoleResponseSchema,
  ResponseHeaderSchema,
  type RequestOp,
  type TxnRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { Lessor } from "../lease/lessor.js";
import { keyToBytes } from "../mvcc/keys.js";
import * as errors from "./errors.js";

/** The answer to an auth entry; `username` for Authenticate, whose token the API edge may still have to sign. */
export interface AuthApplied {
  response: AuthApplyResponse;
  authenticated?: { username: string; revision: number };
}

export type AuthApplyResponse = Message;

/**
 * etcd's authApplierV3: before a client's entry is applied, its user's
 * permissions are checked against the auth store as it is at that point of
 * the log (so a permission revoked before the entry counts, and a token read
 * before an auth change gets "revision of auth store is old"); auth entries
 * change the store. Entries the members propose themselves (lease expiry,
 * alarms, their own attributes) carry no user and are not checked.
 */
export class AuthApplier {
  constructor(
    private readonly auth: AuthStore,
    private readonly lessor: Lessor,
    private readonly tokens: SimpleTokens,
  ) {}

  /** Throws etcd's error when the entry's user may not do what it asks. */
  check(request: InternalRaftRequest): void {
    if (!this.auth.isEnabled) return;
    const header = request.header;
    // A member's own entries carry neither a user nor the auth revision a client's carries.
    if (header === undefined || (header.username === "" && header.authRevision === 0n)) return;
    const info: AuthInfo = { username: header.username, revision: Number(header.authRevision) };
    if (request.put !== undefined) {
      this.auth.checkKeys(info, "write", request.put.key, new Uint8Array());
      if (request.put.prevKv) this.auth.checkKeys(info, "read", request.put.key, new Uint8Array());
      if (request.put.lease !== 0n) this.checkLeaseKeys(info, request.put.lease);
    } else if (request.deleteRange !== undefined) {
      this.auth.checkKeys(info, "write", request.deleteRange.key, request.deleteRange.rangeEnd);
      if (request.deleteRange.prevKv) this.auth.checkKeys(info, "read", request.deleteRange.key, request.deleteRange.rangeEnd);
    } else if (request.txn !== undefined) {
      this.checkTxn(info, request.txn);
    } else if (request.leaseRevoke !== undefined) {
      this.checkLeaseKeys(info, request.leaseRevoke.ID);
    } else if (isAuthManagement(request) && !this.readsOwnAuth(info, request)) {
      // Auth management needs the root role; etcd 3.4 lets any user compact and list or change alarms.
      this.auth.checkAdmin(info);
    }
  }

  /** As etcd 3.4: a user may get itself, and the roles it holds, without the root role. */
  private readsOwnAuth(info: AuthInfo, request: InternalRaftRequest): boolean {
    if (request.authUserGet !== undefined) return request.authUserGet.name === info.username;
    if (request.authRoleGet !== undefined) return this.auth.user(info.username)?.roles.includes(request.authRoleGet.role) === true;
    return false;
  }

  /** etcd's checkTxnReqsPermission: read on every compare, and on each operation of both branches what it needs. */
  checkTxn(info: AuthInfo, txn: TxnRequest): void {
    for (const compare of txn.compare) this.auth.checkKeys(info, "read", compare.key, compare.rangeEnd);
    for (const op of [...txn.success, ...txn.failure]) this.checkOp(info, op);
  }

  private checkOp(info: AuthInfo, op: RequestOp): void {
    switch (op.request.case) {
      case "requestRange":
        return this.auth.checkKeys(info, "read", op.request.value.key, op.request.value.rangeEnd);
      case "requestPut":
        this.auth.checkKeys(info, "write", op.request.value.key, new Uint8Array());
        if (op.request.value.prevKv) this.auth.checkKeys(info, "read", op.request.value.key, new Uint8Array());
        return;
      case "requestDeleteRange":
        this.auth.checkKeys(info, "write", op.request.value.key, op.request.value.rangeEnd);
        if (op.request.value.prevKv) this.auth.checkKeys(info, "read", op.request.value.key, op.request.value.rangeEnd);
        return;
      case "requestTxn":
        return this.checkTxn(info, op.request.value);
      default:
        return;
    }
  }

  /** Revoking a lease, or attaching keys to it, deletes its keys: write permission on each is needed. */
  private checkLeaseKeys(info: AuthInfo, leaseId: bigint): void {
    for (const key of this.lessor.get(leaseId)?.keys ?? []) this.auth.checkKeys(info, "write", keyToBytes(key), new Uint8Array());
  }

  /** Applies an auth entry; undefined when the entry is not one. `index` is the entry's, which a simple token carries. */
  apply(request: InternalRaftRequest, index: number): AuthApplied | undefined {
    for (const field of authEntryFields) {
      const value = request[field];
      if (value !== undefined) return (this.handlers[field] as (value: unknown, index: number) => AuthApplied)(value, index);
    }
    return undefined;
  }

  /** What each auth entry does to the store, and its answer. */
  private readonly handlers: { [Field in AuthEntryField]: (value: NonNullable<InternalRaftRequest[Field]>, index: number) => AuthApplied } = {
    authEnable: () => {
      this.auth.applyEnable();
      return answer(AuthEnableResponseSchema);
    },
    authDisable: () => {
      this.auth.applyDisable();
      this.tokens.clear();
      return answer(AuthDisableResponseSchema);
    },
    authenticate: ({ name, simpleToken }, index) => {
      this.auth.applyAuthenticate(name);
      // An empty prefix: JWT, whose token the member that took the call signs once it knows the revision.
      const token = simpleToken === "" ? "" : this.tokens.assign(simpleToken, index, name);
      return { ...answer(AuthenticateResponseSchema, { token }), authenticated: { username: name, revision: this.auth.currentRevision } };
    },
    authUserAdd: ({ name, hashedPassword, options }) => {
      this.auth.applyUserAdd(name, hashedPassword, options?.noPassword ?? false);
      return answer(AuthUserAddResponseSchema);
    },
    authUserDelete: ({ name }) => {
      this.auth.applyUserDelete(name);
      this.tokens.invalidateUser(name);
      return answer(AuthUserDeleteResponseSchema);
    },
    authUserChangePassword: ({ name, hashedPassword }) => {
      this.auth.applyUserChangePassword(name, hashedPassword);
      this.tokens.invalidateUser(name);
      return answer(AuthUserChangePasswordResponseSchema);
    },
    authUserGrantRole: ({ user, role }) => {
      this.auth.applyUserGrantRole(user, role);
      return answer(AuthUserGrantRoleResponseSchema);
    },
    authUserRevokeRole: ({ name, role }) => {
      this.auth.applyUserRevokeRole(name, role);
      return answer(AuthUserRevokeRoleResponseSchema);
    },
    authUserGet: ({ name }) => {
      const user = this.auth.user(name);
      if (user === undefined) throw errors.ErrUserNotFound;
      return answer(AuthUserGetResponseSchema, { roles: user.roles });
    },
    authUserList: () => answer(AuthUserListResponseSchema, { users: this.auth.userNames() }),
    authRoleAdd: ({ name }) => {
      this.auth.applyRoleAdd(name);
      return answer(AuthRoleAddResponseSchema);
    },
    authRoleDelete: ({ role }) => {
      this.auth.applyRoleDelete(role);
      return answer(AuthRoleDeleteResponseSchema);
    },
    authRoleGet: ({ role }) => {
      const found = this.auth.role(role);
      if (found === undefined) throw errors.ErrRoleNotFound;
      return answer(AuthRoleGetResponseSchema, { perm: found.keyPermission });
    },
    authRoleList: () => answer(AuthRoleListResponseSchema, { roles: this.auth.roleNames() }),
    authRoleGrantPermission: ({ name, perm }) => {
      if (perm === undefined) throw errors.ErrPermissionNotGranted;
      this.auth.applyRoleGrantPermission(name, perm);
      return answer(AuthRoleGrantPermissionResponseSchema);
    },
    authRoleRevokePermission: ({ role, key, rangeEnd }) => {
      this.auth.applyRoleRevokePermission(role, Buffer.from(key), Buffer.from(rangeEnd));
      return answer(AuthRoleRevokePermissionResponseSchema);
    },
  };
}

/** The fields of InternalRaftRequest that carry an auth entry. */
const authEntryFields = [
  "authEnable", "authDisable", "authenticate",
  "authUserAdd", "authUserDelete", "authUserChangePassword", "authUserGrantRole", "authUserRevokeRole", "authUserGet", "authUserList",
  "authRoleAdd", "authRoleDelete", "authRoleGet", "authRoleList", "authRoleGrantPermission", "authRoleRevokePermission",
] as const;
type AuthEntryField = (typeof authEntryFields)[number];

/** A response with an empty header (the API edge completes it) and `fields`. */
function answer<Schema extends DescMessage>(schema: Schema, fields: Record<string, unknown> = {}): AuthApplied {
  return { response: create(schema, { ...fields, header: create(ResponseHeaderSchema) } as unknown as MessageInitShape<Schema>) };
}

/** The auth entries only a root user may propose once auth is on: all but Authenticate. */
function isAuthManagement(request: InternalRaftRequest): boolean {
  return authEntryFields.some((field) => field !== "authenticate" && request[field] !== undefined);
}
