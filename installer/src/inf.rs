//! A reader for the parts of an INF file the installer relies on (docs/installer.md §2): sections,
//! `key = value, value` lines, `%string%` substitution. Windows' own parser (SetupAPI) does the
//! real install; this one exists so that a corrupt or foreign INF is refused with a line number
//! before anything on the machine changes, and so that staged copies (`oem*.inf`) can be
//! recognised as rvblk's.

use std::collections::HashMap;
use std::fmt;

/// One non-empty line of a section: `key = v1, v2` or just `v1, v2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub key: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Inf {
    /// Section names lower-cased (INF section names are case-insensitive), in file order.
    sections: Vec<(String, Vec<Line>)>,
    strings: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfError {
    pub line: usize,
    pub message: String,
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

fn err(line: usize, message: impl Into<String>) -> InfError {
    InfError {
        line,
        message: message.into(),
    }
}

/// INF files come as UTF-16LE (with a BOM), UTF-8 or an ANSI code page; the names this program
/// looks at are ASCII, so ANSI bytes are read as Latin-1.
pub fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Splits one line into its fields: commas separate values, `;` starts a comment, and double
/// quotes protect both (a doubled quote inside quotes is a literal quote).
fn fields(text: &str, number: usize) -> Result<(Option<String>, Vec<String>), InfError> {
    let mut key = None;
    let mut values = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ';' if !quoted => break,
            ',' if !quoted => values.push(std::mem::take(&mut cur).trim().to_owned()),
            '=' if !quoted && key.is_none() && values.is_empty() => {
                key = Some(std::mem::take(&mut cur).trim().to_owned());
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err(err(number, "a quoted string is not closed"));
    }
    let last = cur.trim().to_owned();
    if !last.is_empty() || !values.is_empty() || key.is_some() {
        values.push(last);
    }
    if key.as_deref() == Some("") {
        return Err(err(number, "a line starts with '=' (no key)"));
    }
    Ok((key, values))
}

impl Inf {
    pub fn parse(text: &str) -> Result<Inf, InfError> {
        let mut inf = Inf::default();
        let mut current: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(end) = rest.find(']') else {
                    return Err(err(number, "a section header has no closing ']'"));
                };
                let name = rest[..end].trim().to_ascii_lowercase();
                if name.is_empty() {
                    return Err(err(number, "a section header has no name"));
                }
                current = Some(match inf.sections.iter().position(|(n, _)| *n == name) {
                    Some(p) => p,
                    None => {
                        inf.sections.push((name, Vec::new()));
                        inf.sections.len() - 1
                    }
                });
                continue;
            }
            let Some(section) = current else {
                return Err(err(number, "text before the first [section]"));
            };
            let (key, values) = fields(line, number)?;
            if key.is_none() && values.iter().all(String::is_empty) {
                continue;
            }
            inf.sections[section].1.push(Line {
                number,
                key,
                values,
            });
        }
        let strings: HashMap<String, String> = inf
            .section("Strings")
            .unwrap_or(&[])
            .iter()
            .filter_map(|l| {
                Some((
                    l.key.as_ref()?.to_ascii_lowercase(),
                    l.values.first()?.clone(),
                ))
            })
            .collect();
        inf.strings = strings;
        let signature = inf
            .value("Version", "Signature")
            .ok_or_else(|| err(0, "no [Version] section with a Signature"))?;
        let sig = signature.to_ascii_lowercase();
        if sig != "$windows nt$" && sig != "$chicago$" {
            return Err(err(0, format!("unknown INF signature {signature:?}")));
        }
        Ok(inf)
    }

    pub fn section(&self, name: &str) -> Option<&[Line]> {
        let name = name.to_ascii_lowercase();
        self.sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| l.as_slice())
    }

    /// Replaces `%name%` with its [Strings] entry (`%%` is a literal percent sign).
    pub fn expand(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            match after.find('%') {
                Some(0) => {
                    out.push('%');
                    rest = &after[1..];
                }
                Some(end) => {
                    let name = &after[..end];
                    match self.strings.get(&name.to_ascii_lowercase()) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push('%');
                            out.push_str(name);
                            out.push('%');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The first value of `key` in `section`, expanded.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.lines_with_key(section, key)
            .next()
            .and_then(|l| l.values.first())
            .map(|v| self.expand(v))
    }

    pub fn lines_with_key<'a>(
        &'a self,
        section: &str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Line> + 'a {
        self.section(section)
            .unwrap_or(&[])
            .iter()
            .filter(move |l| {
                l.key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_values_and_strings() {
        let inf = Inf::parse(
            "; c\n[Version]\nSignature = \"$WINDOWS NT$\"\nProvider=%P%\n[m]\n%D% = inst, ROOT\\X ; c\n[Strings]\nP = \"a, \"\"b\"\"\"\nD=d\n",
        )
        .unwrap();
        assert_eq!(inf.value("version", "PROVIDER").unwrap(), "a, \"b\"");
        let m = inf.section("M").unwrap();
        assert_eq!(m[0].key.as_deref(), Some("%D%"));
        assert_eq!(m[0].values, ["inst", "ROOT\\X"]);
        assert_eq!(m[0].number, 6);
        assert_eq!(inf.expand("%d%-%%-%nope%"), "d-%-%nope%");
    }

    #[test]
    fn corrupt_files_are_refused_with_a_line() {
        let cases = [
            ("x = 1\n[Version]\n", 1, "before the first"),
            ("[Version\nSignature=$Windows NT$\n", 1, "closing"),
            ("[Version]\nSignature=\"$Windows NT$\n", 2, "not closed"),
            ("[Version]\n= 3\n", 2, "no key"),
            ("[Version]\nSignature=$Win95$\n", 0, "signature"),
            ("[Strings]\n", 0, "[Version]"),
        ];
        for (text, line, what) in cases {
            let e = Inf::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn encodings() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("[V]\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16), "[V]\r\n");
        assert_eq!(decode(b"\xEF\xBB\xBFa"), "a");
        assert_eq!(decode(b"caf\xE9"), "caf\u{e9}");
    }
}
