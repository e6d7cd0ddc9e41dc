// MADA's page: sign in with a token, today's list with checkboxes, the month, and
// live updates through the GraphQL subscription (graphql-transport-ws). No library.
"use strict";

const state = { token: null, day: null, socket: null };
const $ = (id) => document.getElementById(id);

function localDay() {
  const d = new Date();
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

async function gql(query, variables) {
  const reply = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + state.token },
    body: JSON.stringify({ query, variables }),
  });
  const body = await reply.json();
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    const error = new Error(e.message);
    error.code = e.extensions && e.extensions.code;
    throw error;
  }
  return body.data;
}

const TODAY = `query Today($date: Date!, $month: Month!, $after: Token) {
  me
  today(date: $date, after: $after) { date done total items { goalId title memo done category { name colour } } }
  calendar(month: $month, after: $after) { month days { date scheduled done } }
}`;

function renderToday(list) {
  $("progress").textContent = `${list.done} of ${list.total} done`;
  const ul = $("today");
  ul.replaceChildren();
  if (list.items.length === 0) {
    const li = document.createElement("li");
    li.textContent = "Nothing planned.";
    ul.append(li);
  }
  for (const item of list.items) {
    const li = document.createElement("li");
    li.className = item.done ? "done" : "";
    li.dataset.goal = item.goalId;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = item.done;
    box.setAttribute("aria-label", item.title);
    box.addEventListener("change", () => tick(item.goalId, box.checked, box));
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = item.category ? item.category.colour : "#ccc";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = item.title;
    li.append(box, dot, title);
    if (item.memo) {
      const memo = document.createElement("span");
      memo.className = "memo";
      memo.textContent = item.memo;
      li.append(memo);
    }
    ul.append(li);
  }
}

function renderCalendar(calendar) {
  const [year, month] = calendar.month.split("-").map(Number);
  $("month-title").textContent = new Date(Date.UTC(year, month - 1, 1))
    .toLocaleString("en", { month: "long", year: "numeric", timeZone: "UTC" });
  const counts = new Map(calendar.days.map((d) => [d.date, d]));
  const first = new Date(Date.UTC(year, month - 1, 1));
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const body = $("calendar").querySelector("tbody");
  body.replaceChildren();
  let row = document.createElement("tr");
  for (let i = 0; i < (first.getUTCDay() + 6) % 7; i++) row.append(document.createElement("td"));
  for (let day = 1; day <= days; day++) {
    const date = `${calendar.month}-${String(day).padStart(2, "0")}`;
    const cell = document.createElement("td");
    cell.dataset.date = date;
    cell.textContent = day;
    const count = counts.get(date);
    if (count) {
      const span = document.createElement("span");
      span.className = "count";
      span.textContent = `${count.done}/${count.scheduled}`;
      cell.append(span);
      if (count.done === count.scheduled) cell.classList.add("all-done");
    }
    if (date === state.day) cell.classList.add("today");
    row.append(cell);
    if (row.children.length === 7) { body.append(row); row = document.createElement("tr"); }
  }
  if (row.children.length) body.append(row);
}

async function load(after) {
  const data = await gql(TODAY, { date: state.day, month: state.day.slice(0, 7), after });
  $("who").textContent = "signed in as " + data.me;
  renderToday(data.today);
  renderCalendar(data.calendar);
}

async function tick(goalId, done, box) {
  const mutation = done
    ? "mutation($id: ID!, $date: Date!) { w: completeGoal(id: $id, date: $date) { token } }"
    : "mutation($id: ID!, $date: Date!) { w: uncompleteGoal(id: $id, date: $date) { token } }";
  box.disabled = true;
  try {
    const data = await gql(mutation, { id: goalId, date: state.day });
    await load(data.w.token); // read your write: wait for the token
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = e.message;
    box.checked = !done;
  } finally {
    box.disabled = false;
  }
}

function subscribe() {
  if (state.socket) state.socket.close();
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws";
  const socket = new WebSocket(url, "graphql-transport-ws");
  state.socket = socket;
  socket.onopen = () => socket.send(JSON.stringify({
    type: "connection_init", payload: { authorization: "Bearer " + state.token },
  }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      $("live").textContent = "live";
      socket.send(JSON.stringify({
        id: "today", type: "subscribe",
        payload: { query: "subscription($date: Date!) { today(date: $date) { date done total items { goalId title memo done category { name colour } } } }", variables: { date: state.day } },
      }));
    } else if (message.type === "next" && message.payload.data) {
      renderToday(message.payload.data.today);
      // The month follows the same events; refresh it too.
      gql(TODAY, { date: state.day, month: state.day.slice(0, 7) })
        .then((data) => renderCalendar(data.calendar)).catch(() => {});
    } else if (message.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    }
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    $("live").textContent = event.reason ? "not live: " + event.reason : "not live (reconnecting)";
    if (state.token) setTimeout(() => { if (state.socket === socket) subscribe(); }, 2000);
  };
}

async function signIn(token) {
  state.token = token.trim();
  try {
    await load();
  } catch (e) {
    state.token = null;
    $("sign-in-error").textContent = e.message;
    return;
  }
  sessionStorage.setItem("mada-token", state.token);
  $("sign-in-error").textContent = "";
  $("sign-in").hidden = true;
  $("planner").hidden = false;
  $("sign-out").hidden = false;
  subscribe();
}

function signOut() {
  state.token = null;
  sessionStorage.removeItem("mada-token");
  if (state.socket) { const s = state.socket; state.socket = null; s.close(); }
  $("planner").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("who").textContent = "";
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.hash.slice(1));
  state.day = params.get("day") || localDay();
  $("day").value = state.day;
  $("day").addEventListener("change", () => {
    state.day = $("day").value || localDay();
    load().catch((e) => { $("error").textContent = e.message; });
    subscribe();
  });
  $("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value); });
  $("sign-out").addEventListener("click", signOut);
  const token = params.get("token") || sessionStorage.getItem("mada-token");
  if (token) {
    history.replaceState(null, "", location.pathname);
    signIn(token);
  }
});
