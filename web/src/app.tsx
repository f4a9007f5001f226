// The Kith web app: every screen, one small router, the live connection.
import { createContext, type ComponentChildren } from "preact";
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ok, sentence, session, UiError, type Comment, type Conversation, type Kind, type Me, type Member, type Message, type Niche, type Post } from "./api/client";
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

function Composer({ niche, onPosted }: { niche: Niche; onPosted: (p: Post) => void }) {
  const key = `kith.draft.${niche.id}`;
  const [text, setText] = useState(() => window.localStorage.getItem(key) ?? "");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const edit = (v: string) => {
    setText(v);
    window.localStorage.setItem(key, v);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const created = await ok(api.POST("/v1/niches/{niche_id}/posts", { params: { path: { niche_id: niche.id } }, body: { text } }));
      const full = await ok(api.GET("/v1/posts/{post_id}", { params: { path: { post_id: created.id } } }));
      onPosted(full);
      setText("");
      window.localStorage.removeItem(key);
    } catch (err) {
      setError(`${sentence(err)} Your post is kept here.`); // the draft stays in the box
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="composer" onSubmit={submit}>
      <label for="compose">Write a post to {niche.name}</label>
      <textarea id="compose" rows={3} maxLength={5000} value={text} onInput={(e) => edit(e.currentTarget.value)} />
      <ErrorText error={error} />
      <button type="submit" disabled={busy || !text.trim()}>
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

function PostCard({ post, onChange, onDeleted, showNiche }: { post: Post; onChange: (p: Post) => void; onDeleted: () => void; showNiche: boolean }) {
  const { me } = useApp();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(post.text);
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
      await ok(api.PATCH("/v1/posts/{post_id}", { params: { path: { post_id: post.id } }, body: { text: draft } }));
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
          <label for={`edit-${post.id}`}>Edit your post</label>
          <textarea id={`edit-${post.id}`} rows={3} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />
          <button type="submit">Save</button>{" "}
          <button type="button" class="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <p class="text">{post.text}</p>
      )}
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
          <button type="button" class="secondary" onClick={() => (setDraft(post.text), setEditing(true))}>
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
      {showComments ? <Comments post={post} onCount={(n) => n !== post.comment_count && onChange({ ...post, comment_count: n })} /> : null}
    </article>
  );
}

/** The comments of an open post; refreshed every few seconds while open (the stream has no comment events yet). */
function Comments({ post, onCount }: { post: Post; onCount: (n: number) => void }) {
  const { names, learnNames } = useApp();
  const [items, setItems] = useState<Comment[]>([]);
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [, setTick] = useState(0);
  const loaded = useRef(false);
  const load = useCallback(async () => {
    try {
      const r = await ok(api.GET("/v1/posts/{post_id}/comments", { params: { path: { post_id: post.id }, query: { limit: 100 } } }));
      if (r.items.some((c) => !names.has(c.author_id))) learnNames(await membersOf(post.niche_id, true));
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
      await ok(api.POST("/v1/posts/{post_id}/comments", { params: { path: { post_id: post.id } }, body: { text } }));
      setText("");
      await load();
      setTick((n) => n + 1);
    } catch (err) {
      setError(`${sentence(err)} Your comment is kept.`);
    }
  };
  return (
    <section class="comments" aria-label={`Comments on ${post.author.display_name}’s post`}>
      <ul>
        {items.map((c) => (
          <li key={c.id}>
            <strong>{names.get(c.author_id) ?? "A member"}</strong>: {c.text}
          </li>
        ))}
      </ul>
      <form onSubmit={submit}>
        <label for={`comment-${post.id}`}>Write a comment</label>
        <input id={`comment-${post.id}`} value={text} maxLength={2000} onInput={(e) => setText(e.currentTarget.value)} />
        <ErrorText error={error} />
        <button type="submit" disabled={!text.trim()}>
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
        {niche.my_role === "owner" || niche.my_role === "admin" ? <Invite niche={niche} /> : null}
        <Members niche={niche} />
      </aside>
    </div>
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
    } catch (e) {
      setError(sentence(e));
    }
  };
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
      <ul class="members">
        {members.map((m) => (
          <li key={m.user_id}>
            <span>
              {m.display_name}
              {m.user_id === me.id ? " (you)" : ""} <span class="meta">· {m.role}</span>
            </span>
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
            {c.last_message ? <p class="meta">{c.last_message.text}</p> : null}
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
            const sent = await ok(api.POST("/v1/conversations/{conversation_id}/messages", { params: { path: { conversation_id: id } }, body: { client_message_id: m.client_message_id, text: m.text } }));
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
  useLive<{ conversation_id: string; user_id: string; seq: number }>("message.read", (r) => {
    if (r.conversation_id === id && r.user_id !== me.id) setReadBy((s) => ({ ...s, [r.user_id]: Math.max(s[r.user_id] ?? 0, r.seq) }));
  });
  if (missing) return <NotFound what="conversation" />;
  const send = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    const body = text;
    setText("");
    const r = await outbox.submit(id, body);
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
            <p>{m.text}</p>
            <time class="meta" dateTime={m.sent_at}>
              {when(m.sent_at)}
            </time>
          </li>
        ))}
        {outbox.pending(id).map((m) => (
          <li key={m.client_message_id} class="mine pending">
            <span class="sender">You</span>
            <p>{m.text}</p>
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
        <button type="submit" disabled={!text.trim()}>
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
