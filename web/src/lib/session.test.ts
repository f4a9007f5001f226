import { describe, expect, it } from "vitest";
import { Session, type Store } from "./session";

function memory(): Store & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v), removeItem: (k) => void data.delete(k) };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });

describe("a session whose access token has expired", () => {
  it("refreshes once for concurrent requests and retries each with the new token", async () => {
    const store = memory();
    store.setItem("kith.session", JSON.stringify({ access_token: "old", refresh_token: "r1", user_id: "u" }));
    let refreshes = 0;
    const seen: string[] = [];
    const fake = (async (input: Request | string) => {
      const req = input as Request;
      if (req.url.endsWith("/v1/sessions/refresh")) {
        refreshes++;
        await new Promise((r) => setTimeout(r, 5));
        return json(201, { access_token: "new", refresh_token: "r2", user_id: "u" });
      }
      seen.push(req.headers.get("Authorization") ?? "");
      return req.headers.get("Authorization") === "Bearer new" ? json(200, {}) : json(401, {});
    }) as typeof fetch;
    const s = new Session(store, (i, init) => fake(typeof i === "string" ? new Request(`http://x${i}`, init) : i), "");
    const [a, b] = await Promise.all([s.fetch(new Request("http://x/v1/me")), s.fetch(new Request("http://x/v1/feed"))]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(refreshes).toBe(1);
    expect(JSON.parse(store.data.get("kith.session")!).refresh_token).toBe("r2");
  });

  it("signs out when the refresh token is refused", async () => {
    const store = memory();
    store.setItem("kith.session", JSON.stringify({ access_token: "old", refresh_token: "spent", user_id: "u" }));
    const fake = (async (i: Request | string) => json(401, { error: { code: "unauthenticated" } })) as typeof fetch;
    const s = new Session(store, fake);
    const resp = await s.fetch(new Request("http://x/v1/me"));
    expect(resp.status).toBe(401);
    expect(s.current).toBeNull();
    expect(store.data.has("kith.session")).toBe(false);
  });

  it("keeps the tokens when the network is down", async () => {
    const store = memory();
    store.setItem("kith.session", JSON.stringify({ access_token: "a", refresh_token: "r", user_id: "u" }));
    const s = new Session(store, (async () => {
      throw new TypeError("offline");
    }) as typeof fetch);
    expect(await s.refresh()).toBe(false);
    expect(s.current?.refresh_token).toBe("r");
  });
});
