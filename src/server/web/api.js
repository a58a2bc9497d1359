// Talking to the server that served the page (relative URLs only: the page never reaches
// another host), and showing every refusal where a person sees it.

const errorBox = () => document.getElementById('error');

export function showError(message) {
  const box = errorBox();
  box.textContent = message;
  box.hidden = false;
}

export function clearError() {
  errorBox().hidden = true;
  errorBox().textContent = '';
}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = document.getElementById('api-key').value.trim();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

// The server's {"error": {"message"}} text, or what the transport said.
async function refusal(res) {
  let text = '';
  try {
    text = await res.text();
    const j = JSON.parse(text);
    if (j && j.error && j.error.message) return `The server refused (HTTP ${res.status}): ${j.error.message}`;
  } catch (e) { /* not JSON: show the raw body */ }
  return `The server refused (HTTP ${res.status}): ${text || res.statusText}`;
}

export class ServerError extends Error {}

async function send(path, body) {
  let res;
  try {
    res = body === undefined ? await fetch(path, { headers: headers() })
                             : await fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify(body) });
  } catch (e) {
    throw new ServerError(`Could not reach the server (${path}): ${e.message}`);
  }
  if (!res.ok) throw new ServerError(await refusal(res));
  return res;
}

export async function getJson(path) { return (await send(path)).json(); }
export async function postJson(path, body) { return (await send(path, body)).json(); }
export async function postBlob(path, body) { return (await send(path, body)).blob(); }

// A streamed completion: calls onPiece(text) per sampled token (text may be empty: a token
// can be part of a character, or text held back), returns the last event (finish reason,
// usage, steering). Log-probabilities are asked for so that every token has its own event.
// A refusal before the stream starts throws ServerError.
export async function streamCompletion(body, onPiece) {
  body = { ...body, stream: true };
  if (body.messages) Object.assign(body, { logprobs: true, top_logprobs: 0 });
  else body.logprobs = 0;
  const res = await send(body.messages ? '/v1/chat/completions' : '/v1/completions', body);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '', last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      if (!event.startsWith('data: ')) continue;  // keep-alive comments
      const data = event.slice(6);
      if (data === '[DONE]') return last;
      const j = JSON.parse(data);
      if (j.error) throw new ServerError(`The server failed the request: ${j.error.message}`);
      const choice = j.choices[0];
      const text = body.messages ? (choice.delta && choice.delta.content) || '' : choice.text || '';
      if (choice.logprobs) onPiece(text);
      last = j;
    }
  }
  return last;
}

// The request body of a completion of `prompt`, as a chat turn or plain text.
export function completionBody(prompt, chat, maxTokens, temperature) {
  const body = { max_tokens: maxTokens, temperature, seed: 0 };
  if (chat) body.messages = [{ role: 'user', content: prompt }];
  else body.prompt = prompt;
  return body;
}

// Offers `blob` as a file download (no network: an object URL of data already here).
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Runs an async UI action: clears the error box, disables the button meanwhile, shows a refusal.
export async function guarded(button, action) {
  clearError();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (e) {
    showError(e instanceof ServerError ? e.message : `Unexpected error in the page: ${e.message}`);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(2) : x.toFixed(digits);
}
