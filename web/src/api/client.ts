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
export type Invite = Json<"/v1/niches/{niche_id}/invites", "get", 200>["items"][number];
export type Persona = Json<"/v1/niches/{niche_id}/profile", "get", 200>;
export type SkillEntry = Json<"/v1/skills", "get", 200>["items"][number];
export type ShelfItem = Json<"/v1/niches/{niche_id}/shelf", "get", 200>["items"][number];
export type Upcoming = Json<"/v1/upcoming", "get", 200>["items"][number];
/** A photo as posts, comments and messages show it (API.md "Photos"). */
export interface Photo {
  id: string;
  width: number;
  height: number;
  url: string;
  thumb_url: string;
}
/** The photos a post, comment or message carries (the field is open in the schema). */
export const photosOf = (x: object): Photo[] => (x as { media?: Photo[] }).media ?? [];

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

/** Upload one photo (POST /v1/media with the image itself as the body); its id, to attach. */
export async function uploadPhoto(file: Blob): Promise<string> {
  let resp: Response;
  try {
    resp = await session.fetch(new Request(`${window.location.origin}/v1/media`, { method: "POST", headers: { "Content-Type": file.type }, body: file }));
  } catch {
    throw new UiError(0, describeError(0));
  }
  const body = (await resp.json().catch(() => null)) as (ApiErrorBody & { id?: string }) | null;
  if (resp.status === 201 && body?.id) return body.id;
  if (body?.error?.code === "invalid_image") throw new UiError(400, "That file is not a photo Kith can read. Try a JPEG, PNG or WebP image.", "invalid_image");
  throw new UiError(resp.status, describeError(resp.status, body), body?.error?.code);
}

/** A photo's bytes, fetched with the session (an <img src> cannot send the Authorization header). */
export async function fetchPhoto(path: string): Promise<Blob> {
  const resp = await session.fetch(new Request(`${window.location.origin}${path}`));
  if (!resp.ok) throw new UiError(resp.status, describeError(resp.status));
  return resp.blob();
}
