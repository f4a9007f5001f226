import { describe, expect, it } from "vitest";
import { describeError } from "./errors";

describe("errors as sentences", () => {
  it("names a known conflict", () => {
    expect(describeError(409, { error: { code: "username_taken" } })).toBe("That username is already taken. Try another one.");
  });
  it("names the fields of invalid input", () => {
    expect(describeError(400, { error: { code: "invalid_argument", details: { password: "must be at least 10 characters" } } }))
      .toBe("Please check the form. Password: must be at least 10 characters.");
  });
  it("says a wrong sign-in plainly and never blames the network for a 404", () => {
    expect(describeError(401, null, true)).toMatch(/don’t match/);
    expect(describeError(404, null)).toMatch(/couldn’t find/);
    expect(describeError(0, null)).toMatch(/Nothing was lost/);
  });
});
