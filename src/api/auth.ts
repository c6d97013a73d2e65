import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { AuthInfo } from "../auth/auth-store.js";
import { hashPassword, passwordMatches } from "../auth/passwords.js";
import { SimpleTokens } from "../auth/simple-tokens.js";
import { InternalRaftRequestSchema } from "../gen/etcdserverpb/raft_internal_pb.js";
import {
  AuthStatusResponseSchema,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type AuthUserAddRequest,
  type AuthUserChangePasswordRequest,
  type ResponseHeader,
} from "../gen/etcdserverpb/rpc_pb.js";
import * as errors from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";
import { authInfoOf } from "./auth-info.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";

type RaftRequestInit = MessageInitShape<typeof InternalRaftRequestSchema>;

/**
 * etcd's Auth service. Every change goes through the log as an entry that
 * every member applies alike (AuthApplier); listing and getting do too, as in
 * etcd 3.4, so they are linearizable and checked for the root role at the
 * same point of the log. Passwords are checked, and hashed, here, before
 * anything is proposed: the log never holds a password.
 */
export function authService(server: EtcdServer): grpc.UntypedServiceImplementation {
  const propose = async (init: RaftRequestInit, info: AuthInfo): Promise<{ header?: ResponseHeader }> => {
    const response = (await server.propose(create(InternalRaftRequestSchema, init), info)) as { header?: ResponseHeader };
    return fillHeader(server, response);
  };
  const passthrough = (field: keyof RaftRequestInit) => unary(async (request: object, call: unknown) => propose({ [field]: request } as RaftRequestInit, await authInfoOf(server, call)));
  return {
    authEnable: passthrough("authEnable"),
    authDisable: passthrough("authDisable"),
    authStatus: unary(async () => {
      await server.linearizableRead();
      return fillHeader(server, create(AuthStatusResponseSchema, { enabled: server.authStore.isEnabled, authRevision: BigInt(server.authStore.currentRevision) }));
    }),
    authenticate: unary((request: AuthenticateRequest) => authenticate(server, request)),
    userAdd: unary(async (request: AuthUserAddRequest, call: unknown) => {
      const info = await authInfoOf(server, call);
      const noPassword = request.options?.noPassword ?? false;
      const hashedPassword = noPassword ? "" : await hashPassword(request.password, server.config.bcryptCost);
      return propose({ authUserAdd: { name: request.name, options: request.options, hashedPassword } }, info);
    }),
    userChangePassword: unary(async (request: AuthUserChangePasswordRequest, call: unknown) => {
      const info = await authInfoOf(server, call);
      const hashedPassword = await hashPassword(request.password, server.config.bcryptCost);
      return propose({ authUserChangePassword: { name: request.name, hashedPassword } }, info);
    }),
    userGet: passthrough("authUserGet"),
    userList: passthrough("authUserList"),
    userDelete: passthrough("authUserDelete"),
    userGrantRole: passthrough("authUserGrantRole"),
    userRevokeRole: passthrough("authUserRevokeRole"),
    roleAdd: passthrough("authRoleAdd"),
    roleGet: passthrough("authRoleGet"),
    roleList: passthrough("authRoleList"),
    roleDelete: passthrough("authRoleDelete"),
    roleGrantPermission: passthrough("authRoleGrantPermission"),
    roleRevokePermission: passthrough("authRoleRevokePermission"),
  };
}

/** etcd's Authenticate: the password is checked here, then an entry assigns the token (or fixes the revision a JWT token is signed with). */
async function authenticate(server: EtcdServer, request: AuthenticateRequest): Promise<AuthenticateResponse> {
  const store = server.authStore;
  if (!store.isEnabled) throw errors.ErrAuthNotEnabled;
  const user = store.user(request.name);
  if (user === undefined || user.options?.noPassword === true || !(await passwordMatches(request.password, user.password))) throw errors.ErrAuthFailed;
  // A simple token's random part is chosen here and completed by the entry; a JWT token is signed here once the entry is applied.
  const jwt = server.jwtTokens;
  const result = await server.proposeForResult(create(InternalRaftRequestSchema, { authenticate: { name: request.name, simpleToken: jwt === undefined ? SimpleTokens.prefix() : "" } }));
  if (result.error !== undefined) throw result.error;
  const response = result.response as AuthenticateResponse;
  if (jwt !== undefined && result.authenticated !== undefined) response.token = await jwt.sign(result.authenticated.username, result.authenticated.revision);
  return fillHeader(server, response);
}
