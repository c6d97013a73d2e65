import type * as net from "node:net";

/** Starts `listener` on a Unix socket path (or a Linux abstract name, starting with "\0"); rejects with the listen error. */
export function listenOnPath(listener: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(path, () => {
      listener.off("error", reject);
      resolve();
    });
  });
}
