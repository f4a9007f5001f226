import { describe, expect, it } from "vitest";
import { altText, draftOf, editBody, emptyDraft, hasView, postBody, postTypes, profileFields } from "./kinds";

describe("what a niche kind unlocks", () => {
  it("gives each kind its post types, profile fields and views", () => {
    expect(postTypes("family")).toEqual(["text", "moment"]);
    expect(postTypes("book_club")).toEqual(["text", "highlight"]);
    expect(postTypes("neighbourhood")).toEqual(["text", "ask"]);
    expect(postTypes("custom")).toEqual(["text", "highlight", "ask", "moment"]);
    expect(profileFields("professional")).toEqual(["headline", "skills"]);
    expect(hasView("book_club", "shelf")).toBe(true);
    expect(hasView("family", "shelf")).toBe(false);
  });
});

describe("a composer draft as a request body", () => {
  it("sends a moment with its kind, date, caption and photos", () => {
    const d = { ...emptyDraft("moment"), momentKind: "new_baby", date: "2026-11-30", text: " Welcome, Ivy " };
    expect(postBody(d, ["m1"])).toEqual({ body: { type: "moment", moment: { kind: "new_baby", date: "2026-11-30" }, text: "Welcome, Ivy", media_ids: ["m1"] } });
  });

  it("asks for the date of a moment instead of sending it", () => {
    expect(postBody(emptyDraft("moment"), [])).toEqual({ error: "Choose the moment’s date." });
  });

  it("sends a highlight with the ISBN without spaces or dashes and the page as a number", () => {
    const d = { ...emptyDraft("highlight"), title: "Middlemarch", author: "George Eliot", isbn: "978-0-14-143954-9", page: "42", quote: "It is a narrow mind…" };
    expect(postBody(d, [])).toEqual({ body: { type: "highlight", book: { title: "Middlemarch", author: "George Eliot", isbn: "9780141439549" }, quote: "It is a narrow mind…", page: 42 } });
    expect(postBody({ ...d, page: "forty" }, [])).toEqual({ error: "The page is a whole number, like 42." });
    expect(postBody({ ...d, quote: " " }, [])).toEqual({ error: "Copy the passage you want to share." });
  });

  it("sends an ask with its skill only when one is given", () => {
    expect(postBody({ ...emptyDraft("ask"), text: "Who can fix a bike?", skill: " bikes " }, [])).toEqual({ body: { type: "ask", text: "Who can fix a bike?", skill: "bikes" } });
    expect(postBody({ ...emptyDraft("ask"), text: "Anyone?" }, [])).toEqual({ body: { type: "ask", text: "Anyone?" } });
  });

  it("refuses an empty text post", () => {
    expect(postBody(emptyDraft(), [])).toEqual({ error: "Write something first." });
  });
});

describe("a photo's alternative text", () => {
  it("is the caption, else who shared it", () => {
    expect(altText("Ivy, two days old", "Ann")).toBe("Ivy, two days old");
    expect(altText("  ", "Ann")).toBe("Photo by Ann");
    expect(altText(null, "Ann")).toBe("Photo by Ann");
    expect(altText("x".repeat(200), "Ann")).toHaveLength(140);
  });
});

describe("editing a typed post", () => {
  it("starts from the post's fields and sends them back without the type", () => {
    const d = draftOf({ type: "highlight", text: "", book: { title: "Emma", author: "Jane Austen", isbn: null }, quote: "Silly things do cease to be silly", page: 12 });
    expect(d).toMatchObject({ type: "highlight", title: "Emma", author: "Jane Austen", page: "12", quote: "Silly things do cease to be silly" });
    expect(editBody({ ...d, page: "13" })).toEqual({ body: { book: { title: "Emma", author: "Jane Austen" }, quote: "Silly things do cease to be silly", page: 13 } });
  });

  it("moves a moment's date", () => {
    const d = draftOf({ type: "moment", text: "Party!", moment: { kind: "birthday", date: "2027-03-14" } });
    expect(editBody({ ...d, date: "2027-03-15" })).toEqual({ body: { moment: { kind: "birthday", date: "2027-03-15" }, text: "Party!" } });
  });
});
