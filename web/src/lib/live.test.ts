import { describe, expect, it } from "vitest";
import { Live, backoff, streamUrl, type SourceLike } from "./live";

class FakeSource implements SourceLike {
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  listeners = new Map<string, (ev: MessageEvent) => void>();
  constructor(public url: string) {}
  addEventListener(type: string, l: (ev: MessageEvent) => void) {
    this.listeners.set(type, l);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data: unknown, id: string) {
    this.listeners.get(type)!({ data: JSON.stringify(data), lastEventId: id } as MessageEvent);
  }
}

describe("the live connection", () => {
  it("reconnects with a fresh ticket and the last event id after a lost connection", async () => {
    const sources: FakeSource[] = [];
    const later: (() => void)[] = [];
    const statuses: string[] = [];
    const events: unknown[] = [];
    let t = 0;
    const live = new Live({
      ticket: async () => `t${++t}`,
      open: (url) => {
        const s = new FakeSource(url);
        sources.push(s);
        return s;
      },
      schedule: (fn) => later.push(fn),
      onEvent: (type, data) => events.push([type, data]),
      onStatus: (s) => statuses.push(s),
    });
    await live.start();
    sources[0].onopen!(new Event("open"));
    sources[0].emit("feed.entry", { id: "p1" }, "0-41");
    sources[0].onerror!(new Event("error"));
    expect(sources[0].closed).toBe(true);
    expect(statuses).toEqual(["live", "lost"]);
    later.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(sources[1].url).toBe(streamUrl("t2", "0-41"));
    expect(sources[1].url).toBe("/v1/stream?ticket=t2&last_event_id=0-41");
    sources[1].onopen!(new Event("open"));
    expect(statuses).toEqual(["live", "lost", "live"]);
    expect(events).toEqual([["feed.entry", { id: "p1" }]]);
  });

  it("backs off up to ten seconds", () => {
    expect([0, 1, 2, 10].map(backoff)).toEqual([500, 1000, 2000, 10000]);
  });
});

describe("going offline", () => {
  it("shows the connection as lost at once and keeps retrying until a ticket can be had", async () => {
    const later: (() => void)[] = [];
    const statuses: string[] = [];
    let online = true;
    const opened: string[] = [];
    const live = new Live({
      ticket: async () => {
        if (!online) throw new TypeError("offline");
        return "t";
      },
      open: (url) => {
        opened.push(url);
        return new FakeSource(url);
      },
      schedule: (fn) => later.push(fn),
      onEvent: () => {},
      onStatus: (s) => statuses.push(s),
    });
    await live.start();
    online = false;
    live.drop();
    expect(statuses).toEqual(["lost"]);
    later.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(opened).toHaveLength(1);
    expect(later).toHaveLength(1); // still retrying
    online = true;
    later.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(opened).toHaveLength(2);
  });
});
