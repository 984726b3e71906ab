// How a tool answers the agent: text on success; on a refusal or invalid argument, a tool error that
// says what was wrong (and that nothing changed), never an exception into the SDK.
export type ToolText = { content: Array<{ type: 'text'; text: string }>; isError?: boolean };

export function answer(run: () => string | object): ToolText {
  try {
    const result = run();
    return { content: [{ type: 'text', text: typeof result === 'string' ? result : JSON.stringify(result, null, 2) }] };
  } catch (err) {
    return { content: [{ type: 'text', text: `Error: ${err instanceof Error ? err.message : String(err)}` }], isError: true };
  }
}
