import { join } from 'node:path';
import { checkInvariants, OVERLAYS, render, validateSchema } from '@scripts/validate-kubernetes';

type Json = Record<string, any>;

/**
 * `npm run k8s:validate` (run by CI on every overlay) passes on the committed manifests and
 * names each kind of mistake it exists to catch, on a rendered copy with one mistake put in.
 */
describe('Kubernetes manifests (integration)', () => {
  const production = () => render(join(OVERLAYS, 'production'));
  const find = (docs: Json[], kind: string, name: string) =>
    docs.find((d) => d.kind === kind && d.metadata.name === name)!;
  const container = (docs: Json[], name: string) =>
    find(docs, 'Deployment', name).spec.template.spec.containers[0];

  it('passes on every overlay as committed', () => {
    for (const overlay of ['dev', 'production', 'production-hpa']) {
      const docs = render(join(OVERLAYS, overlay));
      expect(docs.flatMap(validateSchema)).toEqual([]);
      expect(checkInvariants(docs)).toEqual([]);
    }
  });

  it.each<[string, (docs: Json[]) => void, RegExp]>([
    [
      'a grace period below the drain',
      (d) => (find(d, 'Deployment', 'api').spec.template.spec.terminationGracePeriodSeconds = 20),
      /Deployment\/api: terminationGracePeriodSeconds 20 is not above the drain/,
    ],
    [
      'a probe on a route that does not exist',
      (d) => (container(d, 'worker-ingest').readinessProbe.httpGet.path = '/healthz'),
      /worker-ingest: readinessProbe path \/healthz/,
    ],
    [
      'a setting the app refuses',
      (d) => (find(d, 'ConfigMap', 'telemetry-config').data.WORKER_QUEUES = 'ingest,bogus'),
      /WORKER_QUEUES must be all or a comma-separated list/,
    ],
    [
      'a setting left out',
      (d) => delete find(d, 'ConfigMap', 'telemetry-config').data.QUEUE_ATTEMPTS,
      /QUEUE_ATTEMPTS is set by neither ConfigMap nor Secret/,
    ],
    [
      'a ScaledObject watching another queue',
      (d) =>
        (find(d, 'ScaledObject', 'worker-deliver').spec.triggers[0].metadata.listName =
          'tp:bull:alert-events:wait'),
      /worker-deliver: watches tp:bull:alert-events:wait, not tp:bull:webhook-delivery:wait/,
    ],
    [
      'a writable root filesystem',
      (d) => (container(d, 'api').securityContext.readOnlyRootFilesystem = false),
      /Deployment\/api: root filesystem is writable/,
    ],
    [
      'an image without a tag',
      (d) => (container(d, 'worker-deliver').image = 'telemetry-platform'),
      /worker-deliver: image telemetry-platform has no tag/,
    ],
    [
      'a container port that is not PORT',
      (d) => (container(d, 'api').ports[0].containerPort = 8080),
      /Deployment\/api: no container port 8000/,
    ],
  ])('names %s', (_what, breakIt, message) => {
    const docs = production();
    breakIt(docs);
    expect(checkInvariants(docs).join('\n')).toMatch(message);
  });

  it('refuses an object its schema refuses', () => {
    const docs = production();
    find(docs, 'Deployment', 'api').spec.replicas = 'three';
    expect(docs.flatMap(validateSchema).join('\n')).toMatch(/replicas must be integer/);
  });
});
