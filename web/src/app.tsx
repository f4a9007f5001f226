// The Kith web app: every screen, one small router, the live connection.
import { createContext, type ComponentChildren } from "preact";
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, fetchPhoto, ok, photosOf, sentence, session, UiError, uploadPhoto, type Comment, type Conversation, type Invite as InviteInfo, type Kind, type Me, type Member, type Message, type Niche, type Persona, type Photo, type Post, type ShelfItem, type SkillEntry, type Upcoming } from "./api/client";
import { altText, draftOf, editBody, emptyDraft, hasView, momentLabel, MOMENT_KINDS, POST_TYPE_LABELS, postBody, postTypes, profileFields, SKILL_LEVELS, type Draft, type PostType, type TypedPost } from "./lib/kinds";
import { ACCEPTED_IMAGES, imageProblem, MediaCache } from "./lib/media";
import { appendPage, applyLive, emptyFeed, removePost, replacePost, withoutAuthors, type FeedState } from "./lib/feed";
import { Live, type LiveStatus } from "./lib/live";
import { Outbox, type Outgoing } from "./lib/outbox";
import type { Tokens } from "./lib/session";

// -- routing ----------------------------------------------------------------------------------

export function navigate(to: string): void {
  window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const on = () => setPath(window.location.pathname);
    window.addEventListener("popstate", on);
    return () => window.removeEventListener("popstate", on);
  }, []);
  return path;
}

function Link(props: { href: string; children: ComponentChildren; class?: string; "aria-current"?: "page" | undefined }) {
  return (
    <a
      {...props}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    />
  );
}

/** The page heading: receives focus after navigation so screen readers announce the new page. */
function Title({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

// -- live events --------------------------------------------------------------------------------

const bus = new EventTarget();

function useLive<T>(type: string, handler: (data: T) => void): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    const on = (e: Event) => ref.current((e as CustomEvent<T>).detail);
    bus.addEventListener(type, on);
    return () => bus.removeEventListener(type, on);
  }, [type]);
}

/** Run again when the browser comes back online (a list that failed to load then loads). */
function useOnline(fn: () => void): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const on = () => ref.current();
    window.addEventListener("online", on);
    return () => window.removeEventListener("online", on);
  }, []);
}

// -- app state ----------------------------------------------------------------------------------

interface AppState {
  me: Me;
  blocked: Set<string>;
  setBlocked: (b: Set<string>) => void;
  unread: number;
  refreshUnread: () => void;
  names: Map<string, string>;
  learnNames: (members: { user_id: string; display_name: string }[]) => void;
}

const Ctx = createContext<AppState>(null as unknown as AppState);
const useApp = () => useContext(Ctx);

export const KINDS: { kind: Kind; label: string; purpose: string }[] = [
  { kind: "family", label: "Family", purpose: "For a family: everyday news, moments and birthdays, shared only with relatives." },
  { kind: "friends", label: "Friends", purpose: "For a group of friends: plans, photos and life’s moments." },
  { kind: "book_club", label: "Book club", purpose: "For readers: highlights from books and a shared shelf." },
  { kind: "professional", label: "Professional circle", purpose: "For colleagues: questions, answers and who knows what." },
  { kind: "skills", label: "Skill swap", purpose: "For trading skills: ask for help and offer what you know." },
  { kind: "neighbourhood", label: "Neighbourhood", purpose: "For neighbours: ask for a hand, lend a ladder, know who can help." },
  { kind: "custom", label: "Custom", purpose: "Everything unlocked: every post type and every profile field." },
];
const kindOf = (k: Kind) => KINDS.find((x) => x.kind === k)!;

const REACTIONS = [
  ["like", "Like"],
  ["love", "Love"],
  ["hug", "Hug"],
  ["congrats", "Congrats"],
  ["support", "Support"],
  ["laugh", "Laugh"],
] as const;
type ReactionKind = (typeof REACTIONS)[number][0];

function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function ErrorText({ error }: { error: string | null }) {
  return error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;
}

// -- the app -----------------------------------------------------------------------------------

export function App() {
  const [tokens, setTokens] = useState<Tokens | null>(session.current);
  useEffect(() => session.onChange(setTokens), []);
  const path = usePath();
  if (!tokens) return <SignedOut path={path} />;
  return <SignedIn key={tokens.user_id} path={path} />;
}

function SignedOut({ path }: { path: string }) {
  const join = path.match(/^\/join\/([A-Za-z0-9_-]+)$/);
  const signUp = path === "/signup";
  return (
    <>
      <header class="top">
        <span class="brand">Kith</span>
      </header>
      <main id="main" class="narrow">
        {join ? <p class="notice">You have been invited to a niche. Sign in or create an account to join it.</p> : null}
        {signUp ? <SignUp /> : <SignIn />}
      </main>
    </>
  );
}

