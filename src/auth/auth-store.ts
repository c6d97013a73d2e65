import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PermissionSchema, RoleSchema, UserSchema, type Permission, type Role, type User } from "../gen/authpb/auth_pb.js";
import type { Backend } from "../mvcc/backend.js";
import * as errors from "../server/errors.js";
import { RangePermissions, type Access } from "./range-permissions.js";

/** Who a request runs as: the user, and the auth revision their token or certificate was read at. */
export interface AuthInfo {
  username: string;
  revision: number;
}

export const rootUser = "root";
export const rootRole = "root";

const enabledKey = Buffer.from("authEnabled");
const revisionKey = Buffer.from("authRevision");

/**
 * etcd's auth store: whether auth is on, its revision (raised by every
 * change), users with their bcrypt password hashes and roles, and roles with
 * their key permissions. It lives in the backend's `auth`, `authUsers` and
 * `authRoles` buckets, so that it survives restarts and travels with raft
 * snapshots; it changes only by applying log entries (the `apply*` methods,
 * run inside the backend write of their entry). The checks answer with
 * etcd's errors.
 */
export class AuthStore {
  private enabled = false;
  private revision = 0;
  private users = new Map<string, User>();
  private roles = new Map<string, Role>();
  private permissionCache = new Map<string, RangePermissions>();

  constructor(private readonly backend: Backend) {
    this.reload();
  }

  /** Reads everything from the backend again (at start, and after a snapshot is installed). */
  reload(): void {
    this.enabled = this.backend.get("auth", enabledKey)?.[0] === 1;
    this.revision = Number(this.backend.get("auth", revisionKey)?.readBigUInt64BE(0) ?? 0n);
    this.users = new Map();
    this.roles = new Map();
    this.backend.forEach("authUsers", (key, value) => this.users.set(key.toString(), fromBinary(UserSchema, value)));
    this.backend.forEach("authRoles", (key, value) => this.roles.set(key.toString(), fromBinary(RoleSchema, value)));
    this.permissionCache.clear();
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  get currentRevision(): number {
    return this.revision;
  }

  user(name: string): User | undefined {
    return this.users.get(name);
  }

  role(name: string): Role | undefined {
    return this.roles.get(name);
  }

  userNames(): string[] {
    return [...this.users.keys()].sort();
  }

  roleNames(): string[] {
    return [...this.roles.keys()].sort();
  }

  // -- checks ----------------------------------------------------------------

  /** etcd's isOpPermitted: `access` to [key, rangeEnd) as `info`'s user, when auth is on. */
  checkKeys(info: AuthInfo | undefined, access: Access, key: Uint8Array, rangeEnd: Uint8Array): void {
    if (!this.enabled) return;
    const user = this.checkInfo(info);
    if (user === undefined) throw errors.ErrPermissionDenied;
    if (user.roles.includes(rootRole)) return;
    if (!this.permissionsOf(user).permits(access, key, rangeEnd)) throw errors.ErrPermissionDenied;
  }

  /** etcd's IsAdminPermitted: the user must have the root role, when auth is on. */
  checkAdmin(info: AuthInfo | undefined): void {
    if (!this.enabled) return;
    if (info === undefined || info.username === "") throw errors.ErrUserEmpty;
    const user = this.users.get(info.username);
    if (user === undefined) throw errors.ErrUserNotFound;
    if (!user.roles.includes(rootRole)) throw errors.ErrPermissionDenied;
  }

  private checkInfo(info: AuthInfo | undefined): User | undefined {
    if (info === undefined || info.revision === 0 || info.username === "") throw errors.ErrUserEmpty;
    if (info.revision < this.revision) throw errors.ErrAuthOldRevision;
    return this.users.get(info.username);
  }

  private permissionsOf(user: User): RangePermissions {
    const name = user.name.length === 0 ? "" : Buffer.from(user.name).toString();
    let cached = this.permissionCache.get(name);
    if (cached === undefined) {
      const permissions: Permission[] = [];
      for (const roleName of user.roles) permissions.push(...(this.roles.get(roleName)?.keyPermission ?? []));
      cached = new RangePermissions(permissions);
      this.permissionCache.set(name, cached);
    }
    return cached;
  }

  // -- changes, applied from the log -----------------------------------------

  applyEnable(): void {
    if (this.enabled) return;
    const root = this.users.get(rootUser);
    if (root === undefined) throw errors.ErrRootUserNotExist;
    if (!root.roles.includes(rootRole)) throw errors.ErrRootRoleNotExist;
    this.enabled = true;
    this.backend.put("auth", enabledKey, Buffer.from([1]));
    this.bumpRevision();
  }

  applyDisable(): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.backend.put("auth", enabledKey, Buffer.from([0]));
    this.bumpRevision();
  }

