import { readFileSync } from "node:fs";
import type * as http from "node:http";

/** The page's files, kept beside the sources (the package ships them) and read once. */
const assetsDirectory = new URL("../../../src/dashboard/assets/", import.meta.url);
const assets = new Map([
  ["/dashboard", { file: "index.html", type: "text/html; charset=utf-8" }],
  ["/dashboard/", { file: "index.html", type: "text/html; charset=utf-8" }],
  ["/dashboard/dashboard.js", { file: "dashboard.js", type: "text/javascript; charset=utf-8" }],
  ["/dashboard/dashboard.css", { file: "dashboard.css", type: "text/css; charset=utf-8" }],
]);

/**
 * The dashboard at /dashboard on the client port: a static page and its
 * script, which read the cluster through the public HTTP endpoints only (the
 * /v3 gateway and /metrics), as any other client would.
 */
export class Dashboard {
  private readonly contents = new Map<string, Buffer>();

  /** True if `path` is one of the dashboard's. */
  serves(path: string): boolean {
    return assets.has(path);
  }

  handle(path: string, response: http.ServerResponse): void {
    const asset = assets.get(path)!;
    let content = this.contents.get(asset.file);
    if (content === undefined) {
      content = readFileSync(new URL(asset.file, assetsDirectory));
      this.contents.set(asset.file, content);
    }
    response.writeHead(200, { "Content-Type": asset.type, "Content-Length": content.length, "Cache-Control": "no-cache" });
    response.end(content);
  }
}
