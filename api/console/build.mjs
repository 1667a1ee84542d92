// Builds dist/: the console's sources (src/, Preact and uPlot from node_modules, installed
// by `npm ci` from package-lock.json) bundled by esbuild into one script and one style
// sheet beside index.html, so the gateway serves /console with no CDN. Run by
// `make console`; the gateway serves dist/ (api/routes/console.py).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
await esbuild.build({
  entryPoints: { console: join(here, "src/main.jsx") },
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: dist,
  legalComments: "none",
  logLevel: "warning",
});
const css = [join(here, "node_modules/uplot/dist/uPlot.min.css"), join(here, "src/style.css")];
writeFileSync(join(dist, "console.css"), css.map((f) => readFileSync(f, "utf8")).join("\n"));
writeFileSync(join(dist, "index.html"), readFileSync(join(here, "index.html")));
writeFileSync(join(dist, ".built"), "");
console.log(`console: bundled into ${dist}`);
