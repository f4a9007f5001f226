import { describe, expect, it } from "vitest";
import { imageProblem, MediaCache } from "./media";

function harness() {
  const loads: string[] = [];
  const revoked: string[] = [];
  let n = 0;
  let fail = false;
  const cache = new MediaCache(
    async (path) => {
      loads.push(path);
      if (fail) throw new Error("offline");
      return new Blob([path]);
    },
    () => `blob:${++n}`,
    (u) => revoked.push(u),
  );
  return { cache, loads, revoked, setFail: (f: boolean) => (fail = f) };
}

describe("photos fetched with the session and shown from blob URLs", () => {
  it("fetches a photo once for everyone showing it, and revokes it when the last one lets go", async () => {
    const h = harness();
    const [a, b] = await Promise.all([h.cache.acquire("/v1/media/1?size=thumb"), h.cache.acquire("/v1/media/1?size=thumb")]);
    expect(a).toBe("blob:1");
    expect(b).toBe("blob:1");
    expect(h.loads).toEqual(["/v1/media/1?size=thumb"]);
    h.cache.release("/v1/media/1?size=thumb");
    await Promise.resolve();
    expect(h.revoked).toEqual([]);
    h.cache.release("/v1/media/1?size=thumb");
    await new Promise((r) => setTimeout(r, 0));
    expect(h.revoked).toEqual(["blob:1"]);
    expect(h.cache.size).toBe(0);
  });

  it("tries a failed photo again the next time it is shown", async () => {
    const h = harness();
    h.setFail(true);
    await expect(h.cache.acquire("/v1/media/2?size=thumb")).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 0));
    h.setFail(false);
    expect(await h.cache.acquire("/v1/media/2?size=thumb")).toBe("blob:1");
    expect(h.loads).toHaveLength(2);
  });

  it("says why a picked file cannot be sent", () => {
    expect(imageProblem({ name: "a.gif", type: "image/gif", size: 10 })).toBe("a.gif is not a JPEG, PNG or WebP photo.");
    expect(imageProblem({ name: "b.jpg", type: "image/jpeg", size: 11 * 1024 * 1024 })).toBe("b.jpg is larger than 10 MB.");
    expect(imageProblem({ name: "c.png", type: "image/png", size: 100 })).toBeNull();
  });
});