function SignIn() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = await ok(api.POST("/v1/sessions", { body: { username, password } }), true);
      session.set({ access_token: t.access_token, refresh_token: t.refresh_token, user_id: t.user_id });
    } catch (err) {
      setError(sentence(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="signin-title">
      <Title>
        <span id="signin-title">Sign in to Kith</span>
      </Title>
      <form onSubmit={submit}>
        <label for="si-user">Username</label>
        <input id="si-user" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="si-pass">Password</label>
        <input id="si-pass" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorText error={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p>
        New here? <Link href={`/signup${window.location.pathname.startsWith("/join/") ? `?next=${encodeURIComponent(window.location.pathname)}` : ""}`}>Create an account</Link>
      </p>
    </section>
  );
}

function SignUp() {
  const [username, setUsername] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const next = new URLSearchParams(window.location.search).get("next");
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await ok(api.POST("/v1/accounts", { body: { username, password, display_name: name } }));
      const t = await ok(api.POST("/v1/sessions", { body: { username, password } }), true);
      if (next && next.startsWith("/join/")) window.history.replaceState(null, "", next);
      else window.history.replaceState(null, "", "/");
      session.set({ access_token: t.access_token, refresh_token: t.refresh_token, user_id: t.user_id });
    } catch (err) {
      setError(sentence(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <Title>Create your Kith account</Title>
      <form onSubmit={submit}>
        <label for="su-name">Your name</label>
        <input id="su-name" autocomplete="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="su-user">Username</label>
        <input id="su-user" autocomplete="username" required aria-describedby="su-user-hint" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <p id="su-user-hint" class="hint">
          3 to 32 lower-case letters, digits or underscores.
        </p>
        <label for="su-pass">Password</label>
        <input id="su-pass" type="password" autocomplete="new-password" required aria-describedby="su-pass-hint" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <p id="su-pass-hint" class="hint">
          At least 10 characters.
        </p>
        <ErrorText error={error} />
        <button type="submit" disabled={busy}>
          Create account
        </button>
      </form>
      <p>
        Already have an account? <Link href="/">Sign in</Link>
      </p>
    </section>
  );
}

function SignedIn({ path }: { path: string }) {
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [blocked, setBlocked] = useState<Set<string>>(new Set());
  const [unread, setUnread] = useState(0);
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [names] = useState(() => new Map<string, string>());
  const learnNames = useCallback((ms: { user_id: string; display_name: string }[]) => ms.forEach((m) => names.set(m.user_id, m.display_name)), [names]);

  const refreshUnread = useCallback(() => {
    ok(api.GET("/v1/conversations", { params: { query: { limit: 100 } } }))
      .then((r) => setUnread(r.items.reduce((n, c) => n + c.unread_count, 0)))
      .catch(() => {});
  }, []);

  useEffect(() => {
    ok(api.GET("/v1/me")).then(setMe, (e) => setError(sentence(e)));
    ok(api.GET("/v1/blocks", { params: { query: { limit: 100 } } })).then((r) => setBlocked(new Set(r.items.map((b) => b.user_id))), () => {});
    refreshUnread();
    const live = new Live({
      ticket: async () => (await ok(api.POST("/v1/stream/tickets"))).ticket,
      open: (url) => new EventSource(url),
      schedule: (fn, ms) => window.setTimeout(fn, ms),
      onEvent: (type, data) => bus.dispatchEvent(new CustomEvent(type, { detail: data })),
      onStatus: setStatus,
      onExpired: async () => {
        await session.refresh();
      },
    });
    void live.start();
    const online = () => live.reconnectNow();
    const offline = () => live.drop();
    window.addEventListener("online", online);
    window.addEventListener("offline", offline);
    return () => {
      live.stop();
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
    };
  }, []);
  // The inbox is a read model, eventually consistent with the stream: look again shortly after.
  const refreshSoon = useCallback(() => [0, 1000, 3000].forEach((ms) => window.setTimeout(refreshUnread, ms)), [refreshUnread]);
  useLive("message.new", refreshSoon);
  useLive("message.read", refreshSoon);

  if (!me) {
    return (
      <main id="main" class="narrow">
        {error ? <ErrorText error={error} /> : <p role="status">Loading…</p>}
      </main>
    );
  }
  const state: AppState = { me, blocked, setBlocked, unread, refreshUnread, names, learnNames };
  const nav = (href: string, label: string, extra?: string) => (
    <li>
      <Link href={href} aria-current={path === href || (href !== "/" && path.startsWith(href)) ? "page" : undefined}>
        {label}
        {extra ? <span class="badge"> {extra}</span> : null}
      </Link>
    </li>
  );
  return (
    <Ctx.Provider value={state}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          Kith
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav("/", "Home")}
            {nav("/niches", "Niches")}
            {nav("/upcoming", "Upcoming")}
            {nav("/skills", "Skills")}
            {nav("/messages", "Messages", unread ? `(${unread} unread)` : undefined)}
            {nav("/settings", "Settings")}
          </ul>
        </nav>
        <p role="status" class={`live conn-${status}`}>
          {status === "live" ? "Live" : status === "lost" ? "Connection lost — reconnecting…" : "Connecting…"}
        </p>
      </header>
      <main id="main">
        <Route path={path} />
      </main>
    </Ctx.Provider>
  );
}

function Route({ path }: { path: string }) {
  let m: RegExpMatchArray | null;
  if (path === "/" || path === "/signup") return <Home />;
  if (path === "/niches") return <Niches />;
  if ((m = path.match(/^\/niches\/([0-9a-f-]{36})$/))) return <NichePage key={m[1]} id={m[1]} />;
  if ((m = path.match(/^\/join\/([A-Za-z0-9_-]+)$/))) return <Join code={m[1]} />;
  if (path === "/messages") return <Messages />;
  if ((m = path.match(/^\/messages\/([0-9a-f-]{36})$/))) return <ConversationPage key={m[1]} id={m[1]} />;
  if (path === "/settings") return <Settings />;
  if (path === "/skills") return <SkillDirectory />;
  if (path === "/upcoming") return <UpcomingPage />;
  return <NotFound />;
}

function NotFound({ what = "page" }: { what?: string }) {
  return (
    <section>
      <Title>Not found</Title>
      <p>This {what} was not found, or you don’t have access to it.</p>
      <p>
        <Link href="/">Go to your home feed</Link>
      </p>
    </section>
  );
}

// -- feeds and posts ------------------------------------------------------------------------------

function Home() {
  return (
    <section>
      <Title>Home</Title>
      <Feed />
    </section>
  );
}

function Feed({ niche }: { niche?: Niche }) {
  const { blocked } = useApp();
  const [feed, setFeed] = useState<FeedState<Post>>(emptyFeed());
  const [error, setError] = useState<string | null>(null);
  const loading = useRef(false);
  const sentinel = useRef<HTMLDivElement>(null);

  const load = useCallback(
    async (cursor: string | null) => {
      if (loading.current) return;
      loading.current = true;
      try {
        const query = { limit: 20, ...(cursor ? { cursor } : {}) };
        const page = niche
          ? await ok(api.GET("/v1/niches/{niche_id}/feed", { params: { path: { niche_id: niche.id }, query } }))
          : await ok(api.GET("/v1/feed", { params: { query } }));
        setFeed((s) => appendPage(cursor ? s : emptyFeed<Post>(), page.items, page.next_cursor ?? null));
        setError(null);
      } catch (e) {
        setError(sentence(e));
      } finally {
        loading.current = false;
      }
    },
    [niche?.id],
  );
  useEffect(() => {
    void load(null);
  }, [load]);
  useLive<Post>("feed.entry", (p) => {
    if (!niche || p.niche_id === niche.id) setFeed((s) => applyLive(s, p));
  });
  useLive<Post>("post.updated", (p) => setFeed((s) => replacePost(s, p)));
  useLive<{ id?: string; post_id?: string }>("post.deleted", (d) => setFeed((s) => removePost(s, d.post_id ?? d.id ?? "")));
  useLive("reset", () => void load(null));
  useEffect(() => {
    const el = sentinel.current;
    if (!el || feed.done) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && feed.cursor) void load(feed.cursor);
    });
    io.observe(el);
    return () => io.disconnect();
  }, [feed.cursor, feed.done, load]);

  const shown = withoutAuthors(feed, blocked).items;
  return (
    <>
      {niche ? <Composer niche={niche} onPosted={(p) => setFeed((s) => applyLive(s, p))} /> : null}
      <ErrorText error={error} />
      <section aria-label="Posts" class="feed">
        {shown.length === 0 && feed.done ? <p>No posts yet.</p> : null}
        {shown.map((p) => (
          <PostCard key={p.id} post={p} showNiche={!niche} onChange={(np) => setFeed((s) => replacePost(s, np))} onDeleted={() => setFeed((s) => removePost(s, p.id))} />
        ))}
      </section>
      {!feed.done ? (
        <div ref={sentinel}>
          <button type="button" class="secondary" onClick={() => void load(feed.cursor)}>
            Load older posts
          </button>
        </div>
      ) : shown.length ? (
        <p class="hint">You’re all caught up.</p>
      ) : null}
    </>
  );
}

const mediaCache = new MediaCache(fetchPhoto);

/** A private photo, fetched with the session and shown from a blob: URL. */
function PhotoImage({ photo, alt, size = "thumb" }: { photo: Photo; alt: string; size?: "thumb" | "display" }) {
  const path = size === "thumb" ? photo.thumb_url : photo.url;
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let shown = true;
    mediaCache.acquire(path).then(
      (u) => shown && setUrl(u),
      () => shown && setFailed(true),
    );
    return () => {
      shown = false;
      mediaCache.release(path);
    };
  }, [path]);
  const scale = Math.min(1, (size === "thumb" ? 320 : 1600) / Math.max(photo.width, photo.height, 1));
  const [w, h] = [Math.round(photo.width * scale), Math.round(photo.height * scale)];
  if (failed) return <p class="meta">A photo could not be loaded.</p>;
  return url ? <img class="photo" src={url} alt={alt} width={w} height={h} /> : <span class="photo loading" style={{ aspectRatio: `${w} / ${h}` }} />;
}

function Photos({ items, alt }: { items: Photo[]; alt: string }) {
  const [large, setLarge] = useState<string | null>(null);
  if (!items.length) return null;
  return (
    <ul class="photos" aria-label={items.length === 1 ? "Photo" : `${items.length} photos`}>
      {items.map((m) => (
        <li key={m.id}>
          <PhotoImage photo={m} alt={alt} size={large === m.id ? "display" : "thumb"} />
          <button type="button" class="small secondary" aria-pressed={large === m.id} onClick={() => setLarge(large === m.id ? null : m.id)}>
            {large === m.id ? "Smaller photo" : "Larger photo"}
          </button>
        </li>
      ))}
    </ul>
  );
}

interface Picked {
  id: string;
  name: string;
  preview: string;
}

/** Photos picked for a post or comment: each is uploaded at once; the ids are attached on send. */
function usePhotoPicker() {
  const [picked, setPicked] = useState<Picked[]>([]);
  const [uploading, setUploading] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const add = async (files: FileList | null) => {
    setError(null);
    for (const file of Array.from(files ?? [])) {
      const problem = imageProblem(file);
      if (problem) {
        setError(problem);
        continue;
      }
      setUploading((n) => n + 1);
      try {
        const id = await uploadPhoto(file);
        setPicked((ps) => [...ps, { id, name: file.name, preview: URL.createObjectURL(file) }].slice(0, 10));
      } catch (e) {
        setError(`${file.name}: ${sentence(e)}`);
      } finally {
        setUploading((n) => n - 1);
      }
    }
  };
  const remove = (id: string) => setPicked((ps) => ps.filter((p) => p.id !== id));
  const clear = () => setPicked([]);
  return { picked, uploading, error, add, remove, clear };
}

