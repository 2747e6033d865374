/** What the runner does with a code block. */
export type ExampleMode = 'run' | 'typecheck-only' | 'skip';

/** A fenced code block of a README. */
export interface Example {
  /** README path as given (repo-relative in the runner's output). */
  readme: string;
  /** 1-based line of the opening fence; the block's first line of code is `line + 1`. */
  line: number;
  /** `ts` blocks are type-stripped before they run; `js` blocks run verbatim. Absent: not run (sh, sql, output). */
  language?: 'ts' | 'js';
  mode: ExampleMode;
  /** Why a block is skipped or only type-checked, from its marker. */
  reason?: string;
  code: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)/;
const MARKER = /^<!--\s*example:(.*?)-->\s*$/;
const MARKER_BODY = /^\s*(skip|typecheck-only)\s+\((.+)\)\s*$/;
const LANGUAGES: Record<string, 'ts' | 'js'> = { ts: 'ts', typescript: 'ts', mts: 'ts', js: 'js', javascript: 'js', mjs: 'js' };

/**
 * Every fenced code block of one README, with the marker that opts it out, if any: an HTML comment
 * `<!-- example: skip (reason) -->` or `<!-- example: typecheck-only (reason) -->` as the last
 * non-blank line before the fence. Malformed or stray markers are problems, so none is silently ignored.
 */
export function extractExamples(readme: string, text: string): { examples: Example[]; problems: string[] } {
  const lines = text.split('\n');
  const examples: Example[] = [];
  const problems: string[] = [];
  const usedMarkers = new Set<number>();
  const insideBlocks = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    let end = i + 1;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (end < lines.length && !close.test(lines[end]!)) end++;
    if (end === lines.length) problems.push(`${readme}:${i + 1}: code block is never closed`);

    const language = LANGUAGES[info.toLowerCase()];
    const example: Example = {
      readme,
      line: i + 1,
      ...(language ? { language } : {}),
      mode: language ? 'run' : 'skip',
      code: lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()))
        .join('\n'),
    };
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = before >= 0 ? MARKER.exec(lines[before]!.trim()) : null;
    if (marker) {
      usedMarkers.add(before);
      const body = MARKER_BODY.exec(marker[1]!);
      if (!body) {
        problems.push(
          `${readme}:${before + 1}: malformed marker; write <!-- example: skip (reason) --> or typecheck-only (reason)`,
        );
      } else if (!language) {
        problems.push(`${readme}:${before + 1}: marker on a \`${info || 'plain'}\` block, which never runs; remove it`);
      } else {
        example.mode = body[1] as ExampleMode;
        example.reason = body[2]!.trim();
      }
    }
    // A reader who copies a `ts` block into the file its comment names gets a SyntaxError on any type.
    if (language === 'ts' && /\bnode\s+\S+\.[cm]?js\b/.test(example.code)) {
      problems.push(
        `${readme}:${i + 1}: the block says to run it with node as a .js/.mjs file; fence it \`js\`, not \`${info}\``,
      );
    }
    examples.push(example);
    for (let n = i; n <= end; n++) insideBlocks.add(n);
    i = end;
  }
  lines.forEach((l, n) => {
    if (MARKER.test(l.trim()) && !usedMarkers.has(n) && !insideBlocks.has(n))
      problems.push(`${readme}:${n + 1}: marker not followed by a code block`);
  });
  return { examples, problems };
}
