//! Reading a cached NNEF model (a tar of `graph.nnef` and `.dat` tensors) quickly: tract's
//! parser takes about 0.4 µs a byte (its expression grammar backtracks), a good part of
//! loading a face model. The graph's body is one assignment a line, and each line is read by
//! [`assignment`], a direct reader of the plain forms tract writes (invocations, identifiers,
//! literals, arrays, tuples), which hands any other line to tract's parser.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use tract_nnef::ast::parse::{parse_assignments, parse_document};
use tract_nnef::ast::{
    Argument, Assignment, Document, Identifier, Invocation, LValue, Literal, ProtoModel, RValue,
    TypeName,
};
use tract_nnef::framework::Nnef;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::format_err;

/// The model in `tar` (as tract's NNEF writer makes it), read by `nnef`. A tar with anything
/// but the graph and `.dat` tensors (quantisation, nested models) is an error: the caller then
/// reads it the standard way.
pub(super) fn model_from_tar(nnef: &Nnef, tar: &[u8]) -> TractResult<TypedModel> {
    let mut graph = None;
    let mut tensors = HashMap::new();
    for entry in tar::Archive::new(std::io::Cursor::new(tar)).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
        if path.as_os_str() == tract_nnef::resource::GRAPH_NNEF_FILENAME {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            graph = Some(text);
        } else if path.extension().is_some_and(|e| e == "dat") {
            let id = tract_nnef::resource::resource_path_to_id(&path)?;
            let tensor = tract_nnef::tensors::read_tensor(&mut entry)?;
            tensors.insert(Identifier::from(&*id), Arc::new(tensor));
        } else {
            return Err(format_err!("{}: not a graph or a tensor", path.display()));
        }
    }
    let graph = graph.ok_or_else(|| format_err!("the model has no graph.nnef"))?;
    let doc = parse_graph(&graph)?;
    let proto = ProtoModel {
        doc,
        tensors,
        quantization: None,
        resources: HashMap::new(),
    };
    proto.validate()?;
    nnef.model_for_proto_model(&proto)
}

/// [`parse_document`] of an NNEF document whose graph body holds one assignment a line, each
/// line read by [`assignment`] (or tract's parser, for a line that is not plain); any other
/// layout is parsed whole by tract.
pub(super) fn parse_graph(text: &str) -> TractResult<Document> {
    let Some((head, body)) = split_body(text) else {
        return parse_document(text);
    };
    // The header, with the graph's body left empty.
    let mut doc = parse_document(&format!("{head}}}\n"))?;
    let mut assignments = Vec::with_capacity(body.len());
    for line in body {
        match assignment(line) {
            Some(a) => assignments.push(a),
            None => assignments.extend(parse_assignments(line)?),
        }
    }
    doc.graph_def.body = assignments;
    Ok(doc)
}

/// The document up to and including the graph's opening line, and the body's lines, when
/// the graph is laid out one assignment a line and closed by a line `}` that ends the text.
pub(super) fn split_body(text: &str) -> Option<(&str, Vec<&str>)> {
    let open = text.find("\ngraph ")? + 1;
    let open_end = open + text[open..].find('\n')? + 1;
    if !text[open..open_end].trim_end().ends_with('{') {
        return None;
    }
    let rest = text[open_end..].trim_end();
    let body = rest.strip_suffix('}')?;
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // A line that does not end an assignment (a multi-line one, a comment) or that holds
    // a brace could mean the graph is not one assignment a line: parse it whole.
    let simple = lines
        .iter()
        .all(|l| l.ends_with(';') && !l.contains(['{', '}', '#']));
    simple.then(|| (&text[..open_end], lines))
}

/// One line's assignment as tract's parser reads it, when the line holds only the plain forms
/// tract writes: an identifier (or a tuple or array of them) assigned an invocation,
/// identifier, numeric, string or logical literal, array or tuple of those. `None` for
/// anything else (operators, subscripts, comprehensions, conditionals, comments, escaped
/// identifiers, or a form whose reading by tract's grammar is not plain): the caller then
/// parses the line with tract's parser.
pub(super) fn assignment(line: &str) -> Option<Assignment> {
    let mut c = Cursor {
        s: line.as_bytes(),
        text: line,
        i: 0,
    };
    let left = c.lvalue_list()?;
    c.eat(b'=')?;
    if c.peek() == Some(b'=') {
        return None;
    }
    let right = c.rvalue()?;
    c.eat(b';')?;
    c.ws();
    (c.i == c.s.len()).then_some(Assignment { left, right })
}

