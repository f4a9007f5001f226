// The live connection: a single-use ticket per connection (EventSource cannot
// send headers), the id of the last event seen sent back on reconnect, and a
// visible status while the connection is lost. Reconnects back off up to 10 s.

export type LiveStatus = "connecting" | "live" | "lost";

export interface SourceLike {
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
}

export interface LiveDeps {
  ticket: () => Promise<string | null>; // null: not signed in / refused
  open: (url: string) => SourceLike;
  schedule: (fn: () => void, ms: number) => unknown;
  onEvent: (type: string, data: unknown) => void;
  onStatus: (s: LiveStatus) => void;
  onExpired?: () => Promise<void>; // the session ended on the server: refresh before reconnecting
}

export const EVENTS = ["feed.entry", "message.new", "message.updated", "message.read", "post.updated", "post.deleted", "reset", "session.expired"];

export function streamUrl(ticket: string, lastEventId: string | null): string {
  const q = new URLSearchParams({ ticket });
  if (lastEventId) q.set("last_event_id", lastEventId);
  return `/v1/stream?${q}`;
}

export function backoff(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** attempt);
}

export class Live {
  lastEventId: string | null = null;
  status: LiveStatus = "connecting";
  private source: SourceLike | null = null;
  private attempt = 0;
  private stopped = false;

  constructor(private deps: LiveDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
  }

  /** The network is gone (the browser says so): show it now and keep retrying with back-off. */
  drop(): void {
    if (this.stopped) return;
    this.source?.close();
    this.source = null;
    this.retryLater();
  }

  /** Drop the current connection and open a new one (e.g. when the browser comes back online). */
  reconnectNow(): void {
    this.source?.close();
    this.source = null;
    this.attempt = 0;
    void this.connect();
  }

  private setStatus(s: LiveStatus): void {
    if (this.status !== s) {
      this.status = s;
      this.deps.onStatus(s);
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let ticket: string | null = null;
    try {
      ticket = await this.deps.ticket();
    } catch {
      ticket = null;
    }
    if (this.stopped) return;
    if (!ticket) return this.retryLater();
    const source = this.deps.open(streamUrl(ticket, this.lastEventId));
    this.source = source;
    source.onopen = () => {
      this.attempt = 0;
      this.setStatus("live");
    };
    source.onerror = () => {
      // A ticket is single use: never let EventSource retry by itself.
      source.close();
      if (this.source === source) {
        this.source = null;
        this.retryLater();
      }
    };
    for (const type of EVENTS) {
      source.addEventListener(type, (ev: MessageEvent) => {
        if (ev.lastEventId) this.lastEventId = ev.lastEventId;
        if (type === "session.expired") {
          source.close();
          this.source = null;
          void (this.deps.onExpired?.() ?? Promise.resolve()).then(() => this.connect());
          return;
        }
        let data: unknown = null;
        try {
          data = ev.data ? JSON.parse(ev.data) : null;
        } catch {
          data = null;
        }
        this.deps.onEvent(type, data);
      });
    }
  }

  private retryLater(): void {
    if (this.stopped) return;
    this.setStatus("lost");
    this.deps.schedule(() => void this.connect(), backoff(this.attempt++));
  }
}
