//! `cargo xtask citations [--fix]`: every citation of a project document — `` `docs/loaders.md`
//! §10 rule 23 ``, `windows-integration.md §1.5`, `§4.1–§4.2` — must name a file that exists in
//! the repository and a section heading (and, for `§10 rule N`, a numbered rule) that exists in
//! it. A clone has only the repository, so a citation of anything else cannot be followed.
//!
//! What counts as a citation: a name ending in `.md`, optionally followed by `` ` ``, `)` or `]`
//! and spaces, then `§N[.N…]`. Further `§` numbers on the same line belong to the same document
//! (`§1.5, §2.2`, `§4.1–§4.2`, `§1.6–1.8`) until another `.md` name appears, except a `§` right
//! after a standard's name (`SPC-4 §6.4.2`) and `observed §N`, which means
//! `loaders-observed.md`. Bare `§N` with no document on the line is not checked (it refers to
//! the document the surrounding comment cites).
//!
//! A bare name (`loaders.md`) means `docs/loaders.md`; a name with a directory is relative to the
//! repository root (`inf/xp/README.md`). Headings are `#… N. Title` or `#… N.M Title`.
//!
//! `--fix` rewrites the old forms mechanically, in comments and Markdown only (citations never
//! occur elsewhere): `shared/spec/X.md` and bare `X.md` become `docs/X.md`, `anchors.md` becomes
//! `docs/peers.md`, and `X.md 2.2` gains its missing `§`. It is idempotent, so it can be re-run
//! after merging branches that still use the old forms.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Files scanned for citations.
const EXTENSIONS: &[&str] = &["rs", "md", "toml", "inf", "asm", "oem", "sif", "sh"];
/// Directories never scanned.
const SKIP_DIRS: &[&str] = &["target", ".git", "node_modules", "corpus", "artifacts"];
/// This file holds deliberately broken citations in its tests.
const SELF: &str = "xtask/src/citations.rs";

/// Document names the research notes used, and what they are called in `docs/`.
const RENAMES: &[(&str, &str)] = &[
    ("loaders.md", "loaders.md"),
    ("loaders-observed.md", "loaders-observed.md"),
    ("windows-integration.md", "windows-integration.md"),
    ("ventoy.md", "ventoy.md"),
    ("anchors.md", "peers.md"),
];

/// One `§` reference of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Citation {
    pub line: usize,
    /// The document as written (`loaders.md`, `docs/loaders.md`, `shared/spec/loaders.md`).
    pub doc: String,
    /// `10`, `3.3`, `1.10`.
    pub section: String,
    /// Rule numbers cited right after `§10` (`rule 29`, `rules 23–28` gives 23 and 28).
    pub rules: Vec<u32>,
}

/// A citation that cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// `N[.N…]` at the start of `s`: the number and its byte length (a trailing `.` is not part of
/// it).
fn section_number(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut end = 0;
    loop {
        let start = end;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            // `3.` followed by a non-digit: drop the dot again.
            if start == 0 {
                return None;
            }
            return Some((s[..start - 1].to_string(), start - 1));
        }
        if end < b.len() && b[end] == b'.' && end + 1 < b.len() && b[end + 1].is_ascii_digit() {
            end += 1;
            continue;
        }
        return Some((s[..end].to_string(), end));
    }
}

/// The word that ends `s` (after trimming), e.g. `SPC-4` in `(SPC-4 `.
fn last_word(s: &str) -> &str {
    let t = s.trim_end();
    let start = t
        .rfind(|c: char| c.is_whitespace() || matches!(c, '(' | ',' | ';' | '`'))
        .map_or(0, |i| i + 1);
    &t[start..]
}

