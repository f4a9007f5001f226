import { describe, expect, it } from "vitest";
import { Outbox, type Outgoing } from "./outbox";

describe("a message that fails to send", () => {
  it("stays in the outbox and is retried with the same client_message_id", async () => {
    const attempts: Outgoing[] = [];
    let up = false;
    let n = 0;
    const box = new Outbox(async (m) => {
      attempts.push({ ...m });
      if (!up) throw new TypeError("network down");
      return { ok: true, seq: 1 };
    }, () => `id-${++n}`);
    const first = await box.submit("c1", "see you at 10");
    expect(first.ok).toBe(false);
    expect(box.pending("c1")).toMatchObject([{ text: "see you at 10", state: "failed" }]);
    expect(box.pending("c1")[0].error).toMatch(/can’t be reached/);
    up = true;
    expect((await box.retry("id-1")).ok).toBe(true);
    expect(attempts.map((a) => a.client_message_id)).toEqual(["id-1", "id-1"]);
    expect(box.pending("c1")).toEqual([]);
  });

  it("keeps the API's sentence when the server refuses", async () => {
    const box = new Outbox(async () => ({ ok: false, error: "You can’t do that here." }), () => "x");
    await box.submit("c", "hi");
    expect(box.items[0]).toMatchObject({ state: "failed", error: "You can’t do that here." });
  });

  it("retries a message with photos with the same id and the same photos", async () => {
    const attempts: Outgoing[] = [];
    let up = false;
    const box = new Outbox(async (m) => {
      attempts.push({ ...m });
      return up ? { ok: true, seq: 2 } : { ok: false, error: "Kith can’t be reached right now." };
    }, () => "m-1");
    await box.submit("c", "", ["photo-1"]);
    up = true;
    await box.retry("m-1");
    expect(attempts.map((a) => [a.client_message_id, a.media_ids])).toEqual([["m-1", ["photo-1"]], ["m-1", ["photo-1"]]]);
  });
});
