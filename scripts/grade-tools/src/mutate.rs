//! Mutants of a server.rs for the grade's mutation score
//! (scripts/mutation-score): small changes on the syntax tree of every
//! function body, each a textual replacement of one span of the source.
//!
//! Operators:
//! - `comparison`: `<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`;
//! - `logic`: `&&` <-> `||`;
//! - `boolean`: `true` <-> `false`;
//! - `negation`: `!x` -> `x`;
//! - `condition`: `if c` -> `if true`, `if false`;
//! - `off by one`: `x + 1` -> `x`, `x - 1` -> `x`, `x + 1` -> `x + 2`,
//!   `.saturating_sub(1)` / `.saturating_add(1)` / `.checked_...(1)` removed;
//! - `statement`: a call, method call or assignment statement removed;
//! - `return value`: the body of a function returning `bool` replaced by
//!   `true` or by `false`.
//!
//! A mutant's id names where it is and what it does, so that it stays the
//! same when unrelated code moves: `MODULE::FUNCTION: OPERATOR: FROM -> TO
//! #K`, K counting equal changes in one function. Functions under
//! `#[cfg(test)]` or `#[test]` are left alone, and with a module filter
//! only functions inside the named top-level modules are mutated.

use std::collections::HashMap;

use proc_macro2::{LineColumn, Span};
use syn::spanned::Spanned;
use syn::visit::Visit;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutant {
    pub id: String,
    pub module: String,
    pub function: String,
    pub operator: &'static str,
    pub line: usize,
    pub start: usize, // byte offsets into the source
    pub end: usize,
    pub from: String,
    pub to: String,
}

impl Mutant {
    /// The source with this mutant applied.
    pub fn apply(&self, source: &str) -> String {
        let mut out = String::with_capacity(source.len() + self.to.len());
        out.push_str(&source[..self.start]);
        out.push_str(&self.to);
        out.push_str(&source[self.end..]);
        out
    }
}

/// Every mutant of `source`; with `modules`, only inside those top-level
/// modules (e.g. ["protocol", "node", "fibers"]).
pub fn mutants(source: &str, modules: Option<&[String]>) -> Result<Vec<Mutant>, String> {
    let file = syn::parse_file(source).map_err(|e| {
        let at = e.span().start();
        format!("line {}:{}: {}", at.line, at.column + 1, e)
    })?;
    let mut collector = Collector {
        source,
        line_starts: line_starts(source),
        modules,
        module_path: Vec::new(),
        self_type: None,
        function: None,
        out: Vec::new(),
    };
    collector.visit_file(&file);
    // Ids: equal (function, operator, from, to) numbered in source order.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut mutants = collector.out;
    mutants.sort_by_key(|m| (m.start, m.end, m.to.clone()));
    mutants.dedup_by(|a, b| a.start == b.start && a.end == b.end && a.to == b.to);
    for m in &mut mutants {
        let to = if m.to.trim().is_empty() { "(nothing)" } else { m.to.trim() };
        let base = format!("{}::{}: {}: {} -> {}", m.module, m.function, m.operator, m.from, to);
        let k = seen.entry(base.clone()).or_insert(0);
        *k += 1;
        m.id = format!("{base} #{k}");
    }
    Ok(mutants)
}

fn line_starts(source: &str) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in source.bytes().enumerate() {
        if b == b'\n' {
            starts.push(i + 1);
        }
    }
    starts
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let path = a.path();
        if path.is_ident("test") {
            return true;
        }
        if path.is_ident("cfg") {
            let mut test = false;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("test") {
                    test = true;
                }
                Ok(())
            });
            return test;
        }
        false
    })
}

struct Collector<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
    modules: Option<&'a [String]>,
    module_path: Vec<String>,
    self_type: Option<String>,
    function: Option<String>,
    out: Vec<Mutant>,
}