/// `SPC-4`, `SBC-3`, `MMC-6`, `SAM-5`, `ACPI`, `6.1` (as in `ACPI 6.1 §5.2.25`): a § after it is
/// not ours.
fn is_foreign_standard(word: &str) -> bool {
    let upper_dash_digit = word.split_once('-').is_some_and(|(a, b)| {
        a.len() >= 2
            && a.chars().all(|c| c.is_ascii_uppercase())
            && !b.is_empty()
            && b.chars().all(|c| c.is_ascii_alphanumeric())
    });
    upper_dash_digit
        || word == "ACPI"
        || (word.contains('.') && word.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Rule numbers in `rule 29`, `rules 9–14`, `rules 4, 23–28` at the start of `s` (after
/// optional spaces and a comma).
fn rule_numbers(s: &str) -> Vec<u32> {
    let t = s.trim_start_matches([' ', ',']);
    let rest = if let Some(r) = t.strip_prefix("rules") {
        r
    } else if let Some(r) = t.strip_prefix("rule") {
        r
    } else {
        return Vec::new();
    };
    // The list: digits, spaces, commas, dashes and the word "and".
    let mut end = 0;
    while end < rest.len() {
        let r = &rest[end..];
        if r.starts_with("and ") {
            end += 3;
        } else if let Some(c) = r
            .chars()
            .next()
            .filter(|c| c.is_ascii_digit() || matches!(c, ' ' | ',' | '–' | '-'))
        {
            end += c.len_utf8();
        } else {
            break;
        }
    }
    rest[..end]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok())
        .collect()
}

/// Every citation in `text` (a whole file).
pub fn scan(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        scan_line(i + 1, line, &mut out);
    }
    out
}

fn scan_line(line_no: usize, line: &str, out: &mut Vec<Citation>) {
    let md: Vec<usize> = line.match_indices(".md").map(|(i, _)| i).collect();
    for (k, &pos) in md.iter().enumerate() {
        let after = pos + 3;
        // `.md` must end the name (not `.mdx`).
        if line[after..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = line[..pos]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_name_char(c))
            .last()
            .map_or(pos, |(i, _)| i);
        let doc = &line[start..after];
        if start == pos || doc.starts_with('.') {
            continue;
        }
        let rest = line[after..].trim_start_matches(['`', ')', ']', '*']);
        let rest = rest.trim_start();
        if !rest.starts_with('§') {
            continue;
        }
        // Where this document's references end: the next `.md` name on the line.
        let limit = md.get(k + 1).map_or(line.len(), |&p| {
            line[..p]
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_name_char(c))
                .last()
                .map_or(p, |(i, _)| i)
        });
        let base = line.len() - rest.len();
        if base >= limit {
            continue;
        }
        scan_sections(line_no, doc, &line[base..limit], out);
    }
}

/// `segment` starts with `§`; collect this document's numbers from it.
fn scan_sections(line_no: usize, doc: &str, segment: &str, out: &mut Vec<Citation>) {
    let mut first = true;
    let mut from = 0;
    while let Some(rel) = segment[from..].find('§') {
        let at = from + rel;
        let before = &segment[..at];
        let word = last_word(before);
        let target = if first {
            Some(doc)
        } else if word == "observed" {
            Some("loaders-observed.md")
        } else if is_foreign_standard(word) {
            None
        } else {
            Some(doc)
        };
        first = false;
        let mut cur = at + '§'.len_utf8();
        cur += segment[cur..].len() - segment[cur..].trim_start().len();
        let Some((num, len)) = section_number(&segment[cur..]) else {
            from = cur;
            continue;
        };
        cur += len;
        let mut nums = vec![num];
        // A range: `§4.1–§4.2` or `§1.6–1.8`.
        if let Some(r) = segment[cur..]
            .strip_prefix('–')
            .or_else(|| segment[cur..].strip_prefix('-'))
        {
            let r2 = r.strip_prefix('§').unwrap_or(r);
            if let Some((n2, l2)) = section_number(r2) {
                nums.push(n2);
                cur = segment.len() - r2.len() + l2;
            }
        }
        // `§4.5 observed` is loaders-observed.md as well.
        let target = if segment[cur..].starts_with(" observed") {
            Some("loaders-observed.md")
        } else {
            target
        };
        if let Some(doc) = target {
            for n in nums {
                let rules = if n == "10" {
                    rule_numbers(&segment[cur..])
                } else {
                    Vec::new()
                };
                out.push(Citation {
                    line: line_no,
                    doc: doc.to_string(),
                    section: n,
                    rules,
                });
            }
        }
        from = cur;
    }
}

/// Section numbers and §10-style numbered rules of one document.
#[derive(Debug, Default)]
pub struct Outline {
    pub sections: BTreeSet<String>,
    /// Section → numbers of the `N. ` list items directly in it.
    pub rules: BTreeMap<String, BTreeSet<u32>>,
}

