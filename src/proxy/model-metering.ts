// What a model call cost, read from the endpoint's own answer (never from the sandbox): the `usage` of a
// streamed response's `message_start` and `message_delta` events, or of a whole JSON message; priced per
// model from the public price list.
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';

/** Tokens of one call, by how they are billed. */
export interface TokenUsage {
  input: number;
  output: number;
  /** Prompt-cache writes kept 5 minutes (1.25× input) and 1 hour (2× input). */
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  /** Server-side web searches (WebSearch), billed per search. */
  webSearches: number;
}

/** One answered call as the endpoint reported it. */
export interface MeteredCall {
  /** The model the endpoint says answered; null when it did not say. */
  model: string | null;
  usage: TokenUsage;
}

/** US dollars per million tokens. */
interface Rates {
  input: number;
  output: number;
  cacheRead: number;
}

interface PriceEntry extends Rates {
  /** A prompt (input, cache reads and writes together) longer than this is billed at `long` for all of its tokens. */
  longPrompt?: { over: number; rates: Rates };
}

/** USD per web search ($10 per 1,000). */
const WEB_SEARCH_USD = 0.01;
const CACHE_WRITE_5M = 1.25;
const CACHE_WRITE_1H = 2;

/**
 * Public list prices (platform.claude.com "Pricing", checked 2026-12): model id (without its date suffix)
 * to rates. A model not here is metered in tokens and its cost is unknown, never zero.
 */
const PRICES: ReadonlyMap<string, PriceEntry> = new Map<string, PriceEntry>([
  ['claude-fable-5-1', { input: 10, output: 50, cacheRead: 0.25 }],
  ['claude-mythos-5-1', { input: 10, output: 50, cacheRead: 0.25 }],
  ['claude-fable-5', { input: 10, output: 50, cacheRead: 1 }],
  ['claude-mythos-5', { input: 10, output: 50, cacheRead: 1 }],
  ['claude-opus-5-5', { input: 4, output: 20, cacheRead: 0.2 }],
  ['claude-opus-5', { input: 5, output: 25, cacheRead: 0.5 }],
  ['claude-opus-4-8', { input: 5, output: 25, cacheRead: 0.5 }],
  ['claude-opus-4-7', { input: 5, output: 25, cacheRead: 0.5 }],
  ['claude-opus-4-6', { input: 5, output: 25, cacheRead: 0.5 }],
  ['claude-opus-4-5', { input: 5, output: 25, cacheRead: 0.5 }],
  ['claude-opus-4-1', { input: 15, output: 75, cacheRead: 1.5 }],
  ['claude-opus-4-0', { input: 15, output: 75, cacheRead: 1.5 }],
  ['claude-opus-4', { input: 15, output: 75, cacheRead: 1.5 }],
  ['claude-3-opus', { input: 15, output: 75, cacheRead: 1.5 }],
  ['claude-sonnet-5-5', { input: 2, output: 10, cacheRead: 0.2 }],
  ['claude-sonnet-5', { input: 2, output: 10, cacheRead: 0.2 }],
  ['claude-sonnet-4-6', { input: 3, output: 15, cacheRead: 0.3 }],
  // Sonnet 4 and 4.5 with the 1M context: a prompt over 200K tokens is billed $6 / $22.50.
  [
    'claude-sonnet-4-5',
    { input: 3, output: 15, cacheRead: 0.3, longPrompt: { over: 200_000, rates: { input: 6, output: 22.5, cacheRead: 0.6 } } },
  ],
  [
    'claude-sonnet-4-0',
    { input: 3, output: 15, cacheRead: 0.3, longPrompt: { over: 200_000, rates: { input: 6, output: 22.5, cacheRead: 0.6 } } },
  ],
  [
    'claude-sonnet-4',
    { input: 3, output: 15, cacheRead: 0.3, longPrompt: { over: 200_000, rates: { input: 6, output: 22.5, cacheRead: 0.6 } } },
  ],
  ['claude-3-7-sonnet', { input: 3, output: 15, cacheRead: 0.3 }],
  ['claude-3-5-sonnet', { input: 3, output: 15, cacheRead: 0.3 }],
  // Haiku 5.5: a prompt over 100K tokens is billed at five times the rates.
  [
    'claude-haiku-5-5',
    { input: 0.1, output: 0.5, cacheRead: 0.01, longPrompt: { over: 100_000, rates: { input: 0.5, output: 2.5, cacheRead: 0.05 } } },
  ],
  ['claude-haiku-4-5', { input: 1, output: 5, cacheRead: 0.1 }],
  ['claude-3-5-haiku', { input: 0.8, output: 4, cacheRead: 0.08 }],
  ['claude-3-haiku', { input: 0.25, output: 1.25, cacheRead: 0.03 }],
]);

