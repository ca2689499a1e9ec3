// The demo's story in a browser: each button sends one request to this
// server and prints the status, the WWW-Authenticate challenge when there is
// one, and the body. The page keeps the tokens of the last login or refresh
// in memory only; the cookie is HttpOnly, so no script here can read it.
"use strict";

const byId = (id) => document.getElementById(id);
let refreshToken = "";
let requests = 0;

// send makes one request and prints what came back into the step's result.
// With bearer set it sends that token in an Authorization header and no
// cookie, as a client that only holds a copied token would.
async function send(step, method, path, { json, bearer } = {}) {
  const init = { method, headers: {}, cache: "no-store", credentials: "same-origin" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  if (bearer !== undefined) {
    init.headers["Authorization"] = "Bearer " + bearer;
    init.credentials = "omit";
  }
  const out = byId(step + "-result");
  let res, text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (err) {
    print(out, method, path, "error", "network error: " + err.message, "");
    return null;
  }
  const challenge = res.headers.get("WWW-Authenticate") || "";
  let lines = [];
  if (challenge) lines.push("WWW-Authenticate: " + challenge);
  lines.push(text.trim() === "" ? "(no body)" : text.trim());
  print(out, method, path, String(res.status), lines.join("\n"), res.statusText);
  let body = null;
  try { body = JSON.parse(text); } catch (_) { /* not JSON: printed as is */ }
  return { status: res.status, body };
}

function print(out, method, path, status, text, statusText) {
  requests++;
  out.dataset.status = status;
  out.className = "result " + (status.startsWith("2") ? "ok" : "refused");
  out.textContent = `${method} ${path} → ${status} ${statusText}\n${text}`;
  const item = document.createElement("li");
  item.textContent = `${method} ${path} → ${status}`;
  item.className = out.className;
  byId("log").append(item);
  showCookie();
  document.body.dataset.requests = String(requests);
}

function showCookie() {
  byId("cookie").textContent = document.cookie === "" ? "(empty)" : document.cookie;
}

// keepPair remembers the tokens of a login or refresh answer.
function keepPair(r) {
  if (r && r.status === 200 && r.body) {
    byId("token").value = r.body.access_token || "";
    refreshToken = r.body.refresh_token || "";
  }
}

byId("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  keepPair(await send("login", "POST", "/login", {
    json: { username: byId("username").value, password: byId("password").value },
  }));
});
byId("me").addEventListener("click", () => send("me", "GET", "/me"));
byId("copy").addEventListener("click", () => { byId("pasted").value = byId("token").value; });
byId("logout").addEventListener("click", () => send("logout", "POST", "/logout"));
byId("replay").addEventListener("click", () =>
  send("replay", "GET", "/me", { bearer: byId("pasted").value.trim() }));
byId("refresh").addEventListener("click", async () =>
  keepPair(await send("refresh", "POST", "/refresh", { json: { refresh_token: refreshToken } })));
byId("logout-all").addEventListener("click", () => send("logout-all", "POST", "/logout-all"));
showCookie();
document.body.dataset.requests = "0";
