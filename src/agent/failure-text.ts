// Turns the error text a failed turn ends with (Claude Code's own wording, which names in-sandbox ports and
// hints meant for its terminal user) into one plain line for the chat: what happened, and what to do.

export interface FailureContext {
  /** How many times Claude Code sent the request before it gave up (its retries + 1), when known. */
  tries?: number;
}

/** Longest line an unrecognized error is cut to. */
export const FAILURE_TEXT_CHARS = 200;

const SECRET = /sk-ant-[A-Za-z0-9_-]*/g;

/** Hides anything shaped like an Anthropic key or token. */
export function redactSecrets(text: string): string {
  return text.replace(SECRET, 'sk-ant-[redacted]');
}

/** The first non-empty line, whitespace collapsed, cut to `max` characters. */
function firstLine(text: string, max: number): string {
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1).trimEnd()}…` : line;
}

/** The HTTP status Claude Code reports: `API Error: 529 Overloaded…`, `Request rejected (429) · …`. */
function httpStatus(text: string): number | undefined {
  const m = /API Error:[^0-9\n]*?\b([45]\d\d)\b/.exec(text) ?? /\((4\d\d|5\d\d)\)/.exec(text);
  return m?.[1] ? Number(m[1]) : undefined;
}

/**
 * One plain line (no trailing newline, no JSON, no secrets) saying why a turn failed, starting in lower case
 * so that it reads after a prefix such as "The agent could not finish: ".
 */
export function describeTurnFailure(raw: string, context: FailureContext = {}): string {
  const text = redactSecrets(raw);
  const status = httpStatus(text);
  const tried = context.tries && context.tries > 1 ? `; tried ${context.tries} times` : '';

  if (
    status === 401 ||
    /invalid (x-)?api[ -]key|authentication[_ ](error|failed)|invalid bearer token|oauth token has expired/i.test(text)
  ) {
    return "the model service refused the credentials (401 invalid credentials): check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) in pincer's .env, then restart pincer.";
  }
  if (status === 429 || /rate[_ ]limit/i.test(text)) {
    return `the model service is rate limiting requests (429)${tried}. Please try again in a minute.`;
  }
  if (status === 529 || /overloaded/i.test(text)) {
    return `the model service is overloaded (529)${tried}. Please try again in a few minutes.`;
  }
  if (/could not reach the model endpoint|ECONNREFUSED|ENOTFOUND|EAI_AGAIN/i.test(text)) {
    return `pincer could not reach the model service (${/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/i.exec(text)?.[0] ?? 'no connection'})${tried}. Check ANTHROPIC_BASE_URL and the network.`;
  }
  if (status !== undefined && status >= 500) {
    return `the model service had an internal error (${status})${tried}. Please try again shortly.`;
  }
  if (/ECONNRESET|EPIPE|socket hang up|connection (to the API )?(was )?(lost|dropped|reset|closed|terminated)/i.test(text)) {
    return `the connection to the model service was cut off before the answer was complete${tried}. Please try again.`;
  }
  if (/timed out|ETIMEDOUT/i.test(text)) {
    return `the model service did not answer in time${tried}. Please try again.`;
  }
  return firstLine(text, FAILURE_TEXT_CHARS) || 'no reason was given';
}
