// Feed state: pages merged without duplicates, live entries on top, blocked authors hidden.

export interface FeedPost {
  id: string;
  niche_id: string;
  author: { id: string; display_name: string };
  created_at: string;
  [k: string]: unknown;
}

export interface FeedState<P extends FeedPost> {
  items: P[];
  cursor: string | null;
  done: boolean;
}

export function emptyFeed<P extends FeedPost>(): FeedState<P> {
  return { items: [], cursor: null, done: false };
}

/** Append an older page (infinite scroll). */
export function appendPage<P extends FeedPost>(s: FeedState<P>, page: P[], next: string | null): FeedState<P> {
  const seen = new Set(s.items.map((p) => p.id));
  return { items: [...s.items, ...page.filter((p) => !seen.has(p.id))], cursor: next, done: next === null };
}

/** A post that arrived live: on top if new, replaced in place if known. */
export function applyLive<P extends FeedPost>(s: FeedState<P>, post: P): FeedState<P> {
  if (s.items.some((p) => p.id === post.id)) {
    return { ...s, items: s.items.map((p) => (p.id === post.id ? post : p)) };
  }
  const items = [post, ...s.items].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return { ...s, items };
}

export function replacePost<P extends FeedPost>(s: FeedState<P>, post: P): FeedState<P> {
  return { ...s, items: s.items.map((p) => (p.id === post.id ? post : p)) };
}

export function removePost<P extends FeedPost>(s: FeedState<P>, id: string): FeedState<P> {
  return { ...s, items: s.items.filter((p) => p.id !== id) };
}

/** Hide everything written by people I block. */
export function withoutAuthors<P extends FeedPost>(s: FeedState<P>, blocked: Set<string>): FeedState<P> {
  return { ...s, items: s.items.filter((p) => !blocked.has(p.author.id)) };
}
