import { chmodSync } from 'node:fs';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/** Opens the store and brings its schema up to date. WAL: readers never block the single writer. */
export function openDb(path: string): Db {
  const db = new Database(path);
  // Private before the first write: SQLite gives the -wal and -shm files the same mode.
  chmodSync(path, 0o600);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a crash of pincer; only an OS crash or power loss can drop the newest commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`store schema version ${current} is newer than this pincer (${MIGRATIONS.length}); upgrade pincer`);
  }
  MIGRATIONS.slice(current).forEach((sql, i) => {
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${current + i + 1}`);
    })();
  });
}
