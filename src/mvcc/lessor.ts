/** What the store needs of the lease module: which leases exist, and which key holds which lease. */
export interface LeaseAttachments {
  exists(lease: bigint): boolean;
  leaseOf(key: string): bigint;
  attach(lease: bigint, key: string): void;
  detach(lease: bigint, key: string): void;
}
