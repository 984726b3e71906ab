// @ts-check
// The server's JSON API, one function per call. The session cookie rides along (same origin); a 401 means the
// session ended, so the browser goes to the login page.
import { SessionEnded, UNREACHABLE } from './errors.js';

/**
 * @typedef {import('./types.js').GroupView} GroupView
 * @typedef {import('./types.js').SeenChat} SeenChat
 * @typedef {import('./types.js').ProviderView} ProviderView
 * @typedef {import('./types.js').MessagePage} MessagePage
 * @typedef {import('./types.js').SendResult} SendResult
 * @typedef {import('./types.js').TaskView} TaskView
 * @typedef {import('./types.js').TaskRun} TaskRun
 * @typedef {import('./types.js').Trace} Trace
 * @typedef {import('./types.js').UsageRow} UsageRow
 * @typedef {import('./types.js').StatusView} StatusView
 * @typedef {import('./types.js').MemoryFile} MemoryFile
 * @typedef {import('./types.js').MemoryFileContent} MemoryFileContent
 * @typedef {import('./types.js').MemorySearchResult} MemorySearchResult
 */

/** A refusal from the server, with its `error` text, or a request that never reached it (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * @param {'GET' | 'POST' | 'PATCH' | 'PUT'} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<any>} the parsed JSON answer (undefined for 204)
 */
async function request(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method, credentials: 'same-origin', headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ApiError(0, `${UNREACHABLE}; the page catches up when it is back (${method} ${path.split('?')[0]}: ${why})`);
  }
  if (response.status === 401) {
    location.replace('/login');
    throw new SessionEnded();
  }
  if (response.status === 204) return undefined;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const said = data !== null && typeof data === 'object' && typeof data.error === 'string' ? data.error : `status ${response.status}`;
    throw new ApiError(response.status, `${method} ${path.split('?')[0]} failed: ${said}`);
  }
  return data;
}

/** @param {string} part */
const enc = encodeURIComponent;

/** @returns {Promise<GroupView[]>} */
export async function listGroups() {
  return (await request('GET', '/api/v1/groups')).groups;
}

/** @returns {Promise<ProviderView[]>} the model providers a group can be set to, without their keys */
export async function listProviders() {
  return (await request('GET', '/api/v1/providers')).providers;
}

/** @returns {Promise<SeenChat[]>} chats pincer has seen but not joined */
export async function listSeenChats() {
  return (await request('GET', '/api/v1/chats')).chats;
}

/**
 * @param {{ chatId: string, folder?: string }} join
 * @returns {Promise<GroupView>}
 */
export async function joinChat(join) {
  return (await request('POST', '/api/v1/groups', join)).group;
}

/**
 * @param {string} folder
 * @param {{ trigger?: string, respondToAll?: boolean, model?: string | null, effort?: string | null, provider?: string | null, fallbackModel?: string | null }} change
 * @returns {Promise<GroupView>}
 */
export async function updateGroup(folder, change) {
  return (await request('PATCH', `/api/v1/groups/${enc(folder)}`, change)).group;
}

/**
 * The newest `latest` messages, or those after a cursor.
 * @param {string} chat
 * @param {{ latest: number } | { after: string }} which
 * @returns {Promise<MessagePage>}
 */
export function messages(chat, which) {
  const query = 'latest' in which ? `latest=${which.latest}` : `after=${enc(which.after)}`;
  return request('GET', `/api/v1/messages?chat=${enc(chat)}&${query}`);
}

/**
 * @param {string} chat
 * @param {string} text
 * @param {string} id the message's own id: sending it again (after a lost answer) stores it once
 * @returns {Promise<SendResult>}
 */
export function sendMessage(chat, text, id) {
  return request('POST', '/api/v1/messages', { chat, text, id });
}

/**
 * Tells pincer someone started typing in a local chat, so it may start the chat's agent ahead of the message.
 * Only a hint: it never fails, and an ended session shows on the next real call instead.
 * @param {string} chat
 * @returns {Promise<void>}
 */
export async function typing(chat) {
  try {
    await fetch('/api/v1/typing', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat }),
      // It may still be on its way when the page closes.
      keepalive: true,
    });
  } catch {
    // Offline, or pincer restarting: the message itself will say so.
  }
}

/** @returns {Promise<TaskView[]>} */
export async function listTasks() {
  return (await request('GET', '/api/v1/tasks')).tasks;
}

/**
 * @param {number} id
 * @param {'pause' | 'resume' | 'cancel'} action
 * @returns {Promise<TaskView>}
 */
export async function changeTask(id, action) {
  return (await request('POST', `/api/v1/tasks/${id}/${action}`, {})).task;
}

/**
 * @param {number} id
 * @returns {Promise<TaskRun[]>} newest first
 */
export async function taskRuns(id) {
  return (await request('GET', `/api/v1/tasks/${id}/runs?limit=50`)).runs;
}

/**
 * @param {string} messageId
 * @returns {Promise<Trace>}
 */
export function trace(messageId) {
  return request('GET', `/api/v1/messages/${enc(messageId)}/trace`);
}

/** @returns {Promise<UsageRow[]>} */
export async function usage(days = 30) {
  return (await request('GET', `/api/v1/usage?days=${days}`)).usage;
}

/**
 * @param {string} folder
 * @returns {Promise<MemoryFile[]>} a group's memory files
 */
export async function memoryFiles(folder) {
  return (await request('GET', `/api/v1/groups/${enc(folder)}/memory`)).files;
}

/**
 * @param {string} folder
 * @param {string} path
 * @returns {Promise<MemoryFileContent>} the file with the version a save must name
 */
export function memoryFile(folder, path) {
  return request('GET', `/api/v1/groups/${enc(folder)}/memory/file?path=${enc(path)}`);
}

/**
 * Saves a memory file whole; a 409 means it changed since `version` (null: it must not exist yet).
 * @param {string} folder
 * @param {string} path
 * @param {string} text
 * @param {string | null} version
 * @returns {Promise<{ path: string, version: string }>}
 */
export function saveMemoryFile(folder, path, text, version) {
  return request('PUT', `/api/v1/groups/${enc(folder)}/memory/file`, { path, text, version });
}

/**
 * Searches a group's messages and memory files, as its agent's search_memory does.
 * @param {string} folder
 * @param {string} query
 * @returns {Promise<MemorySearchResult>}
 */
export function searchMemory(folder, query) {
  return request('GET', `/api/v1/memory/search?group=${enc(folder)}&limit=20&q=${enc(query)}`);
}

/** @returns {Promise<StatusView>} */
export function status() {
  return request('GET', '/api/v1/status');
}

export async function logout() {
  await request('POST', '/logout');
}
