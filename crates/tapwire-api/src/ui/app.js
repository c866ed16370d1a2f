// The read-only view: signs every request with HTTP Basic (key ID and secret, kept in
// this tab's memory only), refreshes every second, draws each session's packets/s.
"use strict";
let auth = null;
const history = new Map(); // session ID -> last 60 rates
const $ = (id) => document.getElementById(id);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : cell(c));
  return tr;
}

function fill(table, rows) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren(...rows);
}

async function get(path) {
  const resp = await fetch(path, { headers: { Authorization: auth }, cache: "no-store" });
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { const body = await resp.json(); message = body.code + ": " + body.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return resp.json();
}

function chart(id, rate) {
  const points = history.get(id) || [];
  points.push(rate);
  while (points.length > 60) points.shift();
  history.set(id, points);
  const canvas = document.createElement("canvas");
  canvas.width = 120; canvas.height = 24;
  canvas.dataset.session = id;
  const g = canvas.getContext("2d");
  const top = Math.max(1, ...points);
  g.strokeStyle = "#1f6feb"; g.beginPath();
  points.forEach((p, i) => {
    const x = (i / 59) * canvas.width, y = canvas.height - 1 - (p / top) * (canvas.height - 2);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  const td = document.createElement("td");
  td.appendChild(canvas);
  return td;
}

async function refresh() {
  try {
    const [sessions, interfaces, agents, targets] = await Promise.all([
      get("/tapwire/v1/sessions/status"), get("/tapwire/v1/network-interfaces"),
      get("/tapwire/v1/agents"), get("/tapwire/v1/targets"),
    ]);
    fill("sessions", sessions.map((s) => {
      const c = s.Counters;
      const dropped = s.DroppedPackets;
      const sources = s.Sources.map((x) => x.NetworkInterfaceId + " " + x.State).join(", ");
      const bad = s.Sources.some((x) => x.State !== "active");
      return row([s.TrafficMirrorSessionId, s.SessionNumber, s.VirtualNetworkId, s.Target,
        cell(sources, bad ? "warn" : ""), cell(c.matched_packets, "n"),
        cell(c.mirrored_packets, "n mirrored"), cell(s.CutPackets, "n"),
        cell(dropped, dropped > 0 ? "n bad" : "n"), cell(s.PacketsPerSecond.toFixed(1), "n"),
        chart(s.TrafficMirrorSessionId, s.PacketsPerSecond)]);
    }));
    fill("targets", targets.map((t) => row([t.TrafficMirrorTargetId, t.DeliversTo, cell(t.Sessions, "n")])));
    fill("interfaces", interfaces.map((i) => row([i.id, i.host, i.ifname, (i.addresses || []).join(", "),
      i.agent ? i.agent.applied_revision : null,
      i.agent ? new Date(i.agent.reported_at * 1000).toISOString().replace(/\.\d+Z$/, "Z") : null])));
    fill("agents", agents.map((a) => row([a.Host, a.AccessKeyId, a.EnrolledAt,
      a.Interfaces.map((i) => i.NetworkInterfaceId).join(", ")])));
    $("error").textContent = "";
    $("clock").textContent = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  } catch (e) {
    $("error").textContent = e.message;
  }
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  auth = "Basic " + btoa($("key-id").value.trim() + ":" + $("secret").value);
  try {
    await get("/tapwire/v1/sessions/status");
  } catch (e) {
    $("signin-error").textContent = e.message;
    auth = null;
    return;
  }
  $("secret").value = "";
  $("signin").hidden = true;
  $("views").hidden = false;
  $("whoami").textContent = "signed in as " + $("key-id").value.trim();
  await refresh();
  setInterval(refresh, 1000);
});
