// What each niche kind unlocks (API.md "Purpose-built niches"), and turning a
// composer's draft into the body of POST /v1/niches/{id}/posts.

export type NicheKind = "family" | "friends" | "book_club" | "professional" | "skills" | "neighbourhood" | "custom";
export type PostType = "text" | "highlight" | "ask" | "moment";
export type ProfileField = "birthday" | "reading" | "headline" | "skills";
export type View = "upcoming" | "shelf" | "skills";

const UNLOCKS: Record<NicheKind, { posts: PostType[]; fields: ProfileField[]; views: View[] }> = {
  family: { posts: ["text", "moment"], fields: ["birthday"], views: ["upcoming"] },
  friends: { posts: ["text", "moment"], fields: ["birthday"], views: ["upcoming"] },
  book_club: { posts: ["text", "highlight"], fields: ["reading"], views: ["shelf"] },
  professional: { posts: ["text", "ask"], fields: ["headline", "skills"], views: ["skills"] },
  skills: { posts: ["text", "ask"], fields: ["skills"], views: ["skills"] },
  neighbourhood: { posts: ["text", "ask"], fields: ["skills"], views: ["skills"] },
  custom: { posts: ["text", "highlight", "ask", "moment"], fields: ["birthday", "reading", "headline", "skills"], views: ["upcoming", "shelf", "skills"] },
};

export const postTypes = (k: NicheKind): PostType[] => UNLOCKS[k].posts;
export const profileFields = (k: NicheKind): ProfileField[] => UNLOCKS[k].fields;
export const hasView = (k: NicheKind, v: View): boolean => UNLOCKS[k].views.includes(v);

export const POST_TYPE_LABELS: Record<PostType, string> = {
  text: "Text",
  highlight: "Book highlight",
  ask: "Ask for help",
  moment: "Moment",
};

export const MOMENT_KINDS = [
  ["birthday", "Birthday"],
  ["new_baby", "New baby"],
  ["surgery", "Surgery"],
  ["recovery", "Recovery"],
  ["graduation", "Graduation"],
  ["wedding", "Wedding"],
  ["new_home", "New home"],
  ["new_job", "New job"],
  ["anniversary", "Anniversary"],
  ["loss", "Loss"],
  ["other", "Something else"],
] as const;
export const momentLabel = (k: string): string => MOMENT_KINDS.find(([v]) => v === k)?.[1] ?? k;

export const SKILL_LEVELS = ["beginner", "intermediate", "expert"] as const;

export interface Draft {
  type: PostType;
  text: string;
  title: string;
  author: string;
  isbn: string;
  page: string;
  quote: string;
  skill: string;
  momentKind: string;
  date: string;
}

export const emptyDraft = (type: PostType = "text"): Draft => ({
  type, text: "", title: "", author: "", isbn: "", page: "", quote: "", skill: "", momentKind: "birthday", date: "",
});

/** The request body for a draft with these photos, or a sentence saying what is missing. */
export function postBody(d: Draft, mediaIds: string[]): { body: Record<string, unknown> } | { error: string } {
  const text = d.text.trim();
  const media = mediaIds.length ? { media_ids: mediaIds } : {};
  switch (d.type) {
    case "text":
      if (!text) return { error: mediaIds.length ? "Write a few words to go with your photos." : "Write something first." };
      return { body: { type: "text", text, ...media } };
    case "ask":
      if (!text) return { error: "Say what you need help with." };
      return { body: { type: "ask", text, ...(d.skill.trim() ? { skill: d.skill.trim() } : {}), ...media } };
    case "highlight": {
      if (!d.title.trim() || !d.author.trim()) return { error: "Give the book’s title and author." };
      if (!d.quote.trim()) return { error: "Copy the passage you want to share." };
      const page = d.page.trim();
      if (page && !/^[1-9][0-9]{0,5}$/.test(page)) return { error: "The page is a whole number, like 42." };
      const isbn = d.isbn.replace(/[\s-]/g, "");
      const book: Record<string, string> = { title: d.title.trim(), author: d.author.trim(), ...(isbn ? { isbn } : {}) };
      return { body: { type: "highlight", book, quote: d.quote.trim(), ...(page ? { page: Number(page) } : {}), ...(text ? { text } : {}), ...media } };
    }
    case "moment":
      if (!/^\d{4}-\d{2}-\d{2}$/.test(d.date)) return { error: "Choose the moment’s date." };
      return { body: { type: "moment", moment: { kind: d.momentKind, date: d.date }, ...(text ? { text } : {}), ...media } };
  }
}

/** A photo's alternative text: its caption, else who shared it. */
export function altText(caption: string | null | undefined, author: string): string {
  const c = (caption ?? "").trim().replace(/\s+/g, " ");
  if (!c) return `Photo by ${author}`;
  return c.length > 140 ? `${c.slice(0, 139)}…` : c;
}

/** The typed fields a post shows, as the API returns them. */
export interface TypedPost {
  type?: PostType;
  text: string;
  book?: { title: string; author: string; isbn?: string | null } | null;
  quote?: string | null;
  page?: number | null;
  skill?: string | null;
  moment?: { kind: string; date: string } | null;
}

/** A draft holding a post's current fields, for editing it. */
export function draftOf(p: TypedPost): Draft {
  return {
    ...emptyDraft(p.type ?? "text"),
    text: p.text ?? "",
    title: p.book?.title ?? "",
    author: p.book?.author ?? "",
    isbn: p.book?.isbn ?? "",
    page: p.page ? String(p.page) : "",
    quote: p.quote ?? "",
    skill: p.skill ?? "",
    momentKind: p.moment?.kind ?? "birthday",
    date: p.moment?.date ?? "",
  };
}

/** The body of PATCH /v1/posts/{id} for an edited draft (the type and photos do not change). */
export function editBody(d: Draft): { body: Record<string, unknown> } | { error: string } {
  const built = postBody(d, []);
  if ("error" in built) return built;
  const { type: _type, ...body } = built.body;
  return { body };
}
