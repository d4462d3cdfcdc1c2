//! The INF syntax shared by driver INFs, `txtsetup.oem`, `txtsetup.sif` and `dosnet.inf`, read
//! in one place for every rvblk tool:
//!
//! * a line `[Name]` opens a section (names compare case-insensitively; a name may appear more
//!   than once and then its lines add up);
//! * other lines are entries: `key = value`, or a bare `value`; `;` starts a comment except
//!   inside double quotes;
//! * values are comma-separated fields; a quoted field keeps its commas and blanks, and `""`
//!   inside quotes is one `"`;
//! * `%token%` is replaced from the `[Strings]` section (`%%` is a literal `%`).
//!
//! Files are UTF-16LE with a byte-order mark, UTF-8 (with or without one), or ANSI ([`decode`]).
//! The XP slipstreamer edits such files line by line and uses the line-level functions
//! ([`section_header`], [`entry_key`]) so that its edits and this reader agree.
//!
//! [`Inf::parse`] is lenient (the slipstreamers read Windows' own files, which must not be
//! refused over a stray line); [`Inf::parse_strict`] is for tools that act on a driver INF and
//! must refuse a corrupt one with the number of the first malformed line before anything changes
//! (the installer, `docs/installer.md` §2).

use std::collections::HashMap;
use std::fmt;

/// Why [`Inf::parse_strict`] (or a caller checking the content) refused a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfError {
    /// 1-based line number; 0 when the problem is not one line (e.g. a missing section).
    pub line: usize,
    pub message: String,
}

impl InfError {
    pub fn new(line: usize, message: impl Into<String>) -> InfError {
        InfError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for InfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for InfError {}

/// Decodes an INF-style file: UTF-16LE with BOM, UTF-8 (BOM optional), else ANSI read as
/// Latin-1 (every byte one character).
pub fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let b = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// `line` without its comment (`;` outside double quotes).
pub fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The name of the section `line` opens (`[Name]`, blanks and a comment around it allowed).
pub fn section_header(line: &str) -> Option<&str> {
    let inner = strip_comment(line).trim().strip_prefix('[')?;
    let close = inner.find(']')?;
    Some(inner[..close].trim())
}

/// Splits an entry line into key and value (both trimmed; the key is empty for a bare value).
/// `None` for blank lines, comments and section headers.
pub fn split_entry(line: &str) -> Option<(&str, &str)> {
    let c = strip_comment(line).trim();
    if c.is_empty() || c.starts_with('[') {
        return None;
    }
    Some(match c.split_once('=') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => ("", c),
    })
}

/// The key of an entry line, unquoted (`"a b" = c` → `a b`); for a bare value, the value.
/// `None` for blank lines, comments and section headers.
pub fn entry_key(line: &str) -> Option<String> {
    let (k, v) = split_entry(line)?;
    Some(unquote(if k.is_empty() { v } else { k }))
}

/// A field without its surrounding quotes (`"a ""b"""` → `a "b"`).
pub fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => v.to_string(),
    }
}

