// A time-series chart (uPlot) of one or more figures per hour.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706"];

/** `x`: unix seconds; `series`: [{label, values}] of the same length (null: no figure). */
export function TimeChart({ title, x, series, format = (v) => v }) {
  const box = useRef(null);
  useEffect(() => {
    const width = Math.max(280, box.current.clientWidth || 480);
    const plot = new uPlot(
      {
        title,
        width,
        height: 200,
        series: [
          {},
          ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: true }, value: (_, v) => (v == null ? "—" : format(v)) })),
        ],
        scales: { x: { time: true }, y: { range: (_, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
        axes: [{}, { values: (_, ticks) => ticks.map(format), size: 90 }],
      },
      [x, ...series.map((s) => s.values)],
      box.current,
    );
    return () => plot.destroy();
  }, [title, JSON.stringify(x), JSON.stringify(series)]);
  return <figure class="chart" ref={box} role="img" aria-label={`${title} per hour`} />;
}
