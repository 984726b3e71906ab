// @ts-check
// What one group remembers: its CLAUDE.md and notes in memory/ (read as the chat renders Markdown, edited and
// saved), its archived conversations (read only), and a search over the same index its agent's search_memory
// uses. A save names the version it was opened at: when the agent wrote the file meanwhile, nothing is saved,
// the page says so in plain words and the person's text stays in the box.
import { ApiError, memoryFile, memoryFiles, saveMemoryFile, searchMemory } from '../api.js';
import { h, replace } from '../dom.js';
import { attempt } from '../errors.js';
import { dateTime, timeAgo } from '../format.js';
import { renderMarkdown } from '../markdown.js';
import { serialized } from '../serialized.js';
import { groupLabel, state } from '../state.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').MemoryFile} MemoryFile
 * @typedef {import('../types.js').MemoryHit} MemoryHit
 * @typedef {import('../types.js').GroupView} GroupView
 */

const ROOT_FILE = 'CLAUDE.md';
const ARCHIVES = 'conversations/';

/** @param {string} folder */
export const memoryHref = (folder) => `#/memory/${encodeURIComponent(folder)}`;

/**
 * The open file: what was read (null text: the file is not there yet) and, while editing, the box.
 * @typedef {{ path: string, text: string | null, version: string | null, editable: boolean, editor: HTMLFormElement | null }} OpenFile
 */

/**
 * @param {HTMLElement} root
 * @param {string | null} folder null: the main group's
 * @returns {View}
 */
