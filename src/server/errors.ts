/**
 * Failures the server reports to clients, each with etcd's gRPC status code and
 * message. One class, one named value per failure; the API edge turns them into
 * gRPC statuses unchanged.
 */
export const GrpcCode = {
  Ok: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export class EtcdError extends Error {
  constructor(
    readonly grpcCode: GrpcCode,
    message: string,
  ) {
    super(message);
    this.name = "EtcdError";
  }
}

const error = (code: GrpcCode, message: string): EtcdError => new EtcdError(code, message);

export const ErrEmptyKey = error(GrpcCode.InvalidArgument, "etcdserver: key is not provided");
export const ErrKeyNotFound = error(GrpcCode.InvalidArgument, "etcdserver: key not found");
export const ErrValueProvided = error(GrpcCode.InvalidArgument, "etcdserver: value is provided");
export const ErrLeaseProvided = error(GrpcCode.InvalidArgument, "etcdserver: lease is provided");
export const ErrTooManyOps = error(GrpcCode.InvalidArgument, "etcdserver: too many operations in txn request");
export const ErrDuplicateKey = error(GrpcCode.InvalidArgument, "etcdserver: duplicate key given in txn request");
export const ErrInvalidSortOption = error(GrpcCode.InvalidArgument, "etcdserver: invalid sort option");
export const ErrCompacted = error(GrpcCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted");
export const ErrFutureRevision = error(GrpcCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision");
export const ErrNoSpace = error(GrpcCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded");
export const ErrLeaseNotFound = error(GrpcCode.NotFound, "etcdserver: requested lease not found");
export const ErrLeaseExists = error(GrpcCode.FailedPrecondition, "etcdserver: lease already exists");
export const ErrLeaseTtlTooLarge = error(GrpcCode.OutOfRange, "etcdserver: too large lease TTL");
export const ErrRequestTooLarge = error(GrpcCode.InvalidArgument, "etcdserver: request is too large");
export const ErrTooManyRequests = error(GrpcCode.ResourceExhausted, "etcdserver: too many requests");
export const ErrNoLeader = error(GrpcCode.Unavailable, "etcdserver: no leader");
export const ErrTimeout = error(GrpcCode.Unavailable, "etcdserver: request timed out");
export const ErrStopped = error(GrpcCode.Unavailable, "etcdserver: server stopped");
export const ErrNotCapable = error(GrpcCode.Unavailable, "etcdserver: not capable");
export const ErrMemberNotFound = error(GrpcCode.NotFound, "etcdserver: member not found");
export const ErrMemberExists = error(GrpcCode.FailedPrecondition, "etcdserver: member ID already exist");
export const ErrPeerUrlExists = error(GrpcCode.FailedPrecondition, "etcdserver: Peer URLs already exists");
export const ErrMemberBadUrls = error(GrpcCode.InvalidArgument, "etcdserver: given member URLs are invalid");
export const ErrMemberNotEnoughStarted = error(GrpcCode.FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members");
export const ErrMemberNotLearner = error(GrpcCode.FailedPrecondition, "etcdserver: can only promote a learner member");
export const ErrLearnerNotReady = error(GrpcCode.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader");
export const ErrTooManyLearners = error(GrpcCode.FailedPrecondition, "etcdserver: too many learner members in cluster");
export const ErrNotLeader = error(GrpcCode.FailedPrecondition, "etcdserver: not leader");
export const ErrLeaderChanged = error(GrpcCode.Unavailable, "etcdserver: leader changed");
export const ErrTimeoutDueToLeaderFail = error(GrpcCode.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure");
export const ErrTimeoutDueToConnectionLost = error(GrpcCode.Unavailable, "etcdserver: request timed out, possibly due to connection lost");
export const ErrBadLeaderTransferee = error(GrpcCode.FailedPrecondition, "etcdserver: bad leader transferee");
export const ErrNotSupportedForLearner = error(GrpcCode.Unavailable, "etcdserver: rpc not supported for learner");
export const ErrTimeoutLeaderTransfer = error(GrpcCode.Unavailable, "etcdserver: request timed out, leader transfer took too long");
export const ErrUnhealthy = error(GrpcCode.Unavailable, "etcdserver: unhealthy cluster");
/** What etcd answers for a proposal that found no leader to take it before its deadline: the context's own error, unmapped. */
export const ErrProposalDeadline = error(GrpcCode.Unknown, "context deadline exceeded");

// Auth (etcd's rpctypes).
export const ErrRootUserNotExist = error(GrpcCode.FailedPrecondition, "etcdserver: root user does not exist");
export const ErrRootRoleNotExist = error(GrpcCode.FailedPrecondition, "etcdserver: root user does not have root role");
export const ErrUserAlreadyExist = error(GrpcCode.FailedPrecondition, "etcdserver: user name already exists");
export const ErrUserEmpty = error(GrpcCode.InvalidArgument, "etcdserver: user name is empty");
export const ErrUserNotFound = error(GrpcCode.FailedPrecondition, "etcdserver: user name not found");
export const ErrRoleAlreadyExist = error(GrpcCode.FailedPrecondition, "etcdserver: role name already exists");
export const ErrRoleNotFound = error(GrpcCode.FailedPrecondition, "etcdserver: role name not found");
export const ErrRoleEmpty = error(GrpcCode.InvalidArgument, "etcdserver: role name is empty");
export const ErrAuthFailed = error(GrpcCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password");
export const ErrPermissionDenied = error(GrpcCode.PermissionDenied, "etcdserver: permission denied");
export const ErrRoleNotGranted = error(GrpcCode.FailedPrecondition, "etcdserver: role is not granted to the user");
export const ErrPermissionNotGranted = error(GrpcCode.FailedPrecondition, "etcdserver: permission is not granted to the role");
export const ErrAuthNotEnabled = error(GrpcCode.FailedPrecondition, "etcdserver: authentication is not enabled");
export const ErrInvalidAuthToken = error(GrpcCode.Unauthenticated, "etcdserver: invalid auth token");
export const ErrInvalidAuthMgmt = error(GrpcCode.InvalidArgument, "etcdserver: invalid auth management");
export const ErrAuthOldRevision = error(GrpcCode.InvalidArgument, "etcdserver: revision of auth store is old");
export const ErrNoPasswordUser = error(GrpcCode.InvalidArgument, "etcdserver: authentication failed, password was given for no password user");
