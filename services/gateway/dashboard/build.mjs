// Builds the dashboard into the gateway's static folder (committed, so a machine without npm still serves it):
//   index.html, assets/main-<hash>.js (the first module: src/main.js), the modules it imports (app-<hash>.js, the
//   rest of the app, and chunk-<hash>.js, what both share; index.html preloads them), assets/main-<hash>.css and
//   build.json, which records the SHA-256 of the sources this build came from (tests/browser/test_static.py checks
//   it against the sources).
// Usage: npm ci && npm run build [-- --out DIR]

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? args[outIndex + 1] : join(here, "..", "src", "gateway_service", "static");

// The inputs of a build, in a fixed order: the sources, the build script and the pinned dependencies.
export function sourceFiles() {
  const walk = (dir) =>
    readdirSync(dir)
      .sort()
      .flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : [path];
      });
  return ["package.json", "package-lock.json", "build.mjs", ...walk(join(here, "src")).map((p) => relative(here, p))];
}

function sourcesDigest() {
  const hash = createHash("sha256");
  for (const file of sourceFiles()) {
    hash.update(file.split("\\").join("/"));
    hash.update("\0");
    hash.update(readFileSync(join(here, file)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

const assets = join(out, "assets");
rmSync(assets, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const result = await esbuild.build({
  entryPoints: { main: join(here, "src", "main.js") },
  bundle: true,
  splitting: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  outdir: assets,
  metafile: true,
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => relative(assets, p)).sort();
const js = outputs.find((p) => p.startsWith("main-") && p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));
// every other module is fetched with the first one, not after it has run (app.js is a dynamic import)
const preloads = outputs
  .filter((p) => p.endsWith(".js") && p !== js)
  .map((p) => `    <link rel="modulepreload" href="/assets/${p}">\n`)
  .join("");
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("{{js}}", js)
  .replace("{{css}}", css)
  .replace("{{modulepreload}}\n", preloads);
writeFileSync(join(out, "index.html"), html);
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const version = (name) => lock.packages[`node_modules/${name}`]?.version;
const files = {};
for (const name of ["index.html", ...outputs.map((p) => `assets/${p}`)].sort()) {
  files[name] = createHash("sha256").update(readFileSync(join(out, name))).digest("hex");
}
const manifest = { sources_sha256: sourcesDigest(), esbuild: version("esbuild"), uplot: version("uplot"), files };
writeFileSync(join(out, "build.json"), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`built ${Object.keys(files).join(", ")} into ${out}`);
