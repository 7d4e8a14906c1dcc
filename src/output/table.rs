//! Aligned text columns, the way kubectl prints them.
//!
//! kubectl writes every table and every `describe` page through Go's
//! `text/tabwriter`: cells end with a tab, and a column is aligned across
//! the run of consecutive lines that have a cell in it. [`tabwrite`] is
//! that algorithm; [`Table`] is the `get` table on top of it.

/// Padding after a cell in `get` tables (kubectl: 3, min width 6).
pub const TABLE_PADDING: usize = 3;
const TABLE_MIN_WIDTH: usize = 6;
/// Padding in `describe` output (kubectl: 2, min width 0).
pub const DESCRIBE_PADDING: usize = 2;

/// A table with a header row, printed as kubectl prints `get` output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Header and rows, aligned, one line each.
    pub fn render(&self) -> String {
        self.render_rows(true)
    }

    /// The rows only, aligned as if the header were there (what `get -w`
    /// prints for a changed object: the header was printed already).
    pub fn render_without_header(&self) -> String {
        self.render_rows(false)
    }

    fn render_rows(&self, header: bool) -> String {
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        let out = tabwrite(&text, TABLE_MIN_WIDTH, TABLE_PADDING);
        if header {
            out
        } else {
            out.split_inclusive('\n').skip(1).collect()
        }
    }
}

/// Go's `tabwriter` with space padding: every tab-terminated cell is padded
/// to the width of its column block (its widest cell plus `padding`, at
/// least `min_width`); the last cell of a line is not padded, and trailing
/// blanks are trimmed.
pub fn tabwrite(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<Vec<usize>> = lines
        .iter()
        .map(|cells| vec![0; cells.len().saturating_sub(1)])
        .collect();
    align_column(&lines, &mut widths, 0, 0, lines.len(), min_width, padding);

    let mut out = String::with_capacity(text.len() * 2);
    for (cells, widths) in lines.iter().zip(&widths) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if let Some(&w) = widths.get(i) {
                let len = display_width(cell);
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(len)));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Sets the width of column `col` for each run of consecutive lines in
/// `start..end` that have a terminated cell there, then aligns the next
/// column within that run.
fn align_column(
    lines: &[Vec<&str>],
    widths: &mut [Vec<usize>],
    col: usize,
    start: usize,
    end: usize,
    min_width: usize,
    padding: usize,
) {
    let mut i = start;
    while i < end {
        if lines[i].len() <= col + 1 {
            i += 1;
            continue;
        }
        let run_start = i;
        let mut width = min_width;
        while i < end && lines[i].len() > col + 1 {
            width = width.max(display_width(lines[i][col]) + padding);
            i += 1;
        }
        for w in &mut widths[run_start..i] {
            w[col] = width;
        }
        align_column(lines, widths, col + 1, run_start, i, min_width, padding);
    }
}

fn display_width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn get_tables_align_like_kubectl() {
        let mut t = Table::new(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
        t.push(row(&["web-x1y2z", "1/1", "Running", "0", "5m"]));
        t.push(row(&[
            "db-0",
            "0/2",
            "CrashLoopBackOff",
            "3 (5m ago)",
            "2d4h",
        ]));
        assert_eq!(
            t.render(),
            "NAME        READY   STATUS             RESTARTS     AGE\n\
             web-x1y2z   1/1     Running            0            5m\n\
             db-0        0/2     CrashLoopBackOff   3 (5m ago)   2d4h\n"
        );
        assert_eq!(
            t.render_without_header(),
            "web-x1y2z   1/1     Running            0            5m\n\
             db-0        0/2     CrashLoopBackOff   3 (5m ago)   2d4h\n"
        );
    }

    #[test]
    fn empty_last_cells_leave_no_trailing_blanks() {
        let mut t = Table::new(["NAME", "OWNER"]);
        t.push(row(&["a", ""]));
        assert_eq!(t.render(), "NAME   OWNER\na\n");
    }

    #[test]
    fn describe_blocks_align_per_run_of_lines() {
        let text = "Name:\tweb\nLabels:\tapp=web\n\ttier=fe\nProcesses:\n  server:\n    PID:\t12\n    Restart Count:\t0\n";
        assert_eq!(
            tabwrite(text, 0, 2),
            "Name:    web\n\
             Labels:  app=web\n\
             \x20        tier=fe\n\
             Processes:\n\
             \x20 server:\n\
             \x20   PID:            12\n\
             \x20   Restart Count:  0\n"
        );
    }

    #[test]
    fn multibyte_cells_count_characters() {
        let out = tabwrite("é\tx\nab\ty\n", 0, 1);
        assert_eq!(out, "é  x\nab y\n");
    }
}