/// A position in one line of NNEF text.
struct Cursor<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// The next byte after white space.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// Consume `b` (after white space), or fail.
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, as tract's direct identifier.
    fn word(&mut self) -> Option<&str> {
        self.ws();
        let start = self.i;
        let first = *self.s.get(start)?;
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        self.i += 1;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.i += 1;
        }
        Some(&self.text[start..self.i])
    }

    /// Items separated by commas up to `close` (none allowed, no trailing comma).
    fn list<T>(&mut self, close: u8, item: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        if self.peek()? == close {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            match self.peek()? {
                b',' => self.i += 1,
                b if b == close => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn lvalue_list(&mut self) -> Option<LValue> {
        let mut items = vec![self.lvalue()?];
        while self.peek()? == b',' {
            self.i += 1;
            items.push(self.lvalue()?);
        }
        Some(if items.len() == 1 {
            items.remove(0)
        } else {
            LValue::Tuple(items)
        })
    }

    fn lvalue(&mut self) -> Option<LValue> {
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.list(b']', Self::lvalue).map(LValue::Array)
            }
            b'(' => {
                self.i += 1;
                self.list(b')', Self::lvalue).map(LValue::Tuple)
            }
            _ => Some(LValue::Identifier(self.word()?.into())),
        }
    }

    /// A plain right-hand side, which must be followed by what ends one (`,`, `)`, `]` or
    /// `;`): anything else would make tract read an operator, subscript or conditional.
    fn rvalue(&mut self) -> Option<RValue> {
        let value = match self.peek()? {
            b'[' => {
                self.i += 1;
                // `[for …` may be a comprehension.
                let rest = &self.text[self.i..];
                if rest.trim_start().starts_with("for") {
                    return None;
                }
                RValue::Array(self.list(b']', Self::rvalue)?)
            }
            b'(' => {
                self.i += 1;
                let mut items = self.list(b')', Self::rvalue)?;
                if items.len() == 1 {
                    items.remove(0)
                } else {
                    RValue::Tuple(items)
                }
            }
            b'"' | b'\'' => RValue::Literal(Literal::String(self.string()?)),
            b'-' | b'0'..=b'9' => RValue::Literal(Literal::Numeric(self.number()?)),
            _ => self.word_rvalue()?,
        };
        matches!(self.peek()?, b',' | b')' | b']' | b';').then_some(value)
    }

    /// An invocation, identifier or word literal.
    fn word_rvalue(&mut self) -> Option<RValue> {
        let word = self.word()?.to_string();
        match self.peek() {
            Some(b'(' | b'<') => return self.invocation(word),
            // `i"…"` is an escaped identifier.
            Some(b'"' | b'\'') => return None,
            _ => {}
        }
        // Tract reads a literal before an identifier, by prefix: `true`, `false`, `inf`.
        Some(match word.as_str() {
            "true" => RValue::Literal(Literal::Logical(true)),
            "false" => RValue::Literal(Literal::Logical(false)),
            "inf" => RValue::Literal(Literal::Numeric(word)),
            w if ["true", "false", "inf"].iter().any(|p| w.starts_with(p)) => return None,
            _ => RValue::Identifier(Identifier(word)),
        })
    }

    fn invocation(&mut self, id: String) -> Option<RValue> {
        let generic_type_name = if self.peek()? == b'<' {
            self.i += 1;
            let name = match self.peek()? {
                b'?' => {
                    self.i += 1;
                    TypeName::Any
                }
                _ => match self.word()? {
                    "integer" => TypeName::Integer,
                    "scalar" => TypeName::Scalar,
                    "logical" => TypeName::Logical,
                    "string" => TypeName::String,
                    _ => return None,
                },
            };
            self.eat(b'>')?;
            Some(name)
        } else {
            None
        };
        self.eat(b'(')?;
        let arguments = self.list(b')', Self::argument)?;
        Some(RValue::Invocation(Invocation {
            id: Identifier(id),
            generic_type_name,
            arguments,
        }))
    }

    /// `name = rvalue` or `rvalue`.
    fn argument(&mut self) -> Option<Argument> {
        let start = self.i;
        if let Some(name) = self.word().map(str::to_string)
            && self.peek() == Some(b'=')
        {
            self.i += 1;
            if self.peek()? == b'=' {
                return None;
            }
            let rvalue = self.rvalue()?;
            return Some(Argument {
                id: Some(Identifier(name)),
                rvalue,
            });
        }
        self.i = start;
        Some(Argument {
            id: None,
            rvalue: self.rvalue()?,
        })
    }

    /// `-?(digits|inf)(.digits*)?([eE][+-]?digits)?`, as tract's numeric literal.
    fn number(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        let digits = |c: &mut Self| {
            let from = c.i;
            while c.s.get(c.i).is_some_and(u8::is_ascii_digit) {
                c.i += 1;
            }
            c.i > from
        };
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if !digits(self) {
            if !self.text[self.i..].starts_with("inf") {
                return None;
            }
            self.i += 3;
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            digits(self);
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            let mark = self.i;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                self.i = mark;
            }
        }
        Some(self.text[start..self.i].to_string())
    }

    /// A quoted string; `\\x` stands for `x`. A quote of the other kind inside is refused,
    /// as tract's grammar refuses it.
    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        let mut chars = self.text[self.i..].char_indices();
        while let Some((k, ch)) = chars.next() {
            match ch {
                '\\' => out.push(chars.next()?.1),
                '"' | '\'' if ch as u32 == u32::from(quote) => {
                    self.i += k + 1;
                    return Some(out);
                }
                '"' | '\'' => return None,
                _ => out.push(ch),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "version 1.0;\n\nextension tract_registry tract_core;\n\ngraph network(input) -> (out) {\n  input = external(shape = [1, 3]);\n  c = [[1.0, -2.5e-3]];\n  s = \"a;b\";\n  out = add(input, c);\n}\n";

    fn long_doc(n: usize) -> String {
        let mut body = String::from("  x0 = external(shape = [1, 4]);\n");
        for i in 1..n {
            body.push_str(&format!(
                "  x{i} = add(x{}, [[{}.5, -1e-3, 2, 3]]);\n",
                i - 1,
                i
            ));
        }
        format!(
            "version 1.0;\n\nextension tract_registry tract_core;\n\ngraph network(x0) -> (x{}) {{\n{body}}}\n",
            n - 1
        )
    }

    #[test]
    fn a_long_graph_parses_as_the_whole_document_does() {
        for n in [1, 2, 63, 64, 65, 200, 1001] {
            let text = long_doc(n);
            assert_eq!(
                parse_graph(&text).unwrap(),
                parse_document(&text).unwrap(),
                "{n} lines"
            );
        }
        assert_eq!(parse_graph(DOC).unwrap(), parse_document(DOC).unwrap());
    }

    #[test]
    fn other_layouts_are_parsed_whole() {
        let multi = long_doc(100).replace("add(x5,", "add(\n x5,");
        assert!(split_body(&multi).is_none());
        assert_eq!(
            parse_graph(&multi).unwrap(),
            parse_document(&multi).unwrap()
        );
        let commented = long_doc(100).replace("  x7 =", "  # note\n  x7 =");
        assert!(split_body(&commented).is_none());
        assert!(parse_graph("not nnef").is_err());
        // An empty body is read as tract reads it (no line to index).
        let empty = "version 1.0;\n\ngraph network() -> () {\n}\n";
        assert_eq!(split_body(empty).map(|b| b.1.len()), Some(0));
        assert_eq!(parse_graph(empty).unwrap(), parse_document(empty).unwrap());
    }

    #[test]
    fn a_broken_line_is_an_error_not_a_shorter_graph() {
        let text = long_doc(300).replace("x150 = add(x149,", "x150 = add(x149 x,");
        assert!(parse_graph(&text).is_err());
    }

    /// `assignment` and tract's parser on one line: equal when the first reads it.
    fn same_as_tract(line: &str) -> Option<Assignment> {
        let ours = assignment(line)?;
        let tract = parse_assignments(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(vec![ours.clone()], tract, "{line}");
        Some(ours)
    }

    #[test]
    fn plain_lines_read_as_tract_reads_them() {
        for line in [
            "input_1 = external(shape = [1, 192, 192, 3]);",
            "w = variable<scalar>(label = \"conv2d_1.bias\", shape = [16]);",
            "c = conv(x, w, b, dilation = [1, 1], stride = [2, 2], border = \"constant\", groups = 1, padding = [(0, 1), (0, 1)]);",
            "z = [[[[0.0]]]];",
            "n = [-1, -2.5e-3, 3E+7, 0., 12, inf, -inf, 1e5];",
            "t = (1, 'a', true, false, ());",
            "one = (x);",
            "e = [];",
            "s = \"a\\\"b\\\\c\\n\";",
            "  spaced   =  f <  ?  > ( a ,b= [ 1 ] )  ;  ",
            "(a, b) = split(x, axis = 1);",
            "a, b = split(x);",
            "[a, b] = split(x);",
            "k = tract_core_cast(7, to = \"i64\");",
            "p = [(\"onnx.ir_version\", tract_core_cast(7, to = \"i64\")), (\"v\", \"1.17.0 None\")];",
            "g = f<integer>() ;",
            "h = info(x);",
        ] {
            assert!(
                same_as_tract(line).is_some(),
                "{line} was not read directly"
            );
        }
    }

    #[test]
    fn other_forms_are_left_to_tract() {
        for line in [
            "x = a + b;",
            "x = a[0];",
            "x = a[1:];",
            "x = [for i in y yield i];",
            "x = a if c else b;",
            "x = -a;",
            "x = !a;",
            "x = +1;",
            "x = i\"a b\";",
            "x = info;",
            "x = true_x;",
            "x = falsey;",
            "x = [format, 1];",
            "x = f(a == b);",
            "x = f(a, );",
            "x = \"it's\";",
            "x = 1e;",
            "x = .5;",
            "x = f<tensor>(a);",
            "x = a # note",
            "x = a",
            "x == a;",
            "",
        ] {
            assert!(assignment(line).is_none(), "{line} was read directly");
        }
        // In a graph, such a line is parsed by tract, in its place.
        let mixed =
            long_doc(100).replace("x50 = add(x49, [[50.5, -1e-3, 2, 3]]);", "x50 = x49 + x49;");
        assert_ne!(mixed, long_doc(100));
        assert_eq!(
            parse_graph(&mixed).unwrap(),
            parse_document(&mixed).unwrap()
        );
    }

    /// A plain right-hand side as tract writes one, with arbitrary spacing.
    fn plain_rvalue() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let sp = || prop::sample::select(vec!["", " ", "  ", "\t"]);
        let leaf = prop_oneof![
            prop::sample::select(vec!["a", "_x1", "input_1", "e", "in_x", "scalar", "tru"])
                .prop_map(String::from),
            prop::sample::select(vec![
                "1", "-2.5e-3", "0.", "3E+7", "inf", "-inf", "12.25", "1e-9", "-0"
            ])
            .prop_map(String::from),
            prop::sample::select(vec!["'a'", "\"b c\"", "\"q\\\"q\"", "''", "true", "false"])
                .prop_map(String::from),
        ];
        leaf.prop_recursive(4, 40, 5, move |inner| {
            let items = prop::collection::vec((inner, sp(), sp()), 0..5).prop_map(|v| {
                v.into_iter()
                    .map(|(x, a, b)| format!("{a}{x}{b}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            prop_oneof![
                items.clone().prop_map(|s| format!("[{s}]")),
                items.clone().prop_map(|s| format!("({s})")),
                (
                    prop::sample::select(vec!["f", "conv", "variable<scalar>", "g < ? >"]),
                    items,
                    prop::option::of(prop::sample::select(vec!["shape", "axis"])),
                    sp(),
                )
                    .prop_map(|(f, args, named, s)| match named {
                        Some(n) if !args.is_empty() => format!("{f}{s}({n}{s}={s}{args})"),
                        _ => format!("{f}{s}({args})"),
                    }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn generated_plain_lines_read_as_tract_reads_them(rv in plain_rvalue(), sp in "[ \t]{0,2}") {
            let line = format!("{sp}out{sp}={sp}{rv}{sp};{sp}");
            proptest::prop_assert!(same_as_tract(&line).is_some(), "{} was not read directly", line);
        }

        #[test]
        fn any_line_is_read_as_tract_reads_it_or_left_to_it(
            line in "[a-z_0-9 =(),\\[\\]<>?;'\"\\\\.+-]{0,40}|x = [a-z_0-9 (),\\[\\]'\".+-]{0,30};"
        ) {
            if let Some(ours) = assignment(&line) {
                let theirs = parse_assignments(&line).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(Ok(vec![ours]), theirs, "{}", line);
            }
        }
    }
}