impl Collector<'_> {
    fn offset(&self, at: LineColumn) -> usize {
        let line_start = self.line_starts[at.line - 1];
        let line = &self.source[line_start..];
        // LineColumn's column counts characters.
        line.char_indices().nth(at.column).map_or(line_start + line.len(), |(i, _)| line_start + i)
    }

    fn in_scope(&self) -> bool {
        if self.function.is_none() {
            return false;
        }
        match self.modules {
            None => true,
            Some(allowed) => self.module_path.first().is_some_and(|m| allowed.iter().any(|a| a == m)),
        }
    }

    fn push(&mut self, operator: &'static str, span: Span, to: &str) {
        self.push_range(operator, span.start(), span.end(), to);
    }

    fn push_range(&mut self, operator: &'static str, start: LineColumn, end: LineColumn, to: &str) {
        if !self.in_scope() {
            return;
        }
        let (s, e) = (self.offset(start), self.offset(end));
        if s >= e || e > self.source.len() {
            return;
        }
        let from = self.source[s..e].to_string();
        if from == to {
            return;
        }
        let function = match &self.self_type {
            Some(t) => format!("{t}::{}", self.function.as_deref().unwrap_or("?")),
            None => self.function.clone().unwrap_or_default(),
        };
        let short = |text: &str| {
            let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if one_line.chars().count() > 60 {
                format!("{}...", one_line.chars().take(57).collect::<String>())
            } else {
                one_line
            }
        };
        self.out.push(Mutant {
            id: String::new(),
            module: if self.module_path.is_empty() { "crate".into() } else { self.module_path.join("::") },
            function,
            operator,
            line: start.line,
            start: s,
            end: e,
            from: short(&from),
            to: to.to_string(),
        });
    }

    fn is_literal_one(expr: &syn::Expr) -> bool {
        matches!(expr, syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) if i.base10_digits() == "1")
    }

    fn returns_bool(sig: &syn::Signature) -> bool {
        matches!(&sig.output, syn::ReturnType::Type(_, ty) if matches!(&**ty, syn::Type::Path(p) if p.path.is_ident("bool")))
    }

    fn body_mutants(&mut self, sig: &syn::Signature, block: &syn::Block) {
        if Self::returns_bool(sig) && !block.stmts.is_empty() {
            // The braces stay: the body's inside becomes a constant.
            let (open, close) = (block.brace_token.span.open().end(), block.brace_token.span.close().start());
            self.push_range("return value", open, close, " true ");
            self.push_range("return value", open, close, " false ");
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, node: &'ast syn::ItemMod) {
        if is_test_only(&node.attrs) {
            return;
        }
        self.module_path.push(node.ident.to_string());
        syn::visit::visit_item_mod(self, node);
        self.module_path.pop();
    }

    fn visit_item_impl(&mut self, node: &'ast syn::ItemImpl) {
        if is_test_only(&node.attrs) {
            return;
        }
        let previous = self.self_type.take();
        self.self_type = Some(match &*node.self_ty {
            syn::Type::Path(p) => p.path.segments.last().map_or("?".into(), |s| s.ident.to_string()),
            _ => "?".into(),
        });
        syn::visit::visit_item_impl(self, node);
        self.self_type = previous;
    }

    fn visit_item_fn(&mut self, node: &'ast syn::ItemFn) {
        if is_test_only(&node.attrs) {
            return;
        }
        let (previous_fn, previous_type) = (self.function.take(), self.self_type.take());
        self.function = Some(node.sig.ident.to_string());
        self.body_mutants(&node.sig, &node.block);
        syn::visit::visit_item_fn(self, node);
        self.function = previous_fn;
        self.self_type = previous_type;
    }

    fn visit_impl_item_fn(&mut self, node: &'ast syn::ImplItemFn) {
        if is_test_only(&node.attrs) {
            return;
        }
        let previous = self.function.take();
        self.function = Some(node.sig.ident.to_string());
        self.body_mutants(&node.sig, &node.block);
        syn::visit::visit_impl_item_fn(self, node);
        self.function = previous;
    }

    fn visit_trait_item_fn(&mut self, node: &'ast syn::TraitItemFn) {
        if is_test_only(&node.attrs) {
            return;
        }
        let previous = self.function.take();
        self.function = Some(node.sig.ident.to_string());
        syn::visit::visit_trait_item_fn(self, node);
        self.function = previous;
    }

    fn visit_expr_binary(&mut self, node: &'ast syn::ExprBinary) {
        use syn::BinOp::*;
        let span = node.op.span();
        let swap: &[(&'static str, &str)] = match node.op {
            Lt(_) => &[("comparison", "<=")],
            Le(_) => &[("comparison", "<")],
            Gt(_) => &[("comparison", ">=")],
            Ge(_) => &[("comparison", ">")],
            Eq(_) => &[("comparison", "!=")],
            Ne(_) => &[("comparison", "==")],
            And(_) => &[("logic", "||")],
            Or(_) => &[("logic", "&&")],
            _ => &[],
        };
        for (operator, to) in swap {
            self.push(operator, span, to);
        }
        if matches!(node.op, Add(_) | Sub(_)) && Self::is_literal_one(&node.right) {
            // `x + 1` -> `x` (the operator and the 1 go), and `x + 1` -> `x + 2`.
            self.push_range("off by one", node.op.span().start(), node.right.span().end(), "");
            if matches!(node.op, Add(_)) {
                self.push("off by one", node.right.span(), "2");
            }
        }
        syn::visit::visit_expr_binary(self, node);
    }

    fn visit_expr_method_call(&mut self, node: &'ast syn::ExprMethodCall) {
        let name = node.method.to_string();
        if matches!(name.as_str(), "saturating_sub" | "saturating_add" | "wrapping_sub" | "wrapping_add")
            && node.args.len() == 1
            && Self::is_literal_one(&node.args[0])
        {
            // `.saturating_sub(1)` removed: from the dot to the closing parenthesis.
            self.push_range("off by one", node.dot_token.span.start(), node.paren_token.span.close().end(), "");
        }
        syn::visit::visit_expr_method_call(self, node);
    }

    fn visit_expr_lit(&mut self, node: &'ast syn::ExprLit) {
        if let syn::Lit::Bool(b) = &node.lit {
            self.push("boolean", b.span, if b.value { "false" } else { "true" });
        }
        syn::visit::visit_expr_lit(self, node);
    }

    fn visit_expr_unary(&mut self, node: &'ast syn::ExprUnary) {
        if let syn::UnOp::Not(token) = node.op {
            self.push("negation", token.span, "");
        }
        syn::visit::visit_expr_unary(self, node);
    }

    fn visit_expr_if(&mut self, node: &'ast syn::ExprIf) {
        // Not `if let`: its pattern binds names the body uses.
        if !matches!(&*node.cond, syn::Expr::Let(_)) {
            let span = node.cond.span();
            self.push("condition", span, "true");
            self.push("condition", span, "false");
        }
        syn::visit::visit_expr_if(self, node);
    }

    fn visit_stmt(&mut self, node: &'ast syn::Stmt) {
        if let syn::Stmt::Expr(expr, Some(semi)) = node {
            if matches!(expr, syn::Expr::Call(_) | syn::Expr::MethodCall(_) | syn::Expr::Assign(_))
                || matches!(expr, syn::Expr::Binary(b) if matches!(b.op,
                    syn::BinOp::AddAssign(_) | syn::BinOp::SubAssign(_)))
            {
                self.push_range("statement", expr.span().start(), semi.span.end(), "");
            }
        }
        syn::visit::visit_stmt(self, node);
    }

    // Closures inside a function stay in its scope; items nested inside a
    // function body are visited with their own names.
}
