// @ts-check
// The login form: trades the API token for a session cookie, then opens the page.

const form = document.getElementById('login-form');
const token = document.getElementById('token');
const button = document.getElementById('login');
const error = document.getElementById('login-error');

/** @param {string} message */
function fail(message) {
  if (error) error.textContent = message;
}

if (new URLSearchParams(location.search).has('expired')) fail('That login link has expired or was already used: log in with the token.');

if (form instanceof HTMLFormElement && token instanceof HTMLInputElement && button instanceof HTMLButtonElement) {
  token.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fail('');
    button.disabled = true;
    try {
      const response = await fetch('/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: token.value }),
      });
      if (response.ok) {
        location.replace('/');
        return;
      }
      const data = await response.json().catch(() => null);
      if (response.status === 401 && data && typeof data.error === 'string') fail(data.error);
      else fail(`Logging in failed (status ${response.status}${data && typeof data.error === 'string' ? `: ${data.error}` : ''}).`);
    } catch (err) {
      fail(`Cannot reach pincer: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      button.disabled = false;
    }
  });
}
