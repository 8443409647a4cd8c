import { useEffect, useState } from 'preact/hooks';
import {
  fromLocalInput,
  lastSeconds,
  pan,
  RANGE_PRESETS,
  toLocalInput,
  type Window,
} from '../lib/time';

/** A relative range follows the clock (and refreshes); an absolute one stays put. */
export type Range =
  { kind: 'relative'; seconds: number } | { kind: 'absolute'; from: number; to: number };

export const windowOf = (range: Range, nowMs: number): Window =>
  range.kind === 'relative'
    ? lastSeconds(range.seconds, nowMs)
    : { from: range.from, to: range.to };

export function RangePicker(props: {
  range: Range;
  onChange: (range: Range) => void;
  autoRefresh: boolean;
  onAutoRefresh: (on: boolean) => void;
  nowMs: number;
}) {
  const { range, onChange } = props;
  const current = windowOf(range, props.nowMs);
  const [from, setFrom] = useState(toLocalInput(current.from));
  const [to, setTo] = useState(toLocalInput(current.to));
  // A zoom or a pan moves the range: the inputs follow it (a relative range keeps the
  // times it was picked at, so they don't jump under the cursor every refresh).
  useEffect(() => {
    if (range.kind !== 'absolute') return;
    setFrom(toLocalInput(range.from));
    setTo(toLocalInput(range.to));
  }, [range]);
  const preset =
    range.kind === 'relative'
      ? RANGE_PRESETS.find((p) => p.seconds === range.seconds)?.id
      : 'custom';
  const move = (fraction: number) => onChange({ kind: 'absolute', ...pan(current, fraction) });

  return (
    <div class="range" role="group" aria-label="Time range">
      <label>
        Range
        <select
          value={preset ?? 'custom'}
          onChange={(e) => {
            const p = RANGE_PRESETS.find((x) => x.id === e.currentTarget.value);
            if (p) onChange({ kind: 'relative', seconds: p.seconds });
          }}
        >
          {RANGE_PRESETS.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
          <option value="custom" disabled={range.kind === 'relative'}>
            Custom
          </option>
        </select>
      </label>
      <button
        type="button"
        onClick={() => move(-0.5)}
        aria-label="Earlier (pan left by half the range)"
      >
        ◀
      </button>
      <button
        type="button"
        onClick={() => move(0.5)}
        aria-label="Later (pan right by half the range)"
      >
        ▶
      </button>
      <form
        class="custom"
        onSubmit={(e) => {
          e.preventDefault();
          const f = fromLocalInput(from);
          const t = fromLocalInput(to);
          if (f !== undefined && t !== undefined && t > f)
            onChange({ kind: 'absolute', from: f, to: t });
        }}
      >
        <label>
          From
          <input
            type="datetime-local"
            value={from}
            onInput={(e) => setFrom(e.currentTarget.value)}
          />
        </label>
        <label>
          To
          <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      <label class="check">
        <input
          type="checkbox"
          checked={props.autoRefresh}
          disabled={range.kind !== 'relative'}
          onChange={(e) => props.onAutoRefresh(e.currentTarget.checked)}
        />
        Auto-refresh (10 s)
      </label>
    </div>
  );
}
