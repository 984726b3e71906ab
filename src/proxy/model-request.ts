// What a sandbox may ask the model endpoint to do on the owner's key. The key goes with Claude Code's calls
// only, but a call's body can still ask the endpoint itself to reach out: the API's MCP connector and its
// web fetch tool fetch any URL an agent names (past the group's egress policy, which governs only the
// sandbox's own connections), code execution runs containers billed apart from tokens. Claude Code sends none
// of these (its MCP servers and WebFetch run in the sandbox); they are taken out of the request. Web search is
// one Claude Code uses; it goes only where the group's policy lets the sandbox out at all.

/** Server tools the endpoint runs itself, by the prefix of their versioned type (`web_fetch_20250910`…). */
const ENDPOINT_FETCHES = ['web_fetch', 'code_execution', 'mcp_toolset'];
const WEB_SEARCH = 'web_search';
/** Request fields that make the endpoint act or bill beyond the tokens: the MCP connector, a code container. */
const ENDPOINT_FIELDS = ['mcp_servers', 'container'];
/**
 * The answer's `message_delta`, which carries the output tokens, echoes the stop sequence that matched: one
 * longer than the line the meter reads (64 KiB) would hide what the call cost. Claude Code's are short.
 */
const MAX_STOP_SEQUENCE = 1024;

export interface ScreenedRequest {
  body: Buffer;
  /** What was taken out, for the log; empty when the body goes as it came. */
  removed: string[];
}

/**
 * The request body with what the endpoint must not do for this sandbox taken out. A body that is not a JSON
 * object goes unchanged: the endpoint refuses it on its own.
 */
export function screenModelRequest(body: Buffer, webSearchAllowed: boolean): ScreenedRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { body, removed: [] };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { body, removed: [] };
  const request = parsed as Record<string, unknown>;
  const removed: string[] = [];
  for (const field of ENDPOINT_FIELDS) {
    if (field in request) {
      delete request[field];
      removed.push(field);
    }
  }
  if (Array.isArray(request.stop_sequences)) {
    const kept = request.stop_sequences.filter((x: unknown) => typeof x !== 'string' || x.length <= MAX_STOP_SEQUENCE);
    if (kept.length !== request.stop_sequences.length) {
      request.stop_sequences = kept;
      removed.push(`stop sequences over ${MAX_STOP_SEQUENCE} characters`);
    }
  }
  if (Array.isArray(request.tools)) {
    const names = new Set<string>();
    request.tools = request.tools.filter((tool: unknown) => {
      const { type, name } = typeof tool === 'object' && tool !== null ? (tool as { type?: unknown; name?: unknown }) : {};
      if (typeof type !== 'string') return true;
      const refused = ENDPOINT_FETCHES.some((p) => type.startsWith(p)) || (type.startsWith(WEB_SEARCH) && !webSearchAllowed);
      if (!refused) return true;
      removed.push(`tool ${type.slice(0, 64)}`);
      if (typeof name === 'string') names.add(name);
      return false;
    });
    // A choice of a tool taken out would make the endpoint refuse the whole call.
    const choice = request.tool_choice as { name?: unknown } | undefined;
    if (typeof choice?.name === 'string' && names.has(choice.name)) delete request.tool_choice;
  }
  return removed.length === 0 ? { body, removed } : { body: Buffer.from(JSON.stringify(request)), removed };
}
