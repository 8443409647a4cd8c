import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Span } from '../lib/series';

export interface TimeChartProps {
  /** What the chart shows, for people who cannot see it. */
  label: string;
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  bands?: uPlot.Band[];
  /** Alert spans, shaded behind the data. */
  spans?: Span[];
  /** A horizontal line (a rule's threshold). */
  threshold?: number | null;
  height?: number;
  /** The x range to show (unix seconds); defaults to the data's. */
  xRange?: { from: number; to: number };
  /** Called with the range a person dragged across; the chart does not zoom by itself. */
  onZoom?: (from: number, to: number) => void;
  /** Called on a double click (e.g. to go back to the range before zooming). */
  onReset?: () => void;
  /** Draw bars instead of lines (counts per bucket). */
  bars?: boolean;
}

const SPAN_COLOURS: Record<Span['status'], string> = {
  open: 'rgba(220, 38, 38, 0.16)',
  acknowledged: 'rgba(217, 119, 6, 0.16)',
  resolved: 'rgba(100, 116, 139, 0.14)',
};

/**
 * A time-series chart drawn by uPlot (canvas). The container carries `data-points`, the
 * number of x values drawn, so a test (or a person with devtools) can count them.
 */
export function TimeChart(props: TimeChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const { spans = [], threshold } = props;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: props.height ?? 280,
      series: [{}, ...props.series],
      bands: props.bands,
      scales: props.xRange
        ? { x: { time: true, range: () => [props.xRange!.from, props.xRange!.to] } }
        : { x: { time: true } },
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        drawClear: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            for (const s of spans) {
              const left = u.valToPos(s.from, 'x', true);
              const right = Math.max(left + 2, u.valToPos(s.to, 'x', true));
              ctx.fillStyle = SPAN_COLOURS[s.status];
              ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
            }
            ctx.restore();
          },
        ],
        draw: [
          (u) => {
            if (threshold === null || threshold === undefined) return;
            const y = u.valToPos(threshold, 'y', true);
            if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = '#dc2626';
            ctx.setLineDash([6, 4]);
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.restore();
          },
        ],
        setSelect: [
          (u) => {
            const { left, width } = u.select;
            if (width < 4) return;
            const from = u.posToVal(left, 'x');
            const to = u.posToVal(left + width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            latest.current.onZoom?.(from, to);
          },
        ],
      },
      axes: [{}, { size: 60 }],
    };
    if (threshold !== null && threshold !== undefined) {
      // Keep the threshold line in view even when every value is far from it.
      opts.scales!.y = {
        range: (_u, min, max) => {
          const lo = Math.min(min ?? threshold, threshold);
          const hi = Math.max(max ?? threshold, threshold);
          const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
          return [lo - pad, hi + pad];
        },
      };
    }
    if (props.bars) {
      const bars = uPlot.paths.bars!({ size: [0.8, 40] });
      opts.series = opts.series.map((s, i) =>
        i === 0 ? s : { ...s, paths: bars, points: { show: false } },
      );
    }
    const u = new uPlot(opts, props.data, el);
    const onDblClick = () => latest.current.onReset?.();
    u.over.addEventListener('dblclick', onDblClick);
    const resize = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (width !== u.width) u.setSize({ width, height: u.height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.over.removeEventListener('dblclick', onDblClick);
      u.destroy();
    };
  }, [
    props.data,
    props.series,
    props.bands,
    props.spans,
    props.threshold,
    props.xRange,
    props.bars,
    props.height,
  ]);

  const points = props.data[0]?.length ?? 0;
  return (
    <figure class="chart" aria-label={props.label} data-points={points}>
      <div ref={host} class="chart-canvas" />
      <figcaption class="sr-only">
        {props.label}: {points} points
      </figcaption>
    </figure>
  );
}
