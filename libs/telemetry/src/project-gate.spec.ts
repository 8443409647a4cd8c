import { ProjectGate } from './project-gate';

describe('ProjectGate', () => {
  const refusal = (limit: number) => new Error(`limit ${limit}`);

  it('lets `limit` runs of a project in at once, refuses one more at once, and frees a place when one ends', async () => {
    const gate = new ProjectGate(2, refusal);
    const release: Array<() => void> = [];
    const hold = () => new Promise<void>((resolve) => release.push(resolve));
    const a = gate.run('p', hold);
    const b = gate.run('p', hold);
    await expect(gate.run('p', async () => 'c')).rejects.toThrow('limit 2');
    // Another project is not affected.
    await expect(gate.run('q', async () => 'other')).resolves.toBe('other');
    expect(gate.inFlight('p')).toBe(2);
    release[0]();
    await a;
    await expect(gate.run('p', async () => 'd')).resolves.toBe('d');
    release[1]();
    await b;
    expect(gate.inFlight('p')).toBe(0);
  });

  it('frees the place when a run fails', async () => {
    const gate = new ProjectGate(1, refusal);
    await expect(
      gate.run('p', async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(gate.run('p', async () => 1)).resolves.toBe(1);
  });
});
