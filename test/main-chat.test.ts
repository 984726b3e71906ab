// PINCER_MAIN_CHAT: the owner's DM on a messenger becomes the main group; local:main stays an ordinary chat.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ensureMainGroup } from '../src/service/groups.js';
import { prepareState, type StateLayout } from '../src/service/layout.js';
import { Store } from '../src/store/index.js';

let home: string;
let layout: StateLayout;
let store: Store;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'pincer-main-'));
  layout = prepareState(home);
  store = new Store(layout.db);
});
afterEach(() => {
  store.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the main group', () => {
  test('out of the box it is local:main, with folder main', () => {
    ensureMainGroup(store, layout, 'Andy');
    const main = store.groups.list().filter((g) => g.isMain);
    assert.deepEqual(
      main.map((g) => [g.chatId, g.folder]),
      [['local:main', 'main']],
    );
  });

  test('PINCER_MAIN_CHAT moves the role to the owner’s DM, joined with its own folder and memory', () => {
    ensureMainGroup(store, layout, 'Andy');
    ensureMainGroup(store, layout, 'Andy', 'tg:4242');
    const main = store.groups.list().filter((g) => g.isMain);
    assert.deepEqual(
      main.map((g) => [g.chatId, g.folder, g.respondToAll]),
      [['tg:4242', 'owner', true]],
    );
    assert.equal(store.groups.get('local:main')?.isMain, false, 'the former main group stays, as an ordinary group');
    assert.ok(existsSync(join(layout.groupsDir, 'owner', 'CLAUDE.md')));
    // Idempotent across restarts.
    ensureMainGroup(store, layout, 'Andy', 'tg:4242');
    assert.equal(store.groups.list().filter((g) => g.isMain).length, 1);
  });

  test('an already joined chat keeps its folder when it becomes the main group', () => {
    store.chats.seen({ id: 'slack:D1', channel: 'slack', name: 'me', isGroup: false }, 1);
    store.groups.register({ chatId: 'slack:D1', folder: 'my-dm', trigger: '@Andy', respondToAll: false, isMain: false }, 1, 0);
    ensureMainGroup(store, layout, 'Andy', 'slack:D1');
    assert.equal(store.groups.get('slack:D1')?.folder, 'my-dm');
    assert.equal(store.groups.get('slack:D1')?.isMain, true);
  });
});
