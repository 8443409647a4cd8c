import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveStack, ROOT, runCommand, ScriptRun, startLiveStack } from '../support/live-stack';

/**
 * README.md's "Your first alert", executed: every ```sh block between
 * `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`, verbatim and in order, in
 * bash, against a real api (on a real port), worker and local receiver. Shell variables a
 * block sets (`$KEY`, `$ALERT`, …) are carried to the next, as in one terminal.
 *
 * So that a broken command can't pass: `set -euo pipefail`, and `curl` fails on an HTTP
 * error (`--fail-with-body`), as does `jq -e` on an empty answer. A block that the text
 * before it says to "run it again" (the worker's part takes a moment) is retried for up to
 * 20 s; any other block fails the test at once.
 */
const START = '<!-- walkthrough:start -->';
const END = '<!-- walkthrough:end -->';

interface Block {
  n: number;
  code: string;
  retry: boolean;
}

function walkthroughBlocks(readme: string): Block[] {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`README.md: no ${START} … ${END} section`);
  const section = readme.slice(start + START.length, end);
  const blocks: Block[] = [];
  const fence = /```sh\n([\s\S]*?)```/g;
  let prose = 0;
  for (let m = fence.exec(section); m; m = fence.exec(section)) {
    // The paragraph just before the block.
    const before =
      section
        .slice(prose, m.index)
        .trim()
        .split(/\n\s*\n/)
        .pop() ?? '';
    blocks.push({ n: blocks.length + 1, code: m[1], retry: /run it again/.test(before) });
    prose = m.index + m[0].length;
  }
  return blocks;
}

/** One block in a fresh bash that first loads, then saves, the walkthrough's variables. */
function script(block: Block, state: string): string {
  return `set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
__known=" $(compgen -v | tr '\\n' ' ') "
if [ -f '${state}' ]; then . '${state}'; fi
# --- README block ${block.n} ---
${block.code}
# ---
for __v in $(compgen -v); do
  case "$__v" in __*) continue ;; esac
  case "$__known" in *" $__v "*) ;; *) declare -p "$__v" ;; esac
done > '${state}.new'
mv '${state}.new' '${state}'
`;
}

describe('README: Your first alert (e2e)', () => {
  jest.setTimeout(120000);
  let stack: LiveStack;
  let dir: string;

  beforeAll(async () => {
    stack = await startLiveStack();
    dir = mkdtempSync(join(tmpdir(), 'readme-walkthrough-'));
  });

  afterAll(async () => {
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every block runs, in order, and ends with a verified delivery of the resolution', async () => {
    const which = await runCommand('bash', ['-c', 'command -v jq'], stack.env);
    if (which.code !== 0)
      throw new Error('the README walkthrough uses jq: install it (apt-get install jq)');

    const blocks = walkthroughBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    expect(blocks.some((b) => b.retry)).toBe(true);
    // Only reads may be run again: a retried POST would do its work twice.
    for (const b of blocks.filter((b) => b.retry)) expect(b.code).not.toMatch(/-X POST|-d |--data/);

    const state = join(dir, 'state.sh');
    // RECEIVER, not RECEIVER_URL: the name the README uses (with the default for `npm run up`).
    const env = { ...stack.env, RECEIVER: stack.receiver.url };
    for (const block of blocks) {
      const deadline = Date.now() + (block.retry ? 20000 : 0);
      let run: ScriptRun;
      for (;;) {
        run = await runCommand('bash', ['-c', script(block, state)], env, 30000);
        if (run.code === 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (run.code !== 0) {
        throw new Error(
          `README walkthrough block ${block.n} failed (exit ${run.code}):\n${block.code}\n` +
            `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`,
        );
      }
    }

    // What the blocks left behind: the alert resolved, and every delivery to the receiver
    // (acknowledged, resolved) verified with the secret the README handed it.
    const vars = await runCommand(
      'bash',
      ['-c', `. '${state}'; printf '%s\\n' "$PROJECT" "$KEY" "$ALERT"`],
      env,
    );
    const [project, key, alert] = vars.stdout.trim().split('\n');
    const headers = { 'X-API-Key': key };
    const got = await (await fetch(`${stack.apiUrl}/alerts/${alert}`, { headers })).json();
    expect(got).toMatchObject({ project_id: project, status: 'resolved' });
    const received = (await (await fetch(`${stack.receiver.url}/deliveries.json`)).json()) as {
      type: string;
      verification: { result: string };
    }[];
    expect(received.map((r) => r.type).sort()).toEqual([
      'alert.acknowledged',
      'alert.resolved',
      'webhook.test',
    ]);
    expect(received.every((r) => r.verification.result === 'verified')).toBe(true);
  });
});
