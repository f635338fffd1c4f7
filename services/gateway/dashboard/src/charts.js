// Interactive charts on uPlot (made for time series of market data): drag to zoom, wheel to zoom around the
// pointer, shift+drag or the arrow keys to pan, +/- to zoom, 0 or a double click to reset, a legend that follows the
// pointer (hover), and range buttons. The first chart drawn with data sets performance.mark("first-chart"), which
// the first-load benchmark reads.

import uPlot from "uplot";
import { h } from "./dom.js";

export const COLORS = ["#5aa9ff", "#ffb454", "#7ee787", "#ff7b72", "#d2a8ff", "#79c0ff"];
const AXIS = { stroke: "#c9d1d9", grid: { stroke: "#30363d", width: 1 }, ticks: { stroke: "#30363d", width: 1 } };
const RANGES = [
  ["1h", 3600],
  ["1d", 86400],
  ["1w", 7 * 86400],
  ["all", 0],
];

let firstChartMarked = false;

function markFirstChart(u) {
  if (!firstChartMarked && u.data[0] && u.data[0].length > 0) {
    firstChartMarked = true;
    performance.mark("first-chart");
  }
}

function fullRange(u) {
  const xs = u.data[0];
  return xs && xs.length ? [xs[0], xs[xs.length - 1]] : null;
}

function setX(u, min, max) {
  if (Number.isFinite(min) && Number.isFinite(max) && max > min) u.setScale("x", { min, max });
}

function zoom(u, factor, centre) {
  const { min, max } = u.scales.x;
  if (min == null || max == null) return;
  const at = centre ?? (min + max) / 2;
  setX(u, at - (at - min) * factor, at + (max - at) * factor);
}

function pan(u, fraction) {
  const { min, max } = u.scales.x;
  if (min == null || max == null) return;
  const shift = (max - min) * fraction;
  setX(u, min + shift, max + shift);
}

function reset(u) {
  const range = fullRange(u);
  if (range) setX(u, range[0], range[1] > range[0] ? range[1] : range[0] + 1);
}

function interactions() {
  return {
    hooks: {
      ready: [
        (u) => {
          u.over.addEventListener(
            "wheel",
            (event) => {
              event.preventDefault();
              const rect = u.over.getBoundingClientRect();
              zoom(u, event.deltaY < 0 ? 0.8 : 1.25, u.posToVal(event.clientX - rect.left, "x"));
            },
            { passive: false },
          );
          u.over.addEventListener("mousedown", (event) => {
            if (!event.shiftKey) return;
            event.stopPropagation();
            let last = event.clientX;
            const move = (e) => {
              pan(u, -(e.clientX - last) / u.over.clientWidth);
              last = e.clientX;
            };
            const up = () => {
              window.removeEventListener("mousemove", move);
              window.removeEventListener("mouseup", up);
            };
            window.addEventListener("mousemove", move);
            window.addEventListener("mouseup", up);
          }, true);
          u.over.addEventListener("dblclick", () => reset(u));
        },
      ],
    },
  };
}

