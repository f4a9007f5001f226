// API errors as sentences a person understands.

export interface ApiErrorBody {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

const BY_CODE: Record<string, string> = {
  username_taken: "That username is already taken. Try another one.",
  niche_full: "This niche is full, so nobody else can join right now.",
  already_member: "You are already a member of this niche.",
  version_conflict: "Someone changed this at the same moment. Reload and try again.",
  reauthentication_required: "That password is not right. Your account was not deleted.",
  too_many_streams: "Live updates are open in too many tabs. Close one and they will resume.",
  not_allowed: "You can’t do that here.",
  invalid_isbn: "That ISBN is not right: check its digits, or leave it out.",
  invalid_media: "One of the photos could not be attached. Remove it and add it again.",
  invalid_image: "That file is not a photo Kith can read. Try a JPEG, PNG or WebP image.",
  not_allowed_in_niche_kind: "This kind of niche does not offer that.",
};

const BY_STATUS: Record<number, string> = {
  400: "Something in the form needs fixing.",
  401: "Your session has ended. Please sign in again.",
  403: "You don’t have permission to do that.",
  404: "We couldn’t find that. It may have been removed, or you may not have access to it.",
  409: "That conflicts with something that already exists.",
  413: "That is too long to send.",
  429: "You’re going a little fast. Wait a moment and try again.",
};

const FIELD: Record<string, string> = {
  username: "Username",
  password: "Password",
  display_name: "Name",
  text: "Text",
  name: "Name",
  quote: "Passage",
  book: "Book",
  moment: "Moment",
  birthday: "Birthday",
  headline: "Headline",
  skills: "Skills",
  skill: "Skill",
};

/** A human sentence for a failed call: by error code, then by status, naming bad fields. */
export function describeError(status: number, body?: ApiErrorBody | null, signIn = false): string {
  const code = body?.error?.code;
  if (signIn && status === 401) return "That username and password don’t match. Check them and try again.";
  if (code && BY_CODE[code]) return BY_CODE[code];
  if (status === 400 && body?.error?.details) {
    const fields = Object.entries(body.error.details)
      .filter(([, v]) => typeof v === "string")
      .map(([k, v]) => `${FIELD[k] ?? k.replace(/_/g, " ")}: ${v}.`);
    if (fields.length) return `Please check the form. ${fields.join(" ")}`;
  }
  if (BY_STATUS[status]) return BY_STATUS[status];
  if (status >= 500 || status === 0) return "Kith can’t be reached right now. Nothing was lost — try again in a moment.";
  return body?.error?.message ? `${body.error.message[0].toUpperCase()}${body.error.message.slice(1)}.` : "Something went wrong. Try again.";
}

export function offline(): string {
  return describeError(0);
}
