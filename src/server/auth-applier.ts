import { create, type Message } from "@bufbuild/protobuf";
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
    } else if (isAuthManagement(request)) {
      // Auth management needs the root role; etcd 3.4 lets any user compact and list or change alarms.
      this.auth.checkAdmin(info);
    }
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
    const auth = this.auth;
    const header = (): { header: ReturnType<typeof create<typeof ResponseHeaderSchema>> } => ({ header: create(ResponseHeaderSchema, {}) });
    if (request.authEnable !== undefined) {
      auth.applyEnable();
      return { response: create(AuthEnableResponseSchema, header()) };
    }
    if (request.authDisable !== undefined) {
      auth.applyDisable();
      this.tokens.clear();
      return { response: create(AuthDisableResponseSchema, header()) };
    }
    if (request.authenticate !== undefined) {
      const { name, simpleToken } = request.authenticate;
      auth.applyAuthenticate(name);
      const token = simpleToken === "" ? "" : this.tokens.assign(simpleToken, index, name);
      return { response: create(AuthenticateResponseSchema, { ...header(), token }), authenticated: { username: name, revision: auth.currentRevision } };
    }
    const add = request.authUserAdd;
    if (add !== undefined) {
      auth.applyUserAdd(add.name, add.hashedPassword, add.options?.noPassword ?? false);
      return { response: create(AuthUserAddResponseSchema, header()) };
    }
    if (request.authUserDelete !== undefined) {
      auth.applyUserDelete(request.authUserDelete.name);
      this.tokens.invalidateUser(request.authUserDelete.name);
      return { response: create(AuthUserDeleteResponseSchema, header()) };
    }
    if (request.authUserChangePassword !== undefined) {
      auth.applyUserChangePassword(request.authUserChangePassword.name, request.authUserChangePassword.hashedPassword);
      this.tokens.invalidateUser(request.authUserChangePassword.name);
      return { response: create(AuthUserChangePasswordResponseSchema, header()) };
    }
    if (request.authUserGrantRole !== undefined) {
      auth.applyUserGrantRole(request.authUserGrantRole.user, request.authUserGrantRole.role);
      return { response: create(AuthUserGrantRoleResponseSchema, header()) };
    }
    if (request.authUserRevokeRole !== undefined) {
      auth.applyUserRevokeRole(request.authUserRevokeRole.name, request.authUserRevokeRole.role);
      return { response: create(AuthUserRevokeRoleResponseSchema, header()) };
    }
    if (request.authUserGet !== undefined) {
      const user = auth.user(request.authUserGet.name);
      if (user === undefined) throw errors.ErrUserNotFound;
      return { response: create(AuthUserGetResponseSchema, { ...header(), roles: user.roles }) };
    }
    if (request.authUserList !== undefined) return { response: create(AuthUserListResponseSchema, { ...header(), users: auth.userNames() }) };
    if (request.authRoleAdd !== undefined) {
      auth.applyRoleAdd(request.authRoleAdd.name);
      return { response: create(AuthRoleAddResponseSchema, header()) };
    }
    if (request.authRoleDelete !== undefined) {
      auth.applyRoleDelete(request.authRoleDelete.role);
      return { response: create(AuthRoleDeleteResponseSchema, header()) };
    }
    if (request.authRoleGet !== undefined) {
      const role = auth.role(request.authRoleGet.role);
      if (role === undefined) throw errors.ErrRoleNotFound;
      return { response: create(AuthRoleGetResponseSchema, { ...header(), perm: role.keyPermission }) };
    }
    if (request.authRoleList !== undefined) return { response: create(AuthRoleListResponseSchema, { ...header(), roles: auth.roleNames() }) };
    if (request.authRoleGrantPermission !== undefined) {
      const { name, perm } = request.authRoleGrantPermission;
      if (perm === undefined) throw errors.ErrPermissionNotGranted;
      auth.applyRoleGrantPermission(name, perm);
      return { response: create(AuthRoleGrantPermissionResponseSchema, header()) };
    }
    if (request.authRoleRevokePermission !== undefined) {
      const { role, key, rangeEnd } = request.authRoleRevokePermission;
      auth.applyRoleRevokePermission(role, Buffer.from(key), Buffer.from(rangeEnd));
      return { response: create(AuthRoleRevokePermissionResponseSchema, header()) };
    }
    return undefined;
  }
}

/** The auth entries only a root user may propose once auth is on (all but Authenticate). */
function isAuthManagement(request: InternalRaftRequest): boolean {
  return (
    request.authEnable !== undefined ||
    request.authDisable !== undefined ||
    request.authUserAdd !== undefined ||
    request.authUserDelete !== undefined ||
    request.authUserChangePassword !== undefined ||
    request.authUserGrantRole !== undefined ||
    request.authUserRevokeRole !== undefined ||
    request.authUserGet !== undefined ||
    request.authUserList !== undefined ||
    request.authRoleAdd !== undefined ||
    request.authRoleDelete !== undefined ||
    request.authRoleGet !== undefined ||
    request.authRoleList !== undefined ||
    request.authRoleGrantPermission !== undefined ||
    request.authRoleRevokePermission !== undefined
  );
}
