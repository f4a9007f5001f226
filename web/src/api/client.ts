// The typed API client: openapi-fetch over the types generated from the
// gateway's /openapi.json (npm run api), authenticated by the Session.
import createClient from "openapi-fetch";
import type { paths } from "./schema";
import { Session } from "../lib/session";
import { describeError, type ApiErrorBody } from "../lib/errors";

export type { paths };
type Json<P extends keyof paths, M extends keyof paths[P], S extends number> =
  paths[P][M] extends { responses: { [K in S]: { content: { "application/json": infer T } } } } ? T : never;

export type Post = Json<"/v1/feed", "get", 200>["items"][number];
export type Niche = Json<"/v1/niches/{niche_id}", "get", 200>;
export type Member = Json<"/v1/niches/{niche_id}/members", "get", 200>["items"][number];
export type Comment = Json<"/v1/posts/{post_id}/comments", "get", 200>["items"][number];
export type Conversation = Json<"/v1/conversations", "get", 200>["items"][number];
export type Message = Json<"/v1/conversations/{conversation_id}/messages", "get", 200>["items"][number];
export type Me = Json<"/v1/me", "get", 200>;
export type Kind = Niche["kind"];

export const session = new Session(window.localStorage, (input, init) => window.fetch(input, init));
export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: session.fetch });

/** A failed call, with a sentence to show. */
export class UiError extends Error {
  constructor(public status: number, message: string, public code?: string) {
    super(message);
  }
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of a call, or a UiError carrying a human sentence. Network failures become status 0. */
export async function ok<T>(call: Promise<Result<T>>, signIn = false): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch {
    throw new UiError(0, describeError(0));
  }
  if (result.response.ok) return result.data as T;
  const body = result.error as ApiErrorBody | undefined;
  throw new UiError(result.response.status, describeError(result.response.status, body, signIn), body?.error?.code);
}

export function sentence(e: unknown): string {
  return e instanceof UiError ? e.message : describeError(0);
}
