// The files tab: browse the sandbox's directories, upload files (PUT files/content) and
// download them (GET files/content, saved through a blob link).
import { h, replace } from "../dom.js";
import { get, put, qs, request } from "../api.js";
import { errorBanner, loading, empty, toast, table } from "../ui.js";
import { bytes, dateTime } from "../format.js";

const join = (dir, name) => `${dir.replace(/\/+$/, "")}/${name}`;
const parent = (p) => p.replace(/\/[^/]+\/?$/, "") || "/";

/** filesPanel fills panel with a file browser rooted at /home/user. */
export function filesPanel(panel, ctx, sb) {
  const canWrite = ctx.can("sandboxes:write");
  let dir = "/home/user";
  const crumbs = h("nav.crumbs", { "aria-label": "Directory" });
  const banner = h("div");
  const body = h("div");
  const upload = h("input.sr-only", { type: "file", multiple: true, id: "upload-input", onchange: () => uploadFiles([...upload.files]) });
  const pathInput = h("input", { type: "text", "aria-label": "Go to directory", spellcheck: false });
  replace(panel,
    h("div.term-bar", null,
      h("form.inline", { onsubmit: (e) => { e.preventDefault(); go(pathInput.value || "/"); } }, pathInput, h("button", { type: "submit" }, "Go")),
      h("button", { type: "button", onclick: () => go(parent(dir)), "aria-label": "Parent directory" }, "Up"),
      h("button", { type: "button", onclick: () => list() }, "Refresh"),
      canWrite ? [upload, h("label.button.primary", { for: "upload-input" }, "Upload files")] : null),
    crumbs, banner, body);
  upload.addEventListener("focus", () => upload.nextElementSibling.classList.add("focus"));
  upload.addEventListener("blur", () => upload.nextElementSibling.classList.remove("focus"));

  function go(p) {
    dir = p.startsWith("/") ? p : join(dir, p);
    list();
  }

  async function list() {
    pathInput.value = dir;
    const parts = dir.split("/").filter(Boolean);
    replace(crumbs, h("button.link", { type: "button", onclick: () => go("/") }, "/"),
      parts.map((p, i) => [i ? " / " : "", h("button.link", { type: "button", onclick: () => go(`/${parts.slice(0, i + 1).join("/")}`) }, p)]));
    replace(body, loading("Listing files"));
    try {
      const res = await get(`/v1/sandboxes/${sb.id}/files${qs({ path: dir })}`, { signal: ctx.signal });
      replace(banner);
      const entries = (res.entries || []).sort((a, b) => (a.type === "dir") === (b.type === "dir") ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1);
      if (!entries.length) return replace(body, empty("This directory is empty.", canWrite ? "Upload files with the button above." : null));
      replace(body, table(`Files in ${dir}`, ["Name", "Size", "Modified", h("span.sr-only", null, "Actions")], entries.map((f) =>
        h("tr", { "data-name": f.name },
          h("th", { scope: "row" }, f.type === "dir"
            ? h("button.link.file-dir", { type: "button", onclick: () => go(f.path || join(dir, f.name)) }, `${f.name}/`)
            : h("span.file", null, f.name)),
          h("td.num", null, f.type === "dir" ? "—" : bytes(f.size)),
          h("td", null, dateTime(f.modified)),
          h("td.row-actions", null, f.type === "file"
            ? h("button.small", { type: "button", "aria-label": `Download ${f.name}`, onclick: () => download(f) }, "Download") : null)))));
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(body);
      replace(banner, errorBanner(err, list));
    }
  }

  async function download(f) {
    try {
      const resp = await request("GET", `/v1/sandboxes/${sb.id}/files/content${qs({ path: f.path || join(dir, f.name) })}`, undefined,
        { raw: true, accept: "application/octet-stream" });
      const url = URL.createObjectURL(await resp.blob());
      const a = h("a", { href: url, download: f.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      toast(`Could not download ${f.name}: ${err.message}`, "error");
    }
  }

  async function uploadFiles(files) {
    if (!files.length) return;
    replace(banner, h("div.banner", { role: "status" }, `Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`));
    try {
      for (const file of files) {
        await put(`/v1/sandboxes/${sb.id}/files/content${qs({ path: join(dir, file.name) })}`, file);
      }
      toast(`Uploaded ${files.map((f) => f.name).join(", ")} to ${dir}`);
      replace(banner);
    } catch (err) {
      replace(banner, errorBanner(err));
    }
    upload.value = "";
    list();
  }

  list();
}
