// Messages being sent. Each keeps its client_message_id from the first try, so
// a retry after a failure can never send the same message twice.

export type OutState = "sending" | "failed";

export interface Outgoing {
  client_message_id: string;
  conversation_id: string;
  text: string;
  /** Photos already uploaded; sent with the same client_message_id on every try. */
  media_ids?: string[];
  state: OutState;
  error?: string;
}

export type SendResult = { ok: true; seq: number } | { ok: false; error: string };
export type Sender = (m: Outgoing) => Promise<SendResult>;

export class Outbox {
  items: Outgoing[] = [];
  constructor(private send: Sender, private newId: () => string, private changed: () => void = () => {}) {}

  pending(conversationId: string): Outgoing[] {
    return this.items.filter((m) => m.conversation_id === conversationId);
  }

  /** Queue a new message and try to send it. */
  submit(conversationId: string, text: string, mediaIds: string[] = []): Promise<SendResult> {
    const m: Outgoing = { client_message_id: this.newId(), conversation_id: conversationId, text, ...(mediaIds.length ? { media_ids: mediaIds } : {}), state: "sending" };
    this.items = [...this.items, m];
    return this.attempt(m);
  }

  /** Try a failed message again, with the same client_message_id. */
  retry(clientMessageId: string): Promise<SendResult> {
    const m = this.items.find((x) => x.client_message_id === clientMessageId);
    if (!m) return Promise.resolve({ ok: false, error: "nothing to retry" });
    return this.attempt(m);
  }

  private async attempt(m: Outgoing): Promise<SendResult> {
    this.update(m.client_message_id, { state: "sending", error: undefined });
    let result: SendResult;
    try {
      result = await this.send(m);
    } catch {
      result = { ok: false, error: "Kith can’t be reached right now. Nothing was lost — try again in a moment." };
    }
    if (result.ok) this.items = this.items.filter((x) => x.client_message_id !== m.client_message_id);
    else this.update(m.client_message_id, { state: "failed", error: result.error });
    this.changed();
    return result;
  }

  private update(id: string, patch: Partial<Outgoing>): void {
    this.items = this.items.map((x) => (x.client_message_id === id ? { ...x, ...patch } : x));
    this.changed();
  }
}
