// What the status line says while the assistant works: "Andy is working… using Bash: ls -la". Built from the
// live `typing` and `activity` notices; empty when the assistant is idle.
import { terminalText } from '../terminal-text.js';

/** The words for an agent's step, or null for a step not worth showing (the web page shows the same). */
export function progressText(stage: string, detail: string | null): string | null {
  if (stage === 'tool') return detail ? `using ${terminalText(detail)}` : 'using a tool';
  if (stage === 'model_request') return 'thinking…';
  if (stage === 'spawned') return 'starting…';
  return null;
}

export class StatusLine {
  #working = false;
  #progress: string | null = null;
  #assistant: string;
  readonly #show: (text: string | null) => void;

  constructor(assistant: string, show: (text: string | null) => void) {
    this.#assistant = assistant;
    this.#show = show;
  }

  set assistant(name: string) {
    this.#assistant = name;
    this.#update();
  }

  typing(working: boolean): void {
    this.#working = working;
    if (!working) this.#progress = null;
    this.#update();
  }

  /** A step of the agent; shown only during a turn (an agent started ahead of a message is not working for anyone). */
  activity(stage: string, detail: string | null): void {
    const progress = progressText(stage, detail);
    if (progress === null || !this.#working) return;
    this.#progress = progress;
    this.#update();
  }

  /** A reply arrived: the line goes until a notice says the assistant still works. */
  replied(): void {
    this.#progress = null;
    this.#working = false;
    this.#update();
  }

  #update(): void {
    this.#show(this.#working ? `${this.#assistant} is working…${this.#progress ? ` ${this.#progress}` : ''}` : null);
  }
}
