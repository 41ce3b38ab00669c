// Markdown files with YAML frontmatter: `---\n<yaml>\n---\n<body>`.
import { readRegularFile, refusedBecause } from "../read-regular.ts";
import { parseDocument } from "yaml";
import { BbError } from "../errors.ts";

export interface Frontmatter {
  file: string;
  data: Record<string, unknown>;
  body: string;
}

function parseFrontmatter(file: string, text: string): Frontmatter {
  const lines = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n").split("\n");
  // Fences are whole lines ("---", trailing blanks allowed), as editors and other
  // frontmatter readers take them: "key: a---" closes nothing.
  const fence = (line: string) => /^---[ \t]*$/.test(line);
  if (!fence(lines[0]!)) {
    throw new BbError("MANIFEST_PARSE", `${file}: no YAML frontmatter: the file must start with a line "---", then YAML, then a line "---"`, {
      details: { file },
    });
  }
  const close = lines.findIndex((line, i) => i > 0 && fence(line));
  // Opened but never closed: the whole file would be YAML, which is not what was meant.
  if (close < 0) {
    throw new BbError("MANIFEST_PARSE", `${file}: the YAML frontmatter opened on line 1 is never closed by a line "---"`, { details: { file, line: 1 } });
  }
  const yaml = lines.slice(1, close).join("\n");
  const body = lines.slice(close + 1).join("\n").trim();
  const doc = parseDocument(yaml, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    // The file's own line number (the YAML starts below the opening "---"), as an editor
    // shows it; the parser's message says the line again in frontmatter terms, so its
    // "at line N, column M:" tail is cut.
    const inYaml = e.linePos?.[0]?.line;
    const line = inYaml === undefined ? undefined : inYaml + 1;
    const why = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "").replace(/:$/, "");
    throw new BbError("MANIFEST_PARSE", `${file}${line !== undefined ? `:${line}` : ""}: invalid YAML: ${why}`, { details: { file, line } });
  }
  let data: unknown;
  try {
    // Parsing succeeded, but building the values can still fail: an alias bomb (anchors
    // expanded past the parser's limit) is refused here.
    data = doc.toJS();
  } catch (e) {
    throw new BbError("MANIFEST_PARSE", `${file}: invalid YAML: ${(e as Error).message.split("\n")[0]}`, { cause: e, details: { file } });
  }
  if (data === null || data === undefined) return { file, data: {}, body };
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new BbError("MANIFEST_PARSE", `${file}: the frontmatter must be a YAML mapping (key: value lines)`, { details: { file } });
  }
  return { file, data: data as Record<string, unknown>, body };
}

export async function readFrontmatter(file: string): Promise<Frontmatter> {
  let text: string;
  try {
    // A regular file only: reading a FIFO there would wait for a writer, Ctrl-C and all.
    text = await readRegularFile(file);
  } catch (e) {
    const why = refusedBecause(e);
    if (why) throw new BbError("MANIFEST_INVALID", `${file}: ${why}: a manifest is a Markdown file`, { cause: e, details: { file } });
    throw new BbError("MANIFEST_NOT_FOUND", `Cannot read ${file}: ${(e as Error).message}`, { cause: e, details: { file } });
  }
  return parseFrontmatter(file, text);
}
