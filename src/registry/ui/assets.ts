import { createHash } from 'node:crypto';

/**
 * The pages' stylesheet and script, served as files (the Content-Security-
 * Policy allows no inline style or script). Kept here as text so the built
 * package carries them without a copy step. Their names carry a hash of
 * their content, so browsers may cache them for good.
 */
const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --panel: #f6f8fa; --line: #d0d7de; --accent: #0a58ca; --danger: #b42318; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9da7b3; --bg: #0d1117; --panel: #161b22; --line: #30363d; --accent: #6cb6ff; --danger: #ff7b72; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
header.top .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header.top nav { display: flex; gap: 1rem; flex: 1; }
header.top form { margin: 0; }
main { padding: 1rem 1.5rem 3rem; max-width: 80rem; }
a { color: var(--accent); }
h1 { font-size: 1.4rem; margin: .5rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.num, th.num { text-align: right; white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; word-break: break-all; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 .45rem; margin: 0 .25rem .15rem 0; border: 1px solid var(--line); border-radius: 1rem; font-size: .8rem; background: var(--panel); }
.panel { border: 1px solid var(--line); border-radius: .4rem; padding: .75rem 1rem; background: var(--panel); margin: .75rem 0; }
.pull { display: flex; gap: .5rem; align-items: center; margin: .25rem 0; }
.pull code { flex: 1; }
button, input[type=submit], .button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--line); border-radius: .3rem; background: var(--bg); color: var(--fg); cursor: pointer; text-decoration: none; }
button.danger, input.danger { color: var(--danger); border-color: var(--danger); }
input[type=text], input[type=search], input[type=password] { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: .3rem; background: var(--bg); color: var(--fg); min-width: 16rem; }
form.inline { display: inline; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; }
.error { color: var(--danger); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; word-break: break-all; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
[hidden] { display: none !important; }
`;

const SCRIPT = `
// Copy buttons and the instant filter; every page works without this file.
for (const button of document.querySelectorAll('button[data-copy]')) {
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
}
for (const input of document.querySelectorAll('input[data-filter]')) {
  const table = document.getElementById(input.dataset.filter);
  if (!table) continue;
  input.hidden = false;
  input.addEventListener('input', () => {
    const needle = input.value.trim().toLowerCase();
    for (const row of table.tBodies[0].rows) row.hidden = needle !== '' && !row.textContent.toLowerCase().includes(needle);
  });
}
`;

export interface Asset {
  name: string;
  type: string;
  body: Buffer;
}

function asset(base: string, extension: string, type: string, text: string): Asset {
  const body = Buffer.from(text.trimStart());
  return { name: `${base}.${createHash('sha256').update(body).digest('hex').slice(0, 12)}.${extension}`, type, body };
}

export const ASSETS = Object.freeze({
  stylesheet: asset('ui', 'css', 'text/css; charset=utf-8', STYLESHEET),
  script: asset('ui', 'js', 'text/javascript; charset=utf-8', SCRIPT),
});
