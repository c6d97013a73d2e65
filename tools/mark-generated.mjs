// Marks every file under src/gen as generated, so reviewers and tools pass over it.
import { readdirSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { join } from "node:path";

const marker = "// Code generated from proto/ by `npm run proto`. DO NOT EDIT.\n";

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith(".ts")) {
      const text = readFileSync(path, "utf8");
      if (!text.startsWith(marker)) writeFileSync(path, marker + text);
    }
  }
}
walk("src/gen");
