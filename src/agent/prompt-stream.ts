import type { SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';

/** The streaming prompt of a live session: user turns pushed by the host, ended by close(). */
export class PromptStream implements AsyncIterable<SDKUserMessage> {
  readonly #pending: SDKUserMessage[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  push(text: string): void {
    if (this.#closed) throw new Error('prompt stream is closed');
    this.#pending.push({ type: 'user', message: { role: 'user', content: text }, parent_tool_use_id: null, session_id: '' });
    this.#wake?.();
  }

  /** Ends the input: Claude Code finishes what it has and exits. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SDKUserMessage> {
    while (true) {
      const next = this.#pending.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
