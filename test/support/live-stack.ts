import { EnvSource, readEnv } from '@app/config';
import { TEST_ADMIN_TOKEN } from '@app/testing';
import { spawn } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { RunningApi, startApi } from './api';
import { RunningReceiverApp, startReceiverApp } from './receiver-app';
import { RunningWorker, startWorker } from './worker';

export const ROOT = join(__dirname, '..', '..');

/**
 * The api listening on a real loopback port, a worker and the local webhook receiver, all
 * in this process, for scripts and shell commands run as child processes against them
 * (what a user runs against `npm run up`).
 */
export interface LiveStack {
  api: RunningApi;
  worker: RunningWorker;
  receiver: RunningReceiverApp;
  /** e.g. `http://127.0.0.1:41234`, no trailing slash. */
  apiUrl: string;
  /** What a child process needs: API_URL, ADMIN_TOKEN, RECEIVER_URL, PATH and HOME. */
  env: EnvSource;
  close(): Promise<void>;
}

export async function startLiveStack(overrides: EnvSource = {}): Promise<LiveStack> {
  const api = await startApi(overrides);
  await api.app.listen(0, '127.0.0.1');
  const { port } = api.app.getHttpServer().address() as AddressInfo;
  const apiUrl = `http://127.0.0.1:${port}`;
  const worker = await startWorker(overrides);
  const receiver = await startReceiverApp();
  const host = readEnv({}, '/nonexistent');
  return {
    api,
    worker,
    receiver,
    apiUrl,
    env: {
      PATH: host.PATH,
      HOME: host.HOME,
      API_URL: apiUrl,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      RECEIVER_URL: receiver.url,
      npm_config_update_notifier: 'false',
    },
    close: async () => {
      await worker.close();
      await receiver.close();
      await api.close();
    },
  };
}

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in the repository root with exactly `env` (no variable of this process
 * leaks in), asynchronously: the api it talks to answers from this same process.
 */
export function runCommand(
  command: string,
  args: string[],
  env: EnvSource,
  timeoutMs = 60000,
): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')}: no exit within ${timeoutMs} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
