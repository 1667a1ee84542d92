// Shared by the browser UIs' build.mjs (GraphiQL, Swagger UI): copies their files from
// node_modules (installed by `npm ci` from the lockfile) and the folder's own page into
// dist/, so the gateway serves them with no CDN (api/static_ui.py).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** `texts` (name -> source, relative to `here`) without source-map comments; `binaries` as
 * they are; then the `.built` stamp make checks, written last so only a whole build counts. */
export function build(name, here, texts, binaries = {}) {
  const dist = join(here, "dist");
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist);
  for (const [file, source] of Object.entries(texts)) {
    // source maps are not shipped: drop the comments that would make a browser ask for them
    const text = readFileSync(join(here, source), "utf8").replace(
      /\n?\/[/*][#@] sourceMappingURL=[^\n]*/g,
      "",
    );
    writeFileSync(join(dist, file), text);
  }
  for (const [file, source] of Object.entries(binaries)) {
    writeFileSync(join(dist, file), readFileSync(join(here, source)));
  }
  writeFileSync(join(dist, ".built"), "");
  const count = Object.keys(texts).length + Object.keys(binaries).length;
  console.log(`${name}: ${count} files in ${dist}`);
}