function keyboard(figure, getChart) {
  figure.addEventListener("keydown", (event) => {
    const u = getChart();
    if (!u) return;
    const actions = {
      ArrowLeft: () => pan(u, -0.2),
      ArrowRight: () => pan(u, 0.2),
      "+": () => zoom(u, 0.8),
      "=": () => zoom(u, 0.8),
      "-": () => zoom(u, 1.25),
      0: () => reset(u),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
}

// A chart in a <figure>: a caption, range buttons for time charts, the plot and its legend.
function chart(container, { name, title, series, time = true, height = 220, options = {}, ranges = time }) {
  let u = null;
  const plot = h("div", { class: "plot" });
  const toolbar = h("div", { class: "chart-tools", role: "group", "aria-label": `${title}: range` });
  const figure = h(
    "figure",
    {
      class: "chart",
      tabindex: 0,
      dataset: { chart: name, points: "0" },
      "aria-label": `${title} (chart): arrow keys pan, + and - zoom, 0 resets`,
    },
    h("figcaption", {}, title),
    ranges ? toolbar : null,
    plot,
  );
  if (ranges) {
    for (const [label, seconds] of RANGES) {
      toolbar.append(
        h(
          "button",
          {
            type: "button",
            class: "small",
            onclick: () => {
              if (!u) return;
              const range = fullRange(u);
              if (!range) return;
              if (!seconds) reset(u);
              else setX(u, Math.max(range[0], range[1] - seconds), range[1] + 1);
            },
          },
          label,
        ),
      );
    }
  }
  keyboard(figure, () => u);
  container.append(figure);
  const width = () => Math.max(260, plot.clientWidth || container.clientWidth || 320);
  const opts = {
    width: width(),
    height,
    scales: { x: { time } },
    axes: [{ ...AXIS }, { ...AXIS, size: 80 }],
    cursor: { drag: { x: true, y: false, setScale: true } },
    legend: { live: true },
    series: [
      { label: time ? "time" : options.xLabel || "x" },
      ...series.map((s, i) => ({
        stroke: COLORS[i % COLORS.length],
        width: 2,
        ...s,
        value: (_, v) => (v == null ? "–" : Number(v).toFixed(s.digits ?? 2)),
      })),
    ],
    hooks: { draw: [markFirstChart] },
    plugins: [interactions()],
    ...options,
  };
  let data = [[], ...series.map(() => [])];
  u = new uPlot(opts, data, plot);
  new ResizeObserver(() => u.setSize({ width: width(), height })).observe(plot);
  return {
    figure,
    setData(columns) {
      data = columns;
      u.setData(columns, true);
      figure.dataset.points = String(columns[0].length);
    },
    append(x, ys) {
      if (data[0].length && x < data[0][data[0].length - 1]) return;
      data = data.map((column, i) => [...column, i === 0 ? x : ys[i - 1]]);
      u.setData(data, true);
      figure.dataset.points = String(data[0].length);
    },
    destroy() {
      u.destroy();
    },
  };
}

// Rows [{x, y1, y2...}] sorted by x: uPlot wants ascending x.
function columns(rows, keys) {
  const sorted = [...rows].filter((r) => Number.isFinite(r.x)).sort((a, b) => a.x - b.x);
  return [sorted.map((r) => r.x), ...keys.map((k) => sorted.map((r) => (Number.isFinite(r[k]) ? r[k] : null)))];
}

export function timeChart(container, { name, title, series, height }) {
  const c = chart(container, { name, title, series, height });
  return {
    ...c,
    rows(rows) {
      c.setData(columns(rows, series.map((_, i) => `y${i}`)));
    },
  };
}

export function barChart(container, { name, title, series, labels = null, time = false, height }) {
  const bars = uPlot.paths.bars({ size: [0.7, 60] });
  const c = chart(container, {
    name,
    title,
    time,
    height,
    ranges: time,
    series: series.map((s) => ({ ...s, paths: bars, fill: s.fill || "#5aa9ff99", points: { show: false } })),
    options: labels
      ? {
          axes: [
            {
              ...AXIS,
              splits: () => labels().map((_, i) => i),
              values: (_, ticks) => ticks.map((t) => labels()[t] ?? ""),
            },
            { ...AXIS, size: 80 },
          ],
          scales: { x: { time: false, range: (_, min, max) => [min - 0.5, max + 0.5] } },
        }
      : {},
  });
  return {
    ...c,
    rows(rows) {
      c.setData(columns(rows, series.map((_, i) => `y${i}`)));
    },
  };
}

export function scatterChart(container, { name, title, xLabel, series, time = false, height }) {
  const c = chart(container, {
    name,
    title,
    time,
    height,
    ranges: time,
    series: series.map((s) => ({ ...s, paths: () => null, points: { show: true, size: 7 } })),
    options: { xLabel },
  });
  return {
    ...c,
    rows(rows) {
      c.setData(columns(rows, series.map((_, i) => `y${i}`)));
    },
  };
}
