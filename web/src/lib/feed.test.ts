import { describe, expect, it } from "vitest";
import { appendPage, applyLive, emptyFeed, withoutAuthors, type FeedPost } from "./feed";

const post = (id: string, at: string, author = "a"): FeedPost => ({ id, niche_id: "n", author: { id: author, display_name: author }, created_at: at });

describe("the feed", () => {
  it("merges pages without duplicates and stops at the last page", () => {
    let s = appendPage(emptyFeed(), [post("3", "2026-01-03"), post("2", "2026-01-02")], "c1");
    s = appendPage(s, [post("2", "2026-01-02"), post("1", "2026-01-01")], null);
    expect(s.items.map((p) => p.id)).toEqual(["3", "2", "1"]);
    expect(s.done).toBe(true);
  });

  it("puts a live post on top once, and replaces it when it arrives again", () => {
    let s = appendPage(emptyFeed(), [post("1", "2026-01-01")], null);
    s = applyLive(s, post("2", "2026-01-02"));
    s = applyLive(s, { ...post("2", "2026-01-02"), text: "edited" });
    expect(s.items.map((p) => p.id)).toEqual(["2", "1"]);
    expect(s.items[0].text).toBe("edited");
  });

  it("hides the posts of people I block", () => {
    const s = appendPage(emptyFeed(), [post("1", "2026-01-01", "ann"), post("2", "2026-01-02", "bob")], null);
    expect(withoutAuthors(s, new Set(["ann"])).items.map((p) => p.id)).toEqual(["2"]);
  });
});
