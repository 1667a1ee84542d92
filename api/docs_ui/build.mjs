// Builds dist/: Swagger UI's browser files copied from node_modules (installed by `npm ci`
// from package-lock.json) beside this folder's page, so the gateway serves /docs with no
// CDN. Run by `make docs-ui`; the gateway serves dist/ (api/routes/docs_ui.py).
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../static_build.mjs";

const ui = "node_modules/swagger-ui-dist";
build(
  "docs-ui",
  dirname(fileURLToPath(import.meta.url)),
  {
    "swagger-ui-bundle.js": `${ui}/swagger-ui-bundle.js`,
    "swagger-ui.css": `${ui}/swagger-ui.css`,
    "index.html": "index.html",
    "init.js": "init.js",
  },
  { "favicon.png": `${ui}/favicon-32x32.png` },
);
