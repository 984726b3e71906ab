// What a sandbox may ask the model endpoint to do on the owner's key. The key goes with Claude Code's calls
// only, but a call's body can still ask the endpoint itself to reach out: the API's MCP connector, its web
// fetch tool and content blocks with a URL source fetch what an agent names (past the group's egress policy,
// which governs only the sandbox's own connections); a `file` source reads the owner's uploaded files; code
// execution and fast mode bill beyond the tokens the meter prices. Claude Code uses none of these (its MCP
// servers, WebFetch and images live in the sandbox and the prompt): the body is parsed, what the endpoint must
// not do is taken out or refused, and what goes on is the body as pincer read it, never bytes it did not.
import { noDearerThan } from './model-metering.js';

/** Server tools are kept only by this allowlist: client tools (no type, or `custom`) and web search. */
const WEB_SEARCH = 'web_search';
/** Request fields that make the endpoint act or bill beyond the tokens. */
const ENDPOINT_FIELDS = ['mcp_servers', 'container', 'speed', 'service_tier'];
/** Content sources the endpoint would fetch or read itself. */
const FETCHED_SOURCES = new Set(['url', 'file']);
/**
 * The answer's `message_delta`, which carries the output tokens, echoes the stop sequence that matched: one
 * longer than the line the meter reads (64 KiB) would hide what the call cost. Claude Code's are short.
 */
const MAX_STOP_SEQUENCE = 1024;
/**
 * Objects and arrays in one body. Parsing costs about half a microsecond each on the host's main thread; Claude
 * Code's largest calls hold tens of thousands (long strings cost little).
 */
export const MAX_BRACKETS = 500_000;

/** `model`: what the call asks for, as the sandbox wrote it (bounded; null when it names none). */
export type ScreenedRequest = { ok: true; body: Buffer; removed: string[]; model: string | null } | { ok: false; reason: string };

const MAX_MODEL_NAME = 200;

/**
 * The model a group was set to run on: a call naming a dearer one (an agent's curl, a sub-agent asked to use opus)
 * goes to this one instead. Its fallback, and models no dearer by the price list, pass as asked. A Claude Code
 * alias (`opus`, `sonnet[1m]` …) pins nothing: Claude Code resolves it to an id the proxy cannot know.
 */
export interface ModelPin {
  model: string;
  fallback?: string;
}

/** The body to forward with what the endpoint must not do taken out, or why the call is refused. */
export function screenModelRequest(raw: Buffer, webSearchAllowed: boolean, pin?: ModelPin): ScreenedRequest {
  if (bracketsOver(raw, MAX_BRACKETS)) return { ok: false, reason: `a body with more than ${MAX_BRACKETS} objects and arrays` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return { ok: false, reason: 'a body that is not JSON' };
  }
  if (!isRecord(parsed)) return { ok: false, reason: 'a body that is not a JSON object' };
  const fetched = fetchedSource(parsed);
  if (fetched) return { ok: false, reason: `a content block with a ${fetched} source, which the endpoint would fetch itself` };
  const removed: string[] = [];
  for (const field of ENDPOINT_FIELDS) {
    if (field in parsed) {
      delete parsed[field];
      removed.push(field);
    }
  }
  if (Array.isArray(parsed.stop_sequences)) {
    const kept = parsed.stop_sequences.filter((x: unknown) => typeof x !== 'string' || x.length <= MAX_STOP_SEQUENCE);
    if (kept.length !== parsed.stop_sequences.length) {
      parsed.stop_sequences = kept;
      removed.push(`stop sequences over ${MAX_STOP_SEQUENCE} characters`);
    }
  }
  if (Array.isArray(parsed.tools)) {
    const names = new Set<string>();
    parsed.tools = parsed.tools.filter((tool: unknown) => {
      const { type, name } = isRecord(tool) ? tool : {};
      const kept = type === undefined || type === 'custom' || (typeof type === 'string' && type.startsWith(WEB_SEARCH) && webSearchAllowed);
      if (kept) return true;
      removed.push(`tool ${String(type).slice(0, 64)}`);
      if (typeof name === 'string') names.add(name);
      return false;
    });
    // A choice of a tool taken out would make the endpoint refuse the whole call.
    const choice = parsed.tool_choice;
    if (isRecord(choice) && typeof choice.name === 'string' && names.has(choice.name)) delete parsed.tool_choice;
  }
  if (pin && !CLAUDE_CODE_ALIAS.test(pin.model) && typeof parsed.model === 'string' && !allowedModel(parsed.model, pin)) {
    removed.push(`model ${parsed.model.slice(0, 64)} (this group runs on ${pin.model})`);
    parsed.model = pin.model;
  }
  try {
    // Always what pincer read: a duplicate key or an odd spelling the endpoint might read otherwise goes no further.
    const model = typeof parsed.model === 'string' ? parsed.model.slice(0, MAX_MODEL_NAME) : null;
    return { ok: true, body: Buffer.from(JSON.stringify(parsed)), removed, model };
  } catch {
    return { ok: false, reason: 'a body nested too deeply' };
  }
}

const CLAUDE_CODE_ALIAS = /^(default|sonnet|opus|haiku|opusplan|best)(\[1m\])?$/;

function allowedModel(model: string, pin: ModelPin): boolean {
  return model === pin.model || model === pin.fallback || noDearerThan(model, pin.model);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Whether the body holds more than `max` `{` and `[` bytes (those in strings too: an upper bound, found natively). */
function bracketsOver(raw: Buffer, max: number): boolean {
  let n = 0;
  for (const byte of [0x7b, 0x5b]) {
    for (let at = raw.indexOf(byte); at !== -1; at = raw.indexOf(byte, at + 1)) if (++n > max) return true;
  }
  return false;
}

/** The type of the first content source anywhere in the body that the endpoint would fetch or read itself. */
function fetchedSource(body: Record<string, unknown>): string | undefined {
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) for (const item of node) stack.push(item);
    else if (isRecord(node)) {
      const source = node.source;
      if (isRecord(source) && typeof source.type === 'string' && FETCHED_SOURCES.has(source.type)) return source.type;
      for (const value of Object.values(node)) if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
  return undefined;
}
