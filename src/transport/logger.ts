/**
 * What the transport logs through: the shape of the server's structured logger
 * (src/server/logger.ts), declared here so that the transport does not depend
 * on the server.
 */
export interface TransportLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentTransportLogger: TransportLogger = { debug() {}, info() {}, warn() {}, error() {} };