pub fn outline(text: &str) -> Outline {
    let mut o = Outline::default();
    let mut current: Option<String> = None;
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim_start_matches('#').trim_start();
            current = section_number(h).map(|(n, _)| n);
            if let Some(n) = &current {
                o.sections.insert(n.clone());
            }
            continue;
        }
        if let Some(sec) = &current {
            let item = line.trim_start();
            let digits: String = item.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && item[digits.len()..].starts_with(". ") {
                if let Ok(n) = digits.parse() {
                    o.rules.entry(sec.clone()).or_default().insert(n);
                }
            }
        }
    }
    o
}

/// Where a cited document lives, relative to the repository root.
fn resolve(root: &Path, citing: &Path, doc: &str) -> PathBuf {
    if doc.contains('/') {
        let beside = citing.parent().unwrap_or(root).join(doc);
        let p = root.join(doc);
        return if !p.exists() && beside.exists() {
            beside
        } else {
            p
        };
    }
    let in_docs = root.join("docs").join(doc);
    if in_docs.exists() {
        return in_docs;
    }
    let beside = citing.parent().unwrap_or(root).join(doc);
    if beside.exists() {
        beside
    } else {
        in_docs
    }
}

/// Problems of the citations in one file (`rel` is its path relative to `root`).
pub fn check_file(
    root: &Path,
    rel: &str,
    text: &str,
    outlines: &mut BTreeMap<PathBuf, Option<Outline>>,
) -> Vec<Problem> {
    let citing = root.join(rel);
    let mut problems = Vec::new();
    for c in scan(text) {
        let path = resolve(root, &citing, &c.doc);
        let o = outlines
            .entry(path.clone())
            .or_insert_with(|| std::fs::read_to_string(&path).ok().map(|t| outline(&t)));
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let problem = |what: String| Problem {
            file: rel.to_string(),
            line: c.line,
            what,
        };
        let Some(o) = o else {
            problems.push(problem(format!(
                "cites `{}` §{}, but {shown} is not in the repository",
                c.doc, c.section
            )));
            continue;
        };
        if !o.sections.contains(&c.section) {
            problems.push(problem(format!(
                "cites `{}` §{}, but {shown} has no section {}",
                c.doc, c.section, c.section
            )));
            continue;
        }
        for r in &c.rules {
            if !o.rules.get(&c.section).is_some_and(|s| s.contains(r)) {
                problems.push(problem(format!(
                    "cites `{}` §{} rule {r}, but {shown} §{} has no rule {r}",
                    c.doc, c.section, c.section
                )));
            }
        }
    }
    problems
}

