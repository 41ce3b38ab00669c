// The supervise queue: one JSON file per request in the bottle's queue dir, the contract
// between the supervise daemon (inside the bundle, which creates pending requests) and
// bb-supervise on the host (which decides them). Each side only ever puts a whole file in
// place (a new request by link, a decision by rename), so a reader never sees half a file,
// on either side of a bind mount. Who may have written a file is its owner (owners.ts).
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod/v3";
import { parseJsonFile } from "../sidecar-config.ts";
import { BbError } from "../errors.ts";
import { createFileWhole, writeFileAtomic } from "../fs-atomic.ts";
import { readRegularFileOwned } from "../read-regular.ts";
import { log } from "../log.ts";
import { printable } from "../printable.ts";
import { publicSuffixUnderWildcard } from "../public-suffix.ts";
import { distrust, mayHold, queueOwners, warnLeftOut, type QueueOwners } from "./owners.ts";

export const QUEUE_VERSION = 1;

/** Ids double as file names, so they are restricted to a path-safe alphabet. */
export const RequestId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "must be lowercase letters, digits and dashes");

export const RequestKind = z.enum(["host", "question"]);
export const RequestStatus = z.enum(["pending", "approved", "denied"]);

export const QueueRequest = z
  .object({
    version: z.literal(QUEUE_VERSION),
    id: RequestId,
    kind: RequestKind,
    /** kind "host": the host the agent wants to reach (exact, or "*.suffix"). */
    host: z.string().nullable(),
    /** kind "host": skip TLS interception for it (false for questions). */
    tlsPassthrough: z.boolean(),
    /** kind "host": why the agent says it needs the host. */
    reason: z.string().nullable(),
    /** kind "question": what the agent asks the operator. */
    question: z.string().nullable(),
    status: RequestStatus,
    /** The operator's text: the answer to a question, or the reason given with a denial. */
    answer: z.string().nullable(),
    /** ISO 8601 times: the table shows them as they are. */
    createdAt: z.string().datetime({ offset: true }),
    decidedAt: z.string().datetime({ offset: true }).nullable(),
  })
  .superRefine((r, ctx) => {
    if (r.kind === "host" && r.host === null) ctx.addIssue({ code: "custom", path: ["host"], message: "a host request needs a host" });
    // Checked again on read: the file comes from inside the bundle, and the operator
    // approves what it names.
    if (r.host !== null && normalizeHost(r.host) === null) ctx.addIssue({ code: "custom", path: ["host"], message: "not a host name" });
    if (r.kind === "question" && r.question === null) ctx.addIssue({ code: "custom", path: ["question"], message: "a question request needs a question" });
  });
export type QueueRequest = z.infer<typeof QueueRequest>;
export type RequestStatus = z.infer<typeof RequestStatus>;

/** The status as people read it: a question that got its answer is "answered" (the queue
 * records it as approved, which is what the agent's side polls for). */
export function statusText(r: QueueRequest): string {
  return r.kind === "question" && r.status === "approved" ? "answered" : r.status;
}

/** What a host request asks for: its whole host, after any "(TLS PASSTHROUGH, not
 * scanned)". What approving grants is never cut, nor its flag hidden, and it is shown as
 * approve writes it to the policy (normalizeHost), not as the file spells it: a file
 * written inside the bundle may pad it with thousands of spaces (the 253-character
 * limit counts after trimming), putting the host screens away from its id, or spell it
 * in capitals or with a Kelvin sign (K, which lower-cases to k). */
export function asked(r: QueueRequest): string {
  return `${r.tlsPassthrough ? "(TLS PASSTHROUGH, not scanned) " : ""}${printable(grantedHost(r) ?? "")}`;
}

/** The host approving `r` writes to the policy (the schema makes sure there is one for a host request). */
export function grantedHost(r: QueueRequest): string | null {
  return r.host === null ? null : (normalizeHost(r.host) ?? r.host);
}

const FILE_RE = /^([a-z0-9][a-z0-9-]{0,63})\.json$/;
const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
// A last label like these makes resolvers (inet_aton) and URL parsers read the whole
// name as an IPv4 address: "0x7f.1", "2130706433" and "127.1" all mean 127.0.0.1.
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|\d+)$/;
const QUAD_PART = /^(?:0|[1-9]\d{0,2})$/;

function isDottedQuad(labels: string[]): boolean {
  return labels.length === 4 && labels.every((l) => QUAD_PART.test(l) && Number(l) <= 255);
}

/** A host name as typed, trimmed, lower-cased and without a trailing dot (not yet checked). */
export function hostText(input: string): string {
  return input.trim().toLowerCase().replace(/\.$/, "");
}

/**
 * The host as the firewall policy writes it (lowercase, exact or "*.suffix"), or null
 * when `input` is not a host name: no scheme, port, path, bare "*" or wildcard over a
 * public suffix ("*.com", "*.co.uk", "*.github.io": lib/public-suffix.ts), and no address written any way but a plain dotted
 * quad, since whatever the agent sends here ends up in the policy once an operator
 * approves it, and the operator must be able to read where it leads.
 */
export function normalizeHost(input: string): string | null {
  const host = hostText(input);
  const wildcard = host.startsWith("*.");
  const bare = wildcard ? host.slice(2) : host;
  if (bare.length === 0 || host.length > 253) return null;
  const labels = bare.split(".");
  if (!labels.every((l) => LABEL_RE.test(l))) return null;
  if (NUMERIC_LABEL.test(labels.at(-1)!) && (wildcard || !isDottedQuad(labels))) return null;
  if (wildcard && (labels.length < 2 || publicSuffixUnderWildcard(host) !== null)) return null;
  return host;
}

