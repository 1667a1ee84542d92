// Builds dist/: GraphiQL's browser files copied from node_modules (installed by `npm ci`
// from package-lock.json) beside this folder's page, so the gateway serves GraphiQL with no
// CDN. Run by `make graphiql`; the gateway serves dist/ (api/graphql/endpoint.py).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const files = {
  "react.production.min.js": "node_modules/react/umd/react.production.min.js",
  "react-dom.production.min.js": "node_modules/react-dom/umd/react-dom.production.min.js",
  "graphql-ws.min.js": "node_modules/graphql-ws/umd/graphql-ws.min.js",
  "graphiql.min.js": "node_modules/graphiql/graphiql.min.js",
  "graphiql.min.css": "node_modules/graphiql/graphiql.min.css",
  "index.html": "index.html",
  "init.js": "init.js",
  "page.css": "page.css",
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
writeFileSync(join(dist, ".built"), "");  // make's stamp: written last, so only a whole build
console.log(`graphiql: ${Object.keys(files).length} files in ${dist}`);
