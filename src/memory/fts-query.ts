// What a person or an agent types into a memory search, made into an FTS5 query that cannot be a syntax error:
// every word and "quoted phrase" becomes a quoted FTS5 string (so AND, OR, NEAR, column filters and stray
// punctuation in the text are only words or nothing), a word ending in * stays a prefix query.

export interface FtsQuery {
  /** Every term must match (the usual query). */
  all: string;
  /** Any term may match (the fallback when no message has them all). */
  any: string;
  terms: number;
}

/** A term of the query: a word or a phrase, and whether it is a prefix. */
interface Term {
  text: string;
  prefix: boolean;
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * Outside quotes, words are runs of letters and digits (as the index's unicode61 tokenizer splits them, so
 * "plumber's" is "plumber" and "s"); a `*` right after a word makes it a prefix. Text in double quotes is one
 * phrase; an unclosed quote runs to the end.
 */
function terms(input: string): Term[] {
  const out: Term[] = [];
  let word = '';
  let phrase: string | undefined;
  const endWord = (prefix: boolean) => {
    if (word) out.push({ text: word, prefix });
    word = '';
  };
  for (const ch of input) {
    if (phrase !== undefined) {
      if (ch === '"') {
        if (phrase.trim()) out.push({ text: phrase.trim(), prefix: false });
        phrase = undefined;
      } else phrase += ch;
    } else if (ch === '"') {
      endWord(false);
      phrase = '';
    } else if (WORD_CHAR.test(ch)) word += ch;
    else endWord(ch === '*' && word !== '');
  }
  endWord(false);
  if (phrase?.trim()) out.push({ text: phrase.trim(), prefix: false });
  return out;
}

const quoted = (t: Term) => `"${t.text.replaceAll('"', '""')}"${t.prefix ? '*' : ''}`;

/** undefined when the text has no word to search for. */
export function toFtsQuery(input: string): FtsQuery | undefined {
  const list = terms(input);
  if (list.length === 0) return undefined;
  const parts = list.map(quoted);
  // Any-word matching leaves out one-letter words ("plumber's" → s), which would match nearly everything.
  const some = list.filter((t) => t.prefix || [...t.text].length > 1).map(quoted);
  return { all: parts.join(' '), any: (some.length > 0 ? some : parts).join(' OR '), terms: list.length };
}
