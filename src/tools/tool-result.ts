// How a tool answers the agent: text on success; on a refusal or invalid argument, a tool error that
// says what was wrong (and that nothing changed), never an exception into the SDK.
export type ToolText = { content: Array<{ type: 'text'; text: string }>; isError?: boolean };

const ok = (result: string | object): ToolText => ({
  content: [{ type: 'text', text: typeof result === 'string' ? result : JSON.stringify(result, null, 2) }],
});
const refused = (err: unknown): ToolText => ({
  content: [{ type: 'text', text: `Error: ${err instanceof Error ? err.message : String(err)}` }],
  isError: true,
});

export function answer(run: () => string | object): ToolText {
  try {
    return ok(run());
  } catch (err) {
    return refused(err);
  }
}

/** `answer` for work that waits (reading files). */
export async function answerLater(run: () => Promise<string | object>): Promise<ToolText> {
  try {
    return ok(await run());
  } catch (err) {
    return refused(err);
  }
}
