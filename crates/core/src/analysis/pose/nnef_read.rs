//! Reading a cached NNEF model (a tar of `graph.nnef` and `.dat` tensors) with its graph text
//! parsed on every core: tract's parser takes about 0.4 µs a byte, a good part of loading a
//! face model, and the graph's body is one assignment a line, so its lines parse apart.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use tract_nnef::ast::parse::{parse_assignments, parse_document};
use tract_nnef::ast::{Assignment, Document, Identifier, ProtoModel};
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
    let doc = parse_parallel(&graph)?;
    let proto = ProtoModel {
        doc,
        tensors,
        quantization: None,
        resources: HashMap::new(),
    };
    proto.validate()?;
    nnef.model_for_proto_model(&proto)
}

/// [`parse_document`] of an NNEF document whose graph body holds one assignment a line, its
/// lines parsed in chunks on every core; any other layout is parsed whole.
pub(super) fn parse_parallel(text: &str) -> TractResult<Document> {
    use rayon::prelude::*;
    let Some((head, body)) = split_body(text) else {
        return parse_document(text);
    };
    if body.len() < 64 {
        return parse_document(text);
    }
    // The header with an empty-bodied graph would not parse (a body needs an assignment):
    // it is parsed with the first line, whose assignment the chunks give again.
    let mut doc = parse_document(&format!("{head}{}\n}}\n", body[0]))?;
    let chunk = body.len().div_ceil(4 * rayon::current_num_threads().max(1));
    let parts: Vec<Vec<Assignment>> = body
        .par_chunks(chunk)
        .map(|lines| parse_assignments(&lines.join("\n")))
        .collect::<TractResult<_>>()?;
    doc.graph_def.body = parts.into_iter().flatten().collect();
    Ok(doc)
}

/// The document up to and including the graph's opening line, and the body's lines, when
/// the graph is laid out one assignment a line and closed by a line `}` that ends the text.
fn split_body(text: &str) -> Option<(&str, Vec<&str>)> {
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
                parse_parallel(&text).unwrap(),
                parse_document(&text).unwrap(),
                "{n} lines"
            );
        }
        assert_eq!(parse_parallel(DOC).unwrap(), parse_document(DOC).unwrap());
    }

    #[test]
    fn other_layouts_are_parsed_whole() {
        let multi = long_doc(100).replace("add(x5,", "add(\n x5,");
        assert!(split_body(&multi).is_none());
        assert_eq!(
            parse_parallel(&multi).unwrap(),
            parse_document(&multi).unwrap()
        );
        let commented = long_doc(100).replace("  x7 =", "  # note\n  x7 =");
        assert!(split_body(&commented).is_none());
        assert!(parse_parallel("not nnef").is_err());
    }

    #[test]
    fn a_broken_line_is_an_error_not_a_shorter_graph() {
        let text = long_doc(300).replace("x150 = add(x149,", "x150 = add(x149 x,");
        assert!(parse_parallel(&text).is_err());
    }
}
