// Photos are private: GET /v1/media/{id} needs the Authorization header, which
// an <img src> cannot send. Each photo is fetched once through the session and
// shown from a blob: URL; concurrent asks share one fetch, and a URL is revoked
// when nothing shows it any more.

export class MediaCache {
  private entries = new Map<string, { users: number; url: Promise<string> }>();

  constructor(
    private load: (path: string) => Promise<Blob>,
    private toUrl: (b: Blob) => string = (b) => URL.createObjectURL(b),
    private revoke: (url: string) => void = (u) => URL.revokeObjectURL(u),
  ) {}

  /** A blob: URL for a media path (e.g. "/v1/media/…?size=thumb"); call release() when done. */
  acquire(path: string): Promise<string> {
    let e = this.entries.get(path);
    if (!e) {
      const url = this.load(path).then(this.toUrl);
      e = { users: 0, url };
      this.entries.set(path, e);
      url.catch(() => this.entries.delete(path)); // a failed fetch is tried again next time
    }
    e.users += 1;
    return e.url;
  }

  release(path: string): void {
    const e = this.entries.get(path);
    if (!e) return;
    e.users -= 1;
    if (e.users <= 0) {
      this.entries.delete(path);
      e.url.then(this.revoke, () => {});
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Upload one picked file: POST /v1/media with the image itself as the body. */
export const ACCEPTED_IMAGES = ["image/jpeg", "image/png", "image/webp"];
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/** Why a picked file cannot be sent, as a sentence (null when it can). */
export function imageProblem(file: { name: string; type: string; size: number }): string | null {
  if (!ACCEPTED_IMAGES.includes(file.type)) return `${file.name} is not a JPEG, PNG or WebP photo.`;
  if (file.size > MAX_IMAGE_BYTES) return `${file.name} is larger than 10 MB.`;
  return null;
}