function PhotoPicker({ id, picker, label = "Add photos" }: { id: string; picker: ReturnType<typeof usePhotoPicker>; label?: string }) {
  return (
    <div class="picker">
      <label for={id}>{label}</label>
      <input id={id} type="file" accept={ACCEPTED_IMAGES.join(",")} multiple onChange={(e) => {
        const input = e.currentTarget;
        void picker.add(input.files).then(() => (input.value = ""));
      }} />
      {picker.uploading ? <p role="status" class="meta">Uploading {picker.uploading === 1 ? "a photo" : `${picker.uploading} photos`}…</p> : null}
      <ErrorText error={picker.error} />
      {picker.picked.length ? (
        <ul class="photos" aria-label="Photos to send">
          {picker.picked.map((p, i) => (
            <li key={p.id}>
              <img class="photo" src={p.preview} alt={`Photo ${i + 1} to send: ${p.name}`} />
              <button type="button" class="small secondary" onClick={() => picker.remove(p.id)}>
                Remove photo {i + 1}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

function loadDraft(key: string, type: PostType): Draft {
  try {
    const raw = window.localStorage.getItem(key);
    if (raw) return { ...emptyDraft(type), ...(JSON.parse(raw) as Partial<Draft>) };
  } catch {
    /* an unreadable draft starts afresh */
  }
  return emptyDraft(type);
}

type DraftField = (name: keyof Draft) => { value: string; onInput: (e: { currentTarget: { value: string } }) => void };

/** The fields of a post type (moment, highlight, ask), for composing or editing. */
function TypeFields({ p, draft, set }: { p: string; draft: Draft; set: (patch: Partial<Draft>) => void }) {
  const field: DraftField = (name) => ({ value: draft[name], onInput: (e) => set({ [name]: e.currentTarget.value }) });
  return (
    <>
      {draft.type === "moment" ? (
        <div class="fields">
          <label for={`${p}-mkind`}>What happened</label>
          <select id={`${p}-mkind`} value={draft.momentKind} onChange={(e) => set({ momentKind: e.currentTarget.value })}>
            {MOMENT_KINDS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
          <label for={`${p}-date`}>Date</label>
          <input id={`${p}-date`} type="date" required {...field("date")} />
        </div>
      ) : null}
      {draft.type === "highlight" ? (
        <div class="fields">
          <label for={`${p}-title`}>Book title</label>
          <input id={`${p}-title`} required maxLength={200} {...field("title")} />
          <label for={`${p}-author`}>Book author</label>
          <input id={`${p}-author`} required maxLength={200} {...field("author")} />
          <label for={`${p}-isbn`}>ISBN (optional)</label>
          <input id={`${p}-isbn`} inputMode="numeric" maxLength={32} {...field("isbn")} />
          <label for={`${p}-page`}>Page (optional)</label>
          <input id={`${p}-page`} inputMode="numeric" maxLength={6} {...field("page")} />
          <label for={`${p}-quote`}>The passage</label>
          <textarea id={`${p}-quote`} rows={3} required maxLength={2000} {...field("quote")} />
        </div>
      ) : null}
      {draft.type === "ask" ? (
        <div class="fields">
          <label for={`${p}-skill`}>Skill needed (optional)</label>
          <input id={`${p}-skill`} maxLength={40} {...field("skill")} />
        </div>
      ) : null}
    </>
  );
}

function Composer({ niche, onPosted }: { niche: Niche; onPosted: (p: Post) => void }) {
  const key = `kith.draft.v2.${niche.id}`;
  const types = postTypes(niche.kind);
  const [draft, setDraft] = useState<Draft>(() => {
    const d = loadDraft(key, "text");
    return types.includes(d.type) ? d : { ...d, type: "text" };
  });
  const picker = usePhotoPicker();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Draft>) => {
    setDraft((d) => {
      const next = { ...d, ...patch };
      window.localStorage.setItem(key, JSON.stringify(next));
      return next;
    });
  };
  const field: DraftField = (name) => ({ value: draft[name], onInput: (e) => set({ [name]: e.currentTarget.value }) });
  const submit = async (e: Event) => {
    e.preventDefault();
    const built = postBody(draft, picker.picked.map((p) => p.id));
    if ("error" in built) {
      setError(built.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await ok(api.POST("/v1/niches/{niche_id}/posts", { params: { path: { niche_id: niche.id } }, body: built.body as never }));
      const full = await ok(api.GET("/v1/posts/{post_id}", { params: { path: { post_id: created.id } } }));
      onPosted(full);
      setDraft(emptyDraft("text"));
      picker.clear();
      window.localStorage.removeItem(key);
    } catch (err) {
      setError(`${sentence(err)} Your post is kept here.`); // the draft (and its photos) stay in the box
    } finally {
      setBusy(false);
    }
  };
  const p = `compose-${niche.id.slice(0, 8)}`;
  const textLabel =
    draft.type === "text" ? `Write a post to ${niche.name}` : draft.type === "ask" ? "What do you need help with?" : draft.type === "highlight" ? "Your thoughts (optional)" : "Tell everyone about it (optional)";
  return (
    <form class="composer" onSubmit={submit} aria-label={`New post in ${niche.name}`}>
      {types.length > 1 ? (
        <fieldset class="types">
          <legend>What are you sharing?</legend>
          {types.map((t) => (
            <label key={t} class="choice">
              <input type="radio" name={`${p}-type`} value={t} checked={draft.type === t} onChange={() => set({ type: t })} /> {POST_TYPE_LABELS[t]}
            </label>
          ))}
        </fieldset>
      ) : null}
      <TypeFields p={p} draft={draft} set={set} />
      <label for="compose">{textLabel}</label>
      <textarea id="compose" rows={3} maxLength={5000} {...field("text")} />
      <PhotoPicker id={`${p}-photos`} picker={picker} />
      <ErrorText error={error} />
      <button type="submit" disabled={busy || picker.uploading > 0}>
        Post
      </button>
    </form>
  );
}

let nicheList: Promise<Niche[]> | null = null;
/** My niches (cached for the page's life; refreshed when I create, join or leave one). */
function myNiches(fresh = false): Promise<Niche[]> {
  if (fresh || !nicheList) {
    nicheList = ok(api.GET("/v1/niches", { params: { query: { limit: 100 } } })).then((r) => r.items);
    nicheList.catch(() => (nicheList = null));
  }
  return nicheList;
}

function NicheName({ id }: { id: string }) {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    myNiches().then((ns) => setName(ns.find((n) => n.id === id)?.name ?? null), () => {});
  }, [id]);
  return name ? (
    <>
      {" in "}
      <Link href={`/niches/${id}`}>{name}</Link>
    </>
  ) : null;
}

const memberCache = new Map<string, Promise<Member[]>>();
function membersOf(nicheId: string, fresh = false): Promise<Member[]> {
  if (fresh || !memberCache.has(nicheId)) {
    const p = ok(api.GET("/v1/niches/{niche_id}/members", { params: { path: { niche_id: nicheId }, query: { limit: 100 } } })).then((r) => {
      bus.dispatchEvent(new CustomEvent(`members:${nicheId}`, { detail: r.items }));
      return r.items;
    });
    p.catch(() => memberCache.delete(nicheId));
    memberCache.set(nicheId, p);
  }
  return memberCache.get(nicheId)!;
}

function longDate(iso: string): string {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { dateStyle: "long" });
}

/** A post's own content, by type: text, a book highlight, an ask, a moment. */
function TypedBody({ post }: { post: Post }) {
  const text = post.text ? <p class="text">{post.text}</p> : null;
  if (post.type === "highlight" && post.book) {
    return (
      <>
        <figure class="highlight">
          <blockquote>{post.quote}</blockquote>
          <figcaption>
            <cite>{post.book.title}</cite> by {post.book.author}
            {post.page ? `, page ${post.page}` : ""}
            {post.book.isbn ? <span class="meta"> · ISBN {post.book.isbn}</span> : null}
          </figcaption>
        </figure>
        {text}
      </>
    );
  }
  if (post.type === "moment" && post.moment) {
    return (
      <>
        <p class="moment">
          <strong>{momentLabel(post.moment.kind)}</strong> · <time dateTime={post.moment.date}>{longDate(post.moment.date)}</time>
        </p>
        {text}
      </>
    );
  }
  if (post.type === "ask") {
    return (
      <>
        <p class="ask-tag">
          <strong>Asking for help</strong>
          {post.skill ? ` with ${post.skill}` : ""}
          {post.answered_by ? <span class="answered"> · Answered by {post.answered_by.author.display_name}</span> : null}
        </p>
        {text}
      </>
    );
  }
  return text;
}

function PostCard({ post, onChange, onDeleted, showNiche }: { post: Post; onChange: (p: Post) => void; onDeleted: () => void; showNiche: boolean }) {
  const { me } = useApp();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState<Draft>(() => draftOf(post as TypedPost));
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [showComments, setShowComments] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mine = post.author.id === me.id;
  const titleId = `post-${post.id}`;
  const reload = async () => onChange(await ok(api.GET("/v1/posts/{post_id}", { params: { path: { post_id: post.id } } })));

  const react = async (kind: ReactionKind) => {
    setError(null);
    const on = post.my_reactions.includes(kind);
    try {
      if (on) await ok(api.DELETE("/v1/posts/{post_id}/reactions/{kind}", { params: { path: { post_id: post.id, kind } } }));
      else await ok(api.POST("/v1/posts/{post_id}/reactions", { params: { path: { post_id: post.id } }, body: { kind } }));
      await reload();
    } catch (e) {
      setError(sentence(e));
    }
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const built = editBody(draft);
      if ("error" in built) return setError(built.error);
      await ok(api.PATCH("/v1/posts/{post_id}", { params: { path: { post_id: post.id } }, body: built.body as never }));
      await reload();
      setEditing(false);
    } catch (err) {
      setError(`${sentence(err)} Your changes are kept.`);
    }
  };
  const remove = async () => {
    try {
      await ok(api.DELETE("/v1/posts/{post_id}", { params: { path: { post_id: post.id } } }));
      onDeleted();
    } catch (e) {
      setError(sentence(e));
    }
  };
  return (
    <article class="post" aria-labelledby={titleId}>
      <header>
        <h2 id={titleId} class="author">
          {post.author.display_name}
        </h2>
        {showNiche ? (
          <p class="meta">
            posted<NicheName id={post.niche_id} />
          </p>
        ) : null}
        <p class="meta">
          <time dateTime={post.created_at}>{when(post.created_at)}</time>
          {post.edited_at ? " · edited" : ""}
        </p>
      </header>
      {editing ? (
        <form onSubmit={save}>
          <TypeFields p={`edit-${post.id}`} draft={draft} set={(patch) => setDraft((d) => ({ ...d, ...patch }))} />
          <label for={`edit-${post.id}`}>Edit your post</label>
          <textarea id={`edit-${post.id}`} rows={3} value={draft.text} onInput={(e) => setDraft({ ...draft, text: e.currentTarget.value })} />
          <button type="submit">Save</button>{" "}
          <button type="button" class="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <TypedBody post={post} />
      )}
      <Photos items={photosOf(post)} alt={altText(post.text, post.author.display_name)} />
      <div class="reactions" role="group" aria-label="Reactions">
        {REACTIONS.map(([kind, label]) => {
          const count = (post.reactions as Record<string, number>)[kind] ?? 0;
          return (
            <button type="button" key={kind} class="reaction" aria-pressed={post.my_reactions.includes(kind)} onClick={() => void react(kind)}>
              {label}
              {count ? ` ${count}` : ""}
            </button>
          );
        })}
      </div>
      <div class="actions small-buttons">
        <button type="button" class="secondary" aria-expanded={showComments} onClick={() => setShowComments(!showComments)}>
          Comments ({post.comment_count})
        </button>
        {mine && !editing ? (
          <button type="button" class="secondary" onClick={() => (setDraft(draftOf(post as TypedPost)), setEditing(true))}>
            Edit
          </button>
        ) : null}
        {mine ? (
          confirmDelete ? (
            <>
              <button type="button" class="danger" onClick={() => void remove()}>
                Yes, delete this post
              </button>
              <button type="button" class="secondary" onClick={() => setConfirmDelete(false)}>
                Keep it
              </button>
            </>
          ) : (
            <button type="button" class="secondary" onClick={() => setConfirmDelete(true)}>
              Delete
            </button>
          )
        ) : null}
      </div>
      <ErrorText error={error} />
      {showComments ? <Comments post={post} onChange={onChange} onCount={(n) => n !== post.comment_count && onChange({ ...post, comment_count: n })} /> : null}
    </article>
  );
}

/** A comment's author as the niche shows them (comments carry it; the schema leaves it open). */
const authorOf = (c: Comment): string | undefined => (c as { author?: { display_name?: string } }).author?.display_name;

/** The comments of an open post; refreshed every few seconds while open (the stream has no comment events yet). */
function Comments({ post, onCount, onChange }: { post: Post; onCount: (n: number) => void; onChange: (p: Post) => void }) {
  const { me, names, learnNames } = useApp();
  const picker = usePhotoPicker();
  const canMark = post.type === "ask" && post.author.id === me.id;
  const answerId = post.answered_by?.comment_id ?? null;
  const markAnswer = async (c: Comment) => {
    setError(null);
    try {
      onChange(await ok(api.POST("/v1/posts/{post_id}/answer", { params: { path: { post_id: post.id } }, body: { comment_id: c.id } })));
    } catch (e) {
      setError(sentence(e));
    }
  };
  const [items, setItems] = useState<Comment[]>([]);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [, setTick] = useState(0);
  const loaded = useRef(false);
  const load = useCallback(async () => {
    try {
      const r = await ok(api.GET("/v1/posts/{post_id}/comments", { params: { path: { post_id: post.id }, query: { limit: 100 } } }));
      if (r.items.some((c) => !authorOf(c) && !names.has(c.author_id))) learnNames(await membersOf(post.niche_id, true));
      setItems(r.items);
      onCount(r.items.length);
      setError(null);
      loaded.current = true;
    } catch (e) {
      if (!loaded.current) setError(sentence(e)); // a failed background refresh keeps what is shown
    }
  }, [post.id]);
  useEffect(() => {
    void load();
    const t = window.setInterval(() => void load(), 3000);
    return () => window.clearInterval(t);
  }, [load]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const media_ids = picker.picked.map((p) => p.id);
      await ok(api.POST("/v1/posts/{post_id}/comments", { params: { path: { post_id: post.id } }, body: { text, ...(media_ids.length ? { media_ids } : {}) } }));
      setText("");
      picker.clear();
      await load();
      setTick((n) => n + 1);
    } catch (err) {
      setError(`${sentence(err)} Your comment is kept.`);
    }
  };
  return (
    <section class="comments" aria-label={`Comments on ${post.author.display_name}’s post`}>
      <ul>
        {items.map((c) => {
          const who = authorOf(c) ?? names.get(c.author_id) ?? "A member";
          return (
            <li key={c.id} class={c.id === answerId ? "answer" : undefined}>
              <strong>{who}</strong>: {c.text}
              {c.id === answerId ? <strong class="answer-tag"> (the answer)</strong> : null}
              <Photos items={photosOf(c)} alt={altText(c.text, who)} />
              {canMark && c.id !== answerId && c.author_id !== me.id ? (
                <button type="button" class="small secondary" onClick={() => void markAnswer(c)}>
                  Mark {who}’s comment as the answer
                </button>
              ) : null}
            </li>
          );
        })}
      </ul>
      <form onSubmit={submit}>
        <label for={`comment-${post.id}`}>Write a comment</label>
        <input id={`comment-${post.id}`} value={text} maxLength={2000} onInput={(e) => setText(e.currentTarget.value)} />
        <PhotoPicker id={`comment-photos-${post.id}`} picker={picker} label="Add photos to your comment" />
        <ErrorText error={error} />
        <button type="submit" disabled={(!text.trim() && picker.picked.length === 0) || picker.uploading > 0}>
          Comment
        </button>
      </form>
    </section>
  );
}

// -- niches ------------------------------------------------------------------------------------

function Niches() {
  const [niches, setNiches] = useState<Niche[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("family");
  const [description, setDescription] = useState("");
  useEffect(() => {
    myNiches(true).then(setNiches, (e) => setError(sentence(e)));
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const n = await ok(api.POST("/v1/niches", { body: { name, kind, ...(description ? { description } : {}) } }));
      void myNiches(true);
      navigate(`/niches/${n.id}`);
    } catch (err) {
      setError(sentence(err));
    }
  };
  return (
    <section>
      <Title>Your niches</Title>
      {niches === null && !error ? <p role="status">Loading…</p> : null}
      {niches?.length === 0 ? <p>You are not in any niche yet. Create one below, or open an invite link.</p> : null}
      <ul class="cards">
        {niches?.map((n) => (
          <li key={n.id}>
            <Link href={`/niches/${n.id}`}>{n.name}</Link>
            <span class="meta">
              {" "}
              · {kindOf(n.kind).label} · {n.member_count} {n.member_count === 1 ? "member" : "members"}
            </span>
          </li>
        ))}
      </ul>
      <h2>Create a niche</h2>
      <form onSubmit={create}>
        <label for="niche-name">Name</label>
        <input id="niche-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="niche-kind">Kind</label>
        <select id="niche-kind" aria-describedby="niche-kind-purpose" value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
          {KINDS.map((k) => (
            <option key={k.kind} value={k.kind}>
              {k.label}
            </option>
          ))}
        </select>
        <p id="niche-kind-purpose" class="hint">
          {kindOf(kind).purpose}
        </p>
        <label for="niche-desc">Description (optional)</label>
        <input id="niche-desc" maxLength={500} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        <ErrorText error={error} />
        <button type="submit">Create niche</button>
      </form>
    </section>
  );
}

function NichePage({ id }: { id: string }) {
  const [niche, setNiche] = useState<Niche | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ok(api.GET("/v1/niches/{niche_id}", { params: { path: { niche_id: id } } })).then(setNiche, (e) => {
      if (e instanceof UiError && e.status === 404) setMissing(true);
      else setError(sentence(e));
    });
  }, [id]);
  if (missing) return <NotFound what="niche" />;
  if (!niche) return error ? <ErrorText error={error} /> : <p role="status">Loading…</p>;
  return (
    <div class="niche">
      <section class="niche-main" aria-labelledby="niche-title">
        <Title>
          <span id="niche-title">{niche.name}</span>
        </Title>
        <p class="meta">
          {kindOf(niche.kind).label}: {kindOf(niche.kind).purpose}
        </p>
        {niche.description ? <p>{niche.description}</p> : null}
        <Feed niche={niche} />
      </section>
      <aside aria-label="About this niche">
        {hasView(niche.kind, "shelf") ? <Shelf niche={niche} /> : null}
        <MyPersona niche={niche} />
        {niche.my_role === "owner" || niche.my_role === "admin" ? <Invite niche={niche} /> : null}
        <Members niche={niche} />
      </aside>
    </div>
  );
}

interface SkillRow {
  name: string;
  level: string;
}

/** My persona in this niche: the profile fields its kind unlocks. */
function MyPersona({ niche }: { niche: Niche }) {
  const fields = profileFields(niche.kind);
  const [profile, setProfile] = useState<Persona | null>(null);
  const [name, setName] = useState("");
  const [headline, setHeadline] = useState("");
  const [birthday, setBirthday] = useState("");
  const [title, setTitle] = useState("");
  const [author, setAuthor] = useState("");
  const [skills, setSkills] = useState<SkillRow[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const show = (p: Persona) => {
    setProfile(p);
    setName(p.display_name ?? "");
    setHeadline(p.headline ?? "");
    setBirthday(p.birthday ?? "");
    setTitle(p.reading?.title ?? "");
    setAuthor(p.reading?.author ?? "");
    setSkills(p.skills.map((k) => ({ name: k.name, level: k.level ?? "" })));
  };
  const load = useCallback(() => {
    ok(api.GET("/v1/niches/{niche_id}/profile", { params: { path: { niche_id: niche.id } } })).then(
      (p) => (show(p), setError(null)),
      (e) => setError(sentence(e)),
    );
  }, [niche.id]);
  useEffect(load, [load]);
  useOnline(() => !profile && load());
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    if (birthday && !/^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$/.test(birthday)) {
      setError("Write your birthday as month and day, like 03-14 for 14 March.");
      return;
    }
    if (title.trim() === "" && author.trim() !== "") {
      setError("Give the title of the book you are reading.");
      return;
    }
    const body: Record<string, unknown> = { display_name: name.trim() || null };
    if (fields.includes("headline")) body.headline = headline.trim() || null;
    if (fields.includes("birthday")) body.birthday = birthday || null;
    if (fields.includes("reading")) body.reading = title.trim() ? { title: title.trim(), author: author.trim() || null } : null;
    if (fields.includes("skills"))
      body.skills = skills.filter((k) => k.name.trim()).map((k) => ({ name: k.name.trim(), ...(k.level ? { level: k.level } : {}) }));
    try {
      show(await ok(api.PUT("/v1/niches/{niche_id}/profile", { params: { path: { niche_id: niche.id } }, body: body as never })));
      memberCache.delete(niche.id);
      void membersOf(niche.id, true);
      setSaved("Your profile here is saved.");
    } catch (err) {
      setError(`${sentence(err)} Your changes are kept.`);
    }
  };
  const p = `persona-${niche.id.slice(0, 8)}`;
  const setSkill = (i: number, patch: Partial<SkillRow>) => setSkills(skills.map((k, j) => (j === i ? { ...k, ...patch } : k)));
  return (
    <section aria-labelledby={`${p}-title`}>
      <h2 id={`${p}-title`}>Your profile here</h2>
      <p class="meta">
        {profile?.display_name ? `Here you are “${profile.display_name}”.` : "Here you appear under your account’s name."}
      </p>
      <button type="button" class="secondary" aria-expanded={open} aria-controls={`${p}-form`} onClick={() => setOpen(!open)}>
        {open ? "Close your profile here" : "Edit your profile here"}
      </button>
      {open ? (
        <form id={`${p}-form`} onSubmit={save}>
          <label for={`${p}-name`}>Your name in this niche</label>
          <input id={`${p}-name`} maxLength={100} value={name} aria-describedby={`${p}-name-hint`} onInput={(e) => setName(e.currentTarget.value)} />
          <p id={`${p}-name-hint`} class="hint">
            Leave empty to use your account’s name.
          </p>
          {fields.includes("headline") ? (
            <>
              <label for={`${p}-headline`}>Headline</label>
              <input id={`${p}-headline`} maxLength={120} value={headline} onInput={(e) => setHeadline(e.currentTarget.value)} />
            </>
          ) : null}
          {fields.includes("birthday") ? (
            <>
              <label for={`${p}-birthday`}>Birthday (month-day)</label>
              <input id={`${p}-birthday`} inputMode="numeric" placeholder="MM-DD" maxLength={5} aria-describedby={`${p}-bday-hint`} value={birthday} onInput={(e) => setBirthday(e.currentTarget.value)} />
              <p id={`${p}-bday-hint`} class="hint">
                Like 03-14 for 14 March. No year: nobody needs to know.
              </p>
            </>
          ) : null}
          {fields.includes("reading") ? (
            <>
              <label for={`${p}-reading`}>Reading now: title</label>
              <input id={`${p}-reading`} maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
              <label for={`${p}-reading-author`}>Reading now: author</label>
              <input id={`${p}-reading-author`} maxLength={200} value={author} onInput={(e) => setAuthor(e.currentTarget.value)} />
            </>
          ) : null}
          {fields.includes("skills") ? (
            <fieldset>
              <legend>Your skills</legend>
              {skills.map((k, i) => (
                <div class="skill-row" key={i}>
                  <label for={`${p}-skill-${i}`}>Skill {i + 1}</label>
                  <input id={`${p}-skill-${i}`} maxLength={40} value={k.name} onInput={(e) => setSkill(i, { name: e.currentTarget.value })} />
                  <label for={`${p}-level-${i}`}>Level of skill {i + 1}</label>
                  <select id={`${p}-level-${i}`} value={k.level} onChange={(e) => setSkill(i, { level: e.currentTarget.value })}>
                    <option value="">Not said</option>
                    {SKILL_LEVELS.map((l) => (
                      <option key={l} value={l}>
                        {l[0].toUpperCase() + l.slice(1)}
                      </option>
                    ))}
                  </select>
                  <button type="button" class="small secondary" onClick={() => setSkills(skills.filter((_, j) => j !== i))}>
                    Remove skill {i + 1}
                  </button>
                </div>
              ))}
              {skills.length < 30 ? (
                <button type="button" class="small secondary" onClick={() => setSkills([...skills, { name: "", level: "" }])}>
                  Add a skill
                </button>
              ) : null}
            </fieldset>
          ) : null}
          <ErrorText error={error} />
          <button type="submit">Save your profile here</button>
        </form>
      ) : (
        <ErrorText error={error} />
      )}
      <p role="status" class="meta">
        {saved}
      </p>
    </section>
  );
}

/** A book club's shelf: books highlighted or being read. */
function Shelf({ niche }: { niche: Niche }) {
  const [items, setItems] = useState<ShelfItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    ok(api.GET("/v1/niches/{niche_id}/shelf", { params: { path: { niche_id: niche.id }, query: { limit: 50 } } })).then(
      (r) => (setItems(r.items), setError(null)),
      (e) => setError(sentence(e)),
    );
  }, [niche.id]);
  useEffect(load, [load]);
  useOnline(load);
  useLive<Post>("feed.entry", (p) => p.niche_id === niche.id && p.type === "highlight" && window.setTimeout(load, 500));
  return (
    <section aria-labelledby="shelf-title">
      <h2 id="shelf-title">The shelf</h2>
      <ErrorText error={error} />
      {items?.length === 0 ? <p class="meta">No books yet: share a highlight, or say what you are reading.</p> : null}
      <ul class="shelf">
        {items?.map((b) => (
          <li key={`${b.book.title}|${b.book.author}`}>
            <cite>{b.book.title}</cite>
            {b.book.author ? ` by ${b.book.author}` : ""}
            <p class="meta">
              {b.highlights} {b.highlights === 1 ? "highlight" : "highlights"}
              {b.readers.length ? ` · reading it: ${b.readers.map((r) => r.display_name).join(", ")}` : ""}
            </p>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Invite({ niche }: { niche: Niche }) {
  const [uses, setUses] = useState(1);
  const [link, setLink] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const create = async () => {
    setError(null);
    setCopied(false);
    try {
      const inv = await ok(api.POST("/v1/niches/{niche_id}/invites", { params: { path: { niche_id: niche.id } }, body: { max_uses: uses } }));
      setLink(`${window.location.origin}/join/${inv.code}`);
      void loadInvites();
    } catch (e) {
      setError(sentence(e));
    }
  };
  const [invites, setInvites] = useState<InviteInfo[] | null>(null);
  const loadInvites = useCallback(async () => {
    try {
      const r = await ok(api.GET("/v1/niches/{niche_id}/invites", { params: { path: { niche_id: niche.id } } }));
      setInvites([...r.items].sort((a, b) => a.expires_at.localeCompare(b.expires_at))); // oldest first: numbers stay put
      setListError(null);
    } catch (e) {
      setListError(sentence(e));
    }
  }, [niche.id]);
  const [listError, setListError] = useState<string | null>(null);
  useEffect(() => void loadInvites(), [loadInvites]);
  useOnline(() => void loadInvites());
  const revoke = async (inv: InviteInfo) => {
    setError(null);
    try {
      await ok(api.DELETE("/v1/niches/{niche_id}/invites/{invite_id}", { params: { path: { niche_id: niche.id, invite_id: inv.id } } }));
      setInvites((xs) => (xs ?? []).filter((x) => x.id !== inv.id));
      setLink(null);
      setRevoked("The invite is revoked: its link no longer works.");
    } catch (e) {
      setError(sentence(e));
    }
  };
  const [revoked, setRevoked] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link!);
      setCopied(true);
    } catch {
      (document.getElementById("invite-link") as HTMLInputElement | null)?.select();
    }
  };
  return (
    <section aria-labelledby="invite-title">
      <h2 id="invite-title">Invite people</h2>
      <label for="invite-uses">How many people can use the link</label>
      <input id="invite-uses" type="number" min={1} max={100} value={uses} onInput={(e) => setUses(Math.max(1, Number(e.currentTarget.value) || 1))} />
      <button type="button" onClick={() => void create()}>
        Create invite link
      </button>
      {link ? (
        <>
          <label for="invite-link">Invite link</label>
          <input id="invite-link" readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
          <button type="button" class="secondary" onClick={() => void copy()}>
            Copy link
          </button>
          <p role="status">{copied ? "Link copied." : "Send this link to the person you invite. It works for 7 days."}</p>
        </>
      ) : null}
      <ErrorText error={error} />
      <h3 id="invites-title">Open invites</h3>
      <ErrorText error={listError} />
      <p role="status" class="meta">{revoked}</p>
      {invites?.length === 0 ? <p class="meta">No open invites.</p> : null}
      <ol class="invites" aria-labelledby="invites-title">
        {invites?.map((inv, i) => (
          <li key={inv.id}>
            <span>
              Invite {i + 1}: used {inv.uses} of {inv.max_uses}, until {when(inv.expires_at)}
            </span>{" "}
            <button type="button" class="small danger" onClick={() => void revoke(inv)}>
              Revoke invite {i + 1}
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Members({ niche }: { niche: Niche }) {
  const { me, blocked, setBlocked, learnNames } = useApp();
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [leaving, setLeaving] = useState(false);
  const loaded = useRef(false);
  const load = useCallback(() => {
    membersOf(niche.id, true).then(
      (ms) => {
        learnNames(ms);
        setError(null);
        loaded.current = true;
      },
      (e) => {
        if (!loaded.current) setError(sentence(e)); // background refreshes fail quietly
      },
    );
  }, [niche.id]);
  useEffect(() => {
    load();
    const t = window.setInterval(load, 10_000); // people join and leave; the stream does not say so yet
    return () => window.clearInterval(t);
  }, [load]);
  useLive<Member[]>(`members:${niche.id}`, setMembers);
  useLive<Post>("feed.entry", (p) => {
    if (p.niche_id === niche.id && !members.some((m) => m.user_id === p.author.id)) load();
  });
  const canRemove = niche.my_role === "owner" || niche.my_role === "admin";
  const [skillQ, setSkillQ] = useState("");
  const [found, setFound] = useState<Member[] | null>(null);
  const findBySkill = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const q = skillQ.trim();
    if (!q) return setFound(null);
    try {
      const r = await ok(api.GET("/v1/niches/{niche_id}/members", { params: { path: { niche_id: niche.id }, query: { limit: 100, skill: q } } }));
      setFound(r.items);
    } catch (err) {
      setError(sentence(err));
    }
  };
  // The API does not say whom I endorsed: the buttons remember what I did on this visit.
  const [endorsed, setEndorsed] = useState<Set<string>>(new Set());
  const endorse = (m: Member, skill: string, on: boolean) =>
    act(
      () =>
        on
          ? ok(api.POST("/v1/niches/{niche_id}/members/{user_id}/endorsements", { params: { path: { niche_id: niche.id, user_id: m.user_id } }, body: { skill } }))
          : ok(api.DELETE("/v1/niches/{niche_id}/members/{user_id}/endorsements/{skill}", { params: { path: { niche_id: niche.id, user_id: m.user_id, skill } } })),
      () => {
        const next = new Set(endorsed);
        if (on) next.add(`${m.user_id}:${skill}`);
        else next.delete(`${m.user_id}:${skill}`);
        setEndorsed(next);
        load();
        if (found) void findBySkill(new Event("submit")); // refresh the filtered counts too
      },
    );
  const act = async (fn: () => Promise<unknown>, after?: () => void) => {
    setError(null);
    try {
      await fn();
      after?.();
    } catch (e) {
      setError(sentence(e));
    }
  };
  const block = (m: Member) =>
    act(() => ok(api.POST("/v1/blocks", { body: { user_id: m.user_id } })), () => setBlocked(new Set([...blocked, m.user_id])));
  const unblock = (m: Member) =>
    act(() => ok(api.DELETE("/v1/blocks/{user_id}", { params: { path: { user_id: m.user_id } } })), () => {
      const next = new Set(blocked);
      next.delete(m.user_id);
      setBlocked(next);
    });
  const remove = (m: Member) => act(() => ok(api.DELETE("/v1/niches/{niche_id}/members/{user_id}", { params: { path: { niche_id: niche.id, user_id: m.user_id } } })), load);
  const leave = () => act(() => ok(api.DELETE("/v1/niches/{niche_id}/members/{user_id}", { params: { path: { niche_id: niche.id, user_id: me.id } } })), () => navigate("/niches"));
  const message = (m: Member) =>
    act(async () => {
      const c = await ok(api.POST("/v1/conversations", { body: { member_ids: [m.user_id] } }));
      navigate(`/messages/${c.id}`);
    });
  return (
    <section aria-labelledby="members-title">
      <h2 id="members-title">Members ({members.length})</h2>
      {profileFields(niche.kind).includes("skills") ? (
        <form role="search" class="inline-search" onSubmit={findBySkill}>
          <label for="member-skill">Find members by skill</label>
          <input id="member-skill" type="search" maxLength={40} value={skillQ} onInput={(e) => setSkillQ(e.currentTarget.value)} />
          <span class="row">
            <button type="submit" class="small">
              Find
            </button>
            {found ? (
              <button type="button" class="small secondary" onClick={() => (setFound(null), setSkillQ(""))}>
                Show everyone
              </button>
            ) : null}
          </span>
          <p role="status" class="meta">
            {found ? (found.length ? `${found.length} with a skill starting with “${skillQ.trim()}”.` : `Nobody here lists a skill starting with “${skillQ.trim()}”.`) : ""}
          </p>
        </form>
      ) : null}
      <ul class="members">
        {(found ?? members).map((m) => (
          <li key={m.user_id}>
            <span>
              {m.display_name}
              {m.user_id === me.id ? " (you)" : ""} <span class="meta">· {m.role}</span>
            </span>
            {m.headline ? <p class="meta">{m.headline}</p> : null}
            {m.skills?.length ? (
              <ul class="skills" aria-label={`${m.display_name}’s skills`}>
                {m.skills.map((sk) => {
                  const mineToGive = m.user_id !== me.id;
                  const given = endorsed.has(`${m.user_id}:${sk.name}`);
                  return (
                    <li key={sk.name}>
                      {sk.name}
                      {sk.level ? ` (${sk.level})` : ""}
                      <span class="meta">
                        {" "}
                        · {sk.endorsements} {sk.endorsements === 1 ? "endorsement" : "endorsements"}
                      </span>
                      {mineToGive ? (
                        <button type="button" class="small secondary" aria-pressed={given} onClick={() => void endorse(m, sk.name, !given)}>
                          Endorse {m.display_name} for {sk.name}
                        </button>
                      ) : null}
                    </li>
                  );
                })}
              </ul>
            ) : null}
            {m.user_id !== me.id ? (
              <span class="row">
                <button type="button" class="small secondary" onClick={() => void message(m)}>
                  Message {m.display_name}
                </button>
                {blocked.has(m.user_id) ? (
                  <button type="button" class="small secondary" onClick={() => void unblock(m)}>
                    Unblock {m.display_name}
                  </button>
                ) : (
                  <button type="button" class="small secondary" onClick={() => void block(m)}>
                    Block {m.display_name}
                  </button>
                )}
                {canRemove && m.role !== "owner" ? (
                  <button type="button" class="small danger" onClick={() => void remove(m)}>
                    Remove {m.display_name}
                  </button>
                ) : null}
              </span>
            ) : null}
          </li>
        ))}
      </ul>
      {niche.my_role !== "owner" ? (
        leaving ? (
          <p>
            <button type="button" class="danger" onClick={() => void leave()}>
              Yes, leave {niche.name}
            </button>{" "}
            <button type="button" class="secondary" onClick={() => setLeaving(false)}>
              Stay
            </button>
          </p>
        ) : (
          <button type="button" class="secondary" onClick={() => setLeaving(true)}>
            Leave niche
          </button>
        )
      ) : null}
      <ErrorText error={error} />
    </section>
  );
}

function Join({ code }: { code: string }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const join = async () => {
    setBusy(true);
    setError(null);
    try {
      const n = await ok(api.POST("/v1/invites/{code}/accept", { params: { path: { code } } }));
      void myNiches(true);
      navigate(`/niches/${n.id}`);
    } catch (e) {
      if (e instanceof UiError && e.status === 404) setError("This invite link has expired, has been used up, or does not exist. Ask for a new one.");
      else setError(sentence(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <Title>You’re invited</Title>
      <p>Someone invited you to their niche on Kith. Joining lets you see and share what its members post.</p>
      <button type="button" disabled={busy} onClick={() => void join()}>
        Join the niche
      </button>
      <ErrorText error={error} />
    </section>
  );
}

// -- skill directory, upcoming ---------------------------------------------------------------------

function SkillDirectory() {
  const [q, setQ] = useState(() => new URLSearchParams(window.location.search).get("q") ?? "");
  const [items, setItems] = useState<SkillEntry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const search = useCallback(async (query: string, after: string | null) => {
    setError(null);
    try {
      const r = await ok(api.GET("/v1/skills", { params: { query: { limit: 30, ...(query.trim() ? { q: query.trim() } : {}), ...(after ? { cursor: after } : {}) } } }));
      setItems((xs) => (after ? [...(xs ?? []), ...r.items] : r.items));
      setCursor(r.next_cursor ?? null);
    } catch (e) {
      setError(sentence(e));
    }
  }, []);
  useEffect(() => void search(q, null), []);
  const submit = (e: Event) => {
    e.preventDefault();
    window.history.replaceState(null, "", q.trim() ? `/skills?q=${encodeURIComponent(q.trim())}` : "/skills");
    void search(q, null);
  };
  return (
    <section class="narrow">
      <Title>Who can help</Title>
      <p class="meta">Skills people list in your niches that trade skills, most endorsed first.</p>
      <form role="search" onSubmit={submit}>
        <label for="skill-q">Search skills</label>
        <input id="skill-q" type="search" maxLength={40} value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      <ErrorText error={error} />
      {items?.length === 0 ? <p>{q.trim() ? `Nobody lists a skill starting with “${q.trim()}” yet.` : "Nobody in your niches lists a skill yet."}</p> : null}
      <ul class="cards" aria-label="People with skills">
        {items?.map((e) => (
          <li key={`${e.user.id}|${e.niche.id}|${e.skill}`}>
            <strong>{e.user.display_name}</strong>: {e.skill}
            {e.level ? ` (${e.level})` : ""}
            <p class="meta">
              {e.endorsements} {e.endorsements === 1 ? "endorsement" : "endorsements"} · in <Link href={`/niches/${e.niche.id}`}>{e.niche.name}</Link>
            </p>
          </li>
        ))}
      </ul>
      {cursor ? (
        <button type="button" class="secondary" onClick={() => void search(q, cursor)}>
          Show more
        </button>
      ) : null}
    </section>
  );
}

function UpcomingPage() {
  const [items, setItems] = useState<Upcoming[] | null>(null);
  const [days, setDays] = useState(30);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ok(api.GET("/v1/upcoming", { params: { query: { days } } })).then((r) => setItems(r.items), (e) => setError(sentence(e)));
  }, [days]);
  return (
    <section class="narrow">
      <Title>Coming up</Title>
      <label for="upcoming-days">Look ahead</label>
      <select id="upcoming-days" value={days} onChange={(e) => setDays(Number(e.currentTarget.value))}>
        <option value={7}>The next week</option>
        <option value={30}>The next 30 days</option>
        <option value={90}>The next 3 months</option>
        <option value={366}>The next year</option>
      </select>
      <ErrorText error={error} />
      {items === null && !error ? <p role="status">Loading…</p> : null}
      {items?.length === 0 ? <p>Nothing coming up. Birthdays come from profiles in family and friends niches; anniversaries from moments.</p> : null}
      <ul class="cards" aria-label="Coming up">
        {items?.map((u) => (
          <li key={`${u.kind}|${u.user.id}|${u.niche.id}|${u.date}|${u.post_id ?? ""}`}>
            <time dateTime={u.date}>
              <strong>{longDate(u.date)}</strong>
            </time>
            : {u.user.display_name}’s {momentLabel(u.kind).toLowerCase()}
            <p class="meta">
              in <Link href={`/niches/${u.niche.id}`}>{u.niche.name}</Link>
            </p>
          </li>
        ))}
      </ul>
    </section>
  );
}

// -- messaging -----------------------------------------------------------------------------------

function convName(c: { title?: string | null; members: { user_id: string; display_name: string }[] }, me: string): string {
  return c.title || c.members.filter((m) => m.user_id !== me).map((m) => m.display_name).join(", ") || "Just you";
}

function Messages() {
  const { me } = useApp();
  const [items, setItems] = useState<Conversation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    ok(api.GET("/v1/conversations", { params: { query: { limit: 100 } } })).then((r) => setItems(r.items), (e) => setError(sentence(e)));
  }, []);
  useEffect(load, [load]);
  useLive("message.new", () => [0, 1000, 3000].forEach((ms) => window.setTimeout(load, ms)));
  return (
    <section>
      <Title>Messages</Title>
      <ErrorText error={error} />
      {items?.length === 0 ? <p>No conversations yet. Open a niche’s member list and choose “Message”.</p> : null}
      <ul class="cards">
        {items?.map((c) => (
          <li key={c.id}>
            <Link href={`/messages/${c.id}`}>{convName(c, me.id)}</Link>
            {c.unread_count ? <span class="badge"> {c.unread_count} unread</span> : null}
            {c.last_message ? <p class="meta">{c.last_message.text || "Photo"}</p> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function newId(): string {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function ConversationPage({ id }: { id: string }) {
  const { me, refreshUnread } = useApp();
  const [conv, setConv] = useState<{ title: string | null; members: { user_id: string; display_name: string }[] } | null>(null);
  const [missing, setMissing] = useState(false);
  const [messages, setMessages] = useState<Message[]>([]);
  const [readBy, setReadBy] = useState<Record<string, number>>({});
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [, setTick] = useState(0);
  const outbox = useMemo(
    () =>
      new Outbox(
        async (m: Outgoing) => {
          try {
            const body = { client_message_id: m.client_message_id, ...(m.text ? { text: m.text } : {}), ...(m.media_ids ? { media_ids: m.media_ids } : {}) };
            const sent = await ok(api.POST("/v1/conversations/{conversation_id}/messages", { params: { path: { conversation_id: id } }, body: body as never }));
            setMessages((ms) => (ms.some((x) => x.seq === sent.seq) ? ms : [...ms, sent].sort((a, b) => a.seq - b.seq)));
            return { ok: true, seq: sent.seq };
          } catch (e) {
            return { ok: false, error: sentence(e) };
          }
        },
        newId,
        () => setTick((n) => n + 1),
      ),
    [id],
  );
  const markRead = useCallback(
    (seq: number) => {
      void ok(api.POST("/v1/conversations/{conversation_id}/read", { params: { path: { conversation_id: id } }, body: { seq } })).then(refreshUnread, () => {});
    },
    [id],
  );
  useEffect(() => {
    ok(api.GET("/v1/conversations/{conversation_id}", { params: { path: { conversation_id: id } } })).then(setConv, (e) => {
      if (e instanceof UiError && e.status === 404) setMissing(true);
      else setError(sentence(e));
    });
    (async () => {
      let after = 0;
      const all: Message[] = [];
      for (;;) {
        const page = await ok(api.GET("/v1/conversations/{conversation_id}/messages", { params: { path: { conversation_id: id }, query: { after_seq: after, limit: 100 } } }));
        all.push(...page.items);
        if (page.next_after_seq == null || page.items.length === 0) break;
        after = page.next_after_seq;
      }
      setMessages(all);
      if (all.length) markRead(all[all.length - 1].seq);
    })().catch((e) => setError(sentence(e)));
  }, [id]);
  useLive<Message & { conversation_id: string }>("message.new", (m) => {
    if (m.conversation_id !== id) return;
    setMessages((ms) => (ms.some((x) => x.seq === m.seq) ? ms : [...ms, m].sort((a, b) => a.seq - b.seq)));
    if (m.sender_id !== me.id && document.visibilityState === "visible") markRead(m.seq);
  });
  // Photos attached after the message arrived (the gateway attaches them just after sending).
  useLive<{ id: string; conversation_id: string; media: Photo[] }>("message.updated", (u) => {
    if (u.conversation_id === id) setMessages((ms) => ms.map((x) => (x.id === u.id ? { ...x, media: u.media } : x)));
  });
  useLive<{ conversation_id: string; user_id: string; seq: number }>("message.read", (r) => {
    if (r.conversation_id === id && r.user_id !== me.id) setReadBy((s) => ({ ...s, [r.user_id]: Math.max(s[r.user_id] ?? 0, r.seq) }));
  });
  if (missing) return <NotFound what="conversation" />;
  const picker = usePhotoPicker();
  const send = async (e: Event) => {
    e.preventDefault();
    const photos = picker.picked.map((p) => p.id);
    if (!text.trim() && photos.length === 0) return; // text, photos or both
    const body = text.trim() ? text : "";
    setText("");
    picker.clear();
    const r = await outbox.submit(id, body, photos);
    if (!r.ok) setError(null);
  };
  const nameOf = (uid: string) => (uid === me.id ? "You" : conv?.members.find((m) => m.user_id === uid)?.display_name ?? "Someone");
  const lastMine = [...messages].reverse().find((m) => m.sender_id === me.id);
  const seenBy = lastMine ? Object.entries(readBy).filter(([, seq]) => seq >= lastMine.seq).map(([u]) => nameOf(u)) : [];
  return (
    <section class="conversation">
      <Title>{conv ? convName(conv, me.id) : "Conversation"}</Title>
      <ErrorText error={error} />
      <div role="log" aria-label="Messages" aria-live="polite">
      <ol class="messages">
        {messages.map((m) => (
          <li key={m.id} class={m.sender_id === me.id ? "mine" : "theirs"}>
            <span class="sender">{nameOf(m.sender_id)}</span>
            {m.text ? <p>{m.text}</p> : null}
            <Photos items={photosOf(m)} alt={altText(m.text, nameOf(m.sender_id))} />
            <time class="meta" dateTime={m.sent_at}>
              {when(m.sent_at)}
            </time>
          </li>
        ))}
        {outbox.pending(id).map((m) => (
          <li key={m.client_message_id} class="mine pending">
            <span class="sender">You</span>
            {m.text ? <p>{m.text}</p> : null}
            {m.media_ids?.length ? <p class="meta">{m.media_ids.length === 1 ? "A photo" : `${m.media_ids.length} photos`}</p> : null}
            {m.state === "sending" ? (
              <span class="meta">Sending…</span>
            ) : (
              <span class="error">
                Not sent. {m.error}{" "}
                <button type="button" class="small" onClick={() => void outbox.retry(m.client_message_id)}>
                  Try again
                </button>
              </span>
            )}
          </li>
        ))}
      </ol>
      </div>
      <p role="status" class="meta">
        {lastMine ? (seenBy.length ? `Seen by ${seenBy.join(", ")}` : "Delivered") : ""}
      </p>
      <form class="composer" onSubmit={send}>
        <label for="message-text">Write a message</label>
        <textarea id="message-text" rows={2} maxLength={5000} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <PhotoPicker id="message-photos" picker={picker} label="Add photos to your message" />
        <button type="submit" disabled={(!text.trim() && picker.picked.length === 0) || picker.uploading > 0}>
          Send
        </button>
      </form>
    </section>
  );
}

// -- settings --------------------------------------------------------------------------------------

function Settings() {
  const { me, blocked, setBlocked, names, learnNames } = useApp();
  const [, setKnown] = useState(0);
  useEffect(() => {
    // Blocks carry ids only: learn the names from the members of my niches.
    ok(api.GET("/v1/niches", { params: { query: { limit: 100 } } }))
      .then((r) => Promise.all(r.items.map((n) => membersOf(n.id).then(learnNames))))
      .then(() => setKnown((n) => n + 1), () => {});
  }, []);
  const [name, setName] = useState(me.display_name);
  const [bio, setBio] = useState(me.bio);
  const [saved, setSaved] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [password, setPassword] = useState("");
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    try {
      await ok(api.PATCH("/v1/me", { body: { display_name: name, bio } }));
      setSaved("Your profile is saved.");
    } catch (err) {
      setError(sentence(err));
    }
  };
  const signOut = async () => {
    await ok(api.DELETE("/v1/sessions/current")).catch(() => {});
    window.history.replaceState(null, "", "/");
    session.set(null);
  };
  const deleteAccount = async (e: Event) => {
    e.preventDefault();
    setDeleteError(null);
    try {
      const resp = await session.fetch(
        new Request(`${window.location.origin}/v1/me`, { method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ password }) }),
      );
      if (resp.status !== 204) {
        const body = await resp.json().catch(() => null);
        throw new UiError(resp.status, resp.status === 403 ? "That password is not right. Your account was not deleted." : sentence(new UiError(resp.status, body?.error?.message ?? "")));
      }
      window.history.replaceState(null, "", "/");
      session.set(null);
    } catch (err) {
      setDeleteError(sentence(err));
    }
  };
  return (
    <section class="narrow">
      <Title>Settings</Title>
      <h2>Your profile</h2>
      <form onSubmit={save}>
        <p class="meta">Signed in as @{me.username}</p>
        <label for="me-name">Name</label>
        <input id="me-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="me-bio">About you</label>
        <textarea id="me-bio" rows={3} value={bio} onInput={(e) => setBio(e.currentTarget.value)} />
        <ErrorText error={error} />
        <p role="status">{saved}</p>
        <button type="submit">Save profile</button>
      </form>
      <h2>People you block</h2>
      {blocked.size === 0 ? <p>You don’t block anyone.</p> : null}
      <ul>
        {[...blocked].map((uid) => (
          <li key={uid}>
            {names.get(uid) ?? "Someone"}{" "}
            <button
              type="button"
              class="small secondary"
              onClick={async () => {
                await ok(api.DELETE("/v1/blocks/{user_id}", { params: { path: { user_id: uid } } }));
                const next = new Set(blocked);
                next.delete(uid);
                setBlocked(next);
              }}
            >
              Unblock {names.get(uid) ?? "this person"}
            </button>
          </li>
        ))}
      </ul>
      <h2>Session</h2>
      <button type="button" class="secondary" onClick={() => void signOut()}>
        Sign out
      </button>
      <h2>Delete your account</h2>
      <form onSubmit={deleteAccount}>
        <p>Your posts leave every feed and your personal data becomes unreadable. This cannot be undone.</p>
        <label for="delete-password">Your password</label>
        <input id="delete-password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorText error={deleteError} />
        <button type="submit" class="danger">
          Delete my account
        </button>
      </form>
    </section>
  );
}
