// Who acts on pincer's administration, and how a refusal travels: shared by Control and its parts (memory).

export type Actor = { kind: 'owner' } | { kind: 'group'; chatId: string };

export type ControlErrorCode = 'invalid' | 'forbidden' | 'not_found' | 'conflict';

/** A refusal to show as it is: to the agent as a tool error, to API clients with a matching status. */
export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}
