import type { Schemas } from '../api/client';
import { unwrap } from '../api/errors';
import { useSession } from '../session';
import { allPages } from './pages';
import { type Loaded, useLoad } from './use-load';

/** Every rule of the signed-in project (names, metrics, offline windows for the pages). */
export function useRules(): Loaded<Schemas['RuleResponse'][]> {
  const { api, key } = useSession();
  const projectId = key.project.id;
  return useLoad(
    () =>
      allPages((c) =>
        unwrap(
          api.GET('/projects/{project_id}/rules', {
            params: { path: { project_id: projectId }, query: { cursor: c } },
          }),
        ),
      ),
    [projectId],
  );
}