/** A fresh id: short enough for an operator to type, random enough not to collide. */
export function newRequestId(): string {
  return randomBytes(4).toString("hex");
}

function requestPath(queueDir: string, id: string): string {
  return join(queueDir, `${RequestId.parse(id)}.json`);
}

/**
 * Write (create or replace) a request atomically (lib/fs-atomic.ts: a temp file made new
 * beside it, then rename), so the other side of the bind mount, which shares the folder,
 * cannot steer the write elsewhere by swapping the temp name for a symlink.
 */
export async function writeRequest(queueDir: string, request: QueueRequest): Promise<void> {
  await placeRequest(queueDir, request, writeFileAtomic);
}

/**
 * File a new request under its id, whole: false, writing nothing, when that name is taken
 * already, by a file of any uid's. supervise files this way, so a file another daemon made
 * first under the id is never taken over as supervise's, nor stops it (it takes a new id).
 */
export function createRequest(queueDir: string, request: QueueRequest): Promise<boolean> {
  return placeRequest(queueDir, request, createFileWhole);
}

async function placeRequest<T>(queueDir: string, request: QueueRequest, place: (path: string, text: string, mode: number) => Promise<T>): Promise<T> {
  const valid = QueueRequest.parse(request);
  const target = requestPath(queueDir, valid.id);
  try {
    // 0640 whatever the umask: supervise in the bundle runs as another uid than the host
    // operator, sharing only the operator's group (sidecar-image/init/identity.ts), and
    // each side reads what the other wrote.
    return await place(target, JSON.stringify(valid, null, 2) + "\n", 0o640);
  } catch (e) {
    throw new BbError("STATE", `Cannot write supervise request ${target}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The queue folder's mode while a bundle shares it: the daemons' group may write (the
 * supervise daemon files requests as a uid of its own), and sticky, so no daemon may
 * rename or remove a file it does not own: not the operator's decision, nor the temp
 * file it is written through, nor (for firewall or egress) what supervise filed. The
 * owner (the host user) may still replace what supervise filed with its decision; no
 * daemon runs as that user (lib/layout.ts daemonIdMap).
 */
const SHARED_QUEUE_MODE = 0o1770;

/** Give the queue folder SHARED_QUEUE_MODE before a bundle mounts it; a symlink there is refused, not followed. */
export async function shareQueueDir(queueDir: string): Promise<void> {
  const st = await lstat(queueDir);
  if (!st.isDirectory()) throw new BbError("STATE", `The supervise queue ${queueDir} is not a folder (bot-bottle makes one there): remove the bottle and prepare it again`);
  await chmod(queueDir, SHARED_QUEUE_MODE);
}

function parseRequest(text: string, path: string): QueueRequest {
  return parseJsonFile(QueueRequest, text, path);
}

/** Far more than any request the daemon files (a 4000-character question, a 2000-character reason). */
const MAX_REQUEST_BYTES = 256 * 1024;

/**
 * A request file's text and owner. The queue is also the bundle's to write, so a name there
 * may be a symlink (never followed), a FIFO (opened without blocking, then refused), huge,
 * or growing while it is read: at most MAX_REQUEST_BYTES + 1 bytes are ever read, whatever
 * size it said it had.
 */
async function readRequestFile(path: string): Promise<{ text: string; uid: number } | null> {
  try {
    // Never through a symlink: the queue is the bundle's to write.
    return await readRegularFileOwned(path, { maxBytes: MAX_REQUEST_BYTES, flags: constants.O_NOFOLLOW });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    const why = code === "ELOOP" ? "it is a symlink" : e instanceof BbError && typeof e.details.why === "string" ? e.details.why : (e as Error).message;
    throw new BbError("STATE", `Cannot read supervise request ${path}: ${why}`, { cause: e });
  }
}

/** The request at `path` if its owner may have written it (owners.ts); else null, said in a warning. */
async function readTrusted(path: string, ownersOf: () => Promise<QueueOwners | null>): Promise<QueueRequest | null> {
  const file = await readRequestFile(path);
  if (file === null) return null;
  const owners = await ownersOf();
  // Another daemon's file is not even parsed: what it says is nothing to go by.
  const request = mayHold(owners, file.uid) ? parseRequest(file.text, path) : null;
  const why = distrust(owners, file.uid, request?.status ?? null);
  if (why === null) return request;
  warnLeftOut(path, why);
  return null;
}

/** Read one request; null when there is no such file, or none its owner may have written. */
export async function readRequest(queueDir: string, id: string): Promise<QueueRequest | null> {
  return readTrusted(requestPath(queueDir, id), () => queueOwners(queueDir));
}

/**
 * Every request in the queue, oldest first. A file that does not parse, or that its owner
 * may not have written, is reported and skipped, so one bad file never hides the others
 * from the operator.
 */
export async function listRequests(queueDir: string): Promise<QueueRequest[]> {
  let names: string[];
  try {
    names = await readdir(queueDir);
  } catch (e) {
    throw new BbError("STATE", `Cannot read the supervise queue ${queueDir}: ${(e as Error).message}`, { cause: e });
  }
  const owners = await queueOwners(queueDir);
  const out: QueueRequest[] = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    try {
      const r = await readTrusted(requestPath(queueDir, m[1]!), async () => owners);
      if (r) out.push(r);
    } catch (e) {
      // One line whatever the file holds: the message may quote it (lib/sidecar-config.ts).
      log.warn(`${printable((e as Error).message)} (skipped)`);
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}
