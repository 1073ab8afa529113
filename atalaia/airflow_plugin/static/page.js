// Atalaia's on-call page: monitors, a swimlane per monitor, events, their drill-down,
// feedback and model versions. Plain DOM and SVG; every request carries the Airflow
// session cookie (same origin), and the API answers 401/403 without it.
"use strict";

const COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const state = { monitor: null, swimlane: null, event: null };
const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svgElement(tag, attributes = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function time(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "";
}

function say(text) {
  $("#status").textContent = text;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    ...options,
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.json();
}

// -- monitors ------------------------------------------------------------------------------

async function loadMonitors() {
  const monitors = await api("api/monitors");
  const body = $("#monitors tbody");
  body.replaceChildren();
  for (const monitor of monitors) {
    const champion = monitor.champion
      ? `version ${monitor.champion.version} (${monitor.champion.detector})` : "none";
    const scored = monitor.last_scored
      ? `${time(monitor.last_scored.start)} to ${time(monitor.last_scored.end)}` : "never";
    const row = element("tr", { class: "clickable", "data-monitor": monitor.name,
      onclick: () => selectMonitor(monitor) },
      element("td", { text: monitor.name }),
      element("td", { text: champion }),
      element("td", { text: scored }),
      element("td", { text: `${monitor.open_events} of ${monitor.events}` }),
      element("td", { text: runState(monitor.drift) }),
      element("td", { text: runState(monitor.retraining) + (monitor.candidates
        ? `; ${monitor.candidates} candidate(s)` : "") }));
    body.append(row);
  }
  if (!monitors.length) say("No monitor in the store yet: run a job first.");
  return monitors;
}

function runState(run) {
  if (!run) return "never checked";
  return `${run.status} ${time(run.at)}${run.message ? ": " + run.message : ""}`;
}

async function selectMonitor(monitor) {
  performance.mark("atalaia-monitor-start");
  state.monitor = monitor;
  for (const row of document.querySelectorAll("#monitors tbody tr")) {
    row.classList.toggle("selected", row.dataset.monitor === monitor.name);
  }
  $("#monitor-name").textContent = monitor.name;
  $("#monitor-section").hidden = false;
  const last = monitor.last ? new Date(monitor.last) : null;
  if (last) {
    const end = new Date(last.getTime() + 5 * 60 * 1000);
    const start = new Date(end.getTime() - 7 * 24 * 3600 * 1000);
    $("#range-start").value = start.toISOString().slice(0, 16);
    $("#range-end").value = end.toISOString().slice(0, 16);
  }
  await Promise.all([loadSwimlane(), loadEvents(), loadVersions()]);
  performance.mark("atalaia-monitor-ready");
  performance.measure("atalaia-monitor", "atalaia-monitor-start", "atalaia-monitor-ready");
}

// -- swimlane ------------------------------------------------------------------------------

function colour(value) {
  if (value === null || value === undefined) return "#f7f7f7";
  const z = Number(value);  // "Infinity" for a score that could not be computed
  // 0 .. 3: pale; 3 .. 30 (log): yellow to dark red, as z grows past a calibrated alarm
  if (z < 2) return "#e8eef5";
  if (z < 3) return "#f6e8a6";
  const t = Math.min(1, Math.log(z / 3) / Math.log(10));
  const hue = 45 - 45 * t;
  const light = 60 - 30 * t;
  return `hsl(${hue}, 90%, ${light}%)`;
}

async function loadSwimlane() {
  const params = new URLSearchParams();
  if ($("#range-start").value) params.set("start", $("#range-start").value + ":00+00:00");
  if ($("#range-end").value) params.set("end", $("#range-end").value + ":00+00:00");
  const name = encodeURIComponent(state.monitor.name);
  const lane = await api(`api/monitors/${name}/swimlane?${params}`);
  state.swimlane = lane;
  const grid = $("#swimlane");
  grid.replaceChildren();
  grid.style.gridTemplateColumns = `max-content repeat(${lane.columns}, minmax(4px, 1fr))`;
  const start = Date.parse(lane.start);
  const cell = lane.cell_seconds * 1000;
  for (const row of lane.entities) {
    grid.append(element("div", { class: "entity", text: row.entity || state.monitor.name }));
    row.z.forEach((z, index) => {
      const from = start + index * cell;
      const to = from + cell;
      const event = row.events.find((e) => Date.parse(e.start) < to && Date.parse(e.end) >= from);
      const title = `${row.entity} ${time(new Date(from).toISOString())}: `
        + (z === null ? "not scored" : `strongest z ${z}`) + (event ? `; event ${event.id}` : "");
      const node = element("div", { class: "cell" + (event ? " event" : ""), title,
        "data-entity": row.entity, "data-column": index,
        onclick: () => event ? openEvent(event.id) : say(`No event in ${title}`) });
      node.style.background = colour(z);
      grid.append(node);
    });
  }
  grid.append(element("div"));
  const axis = element("div", { class: "axis",
    text: `${time(lane.start)} .. ${time(lane.end)} UTC, ${lane.columns} cells of ${lane.cell_seconds / 60} min` });
  axis.style.gridColumn = `2 / span ${lane.columns}`;
  grid.append(axis);
  const legend = $("#legend");
  legend.replaceChildren(...[1, 2.5, 4, 8, 15, 30].map((z) => {
    const swatch = element("span", { text: `z ${z}` });
    swatch.style.background = colour(z);
    return swatch;
  }));
}

// -- events --------------------------------------------------------------------------------

async function loadEvents() {
  const events = await api(`api/monitors/${encodeURIComponent(state.monitor.name)}/events`);
  const body = $("#events tbody");
  body.replaceChildren();
  for (const event of events) {
    body.append(element("tr", { class: "clickable", "data-event-id": event.id,
      "data-entity": event.entity, onclick: () => openEvent(event.id) },
      element("td", { text: event.entity }),
      element("td", { text: time(event.start) }),
      element("td", { text: time(event.end) }),
      element("td", { text: Number(event.peak_z).toFixed(2) }),
      element("td", { text: event.anomalies }),
      element("td", { text: event.model_version }),
      element("td", { text: event.top_features
        .map((item) => `${item.feature} ${Math.round(item.share * 100)}%`).join(", ") }),
      element("td", { class: "verdict", text: verdictText(event.verdict) }),
      element("td", {}, element("button", { type: "button", text: "open" }))));
  }
}

function verdictText(verdict) {
  return { incident: "confirmed incident", false_alarm: "false alarm" }[verdict] || "";
}

// -- drill-down ----------------------------------------------------------------------------

async function openEvent(id) {
  performance.mark("atalaia-event-start");
  say("");
  let detail;
  try {
    detail = await api(`api/events/${id}`);
  } catch (error) {
    say(`Event ${id}: ${error.message}`);
    return;
  }
  state.event = detail;
  for (const row of document.querySelectorAll("#events tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.eventId) === id);
  }
  const event = detail.event;
  $("#drilldown").hidden = false;
  $("#event-title").textContent = `${event.id}: ${event.entity} ${time(event.start)} to ${time(event.end)}`;
  const quarantined = detail.batches.reduce((sum, b) => sum + b.quarantined, 0);
  const batches = detail.batches.map((b) => `${time(b.start)}: ${b.rows} rows, ${b.quarantined} quarantined`).join("; ");
  $("#event-facts").textContent = `Monitor ${detail.monitor}; scored by model version ${detail.model.version} `
    + `(${detail.model.detector}, ${detail.model.status}, alpha ${detail.model.alpha}); peak z ${event.peak_z} `
    + `at ${time(event.peak)}; ${event.anomalies} anomalous rows. Quarantine in the interval: `
    + `${quarantined} row(s) (${batches || "no batch"}).`;
  $("#verdict").textContent = verdictText(event.verdict);
  for (const button of ["#confirm-incident", "#false-alarm"]) $(button).disabled = !detail.may_edit;
  if (!detail.may_edit) $("#verdict").textContent += " (you may not edit this monitor's DAGs)";
  renderShares(detail.explanation);
  renderShareChart(detail.explanation, event);
  renderFeatures(detail.explanation, event);
  $("#drilldown").scrollIntoView();
  performance.mark("atalaia-event-ready");
  performance.measure("atalaia-event", "atalaia-event-start", "atalaia-event-ready");
}

function renderShares(explanation) {
  const body = $("#shares tbody");
  body.replaceChildren();
  const shares = Object.entries(explanation.shares).sort((a, b) => b[1] - a[1]);
  for (const [feature, share] of shares) {
    const fill = element("div", { class: "fill" });
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    body.append(element("tr", { "data-feature": feature, "data-share": share },
      element("td", { text: feature }),
      element("td", { text: `${(share * 100).toFixed(1)}%` }),
      element("td", { class: "bar" }, fill)));
  }
  if (!shares.length) body.append(element("tr", {}, element("td", { text: "no rows of the event could be read" })));
}

function xScale(explanation, width) {
  const stamps = explanation.steps.map(Date.parse);
  const first = stamps[0], last = stamps[stamps.length - 1];
  return (iso) => 70 + (width - 80) * ((Date.parse(iso) - first) / Math.max(1, last - first));
}

function eventSpan(svg, x, event, height) {
  const left = x(event.start), right = x(event.end);
  svg.append(svgElement("rect", { x: left, y: 0, width: Math.max(2, right - left), height,
    fill: "#c0504d", opacity: 0.12 }));
}

function renderShareChart(explanation, event) {
  const target = $("#share-chart");
  target.replaceChildren();
  if (!explanation.steps.length) return;
  const width = 900, height = 120;
  const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
  const x = xScale(explanation, width);
  const y = (v) => 5 + (height - 20) * (1 - v);
  const lower = explanation.steps.map(() => 0);
  explanation.features.forEach((feature, index) => {
    const shares = explanation.step_shares[feature].map((v) => v || 0);
    const upper = lower.map((base, i) => base + shares[i]);
    const top = explanation.steps.map((s, i) => `${x(s)},${y(upper[i])}`);
    const bottom = explanation.steps.map((s, i) => `${x(s)},${y(lower[i])}`).reverse();
    svg.append(svgElement("polygon", { points: [...top, ...bottom].join(" "),
      fill: COLOURS[index % COLOURS.length], opacity: 0.85 }));
    upper.forEach((v, i) => { lower[i] = v; });
  });
  eventSpan(svg, x, event, height - 15);
  svg.append(axisText(x, explanation, height));
  target.append(svg, legend(explanation.features));
}

function legend(features) {
  return element("div", {}, ...features.map((feature, index) => {
    const swatch = element("span", { text: feature });
    swatch.style.borderLeft = `12px solid ${COLOURS[index % COLOURS.length]}`;
    swatch.style.padding = "0 0.8em 0 0.3em";
    return swatch;
  }));
}

function axisText(x, explanation, height) {
  const group = svgElement("g");
  const steps = explanation.steps;
  const ticks = [[0, "start"], [Math.floor(steps.length / 2), "middle"], [steps.length - 1, "end"]];
  for (const [index, anchor] of ticks) {
    const label = svgElement("text", { x: x(steps[index]), y: height - 2, "text-anchor": anchor });
    label.textContent = time(steps[index]);
    group.append(label);
  }
  return group;
}

function renderFeatures(explanation, event) {
  const target = $("#feature-charts");
  target.replaceChildren();
  $("#band-note").textContent = explanation.note ? `Not shown: ${explanation.note}.`
    : explanation.band ? `Shaded blue: the band the model expected each feature in, `
      + `${explanation.band.basis} (mean +- ${explanation.band_sds} sd). Red: the event.`
    : "This detector has no predictive distribution to draw an expected band from: the values alone. Red: the event.";
  if (!explanation.steps.length) return;
  const width = 900, height = 90;
  const x = xScale(explanation, width);
  for (const feature of explanation.features) {
    const values = explanation.values[feature];
    const band = explanation.band ? explanation.band.features[feature] : null;
    const all = values.concat(band ? band.low.concat(band.high) : []).filter((v) => v !== null);
    const low = Math.min(...all), high = Math.max(...all);
    const y = (v) => 5 + (height - 20) * (1 - (v - low) / Math.max(1e-9, high - low));
    const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}`,
      "data-feature": feature });
    eventSpan(svg, x, event, height - 15);
    if (band) {
      const top = [], bottom = [];
      explanation.steps.forEach((s, i) => {
        if (band.low[i] !== null && band.high[i] !== null) {
          top.push(`${x(s)},${y(band.high[i])}`);
          bottom.unshift(`${x(s)},${y(band.low[i])}`);
        }
      });
      svg.append(svgElement("polygon", { points: [...top, ...bottom].join(" "),
        fill: "#4e79a7", opacity: 0.2 }));
    }
    const line = explanation.steps.map((s, i) => values[i] === null ? null : `${x(s)},${y(values[i])}`)
      .filter((p) => p !== null).join(" ");
    svg.append(svgElement("polyline", { points: line, fill: "none", stroke: "#222", "stroke-width": 1.2 }));
    const name = svgElement("text", { x: 2, y: height / 2, "font-weight": "bold" });
    name.textContent = feature;
    svg.append(name);
    for (const [value, at] of [[high, 8], [low, height - 22]]) {
      const label = svgElement("text", { x: 64, y: at + 6, "text-anchor": "end" });
      label.textContent = Number(value.toPrecision(4));
      svg.append(label);
    }
    svg.append(axisText(x, explanation, height));
    target.append(svg);
  }
}

async function giveVerdict(verdict) {
  const event = state.event.event;
  try {
    const result = await api(`api/events/${event.id}/verdict`, {
      method: "POST", body: JSON.stringify({ verdict }) });
    event.verdict = verdict;
    $("#verdict").textContent = `recorded: ${verdictText(verdict)} (label ${result.label})`;
    const row = document.querySelector(`#events tbody tr[data-event-id="${event.id}"] .verdict`);
    if (row) row.textContent = verdictText(verdict);
  } catch (error) {
    say(`Feedback not recorded: ${error.message}`);
  }
}

// -- model versions ------------------------------------------------------------------------

async function loadVersions() {
  const name = encodeURIComponent(state.monitor.name);
  const versions = await api(`api/monitors/${name}/versions`);
  const body = $("#versions tbody");
  body.replaceChildren();
  for (const model of versions) {
    const actions = element("td");
    if (state.monitor.may_edit && model.status !== "champion") {
      actions.append(element("button", { type: "button", text: "promote",
        onclick: () => changeChampion(`api/monitors/${name}/versions/${model.version}/promote`,
          `promote version ${model.version}`) }));
    }
    if (state.monitor.may_edit && model.status === "champion" && model.previous_champion) {
      actions.append(element("button", { type: "button", text: "roll back",
        onclick: () => changeChampion(`api/monitors/${name}/rollback`,
          `roll back to version ${model.previous_champion}`) }));
    }
    const lineage = [`baseline sha256 ${model.baseline.sha256.slice(0, 12)}`,
      model.previous_champion ? `replaced version ${model.previous_champion}` : null,
      model.promoted_at ? `promoted ${time(model.promoted_at)}` : null].filter(Boolean).join("; ");
    body.append(element("tr", { "data-version": model.version },
      element("td", { text: model.version }),
      element("td", { text: model.status }),
      element("td", { text: model.detector }),
      element("td", { text: `${time(model.baseline.start)} to ${time(model.baseline.end)}` }),
      element("td", { text: `${model.baseline.rows} (${model.calibration_rows} calibrate)` }),
      element("td", { text: time(model.trained_at) }),
      element("td", { text: lineage }),
      element("td", { text: model.status_reason }),
      actions));
  }
}

async function changeChampion(path, what) {
  const reason = window.prompt(`Why ${what}? (recorded with the change)`);
  if (!reason) return;
  try {
    const result = await api(path, { method: "POST", body: JSON.stringify({ reason }) });
    say(`Version ${result.champion_version} is the champion now.`);
    const monitors = await loadMonitors();
    await selectMonitor(monitors.find((m) => m.name === state.monitor.name));
  } catch (error) {
    say(`Not changed: ${error.message}`);
  }
}

// -- start -------------------------------------------------------------------------------

$("#range").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  loadSwimlane().catch((error) => say(error.message));
});
$("#confirm-incident").addEventListener("click", () => giveVerdict("incident"));
$("#false-alarm").addEventListener("click", () => giveVerdict("false_alarm"));

(async () => {
  try {
    const monitors = await loadMonitors();
    // an event's link: .../monitors/NAME/events/ID, or ?monitor=NAME&event=ID
    const path = window.location.pathname.match(/\/monitors\/([^/]+)\/events\/(\d+)\/?$/);
    const query = new URLSearchParams(window.location.search);
    const wanted = path ? decodeURIComponent(path[1]) : query.get("monitor");
    const event = path ? path[2] : query.get("event");
    const monitor = monitors.find((m) => m.name === wanted) || monitors[0];
    if (monitor) await selectMonitor(monitor);
    if (event) await openEvent(Number(event));
    document.body.dataset.ready = "true";
  } catch (error) {
    say(error.message);
  }
})();