/// The comma-separated fields of a value, unquoted (commas inside quotes stay).
pub fn fields(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                out.push(unquote(&value[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(unquote(&value[start..]));
    out
}

/// One entry: `key = value` (key empty for a bare value). Both are as written, trimmed and
/// without the comment; see [`Inf::resolve`] and [`fields`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line number in the parsed text, for messages.
    pub line: usize,
}

impl Entry {
    /// The value's fields, unquoted (no `%token%` substitution).
    pub fn fields(&self) -> Vec<String> {
        fields(&self.value)
    }
}

/// A parsed INF-style file.
#[derive(Clone, Debug, Default)]
pub struct Inf {
    /// Sections in file order (a repeated name appears once per occurrence).
    pub sections: Vec<(String, Vec<Entry>)>,
    strings: HashMap<String, String>,
}

impl Inf {
    /// Parses text (see [`decode`] for bytes). Lines before the first section are ignored.
    pub fn parse(text: &str) -> Inf {
        let mut sections: Vec<(String, Vec<Entry>)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(name) = section_header(line) {
                sections.push((name.to_string(), Vec::new()));
            } else if let (Some((key, value)), Some((_, entries))) =
                (split_entry(line), sections.last_mut())
            {
                entries.push(Entry {
                    key: key.to_string(),
                    value: value.to_string(),
                    line: i + 1,
                });
            }
        }
        let strings = sections
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Strings"))
            .flat_map(|(_, e)| e)
            .map(|e| (e.key.to_ascii_lowercase(), unquote(&e.value)))
            .collect();
        Inf { sections, strings }
    }

    /// Parses text like [`Inf::parse`], but refuses the first malformed line with its number:
    /// text before the first section, a section header without `]` or without a name, a quote
    /// left open, an entry with `=` but no key. (Windows' SetupAPI does the real install; this
    /// only keeps a corrupt file from getting that far.)
    pub fn parse_strict(text: &str) -> Result<Inf, InfError> {
        let mut in_section = false;
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            // An open quote makes `strip_comment` keep the rest of the line, so an odd count
            // of quotes in what it returns means the quote is never closed.
            let c = strip_comment(line).trim();
            if c.matches('"').count() % 2 == 1 {
                return Err(InfError::new(number, "a quoted string is not closed"));
            }
            if c.is_empty() {
                continue;
            }
            if c.starts_with('[') {
                match section_header(line) {
                    None => {
                        return Err(InfError::new(number, "a section header has no closing ']'"))
                    }
                    Some("") => return Err(InfError::new(number, "a section header has no name")),
                    Some(_) => in_section = true,
                }
            } else if !in_section {
                return Err(InfError::new(number, "text before the first [section]"));
            } else if c.starts_with('=') {
                return Err(InfError::new(number, "a line starts with '=' (no key)"));
            }
        }
        Ok(Inf::parse(text))
    }

    /// Parses a file's bytes ([`decode`], then [`Inf::parse`]).
    pub fn from_bytes(bytes: &[u8]) -> Inf {
        Inf::parse(&decode(bytes))
    }

    /// Every entry of the sections named `name` (all occurrences, in file order), or `None`
    /// when there is no such section.
    pub fn section(&self, name: &str) -> Option<Vec<&Entry>> {
        let mut found = self
            .sections
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .peekable();
        found.peek()?;
        Some(found.flat_map(|(_, e)| e).collect())
    }

    /// The resolved value of the first `key` in section `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<String> {
        self.section(section)?
            .into_iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| self.resolve(&e.value))
    }

    /// The entries of section `name` (all occurrences) whose key, unquoted, is `key` (any
    /// case), in file order; empty when there is no such section.
    pub fn entries_with_key<'a>(
        &'a self,
        name: &str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        self.section(name)
            .unwrap_or_default()
            .into_iter()
            .filter(move |e| unquote(&e.key).eq_ignore_ascii_case(key))
    }

    /// `v` unquoted, with every `%token%` replaced from `[Strings]` (an unknown token keeps its
    /// name, `%%` is `%`).
    pub fn resolve(&self, v: &str) -> String {
        let v = unquote(v);
        let mut out = String::new();
        let mut rest = v.as_str();
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let token = &after[..end];
            match self.strings.get(&token.to_ascii_lowercase()) {
                Some(s) => out.push_str(s),
                None if token.is_empty() => out.push('%'),
                None => out.push_str(token),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "; header comment\r\n[Version]\r\nSignature=\"$WINDOWS NT$\"\r\n\
        Provider = %Prov% ; who\r\nCatalogFile=rvblk.cat\r\n\r\n[ Models ]\r\n\
        %Desc% = Install, ROOT\\RVBLK, \"a, b\"\r\nbare.sys\r\n[version]\r\nLate=1\r\n\
        [Strings]\r\nProv=\"rvblk \"\"project\"\"\"\r\nDesc=\"RAM; disk\"\r\n";

    #[test]
    fn sections_entries_and_strings() {
        let inf = Inf::parse(TEXT);
        assert_eq!(
            inf.get("VERSION", "provider").as_deref(),
            Some("rvblk \"project\"")
        );
        assert_eq!(
            inf.get("Version", "Late").as_deref(),
            Some("1"),
            "repeated section"
        );
        assert_eq!(
            inf.get("Version", "CatalogFile").as_deref(),
            Some("rvblk.cat")
        );
        assert_eq!(inf.get("Version", "Missing"), None);
        let models = inf.section("models").unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(inf.resolve(&models[0].key), "RAM; disk");
        assert_eq!(models[0].fields(), ["Install", "ROOT\\RVBLK", "a, b"]);
        assert_eq!(
            (models[1].key.as_str(), models[1].value.as_str()),
            ("", "bare.sys")
        );
        assert!(inf.section("Nope").is_none());
        assert_eq!(inf.resolve("100%% %Unknown%"), "100% Unknown");
    }

    #[test]
    fn encodings() {
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(TEXT.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            Inf::from_bytes(&utf16)
                .get("Version", "Provider")
                .as_deref(),
            Some("rvblk \"project\"")
        );
        assert_eq!(decode(b"\xef\xbb\xbf[A]"), "[A]");
        assert_eq!(decode(b"caf\xe9"), "caf\u{e9}", "ANSI as Latin-1");
    }

    #[test]
    fn line_level() {
        assert_eq!(section_header("  [SCSI.Load] ; c\r\n"), Some("SCSI.Load"));
        assert_eq!(section_header("key = [x]"), None);
        assert_eq!(
            entry_key("\"rvblkxp\" = 1,,4\r\n").as_deref(),
            Some("rvblkxp")
        );
        assert_eq!(entry_key("rvblkxp.sys\n").as_deref(), Some("rvblkxp.sys"));
        assert_eq!(entry_key("; only a comment"), None);
        assert_eq!(entry_key("[Files]"), None);
        assert_eq!(strip_comment("a = \"x;y\" ; z"), "a = \"x;y\" ");
    }

    #[test]
    fn entries_carry_their_line_numbers() {
        let inf = Inf::parse(TEXT);
        let models = inf.section("Models").unwrap();
        assert_eq!((models[0].line, models[1].line), (8, 9));
        assert_eq!(
            inf.section("Version").unwrap()[3].line,
            11,
            "repeated section"
        );
        let files = Inf::parse("[F]\n\"a b.sys\" = 1\nA B.SYS = 2\nc.sys = 3\n");
        let found: Vec<usize> = files
            .entries_with_key("f", "a b.sys")
            .map(|e| e.line)
            .collect();
        assert_eq!(found, [2, 3]);
        assert_eq!(files.entries_with_key("Nope", "c.sys").count(), 0);
    }

    #[test]
    fn strict_parse_accepts_what_parse_reads() {
        let strict = Inf::parse_strict(TEXT).unwrap();
        let lenient = Inf::parse(TEXT);
        assert_eq!(strict.sections, lenient.sections);
        assert_eq!(
            strict.get("Version", "Provider"),
            lenient.get("Version", "Provider")
        );
        // Blank lines, comments and `;` inside quotes before the first section are fine.
        assert!(Inf::parse_strict("\n ; c \"\n[A]\nk = \"x;\" ; \"\n").is_ok());
    }

    #[test]
    fn strict_parse_refuses_the_first_malformed_line() {
        let cases = [
            ("x = 1\n[Version]\n", 1, "before the first"),
            ("; c\n[Version\nSignature=$Windows NT$\n", 2, "closing ']'"),
            ("[Version]\nSignature=\"$Windows NT$\n", 2, "not closed"),
            ("[Version]\nA = \"x ; y\n", 2, "not closed"),
            ("[Version]\n\n= 3\n", 3, "no key"),
            ("[ ]\n", 1, "no name"),
            ("[A]\r\nk = 1\r\n[B\r\n= 2\r\n", 3, "closing ']'"),
        ];
        for (text, line, what) in cases {
            let e = Inf::parse_strict(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        }
        assert_eq!(InfError::new(0, "no [Version]").to_string(), "no [Version]");
    }
}
