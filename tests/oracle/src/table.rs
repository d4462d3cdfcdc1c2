//! The one table of listed differences, read from `docs/scsi-oracle.md` (the rows after the
//! `<!-- oracle-table -->` marker). Columns: `| # | devices | CDB ids | field | QEMU | rvblk |
//! reason | clause |`. A row lists a difference when the device is among its devices (`*` for
//! all), the CDB id matches one of its comma-separated `*`-globs, the field one of its globs
//! and both rendered values match (`*` matches anything; use it only where the reason covers
//! every value). Values may be wrapped in backticks.

use crate::compare::Diff;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub number: String,
    pub devices: Vec<String>,
    pub ids: Vec<String>,
    pub fields: Vec<String>,
    pub qemu: String,
    pub rvblk: String,
    pub reason: String,
    pub clause: String,
}

pub const MARKER: &str = "<!-- oracle-table -->";

/// `*`-only glob match.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

fn cell(s: &str) -> String {
    s.trim().trim_matches('`').trim().to_string()
}

/// Parses the table after [`MARKER`] in `markdown`.
pub fn parse(markdown: &str) -> Result<Vec<Row>, String> {
    let start = markdown
        .find(MARKER)
        .ok_or_else(|| format!("no {MARKER} in the document"))?;
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in markdown[start..].lines().skip(1) {
        let t = line.trim();
        if !t.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        // Split on unescaped pipes: `\|` stays inside a cell.
        let tmp = t.replace("\\|", "\u{1}");
        let cells: Vec<String> = tmp
            .trim_matches('|')
            .split('|')
            .map(|c| cell(&c.replace('\u{1}', "|")))
            .collect();
        if cells.len() != 8 {
            return Err(format!("table row with {} cells: {t}", cells.len()));
        }
        if cells[0] == "#" || cells[0].starts_with("---") {
            continue;
        }
        let list = |s: &str| s.split(',').map(cell).collect::<Vec<_>>();
        rows.push(Row {
            number: cells[0].clone(),
            devices: list(&cells[1]),
            ids: list(&cells[2]),
            fields: list(&cells[3]),
            qemu: cells[4].clone(),
            rvblk: cells[5].clone(),
            reason: cells[6].clone(),
            clause: cells[7].clone(),
        });
    }
    for r in &rows {
        if r.reason.is_empty() || r.clause.is_empty() {
            return Err(format!(
                "row {}: a reason and a spec clause are required",
                r.number
            ));
        }
    }
    Ok(rows)
}

impl Row {
    pub fn matches(&self, device: &str, id: &str, d: &Diff) -> bool {
        let val = |p: &str, v: &str| p == "*" || p == v;
        (self.devices.iter().any(|x| x == "*" || x == device))
            && self.ids.iter().any(|g| glob(g, id))
            && self.fields.iter().any(|g| glob(g, &d.field))
            && val(&self.qemu, &d.qemu)
            && val(&self.rvblk, &d.rvblk)
    }
}

/// The first row listing `d`, if any.
pub fn find<'a>(rows: &'a [Row], device: &str, id: &str, d: &Diff) -> Option<&'a Row> {
    rows.iter().find(|r| r.matches(device, id, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("mode-sense*-pc3", "mode-sense6-3f-pc3"));
        assert!(glob("*", "x"));
        assert!(!glob("read10*", "read12-mid"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
    }

    #[test]
    fn parses_rows_and_matches() {
        let md = "text\n<!-- oracle-table -->\n\n| # | devices | CDB ids | field | QEMU | rvblk | reason | clause |\n|---|---|---|---|---|---|---|---|\n| 1 | cd, disk | vpd-b*, x | sense | `02 05/24/00` | * | why | SPC-4 §7.8 |\n\nafter\n| not | a | row |\n";
        let rows = parse(md).unwrap();
        assert_eq!(rows.len(), 1);
        let d = Diff {
            field: "sense".into(),
            qemu: "02 05/24/00".into(),
            rvblk: "02 05/20/00".into(),
        };
        assert!(rows[0].matches("disk", "vpd-b0", &d));
        assert!(!rows[0].matches("floppy", "vpd-b0", &d));
        let d2 = Diff {
            qemu: "02 05/20/00".into(),
            ..d
        };
        assert!(!rows[0].matches("disk", "vpd-b0", &d2));
        assert!(parse("<!-- oracle-table -->\n| 1 | a | b | c | d | e |  | g |\n").is_err());
    }
}