/** The dearest rate of each kind in the list: what a call to a model without a known price counts against a budget. */
const DEAREST: Rates = [...PRICES.values()]
  .flatMap((p) => (p.longPrompt ? [p, p.longPrompt.rates] : [p]))
  .reduce(
    (max, r) => ({
      input: Math.max(max.input, r.input),
      output: Math.max(max.output, r.output),
      cacheRead: Math.max(max.cacheRead, r.cacheRead),
    }),
    {
      input: 0,
      output: 0,
      cacheRead: 0,
    },
  );

/** The list entry of a model id: exactly a key, or a key with a date (`-20250929`) or `-latest`; a `[1m]` suffix is the same model. */
/**
 * Whether `model` costs no more per token than `than` (input and output, both on the price list): a model a group
 * set to `than` may also use. An unpriced model is never known to be no dearer.
 */
export function noDearerThan(model: string, than: string): boolean {
  const a = priceOf(model);
  const b = priceOf(than);
  return a !== undefined && b !== undefined && a.input <= b.input && a.output <= b.output;
}

function priceOf(model: string): PriceEntry | undefined {
  const id = model.toLowerCase().replace(/\[1m\]$/, '');
  const key = id.replace(/-(\d{8}|latest)$/, '');
  return PRICES.get(key);
}

function costAt(r: Rates, u: TokenUsage): number {
  const perToken =
    u.input * r.input +
    u.output * r.output +
    u.cacheWrite5m * r.input * CACHE_WRITE_5M +
    u.cacheWrite1h * r.input * CACHE_WRITE_1H +
    u.cacheRead * r.cacheRead;
  return perToken / 1_000_000 + u.webSearches * WEB_SEARCH_USD;
}

/** What the call cost in USD at list prices; null when the model's price is not known. */
export function callCostUsd(call: MeteredCall): number | null {
  const entry = call.model === null ? undefined : priceOf(call.model);
  if (!entry) return null;
  const u = call.usage;
  const prompt = u.input + u.cacheWrite5m + u.cacheWrite1h + u.cacheRead;
  return costAt(entry.longPrompt && prompt > entry.longPrompt.over ? entry.longPrompt.rates : entry, u);
}

/** What the call counts against a budget: its cost, or for a model without a known price, the cost at the dearest rates. */
export function budgetCostUsd(call: MeteredCall): number {
  return callCostUsd(call) ?? costAt(DEAREST, call.usage);
}

const count = z.number().int().nonnegative();

/** The usage object as the API sends it; in `message_delta` each count present is the running total. */
const UsageSchema = z.object({
  input_tokens: count.nullish(),
  output_tokens: count.nullish(),
  cache_creation_input_tokens: count.nullish(),
  cache_read_input_tokens: count.nullish(),
  cache_creation: z.object({ ephemeral_5m_input_tokens: count.nullish(), ephemeral_1h_input_tokens: count.nullish() }).nullish(),
  server_tool_use: z.object({ web_search_requests: count.nullish() }).nullish(),
});
type ApiUsage = z.infer<typeof UsageSchema>;

const StreamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: z.object({ model: z.string().max(200).nullish(), usage: UsageSchema.nullish() }) }),
  z.object({ type: z.literal('message_delta'), usage: UsageSchema.nullish() }),
]);

const WholeMessageSchema = z.object({ model: z.string().max(200).nullish(), usage: UsageSchema });

/** Reads the usage out of a response as it passes; holds at most one bounded line (or a bounded JSON body). */
export interface UsageReader {
  write(chunk: Buffer): void;
  /** What was read by now: after a cut stream, what the endpoint had reported up to the cut. Undefined when nothing was. */
  result(): MeteredCall | undefined;
}

/** Longest SSE line kept: a usage event is a few hundred bytes; longer lines (content deltas) are skipped. */
const MAX_EVENT_LINE = 64 * 1024;
/** Largest JSON message read whole; a Messages API answer is well under this (128K output tokens). */
const MAX_JSON_BODY = 8 * 1024 * 1024;

/** The reader for a response of this content type; undefined for one that carries no usage (an error page, say). */
export function usageReader(contentType: string | undefined): UsageReader | undefined {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'text/event-stream') return new StreamUsageReader();
  if (type === 'application/json') return new JsonUsageReader();
  return undefined;
}

