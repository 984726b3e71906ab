import type { SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';

/** The image formats the Messages API takes. */
export type ImageMediaType = 'image/jpeg' | 'image/png' | 'image/gif' | 'image/webp';

export interface PromptTextBlock {
  type: 'text';
  text: string;
}

export interface PromptImageBlock {
  type: 'image';
  source: { type: 'base64'; media_type: ImageMediaType; data: string };
}

/** One user turn: plain text, or content blocks (text and images) as the Messages API takes them. */
export type PromptContent = string | readonly (PromptTextBlock | PromptImageBlock)[];

/** The streaming prompt of a live session: user turns pushed by the host, ended by close(). */
export class PromptStream implements AsyncIterable<SDKUserMessage> {
  readonly #pending: SDKUserMessage[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  push(prompt: PromptContent): void {
    if (this.#closed) throw new Error('prompt stream is closed');
    // A copy: the caller's array cannot change a turn that is already queued.
    const content: SDKUserMessage['message']['content'] = typeof prompt === 'string' ? prompt : prompt.map((b) => ({ ...b }));
    this.#pending.push({ type: 'user', message: { role: 'user', content }, parent_tool_use_id: null, session_id: '' });
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
