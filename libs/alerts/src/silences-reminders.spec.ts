import fc from 'fast-check';
import { reminderDueAt, reminderJobId } from './alert-reminders.service';
import { silenceState } from './entities/silence.entity';

describe('silenceState', () => {
  const at = (s: number) => new Date(Date.UTC(2025, 0, 1) + s * 1000);
  const silence = { startsAt: at(10), endsAt: at(20) };

  it.each([
    [9, 'pending'],
    [10, 'active'],
    [19, 'active'],
    [20, 'expired'],
    [21, 'expired'],
  ])('at %i s is %s (starts_at inclusive, ends_at exclusive)', (s, state) => {
    expect(silenceState(silence, at(s as number))).toBe(state);
  });

  it('is exactly one of the three, in order, as time passes (property)', () => {
    const order = ['pending', 'active', 'expired'];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: -100, max: 2100 }), { minLength: 2 }),
        (start, length, times) => {
          const s = { startsAt: at(start), endsAt: at(start + length) };
          const states = [...times].sort((a, b) => a - b).map((t) => silenceState(s, at(t)));
          // Never goes back: pending → active → expired.
          for (let i = 1; i < states.length; i++)
            expect(order.indexOf(states[i])).toBeGreaterThanOrEqual(order.indexOf(states[i - 1]));
        },
      ),
    );
  });
});

describe('reminders', () => {
  const createdAt = new Date(Date.UTC(2025, 0, 1, 12));

  it('reminder n is due n intervals after the alert opened', () => {
    const a = { createdAt, intervalSeconds: 3600 };
    expect(reminderDueAt(a as never, 1)).toBe(createdAt.getTime() + 3600000);
    expect(reminderDueAt(a as never, 3)).toBe(createdAt.getTime() + 3 * 3600000);
  });

  it('one job id per alert and reminder number, without the ":" BullMQ refuses', () => {
    const ids = new Set<string>();
    for (const alert of ['a1', 'a2']) for (let n = 1; n <= 3; n++) ids.add(reminderJobId(alert, n));
    expect(ids.size).toBe(6);
    for (const id of ids) expect(id).not.toContain(':');
  });
});
