// Builds dist/: GraphiQL's browser files copied from node_modules (installed by `npm ci`
// from package-lock.json) beside this folder's page, so the gateway serves GraphiQL with no
// CDN. Run by `make graphiql`; the gateway serves dist/ (api/graphql/endpoint.py).
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../../static_build.mjs";

build("graphiql", dirname(fileURLToPath(import.meta.url)), {
  "react.production.min.js": "node_modules/react/umd/react.production.min.js",
  "react-dom.production.min.js": "node_modules/react-dom/umd/react-dom.production.min.js",
  "graphql-ws.min.js": "node_modules/graphql-ws/umd/graphql-ws.min.js",
  "graphiql.min.js": "node_modules/graphiql/graphiql.min.js",
  "graphiql.min.css": "node_modules/graphiql/graphiql.min.css",
  "index.html": "index.html",
  "init.js": "init.js",
  "page.css": "page.css",
});