export function mountMemory(root, folder) {
  const group = folder === null ? (state.groups.find((g) => g.isMain) ?? state.groups[0]) : state.groups.find((g) => g.folder === folder);
  if (!group) {
    replace(
      root,
      h(
        'section',
        { class: 'page', id: 'memory' },
        h('h2', {}, 'Memory'),
        h('p', { class: 'empty' }, folder === null ? 'No groups yet.' : `No group has the folder “${folder}”.`),
      ),
    );
    return {};
  }
  const g = group;
  // Not a <nav>: the page's navigation styles every nav (a row at the top on phones).
  const filesBox = h('section', { class: 'memory-files', 'aria-label': 'Memory files' });
  const fileBox = h('article', { id: 'memory-file', class: 'memory-file' });
  const query = h('input', {
    type: 'search',
    id: 'memory-query',
    class: 'memory-query',
    name: 'q',
    maxlength: 500,
    required: true,
    placeholder: 'e.g. trip march, "exact phrase", plumb*',
    'aria-label': 'Search this group’s memory',
  });
  const searchForm = h('form', { class: 'memory-search inline-form', role: 'search' }, query, h('button', { type: 'submit' }, 'Search'));
  const hitsBox = h('div', { id: 'memory-hits', 'aria-live': 'polite' });
  replace(
    root,
    h(
      'section',
      { class: 'page', id: 'memory', 'data-folder': g.folder },
      h('h2', {}, `Memory of ${groupLabel(g)}`),
      h(
        'p',
        { class: 'hint' },
        'What this group’s agent remembers: its CLAUDE.md, loaded into every conversation, its notes in memory/, and its archived conversations. The search covers these and everything said in the chat, as the agent’s own search does.',
      ),
      searchForm,
      hitsBox,
      h('div', { class: 'memory-layout' }, filesBox, fileBox),
    ),
  );

  /** @type {MemoryFile[]} */
  let files = [];
  /** @type {OpenFile | null} */
  let open = null;
  /** Counts what was opened, so that only the latest choice is shown. */
  let opening = 0;

  // Made once: a re-render of the list (after a save, a refresh) keeps what is typed in it.
  const newNote = h('input', {
    name: 'note',
    class: 'memory-new-name',
    maxlength: 120,
    placeholder: 'new note, e.g. people',
    'aria-label': 'Name of a new note',
  });
  const newForm = h('form', { class: 'memory-new inline-form' }, newNote, h('button', { type: 'submit', class: 'secondary' }, 'New note'));
  newForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = newNote.value.trim().replace(/\.md$/i, '');
    if (name === '') return;
    const path = `memory/${name}.md`;
    newNote.value = '';
    const existing = files.find((f) => f.path === path);
    if (existing) void attempt(() => openFile(path));
    else startEditing({ path, text: null, version: null, editable: true, editor: null });
  });

  const renderFiles = () => {
    const notes = files.filter((f) => !f.path.startsWith(ARCHIVES) && f.path !== ROOT_FILE).sort((a, b) => a.path.localeCompare(b.path));
    const archives = files.filter((f) => f.path.startsWith(ARCHIVES)).sort((a, b) => b.modifiedAt.localeCompare(a.modifiedAt));
    const rootFile = files.find((f) => f.path === ROOT_FILE);
    /** @param {string} path @param {MemoryFile | undefined} f */
    const item = (path, f) => {
      const link = h('a', { href: '#', 'data-path': path, 'aria-current': open?.path === path ? 'true' : null }, path);
      link.addEventListener('click', (e) => {
        e.preventDefault();
        void show(path);
      });
      return h(
        'li',
        {},
        link,
        f
          ? h('time', { class: 'note', datetime: f.modifiedAt, title: dateTime(f.modifiedAt) }, timeAgo(f.modifiedAt))
          : h('span', { class: 'note' }, 'not there yet'),
      );
    };
    replace(
      filesBox,
      h('h3', {}, 'Memory files'),
      h('ul', { id: 'memory-notes', class: 'file-list' }, item(ROOT_FILE, rootFile), ...notes.map((f) => item(f.path, f))),
      newForm,
      h('h3', {}, 'Archived conversations'),
      archives.length === 0
        ? h('p', { class: 'empty' }, 'None yet: a conversation is archived when it is compacted or cleared.')
        : h('ul', { id: 'memory-archives', class: 'file-list' }, ...archives.map((f) => item(f.path, f))),
    );
  };

  const renderFile = () => {
    if (open === null) {
      replace(fileBox, h('p', { class: 'note' }, 'Loading…'));
      return;
    }
    const current = open;
    const head = h('header', { class: 'memory-file-head' }, h('h3', {}, h('code', {}, current.path)));
    if (current.editor) {
      replace(fileBox, head, current.editor);
      return;
    }
    if (current.editable) {
      const edit = h('button', { type: 'button', class: 'secondary', id: 'memory-edit' }, current.text === null ? 'Write it' : 'Edit');
      edit.addEventListener('click', () => startEditing(current));
      head.appendChild(edit);
    } else head.appendChild(h('span', { class: 'note' }, 'read only: the record of what was said'));
    replace(
      fileBox,
      head,
      current.text === null
        ? h('p', { class: 'empty' }, `There is no ${current.path} yet.`)
        : h('div', { class: 'body md memory-text' }, renderMarkdown(current.text)),
    );
  };

  /** @param {OpenFile} file */
  const startEditing = (file) => {
    opening++;
    open = { ...file, editor: editor(g.folder, file, saved, cancelled) };
    renderFiles();
    renderFile();
    open.editor?.querySelector('textarea')?.focus();
  };
  const cancelled = () => {
    if (open === null) return;
    // A new note given up: back to CLAUDE.md.
    if (open.text === null && !files.some((f) => f.path === open?.path) && open.path !== ROOT_FILE) {
      void show(ROOT_FILE);
      return;
    }
    open = { ...open, editor: null };
    renderFiles();
    renderFile();
  };
  /** @param {string} path */
  const saved = (path) => {
    void attempt(async () => {
      await reloadFiles();
      await openFile(path);
    });
  };

  /** @param {string} path */
  const openFile = async (path) => {
    const mine = ++opening;
    const entry = files.find((f) => f.path === path);
    const editable = entry ? entry.editable : !path.startsWith(ARCHIVES);
    /** @type {OpenFile} */
    let next;
    try {
      const read = await memoryFile(g.folder, path);
      next = { path, text: read.text, version: read.version, editable, editor: null };
    } catch (err) {
      // CLAUDE.md not there yet (or not a plain file): it can be written afresh.
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      next = { path, text: null, version: null, editable, editor: null };
    }
    // What the person did since (opened another file, started a note) wins over this slower read.
    if (mine !== opening) return;
    open = next;
    renderFiles();
    renderFile();
  };

  /**
   * Opens a file and brings it into view (on a phone it is below the list and the hits).
   * @param {string} path
   */
  const show = (path) =>
    attempt(async () => {
      await openFile(path);
      fileBox.scrollIntoView({ block: 'nearest' });
    });

  const reloadFiles = async () => {
    files = await memoryFiles(g.folder);
    renderFiles();
  };

  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = query.value.trim();
    if (q === '') return;
    void attempt(async () => {
      replace(hitsBox, h('p', { class: 'note' }, 'Searching…'));
      try {
        const result = await searchMemory(g.folder, q);
        replace(
          hitsBox,
          hitList(result.hits, result.matched, (path) => void show(path)),
        );
      } catch (err) {
        replace(hitsBox);
        throw err;
      }
    });
  });

  const load = serialized(async () => {
    await reloadFiles();
    if (open === null) await openFile(ROOT_FILE);
  });
  // The list shows once it is read, in one piece: nothing moves under a first click.
  replace(filesBox, h('p', { class: 'note' }, 'Loading…'));
  renderFile();
  void load();
  return {
    // A file open for editing is never re-read under the person's hands.
    refresh: () => void (open?.editor ? reloadFiles() : load()),
  };
}