/// The repository's text files that may hold citations, relative paths, sorted.
pub fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) {
                    walk(root, &p, out);
                }
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
            {
                if let Ok(rel) = p.strip_prefix(root) {
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    if rel != SELF {
                        out.push(rel);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Check every file under `root`.
pub fn check_repository(root: &Path) -> Vec<Problem> {
    let mut outlines = BTreeMap::new();
    let mut problems = Vec::new();
    for rel in files(root) {
        if let Ok(text) = std::fs::read_to_string(root.join(&rel)) {
            problems.extend(check_file(root, &rel, &text, &mut outlines));
        }
    }
    problems
}

/// The `--fix` rewrite of one file's text (see the module docs). Files under `docs/` keep bare
/// names (they link to their neighbours) and only get `anchors.md` renamed.
pub fn fix_text(text: &str, in_docs: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(".md") {
        let head = &rest[..pos + 3];
        let tail = &rest[pos + 3..];
        // The name ending here.
        let start = head[..pos]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_name_char(c))
            .last()
            .map_or(pos, |(i, _)| i);
        let name = &head[start..];
        let ends_name = !tail.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let (dir, file) = match name.rfind('/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => ("", name),
        };
        let renamed = RENAMES.iter().find(|(old, _)| *old == file).map(|r| r.1);
        match renamed {
            Some(new) if ends_name && matches!(dir, "" | "shared/spec/" | "docs/") => {
                out.push_str(&head[..start]);
                if !in_docs || !dir.is_empty() {
                    out.push_str("docs/");
                }
                out.push_str(new);
                // `loaders.md 2.2` → `loaders.md §2.2`.
                let digits = tail.strip_prefix(' ').map(|t| {
                    t.chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.')
                        .collect::<String>()
                });
                if let Some(d) = digits {
                    if d.contains('.') && d.starts_with(|c: char| c.is_ascii_digit()) {
                        out.push_str(" §");
                        rest = &tail[1..];
                        continue;
                    }
                }
            }
            _ => out.push_str(head),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Apply [`fix_text`] to every scanned file; returns the files changed.
pub fn fix_repository(root: &Path) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for rel in files(root) {
        let path = root.join(&rel);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let fixed = fix_text(&text, rel.starts_with("docs/"));
        if fixed != text {
            std::fs::write(&path, fixed)?;
            changed.push(rel);
        }
    }
    Ok(changed)
}

pub fn run(args: &[String]) -> crate::cmd::Result<()> {
    let root = crate::cmd::root();
    match args {
        [] => {}
        [f] if f == "--fix" => {
            let changed = fix_repository(&root).map_err(|e| format!("citations --fix: {e}"))?;
            for f in changed {
                println!("rewrote citations in {f}");
            }
        }
        _ => return Err("citations takes no arguments except --fix".to_string()),
    }
    let problems = check_repository(&root);
    for p in &problems {
        eprintln!("{p}");
    }
    if problems.is_empty() {
        println!("citations: every cited document and section exists");
        Ok(())
    } else {
        Err(format!("{} citation(s) cannot be followed", problems.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cites(line: &str) -> Vec<(String, String, Vec<u32>)> {
        scan(line)
            .into_iter()
            .map(|c| (c.doc, c.section, c.rules))
            .collect()
    }

    fn c(doc: &str, sec: &str) -> (String, String, Vec<u32>) {
        (doc.into(), sec.into(), vec![])
    }

    /// The repository itself: every citation in the tree can be followed in a clone.
    #[test]
    fn repository_citations_resolve() {
        let problems: Vec<String> = check_repository(&crate::cmd::root())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            problems.is_empty(),
            "citations that cannot be followed (`cargo xtask citations --fix` rewrites the old \
             research-note names):\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn finds_the_forms_the_code_uses() {
        assert_eq!(
            cites("//! (`windows-integration.md` §1.5, §2.2)."),
            [
                c("windows-integration.md", "1.5"),
                c("windows-integration.md", "2.2")
            ]
        );
        assert_eq!(
            cites("/// (`docs/loaders.md` §10 rule 29)."),
            [("docs/loaders.md".into(), "10".into(), vec![29])]
        );
        assert_eq!(
            cites("//! Discovery (`shared/spec/loaders.md` §9, rules in §10)."),
            [
                c("shared/spec/loaders.md", "9"),
                c("shared/spec/loaders.md", "10")
            ]
        );
        assert_eq!(
            cites("//! `loaders-observed.md` §4.1–§4.2, GRUB4DOS"),
            [
                c("loaders-observed.md", "4.1"),
                c("loaders-observed.md", "4.2")
            ]
        );
        assert_eq!(
            cites("//! SRB decisions (`windows-integration.md` §1.6–1.8):"),
            [
                c("windows-integration.md", "1.6"),
                c("windows-integration.md", "1.8")
            ]
        );
        assert_eq!(
            cites("(§1.5 \"Device-extension lifetime\") windows-integration.md §1.5 \"Device\""),
            [c("windows-integration.md", "1.5")]
        );
        assert_eq!(
            cites("x ([`loaders-observed.md`](loaders-observed.md) §3.2) y"),
            [c("loaders-observed.md", "3.2")]
        );
        assert_eq!(
            cites("//! (`loaders.md` §9 F, rules 4, 23–28)."),
            [c("loaders.md", "9")]
        );
        assert_eq!(
            cites("(`loaders.md` §10 rules 23–28 and 30)"),
            [("loaders.md".into(), "10".into(), vec![23, 28, 30])]
        );
    }

    #[test]
    fn other_documents_and_standards_are_not_attributed() {
        // A second document on the line takes over.
        assert_eq!(
            cites("(`loaders.md` §5; observed bytes from `loaders-observed.md` §3.1)"),
            [c("loaders.md", "5"), c("loaders-observed.md", "3.1")]
        );
        // A standard's own section.
        assert_eq!(
            cites("//! (`anchors.md` §5 item 4) and SPC-4 §7.8, ACPI 6.1 §5.2.25"),
            [c("anchors.md", "5")]
        );
        // `observed §N` and `§N observed` are loaders-observed.md.
        assert_eq!(
            cites("(`loaders.md` §9 F3, observed §4.4)"),
            [c("loaders.md", "9"), c("loaders-observed.md", "4.4")]
        );
        assert_eq!(
            cites("(`loaders.md` §4, §4.5 observed, §9 D)"),
            [
                c("loaders.md", "4"),
                c("loaders-observed.md", "4.5"),
                c("loaders.md", "9")
            ]
        );
        // No § after the name: a mention, not a citation; § without a name: not checked.
        assert!(cites("see `inf/xp/README.md`, and §6 there").is_empty());
        assert!(cites("SBC-3 §5.15.2").is_empty());
    }

    #[test]
    fn outline_reads_headings_and_numbered_rules() {
        let o = outline(
            "# Title\n## 0. Summary\n## 3. GRUB4DOS\n### 3.10 Ten\n## 10. Rules\n\nGeneral\n\n\
             1. one\n2. two\n30. thirty\n```\n## 99. in a code block\n```\n",
        );
        let s: Vec<&str> = o.sections.iter().map(String::as_str).collect();
        assert_eq!(s, ["0", "10", "3", "3.10"]);
        assert_eq!(
            o.rules["10"].iter().copied().collect::<Vec<_>>(),
            [1, 2, 30]
        );
    }

    struct Repo(tempfile::TempDir);

    impl Repo {
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn repo() -> Repo {
        let d = Repo(tempfile::tempdir().unwrap());
        d.write(
            "docs/loaders.md",
            "# L\n## 3. GRUB4DOS\n### 3.3 Slots\n## 10. Validation rules\n23. OS RAM\n",
        );
        d.write("docs/peers.md", "# P\n## 6. Gotchas\n");
        d.write("inf/xp/README.md", "# XP\n## 2. Setup\n");
        d
    }

    fn problems(d: &Repo) -> Vec<String> {
        check_repository(d.0.path())
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_good_repository_passes() {
        let d = repo();
        d.write(
            "driver/a.rs",
            "//! (`docs/loaders.md` §3.3, §10 rule 23)\n// `inf/xp/README.md` §2\n\
             // docs/peers.md §6\n",
        );
        assert_eq!(problems(&d), Vec::<String>::new());
    }

    #[test]
    fn bad_citations_fail_with_file_and_line() {
        let d = repo();
        d.write(
            "driver/a.rs",
            "fn f() {}\n//! (`shared/spec/loaders.md` §3.3)\n/// `loaders.md` §3.6 and §10 rule 29\n\
             // `anchors.md` §6\n",
        );
        let p = problems(&d);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].starts_with("driver/a.rs:2: ") && p[0].contains("shared/spec/loaders.md"));
        assert!(p[1].starts_with("driver/a.rs:3: ") && p[1].contains("no section 3.6"));
        assert!(p[2].starts_with("driver/a.rs:3: ") && p[2].contains("no rule 29"));
        assert!(p[3].starts_with("driver/a.rs:4: ") && p[3].contains("anchors.md"));
    }

    #[test]
    fn fix_rewrites_old_forms_and_is_idempotent() {
        let before = "//! (`shared/spec/loaders.md` §9)\n// `anchors.md` §6, loaders-observed.md §3\n\
                      ; (SafeMBRHook layout, loaders.md 2.2)\n// `docs/loaders.md` §1, `inf/xp/README.md`\n";
        let after = "//! (`docs/loaders.md` §9)\n// `docs/peers.md` §6, docs/loaders-observed.md §3\n\
                     ; (SafeMBRHook layout, docs/loaders.md §2.2)\n// `docs/loaders.md` §1, `inf/xp/README.md`\n";
        assert_eq!(fix_text(before, false), after);
        assert_eq!(fix_text(after, false), after);
        // Inside docs/ bare names stay (relative links); only anchors.md is renamed.
        assert_eq!(
            fix_text("[`anchors.md`](anchors.md) §6, `loaders.md` §8", true),
            "[`peers.md`](peers.md) §6, `loaders.md` §8"
        );
    }

    #[test]
    fn fixed_repository_passes() {
        let d = repo();
        d.write(
            "tests/b.rs",
            "// (`shared/spec/loaders.md` §10 rule 23; `anchors.md` §6)\n",
        );
        assert_eq!(problems(&d).len(), 2);
        assert_eq!(fix_repository(d.0.path()).unwrap(), ["tests/b.rs"]);
        assert_eq!(problems(&d), Vec::<String>::new());
    }
}
