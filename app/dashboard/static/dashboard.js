/* mlpipe dashboard: draws each page's plots with plotly.js from the JSON the page embeds (#page-data),
   runs the operator actions after a confirmation, and follows a live cycle by polling. No build step.
   Text from the data always goes through textContent (never innerHTML). */
(() => {
  "use strict";

  const C = {
    model: "#1f5bd8", baseline: "#8a94a3", good: "#17803d", warn: "#b86b00", bad: "#c42b2b", grey: "#8a94a3",
    ink: "#1c2430", series: ["#1f5bd8", "#d9480f", "#2b8a3e", "#862e9c", "#0b7285", "#e67700", "#5c940d", "#c2255c"],
  };
  const VERDICT_COLOR = { beats: C.good, does_not_beat: C.bad, no_interval: C.warn, unknown: C.grey };
  const VERDICT_TEXT = {
    beats: "beats its baseline", does_not_beat: "does not beat its baseline",
    no_interval: "above its baseline on the point estimate; no interval recorded", unknown: "no skill recorded",
  };
  const STATUS_COLOR = {
    succeeded: C.good, partial: C.warn, failed: C.bad, interrupted: C.bad, running: C.model, queued: C.model,
  };
  const KIND_COLOR = { direction: C.series[0], risk: C.series[1], price: C.series[2], momentum: C.series[3],
    volatility: C.series[4] };
  const CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };
  const pending = [];

  const narrow = () => window.matchMedia("(max-width: 640px)").matches;
  const iso = (ms) => new Date(ms).toISOString();
  const fmt = (v, d = 3) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`);
  const short = (id) => (id || "").slice(0, 8);
  const when = (s) => (s ? `${s.slice(0, 10)} ${s.slice(11, 19)} UTC` : "—");
  const secs = (s) => (s === null || s === undefined ? "—" : s < 90 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function axis(extra = {}) {
    return { automargin: true, gridcolor: "#eceff3", zerolinecolor: "#c5ccd6", ...extra };
  }

  function layout(extra = {}) {
    return {
      margin: { l: 8, r: 12, t: 8, b: 8 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: getComputedStyle(document.body).fontFamily, size: narrow() ? 11 : 12, color: C.ink },
      showlegend: false, hovermode: "closest",
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)" },
      ...extra, xaxis: axis(extra.xaxis), yaxis: axis(extra.yaxis),
      ...(extra.showlegend ? { margin: { l: 8, r: 12, t: 30, b: 8 } } : {}),
    };
  }

  function plot(id, traces, extra = {}) {
    const node = typeof id === "string" ? document.getElementById(id) : id;
    if (!node) return null;
    const done = Plotly.react(node, traces, layout(extra), CONFIG);
    pending.push(done);
    return done;
  }

  function empty(id, text) {
    const node = typeof id === "string" ? document.getElementById(id) : id;
    if (!node) return;
    if (node.data) Plotly.purge(node);
    node.replaceChildren(el("p", { class: "empty" }, text));
    node.dataset.empty = "1";
    node.setAttribute("role", "note");
  }

  function toast(text, error = false) {
    const box = document.getElementById("toast");
    const line = el("p", { class: error ? "error" : null }, text);
    box.append(line);
    setTimeout(() => line.remove(), 6000);
  }

  /** A date range that shows a lone point (or several close ones) in the middle, not on a microsecond scale. */
  function around(stamps, pad = 3600e3) {
    const ms = stamps.map((s) => Date.parse(s));
    const lo = Math.min(...ms), hi = Math.max(...ms);
    const margin = Math.max((hi - lo) * 0.08, pad);
    return [iso(lo - margin), iso(hi + margin)];
  }

  function hline(y, color = C.grey, dash = "dash") {
    return { type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color, dash, width: 1.5 } };
  }

  function errorBars(rows, value, interval) {
    return {
      type: "data", symmetric: false, visible: true, color: "#5d6878", thickness: 1.5, width: 6,
      array: rows.map((r) => (interval(r) ? interval(r)[1] - value(r) : 0)),
      arrayminus: rows.map((r) => (interval(r) ? value(r) - interval(r)[0] : 0)),
    };
  }

  function skillDots(rows, x) {
    return {
      type: "scatter", mode: "markers", x: rows.map(x), y: rows.map((r) => r.skill),
      error_y: errorBars(rows, (r) => r.skill, (r) => r.interval),
      marker: {
        size: 13, color: rows.map((r) => VERDICT_COLOR[r.verdict]),
        symbol: rows.map((r) => (r.interval ? "circle" : "circle-open")), line: { width: 3 },
      },
      text: rows.map((r) => `${r.name}<br>${VERDICT_TEXT[r.verdict]}${r.interval ? "" : "<br>(no interval recorded)"}`),
      hovertemplate: "skill %{y:.4f}<br>%{text}<extra></extra>",
    };
  }

  // ---------------------------------------------------------------- Overview
  function overview(d) {
    const rows = d.kinds.filter((k) => k.name && k.skill !== null && k.skill !== undefined);
    if (!rows.length) empty("skill-plot", "No champion with a recorded skill yet.");
    else plot("skill-plot", [skillDots(rows, (r) => r.kind)], {
      shapes: [hline(0)], yaxis: { title: { text: "skill (0 = baseline)" }, zeroline: false },
      annotations: rows.some((r) => !r.interval) ? [{ xref: "paper", yref: "paper", x: 1, y: 1, xanchor: "right",
        showarrow: false, text: "open dot = no interval recorded", font: { size: 11, color: "#5d6878" } }] : [],
    });

    const aged = d.kinds.filter((k) => k.name && k.age && k.age.hours !== null);
    if (!aged.length) empty("age-plot", "No champion yet.");
    else {
      const expiry = d.expiry_hours;
      plot("age-plot", [{
        type: "bar", orientation: "h", y: aged.map((r) => r.kind), x: aged.map((r) => r.age.hours),
        marker: { color: aged.map((r) => (r.age.expired ? C.bad : r.age.fraction > 0.75 ? C.warn : C.model)) },
        text: aged.map((r) => `${fmt(r.age.hours, 1)} h`), textposition: "outside", cliponaxis: false,
        customdata: aged.map((r) => r.name), hovertemplate: "%{customdata}: %{text}<extra></extra>",
      }], {
        shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: expiry, x1: expiry, line: { color: C.bad, dash: "dash" } }],
        xaxis: { title: { text: "hours since training" }, range: [0, Math.max(expiry * 1.08, ...aged.map((r) => r.age.hours * 1.05))] },
        yaxis: { autorange: "reversed" },
        annotations: [{ x: expiry, yref: "paper", y: 1, text: `expiry ${expiry} h`, showarrow: false, xanchor: "right",
          font: { size: 11, color: C.bad } }],
      });
    }

    const acc = d.kinds.filter((k) => k.name && (k.validation_accuracy !== null || k.live_accuracy !== null));
    if (!acc.length) empty("accuracy-plot", "No champion with an accuracy to compare yet.");
    else plot("accuracy-plot", [
      { type: "bar", name: "validation (holdout)", x: acc.map((r) => r.kind), y: acc.map((r) => r.validation_accuracy),
        marker: { color: C.baseline }, hovertemplate: "validation %{y:.1%}<extra></extra>" },
      { type: "bar", name: "live", x: acc.map((r) => r.kind), y: acc.map((r) => r.live_accuracy),
        marker: { color: C.model }, text: acc.map((r) => `n=${r.live_n}`), textposition: "outside",
        hovertemplate: "live %{y:.1%} (%{text})<extra></extra>" },
    ], { barmode: "group", showlegend: true, yaxis: { tickformat: ".0%", rangemode: "tozero" } });
  }

  // ---------------------------------------------------------------- Models
  function models(d) {
    const rows = d.current.filter((m) => m.skill !== null && m.skill !== undefined);
    if (!rows.length) { empty("leaderboard-plot", "No active or candidate model with a recorded skill."); return; }
    plot("leaderboard-plot", [skillDots(rows, (r) => r.name)], {
      shapes: [hline(0)], yaxis: { title: { text: "skill (0 = baseline)" } }, xaxis: { tickangle: -30 },
    });
  }

  function model(d) {
    const table = d.is_classifier ? d.reliability : d.coverage;
    if (!table || !table.bins || !table.bins.length) {
      empty("reliability-plot", d.is_classifier ? "This model recorded no reliability table."
        : "No band coverage: this model states no band around its answer (e.g. risk answers a percentile).");
    } else {
      const lo = d.is_classifier ? 0.5 : 0;
      const bins = table.bins;
      const biggest = Math.max(...bins.map((b) => b.count));
      plot("reliability-plot", [
        { type: "scatter", mode: "lines", x: [lo, 1], y: [lo, 1], line: { color: C.grey, dash: "dash" }, hoverinfo: "skip",
          name: "calibrated" },
        { type: "scatter", mode: "lines+markers", x: bins.map((b) => b.stated), y: bins.map((b) => b.observed),
          name: "holdout", line: { color: C.model },
          marker: { color: C.model, size: bins.map((b) => 6 + 16 * Math.sqrt(b.count / biggest)) },
          text: bins.map((b) => `n=${b.count}`), hovertemplate: "stated %{x:.3f}<br>observed %{y:.3f}<br>%{text}<extra></extra>" },
      ], {
        xaxis: { title: { text: d.is_classifier ? "stated confidence" : "stated probability within the band" }, range: [lo - 0.02, 1.02] },
        yaxis: { title: { text: "observed frequency" }, range: [Math.min(lo, ...bins.map((b) => b.observed)) - 0.05, 1.02] },
        annotations: [{ xref: "paper", yref: "paper", x: 1, y: 0, xanchor: "right", yanchor: "bottom", showarrow: false,
          text: `mean gap ${fmt(table.weighted_gap, 3)} over ${table.rows} rows`, font: { size: 11, color: "#5d6878" } }],
      });
    }

    if (d.equity && d.equity.ts_ms && d.equity.ts_ms.length) {
      const x = d.equity.ts_ms.map(iso);
      plot("equity-plot", [
        { type: "scatter", mode: "lines", name: "buy and hold", x, y: d.equity.buy_and_hold, line: { color: C.baseline, width: 2 } },
        { type: "scatter", mode: "lines", name: "model", x, y: d.equity.strategy, line: { color: C.model, width: 2 } },
      ], { showlegend: true, shapes: [hline(1, "#c5ccd6", "dot")], yaxis: { title: { text: "equity (start = 1)" } },
        hovermode: "x unified" });
    } else {
      empty("equity-plot", d.metadata.kind === "direction"
        ? "No equity curve stored for this model (it was trained before the backtest kept one)."
        : "Only direction models are traded in the backtest.");
    }

    const wf = d.walk_forward;
    if (!wf) empty("folds-plot", "No walk-forward fold scores recorded for this model.");
    else plot("folds-plot", [{
      type: "bar", x: wf.folds.map((f) => `fold ${f.fold}`), y: wf.folds.map((f) => f.skill),
      marker: { color: wf.folds.map((f) => (f.skill > 0 ? C.model : C.bad)) },
      error_y: errorBars(wf.folds, (f) => f.skill, (f) => f.interval),
      hovertemplate: "%{x}: skill %{y:.4f}<extra></extra>",
    }], { shapes: [hline(0)].concat(wf.mean_skill === null || wf.mean_skill === undefined ? [] : [hline(wf.mean_skill, C.model, "dot")]),
      yaxis: { title: { text: "skill" } } });

    const feats = d.drift.features;
    if (!feats.length) empty("psi-plot", "No drift check has scored this model yet (it is checked from the cycle after the one that trained it).");
    else plot("psi-plot", [
      { type: "bar", orientation: "h", name: "PSI", y: feats.map((f) => f.feature), x: feats.map((f) => f.psi),
        marker: { color: feats.map((f) => (f.drifted ? C.bad : C.model)) },
        customdata: feats.map((f) => (f.drifted ? "drifted" : "within its threshold")), textposition: "none",
        hovertemplate: "%{y}: PSI %{x:.3f} (%{customdata})<extra></extra>" },
      { type: "scatter", mode: "markers", name: "threshold", y: feats.map((f) => f.feature), x: feats.map((f) => f.threshold),
        marker: { symbol: "line-ns-open", size: 22, color: C.ink, line: { width: 3 } }, hovertemplate: "threshold %{x:.3f}<extra></extra>" },
    ], { showlegend: true, yaxis: { autorange: "reversed" }, xaxis: { title: { text: `PSI (${when(d.drift.features_ts)})` }, rangemode: "tozero" } });

    const checks = d.drift.history;
    if (!checks.length) empty("drift-plot", "No drift check yet.");
    else plot("drift-plot", [
      { type: "scatter", mode: "lines+markers", name: "validation", x: checks.map((c) => c.ts), y: checks.map((c) => c.validation),
        line: { color: C.baseline, dash: "dash", shape: "hv" }, marker: { symbol: "line-ew-open", size: 16, color: C.baseline } },
      { type: "scatter", mode: "lines+markers", name: "live", x: checks.map((c) => c.ts), y: checks.map((c) => c.live),
        line: { color: C.model }, marker: { size: 10, color: checks.map((c) => (c.flagged ? C.bad : C.good)) },
        text: checks.map((c) => `${c.flagged ? "flagged" : "not flagged"}; drop ${fmt(c.drop, 4)} (threshold ${c.threshold}), ${c.rows} rows`),
        hovertemplate: "live %{y:.4f}<br>%{text}<extra></extra>" },
    ], { showlegend: true, yaxis: { title: { text: checks[0].metric || "metric" } }, xaxis: { type: "date", range: around(checks.map((c) => c.ts)) } });

    const events = d.events;
    if (!events.length) empty("events-plot", "No events.");
    else plot("events-plot", [{
      type: "scatter", mode: "markers", x: events.map((e) => e.ts), y: events.map((e) => e.event),
      marker: { size: 12, color: events.map((e) => ({ promoted: C.good, validated: C.good, flagged: C.warn, rejected: C.warn,
        failed: C.bad, archived: C.grey, superseded: C.grey })[e.event] || C.model) },
      text: events.map((e) => e.reason), hovertemplate: "%{y} %{x}<br>%{text}<extra></extra>",
    }], { yaxis: { type: "category" } });
  }

  // ---------------------------------------------------------------- Cycles
  function renderCycle(c) {
    const section = document.getElementById("cycle-detail");
    section.hidden = false;
    section.dataset.cycle = c.id;
    section.dataset.live = c.live ? "1" : "0";
    document.getElementById("cycle-id").textContent = short(c.id);
    const badge = document.getElementById("cycle-status");
    badge.textContent = c.status;
    badge.className = `badge status-${c.status}`;
    badge.dataset.status = c.status;
    document.getElementById("cycle-stage").textContent = c.live ? `stage: ${c.stage}` : "";
    document.getElementById("cycle-facts").textContent = [
      `trigger ${c.trigger}`, `started ${when(c.started_ts || c.created_ts)}`,
      c.live ? `running for ${secs(c.seconds)}` : `took ${secs(c.seconds)}`, `${c.built} built, ${c.failed} failed`,
    ].join(" · ");

    const body = document.getElementById("progress-body");
    body.replaceChildren(...(c.progress.length ? c.progress.map((p) => el("tr", { "data-state": p.state },
      el("th", { scope: "row" }, p.definition), el("td", { "data-label": "stage" }, p.stage),
      el("td", { "data-label": "state" }, el("span", { class: `badge status-${p.state === "succeeded" ? "succeeded" : p.state === "failed" ? "failed" : "running"}` }, p.state)),
      el("td", { "data-label": "model" }, p.model ? el("a", { href: `/dashboard/models/${p.model}` }, p.model) : "—"),
      el("td", { "data-label": "score" }, p.score === null || p.score === undefined ? (p.outcome || "—") : fmt(p.score, 2)),
      el("td", { "data-label": "took" }, secs(p.seconds)))) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no builds queued yet"))]));

    const errors = document.getElementById("cycle-errors");
    errors.replaceChildren(...(c.errors_list.length ? c.errors_list.map((e) => el("li", {},
      el("span", { class: `badge status-${e.level === "warning" ? "partial" : "failed"}` }, e.level || "error"), " ",
      el("strong", {}, `${e.stage}${e.model ? ` · ${e.model}` : ""}: `), e.message)) : [el("li", { class: "muted" }, "none")]));

    const dec = c.decisions || {};
    const champions = Object.entries(dec.champions || {}).map(([k, v]) => `${k} → ${v}`).join(", ");
    document.getElementById("cycle-decisions").textContent = [
      champions ? `champions: ${champions}` : null,
      dec.flagged && dec.flagged.length ? `drift flagged: ${dec.flagged.join(", ")}` : null,
      dec.archived && Object.keys(dec.archived).length ? `archived: ${Object.keys(dec.archived).join(", ")}` : null,
    ].filter(Boolean).join(" · ") || (c.live ? "not decided yet" : "no decisions recorded");

    const t = c.timeline;
    const failed = new Set(c.progress.filter((p) => p.state === "failed").map((p) => `${p.stage}:${p.definition}`));
    const bars = [...t.stages.map((s) => ({ ...s, label: `stage · ${s.name}`, color: "#14202e" })),
      ...t.jobs.map((j) => ({ ...j, label: j.name, color: failed.has(j.name) ? C.bad : C.model }))];
    if (!bars.length) { empty("timeline-plot", c.live ? "Waiting for a worker to start the cycle…" : "No timings recorded."); return; }
    const node = document.getElementById("timeline-plot");
    if (node.dataset.empty) { node.replaceChildren(); delete node.dataset.empty; node.setAttribute("role", "img"); }
    const longest = Math.max(...bars.map((b) => b.label.length));
    plot(node, [{
      type: "bar", orientation: "h", y: bars.map((b) => b.label), base: bars.map((b) => b.start),
      x: bars.map((b) => Math.max(b.end - b.start, 0.02)), marker: { color: bars.map((b) => b.color) },
      text: bars.map((b) => `${fmt(b.end - b.start, 2)} s`), textposition: "outside", cliponaxis: false,
      hovertemplate: "%{y}<br>from %{base:.2f} s for %{text}<extra></extra>",
    }], {
      margin: { l: Math.min(narrow() ? 170 : 300, 8 + 6.6 * longest), r: 12, t: 8, b: 8 },
      yaxis: { autorange: "reversed", type: "category", automargin: false },
      xaxis: { title: { text: "seconds from the start" }, range: [0, Math.max(t.now, ...bars.map((b) => b.end)) * 1.12] },
      shapes: c.live ? [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: t.now, x1: t.now, line: { color: C.warn, dash: "dot" } }] : [],
    });
  }

  let polling = null;
  window.__cycleStates = [];
  async function follow(id) {
    clearTimeout(polling);
    let detail;
    try {
      const answer = await fetch(`/dashboard/api/cycles/${encodeURIComponent(id)}`, { credentials: "same-origin" });
      if (answer.status === 401) { location.assign(`/dashboard/login?next=${encodeURIComponent(location.pathname + location.search)}`); return; }
      detail = await answer.json();
      if (!answer.ok) throw new Error(detail.detail || answer.statusText);
    } catch (err) {
      toast(`Could not read the cycle: ${err.message}; retrying`, true);
      polling = setTimeout(() => follow(id), 3000);
      return;
    }
    window.__cycleStates.push(`${detail.status}/${detail.stage}`);
    renderCycle(detail);
    const row = document.querySelector(`#history-body tr[data-cycle="${CSS.escape(id)}"] .badge`);
    if (row) { row.textContent = detail.status; row.className = `badge status-${detail.status}`; }
    if (detail.live) polling = setTimeout(() => follow(id), 1000);
    else if (window.__cycleStates.length > 1) toast(`Cycle ${short(id)} ended: ${detail.status}`, detail.status !== "succeeded");
  }

  /** At most `most` category ticks, labelled by start time (MM-DD HH:MM). */
  function ticksEvery(h, most) {
    const step = Math.max(1, Math.ceil(h.length / most));
    const picked = h.filter((_, i) => i % step === 0);
    return { tickvals: picked.map((c) => short(c.id)),
      ticktext: picked.map((c) => (c.created_ts || "").slice(5, 16).replace("T", " ")) };
  }

  function cycles(d) {
    const h = [...d.history].reverse();  // oldest on the left; one evenly spaced bar per cycle
    if (h.length) plot("history-plot", [{
      type: "bar", x: h.map((c) => short(c.id)), y: h.map((c) => c.seconds), customdata: h.map((c) => c.id),
      marker: { color: h.map((c) => STATUS_COLOR[c.status] || C.grey) },
      hovertext: h.map((c) => `${short(c.id)} ${c.status}; ${c.built} built, ${c.failed} failed`),
      hovertemplate: "%{hovertext}<br>%{y:.1f} s<extra></extra>",
    }], { yaxis: { title: { text: "seconds" }, rangemode: "tozero" },
      xaxis: { type: "category", tickangle: -30, ...ticksEvery(h, narrow() ? 5 : 12) } })?.then((node) => {
      node.on("plotly_click", (ev) => location.assign(`/dashboard/cycles?id=${ev.points[0].customdata}`));
    });
    if (d.selected) {
      renderCycle(d.selected);
      window.__cycleStates.push(`${d.selected.status}/${d.selected.stage}`);
      if (d.selected.live) polling = setTimeout(() => follow(d.selected.id), 1000);
    }
  }

  // ---------------------------------------------------------------- Tuning and Replays
  function renderStudies(d, root = document.getElementById("studies")) {
    if (!d.studies.length) return;
    root.replaceChildren();
    d.studies.forEach((s, i) => {
      const id = `study-plot-${i}`;
      const adopted = s.adopted;
      root.append(el("section", { "aria-labelledby": `study-h-${i}` },
        el("h2", { id: `study-h-${i}` }, `${s.definition} `, el("span", { class: `badge status-${s.status === "finished" ? "succeeded" : s.status}` }, s.status)),
        el("p", { class: "small" }, `${s.trials.length} trials (${Object.entries(s.states).map(([k, v]) => `${v} ${k}`).join(", ")}) of a budget of ${s.budget ? s.budget.trials : "?"}; `,
          `objective: ${s.objective || "walk-forward skill"}; started ${when(s.started_ts)}. The best of many trials is optimistic: it is confirmed on the holdout before adoption.`),
        el("figure", { class: "plot" }, el("figcaption", {}, el("strong", {}, "Trials and the best so far")),
          el("div", { class: "plot-area", id, role: "img", "aria-label": `Trials of ${s.definition}` })),
        el("p", {}, adopted ? [el("strong", {}, adopted.decision === "adopted" ? "Adopted: " : "Not adopted: "),
          adopted.model ? el("a", { href: `/dashboard/models/${adopted.model}` }, adopted.model) : "", ` ${adopted.reason || ""}`,
          ` (skill ${fmt(adopted.old_skill, 4)} → ${fmt(adopted.new_skill, 4)}${adopted.p_value === undefined || adopted.p_value === null ? "" : `, p = ${fmt(adopted.p_value, 3)}`})`]
          : el("span", { class: "muted" }, "No result adopted yet."))));
      const byState = (state) => s.trials.filter((t) => t.state === state && t.value !== null && t.value !== undefined);
      plot(id, [
        ...[["complete", C.model], ["pruned", C.grey], ["fail", C.bad]].map(([state, color]) => ({
          type: "scatter", mode: "markers", name: state, x: byState(state).map((t) => t.number), y: byState(state).map((t) => t.value),
          marker: { color, size: 8 }, hovertemplate: `trial %{x} (${state}): %{y:.4f}<extra></extra>` })),
        { type: "scatter", mode: "lines", name: "best so far", x: s.trials.map((t) => t.number), y: s.best_so_far,
          line: { color: C.good, shape: "hv", width: 2 } },
      ], { showlegend: true, xaxis: { title: { text: "trial" } }, yaxis: { title: { text: "walk-forward skill" } } });
    });
  }

  function renderReplays(d, root = document.getElementById("replays")) {
    if (!d.replays.length) return;
    root.replaceChildren();
    d.replays.forEach((r, i) => {
      const grid = el("div", { class: "grid" });
      root.append(el("section", {}, el("h2", {}, `Replay ${r.id} `, el("span", { class: "badge" }, r.status)),
        el("p", { class: "small" }, `${r.cycles} cycles replayed, ${when(r.window && r.window.start)} → ${when(r.window && r.window.end)}`), grid));
      const kinds = Object.entries(r.kinds || {});
      kinds.forEach(([kind, k], j) => {  // every figure in the grid first, so each plot gets its final width
        grid.append(el("figure", { class: "plot" }, el("figcaption", {}, el("strong", {}, `${kind}: cumulative out-of-sample skill`),
          k.final ? el("span", {}, `final ${fmt(k.final.skill, 4)}${k.final.interval ? ` [${fmt(k.final.interval[0], 4)}, ${fmt(k.final.interval[1], 4)}]` : " (no interval)"}`) : null),
        el("div", { class: "plot-area", id: `replay-${i}-${j}`, role: "img", "aria-label": `${kind} replay` })));
      });
      kinds.forEach(([, k], j) => {
        const id = `replay-${i}-${j}`;
        const line = (name, y, color, dash, width = 2) => ({ type: "scatter", mode: "lines", name, x: k.ts, y, line: { color, dash, width } });
        plot(id, [
          ...Object.entries(k.baselines || {}).map(([n, y]) => line(`baseline: ${n}`, y, C.grey, "dash", 1.5)),
          ...Object.entries(k.policies || {}).map(([n, y], p) => line(`policy: ${n}`, y, [C.series[1], C.series[2]][p % 2], "solid")),
          line("served champion", k.model, C.model, "solid", 3),
        ], { showlegend: true, yaxis: { title: { text: "cumulative skill" } } });
      });
    });
  }

  // ---------------------------------------------------------------- Serving
  function serving(d) {
    const span = [iso(d.since_ms), iso(d.since_ms + d.span_ms)];
    if (!d.models.length) {
      empty("served-plot", "No predictions served in this range.");
      empty("volume-plot", "No predictions served in this range.");
    } else {
      const m = [...d.models].reverse();
      plot("served-plot", [{ type: "bar", orientation: "h", y: m.map((r) => r.model), x: m.map((r) => r.served),
        marker: { color: m.map((r) => KIND_COLOR[r.kind] || C.grey) }, hovertemplate: "%{y}: %{x} served<extra></extra>" }],
      { xaxis: { title: { text: "predictions" } } });
      plot("volume-plot", Object.entries(d.volume).map(([kind, points]) => ({
        type: "bar", name: kind, x: points.map((p) => iso(p[0] + d.bucket_ms / 2)), y: points.map((p) => p[1]),
        width: d.bucket_ms * 0.9, marker: { color: KIND_COLOR[kind] || C.grey },
        hovertemplate: `${kind}: %{y}<extra></extra>` })), { barmode: "stack", showlegend: true, yaxis: { title: { text: "predictions" } },
        xaxis: { type: "date", range: span } });
    }
    const lat = d.latency.models;
    if (!lat.length) empty("latency-plot", "This API process has served no prediction since it started.");
    else plot("latency-plot", [["p50_ms", C.series[2]], ["p90_ms", C.series[5]], ["p99_ms", C.bad]].map(([key, color]) => ({
      type: "bar", name: key.replace("_ms", ""), x: lat.map((r) => r.model), y: lat.map((r) => r[key]), marker: { color },
      hovertemplate: `%{x} ${key.replace("_ms", "")}: %{y:.2f} ms<extra></extra>` })),
    { barmode: "group", showlegend: true, yaxis: { title: { text: "ms" }, rangemode: "tozero" }, xaxis: { tickangle: narrow() ? -50 : -20 } });
    const acc = Object.entries(d.accuracy);
    if (!acc.length) empty("live-accuracy-plot", "No served prediction has been scored yet (its outcome is known once its horizon has passed).");
    else plot("live-accuracy-plot", acc.map(([name, points]) => ({
      type: "scatter", mode: "lines+markers", name, x: points.map((p) => iso(p.ts)), y: points.map((p) => p.accuracy),
      text: points.map((p) => `n=${p.n}`), line: { color: KIND_COLOR[name] || C.grey }, marker: { size: 6 },
      hovertemplate: `${name}: %{y:.1%} (%{text})<extra></extra>` })),
    { showlegend: true, shapes: [hline(0.5)], yaxis: { tickformat: ".0%", title: { text: "live accuracy" }, range: [-0.05, 1.05] },
      xaxis: { type: "date", range: span } });
  }

  // ---------------------------------------------------------------- Operator actions
  function confirmAction(title, text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true }));
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body || {}),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content },
    });
    const data = await answer.json().catch(() => ({}));
    return { ok: answer.ok, status: answer.status, data };
  }

  const ACTIONS = {
    "force-cycle": async () => {
      if (!(await confirmAction("Force a cycle now?", "Every model definition is trained, validated and ranked; champions may change."))) return;
      const { ok, status, data } = await post("/dashboard/actions/cycle");
      const id = data.id;
      if (!ok && !(status === 409 && id)) { toast(data.detail || `refused (${status})`, true); return; }
      toast(ok ? `Cycle ${short(id)} started` : `${data.detail}`, !ok);
      if (document.body.dataset.view !== "cycles") { location.assign(`/dashboard/cycles?id=${id}`); return; }
      history.replaceState(null, "", `/dashboard/cycles?id=${id}`);
      follow(id);
    },
    "set-status": async (button) => {
      const { model: name, status: wanted } = button.dataset;
      const verb = wanted === "active" ? "Activate" : "Archive";
      if (!(await confirmAction(`${verb} ${name}?`, wanted === "active"
        ? "It becomes active; it is served as the champion of its kind if it ranks best among the active models."
        : "It stops being served; if it is a champion, the next best active model of its kind takes over."))) return;
      const { ok, data } = await post(`/dashboard/actions/models/${encodeURIComponent(name)}`, { status: wanted });
      if (!ok) { toast(data.detail || "refused", true); return; }
      toast(`${data.name} is now ${data.status}`);
      setTimeout(() => location.reload(), 600);
    },
    "start-tuning": async () => {
      const definition = document.getElementById("tune-definition").value.trim();
      if (!(await confirmAction(`Start a tuning study of ${definition || "…"}?`, "Trials run on the workers until the study's budget is spent."))) return;
      const { ok, data } = await post("/dashboard/actions/tuning", { definition });
      toast(ok ? `Study ${data.id} started` : data.detail || "refused", !ok);
    },
  };

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-action]");
    if (!button || button.disabled || !ACTIONS[button.dataset.action]) return;
    ev.preventDefault();
    ACTIONS[button.dataset.action](button);
  });

  // ---------------------------------------------------------------- Start
  const VIEWS = { overview, models, model, cycles, serving,
    tuning: (d) => renderStudies(d), replays: (d) => renderReplays(d) };
  window.mlpipeDashboard = { renderStudies, renderReplays, pending };
  const source = document.getElementById("page-data");
  const view = VIEWS[document.body.dataset.view];
  if (source && view) view(JSON.parse(source.textContent));
  Promise.all(pending).then(() => {
    document.body.dataset.ready = "1";
    window.__dashboardReady = performance.now();
  }, (err) => { console.error("a plot failed to draw", err); });
})();