  applyUserAdd(name: string, hashedPassword: string, noPassword: boolean): void {
    if (name === "") throw errors.ErrUserEmpty;
    if (this.users.has(name)) throw errors.ErrUserAlreadyExist;
    this.saveUser(create(UserSchema, { name: Buffer.from(name), password: noPassword ? new Uint8Array() : Buffer.from(hashedPassword), roles: [], options: { noPassword } }));
  }

  applyUserDelete(name: string): void {
    if (this.enabled && name === rootUser) throw errors.ErrInvalidAuthMgmt;
    if (!this.users.has(name)) throw errors.ErrUserNotFound;
    this.users.delete(name);
    this.backend.delete("authUsers", Buffer.from(name));
    this.changed();
  }

  applyUserChangePassword(name: string, hashedPassword: string): void {
    const user = this.existingUser(name);
    this.saveUser({ ...user, password: Buffer.from(hashedPassword) });
  }

  applyUserGrantRole(name: string, role: string): void {
    const user = this.existingUser(name);
    if (role !== rootRole && !this.roles.has(role)) throw errors.ErrRoleNotFound;
    if (user.roles.includes(role)) return;
    this.saveUser({ ...user, roles: [...user.roles, role].sort() });
  }

  applyUserRevokeRole(name: string, role: string): void {
    if (this.enabled && name === rootUser && role === rootRole) throw errors.ErrInvalidAuthMgmt;
    const user = this.existingUser(name);
    if (!user.roles.includes(role)) throw errors.ErrRoleNotGranted;
    this.saveUser({ ...user, roles: user.roles.filter((granted) => granted !== role) });
  }

  applyRoleAdd(name: string): void {
    if (name === "") throw errors.ErrRoleEmpty;
    if (this.roles.has(name)) throw errors.ErrRoleAlreadyExist;
    this.saveRole(create(RoleSchema, { name: Buffer.from(name), keyPermission: [] }));
  }

  applyRoleDelete(name: string): void {
    if (this.enabled && name === rootRole) throw errors.ErrInvalidAuthMgmt;
    if (!this.roles.has(name)) throw errors.ErrRoleNotFound;
    this.roles.delete(name);
    this.backend.delete("authRoles", Buffer.from(name));
    for (const user of [...this.users.values()]) {
      if (user.roles.includes(name)) this.saveUser({ ...user, roles: user.roles.filter((granted) => granted !== name) }, false);
    }
    this.changed();
  }

  applyRoleGrantPermission(name: string, permission: Permission): void {
    const role = this.roles.get(name);
    if (role === undefined) throw errors.ErrRoleNotFound;
    const granted = create(PermissionSchema, { permType: permission.permType, key: permission.key, rangeEnd: permission.rangeEnd });
    const others = role.keyPermission.filter((existing) => !samePermissionRange(existing, granted));
    const keyPermission = [...others, granted].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || Buffer.compare(Buffer.from(a.rangeEnd), Buffer.from(b.rangeEnd)));
    this.saveRole({ ...role, keyPermission });
  }

  applyRoleRevokePermission(name: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    const role = this.roles.get(name);
    if (role === undefined) throw errors.ErrRoleNotFound;
    const keyPermission = role.keyPermission.filter((existing) => !samePermissionRange(existing, { key, rangeEnd }));
    if (keyPermission.length === role.keyPermission.length) throw errors.ErrPermissionNotGranted;
    this.saveRole({ ...role, keyPermission });
  }

  /** The user an Authenticate entry is for; etcd refuses it when auth is off or the user is gone. */
  applyAuthenticate(name: string): void {
    if (!this.enabled) throw errors.ErrAuthNotEnabled;
    if (!this.users.has(name)) throw errors.ErrAuthFailed;
  }

  private existingUser(name: string): User {
    const user = this.users.get(name);
    if (user === undefined) throw errors.ErrUserNotFound;
    return user;
  }

  private saveUser(user: User, bump = true): void {
    const name = Buffer.from(user.name).toString();
    const stored = create(UserSchema, { name: user.name, password: user.password, roles: user.roles, options: user.options });
    this.users.set(name, stored);
    this.backend.put("authUsers", Buffer.from(name), Buffer.from(toBinary(UserSchema, stored)));
    if (bump) this.changed();
  }

  private saveRole(role: Role): void {
    const name = Buffer.from(role.name).toString();
    const stored = create(RoleSchema, { name: role.name, keyPermission: role.keyPermission });
    this.roles.set(name, stored);
    this.backend.put("authRoles", Buffer.from(name), Buffer.from(toBinary(RoleSchema, stored)));
    this.changed();
  }

  private changed(): void {
    this.permissionCache.clear();
    this.bumpRevision();
  }

  private bumpRevision(): void {
    this.revision++;
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(BigInt(this.revision));
    this.backend.put("auth", revisionKey, bytes);
  }
}

function samePermissionRange(a: Pick<Permission, "key" | "rangeEnd">, b: Pick<Permission, "key" | "rangeEnd">): boolean {
  return Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) === 0 && Buffer.compare(Buffer.from(a.rangeEnd), Buffer.from(b.rangeEnd)) === 0;
}