/**
 * Search hits with where each is from: a message (date, sender; its trace one click away) or a file line.
 * @param {MemoryHit[]} hits
 * @param {'all' | 'any' | 'none'} matched
 * @param {(path: string) => void} onFile
 */
function hitList(hits, matched, onFile) {
  if (hits.length === 0) return h('p', { class: 'empty' }, 'Nothing found.');
  return h(
    'div',
    {},
    matched === 'any' ? h('p', { class: 'note' }, 'Nothing has all the words; these have some.') : null,
    h(
      'ol',
      { class: 'memory-hits' },
      ...hits.map((hit) => {
        if ('id' in hit)
          return h(
            'li',
            { class: 'hit', 'data-message': hit.id },
            h(
              'p',
              { class: 'hit-source' },
              h('a', { href: `#/trace/${encodeURIComponent(hit.id)}`, title: 'what happened to this message' }, `message ${hit.id}`),
              ` · ${hit.time} · `,
              h('span', { class: 'sender' }, hit.sender),
            ),
            snippet(hit.snippet),
          );
        const open = h('a', { href: '#', 'data-path': hit.file }, `${hit.file}:${hit.line}`);
        open.addEventListener('click', (e) => {
          e.preventDefault();
          onFile(hit.file);
        });
        return h(
          'li',
          { class: 'hit', 'data-file': hit.file, 'data-line': hit.line },
          h('p', { class: 'hit-source' }, open),
          snippet(hit.snippet),
        );
      }),
    ),
  );
}

/**
 * A snippet with its matched words, which the search marks [like this], highlighted.
 * @param {string} text
 */
function snippet(text) {
  const p = h('p', { class: 'snippet' });
  let last = 0;
  for (const m of text.matchAll(/\[([^[\]\n]+)\]/g)) {
    p.append(text.slice(last, m.index), h('mark', {}, m[1] ?? ''));
    last = (m.index ?? 0) + m[0].length;
  }
  p.append(text.slice(last));
  return p;
}

/**
 * The edit box. A refusal because the file changed meanwhile keeps the text, shows the file as it is now, and
 * says that saving again replaces it.
 * @param {string} folder
 * @param {OpenFile} file
 * @param {(path: string) => void} onSaved
 * @param {() => void} onCancel
 */
function editor(folder, file, onSaved, onCancel) {
  let version = file.version;
  const text = h('textarea', { id: 'memory-text', name: 'text', rows: 18, spellcheck: 'true', 'aria-label': `Text of ${file.path}` });
  text.value = file.text ?? '';
  const save = h('button', { type: 'submit', id: 'memory-save' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'memory-cancel' }, 'Cancel');
  const problem = h('div', { id: 'memory-problem', class: 'memory-problem', role: 'alert', hidden: true });
  const form = h('form', { class: 'memory-editor' }, problem, text, h('div', { class: 'inline-form' }, save, cancel));
  cancel.addEventListener('click', onCancel);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save.disabled = true;
    void attempt(async () => {
      try {
        await saveMemoryFile(folder, file.path, text.value, version);
        onSaved(file.path);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409)) throw err;
        const now = await memoryFile(folder, file.path).catch(() => null);
        version = now?.version ?? null;
        replace(
          problem,
          h(
            'p',
            {},
            `Not saved: ${file.path} changed since you opened it (the agent may have written it meanwhile). Your text is still here. `,
            now === null
              ? 'The file is gone now; saving again creates it with your text.'
              : 'Below is what the file says now; saving again replaces that with your text.',
          ),
          now === null ? null : h('details', {}, h('summary', {}, 'The file as it is now'), h('pre', { class: 'memory-now' }, now.text)),
        );
        problem.hidden = false;
      } finally {
        save.disabled = false;
      }
    });
  });
  return form;
}
