//! Text from people and files, made safe to keep and to show: characters that change how text
//! reads without being seen (zero-width, bidirectional overrides), and terminal control codes
//! that a name or a file name could carry into a listing.

/// Characters that change how text reads without being seen: zero-width and joiners,
/// bidirectional overrides and isolates, the byte-order mark, tags.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// `s` as it may be printed on a terminal: every control code (but line breaks when
/// `keep_newlines`, and tabs) and every invisible character shown as an escape (`\n`, `\x1b`,
/// `\u{202e}`), so no text can clear a screen, move the cursor, recolour a line, reorder what
/// follows it, or start a line of its own.
///
/// ```
/// use sameframe_core::text::terminal_safe;
/// assert_eq!(terminal_safe("x.jpg\nPASS  forged.jpg", false), "x.jpg\\nPASS  forged.jpg");
/// assert_eq!(terminal_safe("\u{1b}[2Jname", false), "\\x1b[2Jname");
/// assert_eq!(terminal_safe("line one\nline two", true), "line one\nline two");
/// ```
pub fn terminal_safe(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\t' => out.push('\t'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_and_invisible_character_is_shown_not_obeyed() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            if c == '\t' {
                continue;
            }
            let shown = terminal_safe(&format!("a{c}b"), false);
            assert!(
                shown.chars().all(|x| !x.is_control()),
                "{:?} passed through as {shown:?}",
                c as u32
            );
        }
        assert_eq!(terminal_safe("P-0042\u{202e}", false), "P-0042\\u{202e}");
        assert_eq!(terminal_safe("Zoë Ünal", false), "Zoë Ünal");
    }
}
