// The skill file that teaches an agent to drive the headless Chromium of the host, when there is one: its
// /usr is the sandbox's, and its pages load through the egress proxy under the group's policy.

export const BROWSER_SKILL_PATH = '.claude/skills/browser/SKILL.md';

export const BROWSER_SKILL = `---
name: browser
description: Load a web page in a real headless Chromium (JavaScript runs), to read what a page shows after scripts, save it as PDF or take a screenshot. Use when WebFetch gets an empty or script-only page.
---

# Headless browser

Chromium is installed on the host if \`/usr/lib/chromium/chromium\` exists (check with \`test -x\`); if not,
say so and use WebFetch instead. Always run it like this (no sandbox of its own: this one is the sandbox;
pages load through pincer's proxy, which applies this chat's web policy):

\`\`\`sh
CHROMIUM="/usr/lib/chromium/chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \\
  --no-first-run --disable-background-networking --disable-component-update --disable-sync \\
  --user-data-dir=/tmp/chromium --proxy-server=http://127.0.0.1:3128"
$CHROMIUM --dump-dom https://example.com/ 2>/dev/null          # the page's HTML after its scripts ran
$CHROMIUM --screenshot=out/page.png --window-size=1280,2000 https://example.com/ 2>/dev/null
$CHROMIUM --print-to-pdf=out/page.pdf https://example.com/ 2>/dev/null
\`\`\`

- Its stderr is noise (dbus errors): keep \`2>/dev/null\`.
- For a screenshot or PDF the user should get, save it in this folder and send it with the \`send_file\` tool.
- A refused page (\`ERR_TUNNEL_CONNECTION_FAILED\`, a 403 from the proxy) means this chat's web policy does
  not allow that site; the owner's main chat can change it.
- To wait for slow scripts add \`--virtual-time-budget=5000\`.
`;
