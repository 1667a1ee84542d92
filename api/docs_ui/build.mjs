// Builds dist/: Swagger UI's browser files copied from node_modules (installed by `npm ci`
// from package-lock.json) beside this folder's page, so the gateway serves /docs with no
// CDN. Run by `make docs-ui`; the gateway serves dist/ (api/routes/docs_ui.py).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const ui = "node_modules/swagger-ui-dist";
const files = {
  "swagger-ui-bundle.js": `${ui}/swagger-ui-bundle.js`,
  "swagger-ui.css": `${ui}/swagger-ui.css`,
  "index.html": "index.html",
  "init.js": "init.js",
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
for (const [name, source] of Object.entries(files)) {
  // source maps are not shipped: drop the comments that would make a browser ask for them
  const text = readFileSync(join(here, source), "utf8").replace(
    /\n?\/[/*][#@] sourceMappingURL=[^\n]*/g,
    "",
  );
  writeFileSync(join(dist, name), text);
}
writeFileSync(join(dist, "favicon.png"), readFileSync(join(here, `${ui}/favicon-32x32.png`)));
writeFileSync(join(dist, ".built"), "");  // make's stamp: written last, so only a whole build
console.log(`docs-ui: ${Object.keys(files).length + 1} files in ${dist}`);
