/** tetcd as a library: start a member in-process. */
export { startEtcd, type Etcd, type StartOptions } from "./server/embed.js";
export type { ServerConfig } from "./server/config.js";
export { createLogger, silentLogger, type Logger } from "./server/logger.js";
