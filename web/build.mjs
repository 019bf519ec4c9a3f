// Builds the console into web/dist: hashed JS/CSS bundles (esbuild; the terminal and each
// page are separate chunks loaded on demand), index.html referencing them, and a .gz
// sibling of every text file for servers that send pre-compressed assets.
//
//   node build.mjs            build (from web/ or from the repo root)
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { readFile, writeFile, readdir, rm, mkdir, stat } from "node:fs/promises";
import { gzipSync, constants } from "node:zlib";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
const assets = join(dist, "assets");

const common = { bundle: true, minify: true, target: ["es2022", "chrome110", "firefox110", "safari16"], logLevel: "warning", legalComments: "none" };

async function clean() {
  await mkdir(dist, { recursive: true });
  for (const name of await readdir(dist)) {
    if (name !== ".gitkeep") await rm(join(dist, name), { recursive: true, force: true });
  }
  await mkdir(assets, { recursive: true });
}

const hash = (buf) => createHash("sha256").update(buf).digest("hex").slice(0, 10);
const url = (file) => `/${relative(dist, file).split("\\").join("/")}`;

async function main() {
  await clean();

  // The terminal's CSS (xterm's own) is its own file, linked when the terminal opens.
  const termCss = await esbuild.build({ ...common, entryPoints: { terminal: join(src, "terminal.css") }, outdir: assets, entryNames: "[name]-[hash]", metafile: true });
  const termCssFile = Object.keys(termCss.metafile.outputs).find((f) => f.endsWith(".css"));

  const app = await esbuild.build({
    ...common,
    entryPoints: { app: join(src, "main.js") },
    outdir: assets,
    format: "esm",
    splitting: true,
    entryNames: "[name]-[hash]",
    chunkNames: "[name]-[hash]",
    define: { TERMINAL_CSS: JSON.stringify(url(join(here, termCssFile))) },
    metafile: true,
  });
  const outputs = app.metafile.outputs;
  const out = (pred) => Object.keys(outputs).find(pred);
  const js = out((f) => outputs[f].entryPoint?.endsWith("main.js"));
  const css = outputs[js].cssBundle;

  // The theme script runs before first paint, so it is a small classic script.
  const theme = (await esbuild.transform(await readFile(join(src, "theme.js"), "utf8"), { minify: true })).code;
  const themeFile = join(assets, `theme-${hash(theme)}.js`);
  await writeFile(themeFile, theme);

  const html = (await readFile(join(src, "index.html"), "utf8"))
    .replace("{{theme}}", url(themeFile))
    .replace("{{css}}", url(join(here, css)))
    .replace("{{js}}", url(join(here, js)));
  await writeFile(join(dist, "index.html"), html);
  await writeFile(join(dist, "favicon.svg"), '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M8 1l7 7-7 7-7-7z" fill="#2f5fd0"/></svg>\n');

  await gzipAll(dist);
  await report(app.metafile, js, css, themeFile);
}

async function gzipAll(dir) {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) await gzipAll(p);
    else if (/\.(js|css|html|svg|json|map)$/.test(ent.name)) {
      await writeFile(`${p}.gz`, gzipSync(await readFile(p), { level: constants.Z_BEST_COMPRESSION }));
    }
  }
}

// report prints what the sandboxes page loads (the entry, its static imports, the page
// chunk and its static imports, the CSS and the theme script), raw and gzipped.
async function report(meta, js, css, themeFile) {
  const files = new Set([css, relative(here, themeFile)]);
  const walk = (f) => {
    if (files.has(f)) return;
    files.add(f);
    for (const imp of meta.outputs[f].imports) if (imp.kind === "import-statement") walk(imp.path);
  };
  walk(js);
  const page = Object.keys(meta.outputs).find((f) => Object.keys(meta.outputs[f].inputs).some((i) => i.endsWith("pages/sandboxes.js")));
  if (page) walk(page);
  let raw = 0, gz = 0;
  for (const f of files) {
    raw += (await stat(join(here, f))).size;
    gz += (await stat(join(here, `${f}.gz`))).size;
  }
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`web/dist built: the sandboxes page loads ${files.size} JS/CSS files, ${kb(raw)} (${kb(gz)} gzipped)`);
  await writeFile(join(dist, "sizes.json"), JSON.stringify({ sandboxes_page: { files: [...files].map((f) => url(join(here, f))), bytes: raw, gzip_bytes: gz } }, null, 2) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
