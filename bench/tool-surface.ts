// 10. What the model is shown, and what it costs (issue 17): the first model request of a session in the main
// group and in another group, taken from a real pincer (real Claude Code in a real sandbox) by the fake model.
// Tool schemas and pincer's part of the system prompt are measured in characters and estimated in tokens
// (the tokenizer of current Claude models is not public: characters ÷ CHARS_PER_TOKEN); their price per request
// is what the proxy's price table gives for a cache read (every request after the first within the cache's
// 5 minutes) and a cache write (the first).
import { callCostUsd } from '../src/proxy/model-metering.js';
import { isAgentTurn, type ModelRequest } from '../test/helpers/fake-model.js';
import { startHarness } from '../test/helpers/harness.js';
import { type Row, type Section, section } from './lib/report.js';

/** An estimate for English prose and JSON; the current models' tokenizer is not public. */
const CHARS_PER_TOKEN = 3.5;
/** Claude Code's default model here; its list price prices the tokens. */
const PRICED_MODEL = 'claude-opus-5-5';
/** How pincer's part of the system prompt begins (src/service/system-prompt.ts), with the harness's name. */
const PINCER_PROMPT_START = 'You are Andy, a personal assistant';

const tokens = (chars: number) => chars / CHARS_PER_TOKEN;

function cost(promptTokens: number, kind: 'cacheRead' | 'cacheWrite5m'): number {
  const usage = { input: 0, output: 0, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0, webSearches: 0, [kind]: Math.round(promptTokens) };
  return callCostUsd({ model: PRICED_MODEL, usage }) ?? Number.NaN;
}

interface Measured {
  pincerTools: number;
  builtinTools: number;
  pincerToolCount: number;
  builtinToolCount: number;
  systemPrompt: number;
  /** pincer's part: from its first line to the end of the system prompt. */
  pincerPrompt: number;
}

function measure(req: ModelRequest): Measured {
  const tools = (req.body.tools ?? []) as Array<{ name: string; defer_loading?: boolean }>;
  const upFront = tools.filter((t) => !t.defer_loading);
  const chars = (list: typeof tools) => list.reduce((sum, t) => sum + JSON.stringify(t).length, 0);
  const pincer = upFront.filter((t) => t.name.startsWith('mcp__pincer__'));
  const builtin = upFront.filter((t) => !t.name.startsWith('mcp__'));
  const blocks = Array.isArray(req.body.system) ? (req.body.system as Array<{ text?: string }>) : [];
  const system = blocks.map((b) => b.text ?? '').join('\n');
  const start = system.indexOf(PINCER_PROMPT_START);
  if (start < 0) throw new Error("pincer's part of the system prompt was not found in the request");
  return {
    pincerTools: chars(pincer),
    builtinTools: chars(builtin),
    pincerToolCount: pincer.length,
    builtinToolCount: builtin.length,
    systemPrompt: system.length,
    pincerPrompt: system.length - start,
  };
}

export async function toolSurfaceSection(sandboxSkip: string | undefined): Promise<Section> {
  const s = section('tools', 10, "what the model is shown: pincer's tools and prompt, per request");
  if (sandboxSkip) {
    s.skipped = sandboxSkip;
    return s;
  }
  const firsts = new Map<string, ModelRequest>();
  const h = await startHarness({
    script: (req) => {
      if (!isAgentTurn(req)) return { text: 'side request' };
      const chat = JSON.stringify(req.body.system ?? '').match(/answering in the chat (local:\w+)/)?.[1];
      if (chat && !firsts.has(chat)) firsts.set(chat, req);
      return { text: 'ok' };
    },
  });
  try {
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    await h.reply('local:main', await h.send('local:main', 'hello'));
    await h.reply('local:family', await h.send('local:family', 'hello'));
  } finally {
    await h.stop();
  }
  const main = firsts.get('local:main');
  const other = firsts.get('local:family');
  if (!main || !other) throw new Error('no first request was seen for both groups');
  const m = measure(main);
  const o = measure(other);
  const appendMain = m.pincerPrompt;
  const appendOther = o.pincerPrompt;
  const row = (metric: string, chars: number, n?: number): Row => ({ metric, unit: 'tokens', value: tokens(chars), ...(n ? { n } : {}) });
  s.rows.push(
    row("pincer's tools up front, main group (messages, tasks, admin)", m.pincerTools, m.pincerToolCount),
    row("pincer's tools up front, another group (messages, tasks)", o.pincerTools, o.pincerToolCount),
    row("pincer's part of the system prompt, main group", appendMain),
    row("pincer's part of the system prompt, another group", appendOther),
    row("Claude Code's built-in tools up front (as pincer curates them)", m.builtinTools, m.builtinToolCount),
    row('the whole system prompt, main group', m.systemPrompt),
  );
  const pincerMain = tokens(m.pincerTools + appendMain);
  const pincerOther = tokens(o.pincerTools + appendOther);
  s.tables.push({
    title: `what pincer's tools and prompt cost per request at ${PRICED_MODEL} list prices`,
    rows: [
      { metric: 'main group, a request within the cache (cache read)', unit: 'USD', value: cost(pincerMain, 'cacheRead') },
      { metric: 'main group, the first request (cache write, 5 min)', unit: 'USD', value: cost(pincerMain, 'cacheWrite5m') },
      { metric: 'another group, a request within the cache (cache read)', unit: 'USD', value: cost(pincerOther, 'cacheRead') },
      { metric: 'another group, the first request (cache write, 5 min)', unit: 'USD', value: cost(pincerOther, 'cacheWrite5m') },
    ],
  });
  s.notes.push(
    `Tokens are estimated as characters ÷ ${CHARS_PER_TOKEN} of each tool's JSON as sent (name, description, schema); the tokenizer of current Claude models is not public.`,
    "Claude Code marks the tools and system prompt for prompt caching, so after a session's first request they are read from the cache at a tenth of the input price.",
    'The web tools (WebFetch, WebSearch) and NotebookEdit stay deferred behind ToolSearch, as Claude Code has them; a group\u2019s own MCP servers are deferred too.',
  );
  return s;
}
