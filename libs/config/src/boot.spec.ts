import { HEAP_GROWING_PERCENT, tuneHeap } from './boot';

describe('tuneHeap', () => {
  it('sets the heap growth when the command line does not', () => {
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
    expect(tuneHeap([])).toBe(true);
    expect(tuneHeap(['--enable-source-maps', '--max-old-space-size=512'])).toBe(true);
  });

  it.each([
    ['--heap-growing-percent=50'],
    ['--heap_growing_percent=50'],
    ['--heap-growing-percent'],
  ])('leaves an operator’s %s on the command line alone', (arg) => {
    expect(tuneHeap(['--enable-source-maps', arg])).toBe(false);
  });

  it('does not mistake a longer flag for it', () => {
    expect(tuneHeap(['--heap-growing-percentage=5'])).toBe(true);
  });
});
