// The JSON API client: same origin, the session cookie goes by itself; state-changing
// requests carry the session's CSRF token.

let csrf = '';

export function setCsrf(token) { csrf = token || ''; }

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const opts = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'The box cannot be reached. Check the network and try again.');
  }
  if (resp.status === 204) return null;
  let data = null;
  const type = resp.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) data = await resp.json();
  if (!resp.ok) {
    const message = (data && data.error) || `request failed (${resp.status})`;
    const err = new ApiError(resp.status, message, data && data.field);
    if (data && Array.isArray(data.lines)) err.lines = data.lines; // per-line import errors
    if (resp.status === 401 && path !== '/api/v1/login') {
      window.dispatchEvent(new CustomEvent('pbx-logged-out'));
    }
    throw err;
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

// A non-JSON request (a file upload, a download): returns the Response; errors as api().
export async function raw(method, path, body, contentType) {
  const headers = { 'X-CSRF-Token': csrf };
  if (contentType) headers['Content-Type'] = contentType;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'The box cannot be reached. Check the network and try again.');
  }
  if (!resp.ok) {
    let data = null;
    if ((resp.headers.get('Content-Type') || '').startsWith('application/json')) data = await resp.json();
    if (resp.status === 413) data = { error: 'the file is too large for a backup', field: 'file' };
    throw new ApiError(resp.status, (data && data.error) || `request failed (${resp.status})`, data && data.field);
  }
  return resp;
}
