// The terminal below the conversation: one status line and readline's prompt with what the user is typing.
// Text is printed above them: both are erased, the text written, then both drawn again, the partial input
// intact. Without a capable terminal (a pipe, TERM=dumb) text is simply written and there is no status line.
import { clearScreenDown, cursorTo, type Interface, moveCursor } from 'node:readline';

export class Screen {
  readonly #rl: Interface;
  readonly #out: NodeJS.WriteStream;
  readonly #interactive: boolean;
  /** How the status line looks (applied after it is cut to one row, so no escape is cut). */
  readonly #styleStatus: (text: string) => string;
  #status: string | null = null;
  /** The prompt is on screen (after the history): from now on text goes above it. */
  #open = false;

  constructor(rl: Interface, out: NodeJS.WriteStream, interactive: boolean, styleStatus: (text: string) => string) {
    this.#rl = rl;
    this.#out = out;
    this.#interactive = interactive;
    this.#styleStatus = styleStatus;
  }

  /** Shows the prompt below what was printed so far. */
  open(): void {
    this.#open = true;
    this.#redraw();
  }

  /** Writes a block of lines above the status line and the prompt. */
  print(text: string): void {
    if (!this.#interactive || !this.#open) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#erase();
    this.#out.write(`${text}\n`);
    this.#redraw();
  }

  /** Shows `text` as the one status line (replacing the one shown), or removes it (null). */
  status(text: string | null): void {
    if (!this.#interactive || text === this.#status) return;
    if (!this.#open) {
      this.#status = text;
      return;
    }
    this.#erase();
    this.#status = text;
    this.#redraw();
  }

  /**
   * After Enter: takes the line readline echoed off the screen, so the message is printed in its place once
   * pincer has stored it (with its id). The cursor ends where the next prompt goes.
   */
  dropEcho(line: string): void {
    if (!this.#interactive) return;
    const columns = this.#out.columns || 80;
    moveCursor(this.#out, 0, -(Math.floor((this.#rl.getPrompt().length + line.length) / columns) + 1));
    cursorTo(this.#out, 0);
    clearScreenDown(this.#out);
  }

  /** Erases the status line, the prompt and the input (which may wrap over several rows). */
  #erase(): void {
    const { rows } = this.#rl.getCursorPos();
    moveCursor(this.#out, 0, -rows - (this.#status === null ? 0 : 1));
    cursorTo(this.#out, 0);
    clearScreenDown(this.#out);
  }

  #redraw(): void {
    if (this.#status !== null) this.#out.write(`${this.#styleStatus(fit(this.#status, (this.#out.columns || 80) - 1))}\n`);
    // readline redraws the input by first moving up as many rows as its cursor was below the prompt at its last
    // redraw (its `prevRows`, not in the typings; 0 when unknown): those rows are given to it, to move up over.
    const previousRows = (this.#rl as unknown as { prevRows?: number }).prevRows ?? 0;
    if (previousRows > 0) this.#out.write('\n'.repeat(previousRows));
    this.#rl.prompt(true);
  }
}

/** One row: a status line that wrapped would break the erase arithmetic above. */
function fit(text: string, columns: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= columns ? line : `${line.slice(0, Math.max(0, columns - 1))}…`;
}
