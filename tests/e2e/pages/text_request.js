"use strict";

const query = new URLSearchParams(window.location.search);
const horde = query.get("horde");
const key = query.get("key");
const closed = query.get("closed");
const log = { responses: [], errors: [] };
window.hordeLog = log;
window.hordeDone = false;

function show(id, text) {
  document.getElementById(id).textContent = text;
}

async function call(label, url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  log.responses.push({ label, status: response.status, body });
  return { status: response.status, body };
}

async function askForText() {
  const headers = { apikey: key, "Content-Type": "application/json", "Client-Agent": "e2e-browser:1:tests" };
  const payload = { prompt: "A browser asks:", params: { max_length: 16, n: 1 }, models: [] };
  const accepted = await call("async", `${horde}/api/v2/generate/text/async`, {
    method: "POST", headers, body: JSON.stringify(payload),
  });
  if (accepted.status !== 202) throw new Error(`async answered ${accepted.status}`);
  const id = accepted.body.id;
  window.hordeRequestId = id;
  show("request-id", id);
  for (let i = 0; i < 200; i++) {
    const status = await call("status", `${horde}/api/v2/generate/text/status/${id}`, { headers: { apikey: key } });
    show("state", status.body.done ? "done" : `waiting (${status.body.waiting} waiting)`);
    if (status.body.done) {
      log.text = status.body.generations.map((g) => g.text).join("\n");
      show("result", log.text);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error("the text never came");
}

async function readAnError() {
  const wrong = await call("wrong key", `${horde}/api/v2/generate/text/async`, {
    method: "POST",
    headers: { apikey: "not-a-key-of-this-horde", "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "nope", params: { max_length: 16 } }),
  });
  log.wrongKey = wrong;
}

async function tryTheClosedServer() {
  try {
    await fetch(closed, { headers: { apikey: key } });
    log.closedServer = "answered (CORS was not enforced)";
  } catch (error) {
    log.closedServer = `refused: ${error.name}`;
  }
}

(async () => {
  try {
    await askForText();
    await readAnError();
    await tryTheClosedServer();
  } catch (error) {
    log.errors.push(String(error));
    show("state", `failed: ${error}`);
  } finally {
    window.hordeDone = true;
  }
})();