/** Folds the counts an event carries into the totals so far (each count it has replaces the earlier one). */
function merge(into: Partial<Record<keyof TokenUsage, number>>, u: ApiUsage): void {
  const set = (k: keyof TokenUsage, v: number | null | undefined) => {
    if (typeof v === 'number') into[k] = v;
  };
  set('input', u.input_tokens);
  set('output', u.output_tokens);
  set('cacheRead', u.cache_read_input_tokens);
  set('webSearches', u.server_tool_use?.web_search_requests);
  const split = u.cache_creation;
  if (split && (typeof split.ephemeral_5m_input_tokens === 'number' || typeof split.ephemeral_1h_input_tokens === 'number')) {
    set('cacheWrite5m', split.ephemeral_5m_input_tokens ?? 0);
    set('cacheWrite1h', split.ephemeral_1h_input_tokens ?? 0);
  } else if (typeof u.cache_creation_input_tokens === 'number') {
    // No split given: all of it at the 5-minute rate, the API's default lifetime.
    set('cacheWrite5m', u.cache_creation_input_tokens);
    set('cacheWrite1h', 0);
  }
}

function complete(p: Partial<Record<keyof TokenUsage, number>>): TokenUsage {
  return {
    input: p.input ?? 0,
    output: p.output ?? 0,
    cacheWrite5m: p.cacheWrite5m ?? 0,
    cacheWrite1h: p.cacheWrite1h ?? 0,
    cacheRead: p.cacheRead ?? 0,
    webSearches: p.webSearches ?? 0,
  };
}

class StreamUsageReader implements UsageReader {
  readonly #decoder = new StringDecoder('utf8');
  #line = '';
  /** The current line outgrew MAX_EVENT_LINE: dropped up to its end. */
  #skipping = false;
  #seen = false;
  #model: string | null = null;
  readonly #usage: Partial<Record<keyof TokenUsage, number>> = {};

  write(chunk: Buffer): void {
    const text = this.#decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.#append(text.slice(start, nl));
      if (!this.#skipping) this.#onLine(this.#line.replace(/\r$/, ''));
      this.#line = '';
      this.#skipping = false;
      start = nl + 1;
    }
    this.#append(text.slice(start));
  }

  #append(part: string): void {
    if (this.#skipping) return;
    if (this.#line.length + part.length > MAX_EVENT_LINE) {
      this.#line = '';
      this.#skipping = true;
      return;
    }
    this.#line += part;
  }

  #onLine(line: string): void {
    // Only the two events that carry usage are parsed; the type is in the data itself.
    if (!line.startsWith('data:') || !/"message_(start|delta)"/.test(line)) return;
    let json: unknown;
    try {
      json = JSON.parse(line.slice(5));
    } catch {
      return;
    }
    const event = StreamEventSchema.safeParse(json);
    if (!event.success) return;
    if (event.data.type === 'message_start') {
      this.#model = event.data.message.model ?? null;
      if (event.data.message.usage) merge(this.#usage, event.data.message.usage);
    } else if (event.data.usage) merge(this.#usage, event.data.usage);
    this.#seen = true;
  }

  result(): MeteredCall | undefined {
    return this.#seen ? { model: this.#model, usage: complete(this.#usage) } : undefined;
  }
}

class JsonUsageReader implements UsageReader {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #tooLarge = false;

  write(chunk: Buffer): void {
    if (this.#tooLarge) return;
    this.#size += chunk.length;
    if (this.#size > MAX_JSON_BODY) {
      this.#tooLarge = true;
      this.#chunks.length = 0;
      return;
    }
    this.#chunks.push(chunk);
  }

  result(): MeteredCall | undefined {
    if (this.#tooLarge || this.#size === 0) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(this.#chunks).toString('utf8'));
    } catch {
      return undefined;
    }
    const message = WholeMessageSchema.safeParse(json);
    if (!message.success) return undefined;
    const usage: Partial<Record<keyof TokenUsage, number>> = {};
    merge(usage, message.data.usage);
    return { model: message.data.model ?? null, usage: complete(usage) };
  }
}

/** The calls metered since it was last taken: one turn's spend. */
export class SpendTally {
  #costUsd: number | null = 0;
  #inputTokens = 0;
  #outputTokens = 0;

  add(call: MeteredCall): void {
    const cost = callCostUsd(call);
    this.#costUsd = this.#costUsd === null || cost === null ? null : this.#costUsd + cost;
    this.#inputTokens += call.usage.input;
    this.#outputTokens += call.usage.output;
  }

  /** The spend so far (cost null when a call's price is not known), and a fresh start. */
  take(): { costUsd: number | null; inputTokens: number; outputTokens: number } {
    const spent = { costUsd: this.#costUsd, inputTokens: this.#inputTokens, outputTokens: this.#outputTokens };
    this.#costUsd = 0;
    this.#inputTokens = 0;
    this.#outputTokens = 0;
    return spent;
  }
}
