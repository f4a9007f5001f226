// Tokens and their invisible rotation. A request that gets 401 refreshes the
// session once (one refresh in flight, shared by every waiting request) and is
// retried with the new access token; a refused refresh signs the person out.

export interface Tokens {
  access_token: string;
  refresh_token: string;
  user_id: string;
}

export interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const KEY = "kith.session";

export class Session {
  private tokens: Tokens | null;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<(t: Tokens | null) => void>();

  constructor(private store: Store, private baseFetch: typeof fetch, private baseUrl = "") {
    const raw = store.getItem(KEY);
    this.tokens = raw ? (JSON.parse(raw) as Tokens) : null;
  }

  get current(): Tokens | null {
    return this.tokens;
  }

  set(tokens: Tokens | null): void {
    this.tokens = tokens;
    if (tokens) this.store.setItem(KEY, JSON.stringify(tokens));
    else this.store.removeItem(KEY);
    this.listeners.forEach((l) => l(tokens));
  }

  onChange(listener: (t: Tokens | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Rotate the refresh token; true when a new pair was stored. Concurrent callers share one call. */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const spent = this.tokens;
    if (!spent) return false;
    let resp: Response;
    try {
      resp = await this.baseFetch(`${this.baseUrl}/v1/sessions/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: spent.refresh_token }),
      });
    } catch {
      return false; // offline: keep the tokens, try again later
    }
    if (resp.status === 201) {
      const body = (await resp.json()) as Tokens;
      this.set({ access_token: body.access_token, refresh_token: body.refresh_token, user_id: body.user_id ?? spent.user_id });
      return true;
    }
    if (resp.status === 401 || resp.status === 400) this.set(null);
    return false;
  }

  /** A fetch that authenticates, and on 401 refreshes once and retries. */
  fetch = async (input: Request): Promise<Response> => {
    const retry = input.clone();
    const first = await this.baseFetch(this.authorize(input));
    if (first.status !== 401 || !this.tokens) return first;
    const sentWith = input.headers.get("Authorization");
    const rotated = sentWith !== this.bearer() || (await this.refresh());
    if (!rotated) return first;
    return this.baseFetch(this.authorize(retry));
  };

  private bearer(): string | null {
    return this.tokens ? `Bearer ${this.tokens.access_token}` : null;
  }

  private authorize(req: Request): Request {
    const bearer = this.bearer();
    if (bearer) req.headers.set("Authorization", bearer);
    return req;
  }
}
