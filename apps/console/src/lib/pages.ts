/** Every page of a cursor-paged list, up to `max` items (the console's lists are small). */
export async function allPages<T>(
  fetchPage: (cursor?: string) => Promise<{ items: T[]; next_cursor: string | null }>,
  max = 1000,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && items.length < max);
  return items;
}
