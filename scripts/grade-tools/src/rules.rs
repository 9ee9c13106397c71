//! The handout's DO NOT rules, checked on a server.rs's syntax tree.
//!
//! - Rule 2, "share variables between Raft instances": `static` and
//!   `static mut` items (anywhere: in modules, functions, blocks),
//!   `thread_local!`, `lazy_static!`.
//! - Rule 3, "use file, network or IPC interfaces other than the provided
//!   RPC": paths into `std::fs`, `std::net`, `std::os::unix::{net, fs}`,
//!   `std::process::{Command, Child, Stdio}`, `std::io::stdin`; libc calls
//!   that open files, sockets, pipes or processes (`libc::open`,
//!   `socket`, `fork`, ...), also declared in an `extern "C"` block of its
//!   own; `include_str!` / `include_bytes!`.
//! - Rule 4, "break the FFI bridge contracts": its own `extern` blocks,
//!   `#[no_mangle]`, `#[export_name]`, `#[link]`.
//!
//! Paths are resolved, not matched as text: `use` aliases (`use std::fs as
//! f;`), globs, `extern crate ... as`, `crate::`, `self::`, `super::` and
//! `::std` prefixes, and nested modules; the tokens of every macro call
//! and `macro_rules!` body are scanned for paths too. Comments and string
//! literals never match (they are not paths).
//!
//! Each finding is a breach (clear) or a review (a person decides): a
//! static that only holds a clock origin (the lab skeleton's own
//! `START_TIME: OnceLock<Instant>` is one) or immutable plain data shares
//! nothing that changes between instances.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::Visit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Breach,
    Review,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: u8,
    pub class: Class,
    pub line: usize,
    pub what: String,
}

/// The handout's words for each rule.
pub fn rule_text(rule: u8) -> &'static str {
    match rule {
        1 => "DO NOT change or create files other than the files allowed for this lab",
        2 => "DO NOT share variables between Raft instances",
        3 => "DO NOT use file, network or IPC interfaces other than the provided RPC",
        _ => "DO NOT break the FFI bridge contracts",
    }
}

/// Modules whose use is a breach of rule 3 (a path starting with one).
const FORBIDDEN_MODULES: &[&[&str]] = &[
    &["std", "fs"],
    &["std", "net"],
    &["std", "os", "unix", "net"],
    &["std", "os", "unix", "fs"],
    &["std", "process", "Command"],
    &["std", "process", "Child"],
    &["std", "process", "Stdio"],
    &["std", "io", "stdin"],
    &["std", "io", "Stdin"],
];

/// libc functions that open or make files, sockets, pipes, shared memory or
/// processes (rule 3).
const FORBIDDEN_C_FUNCTIONS: &[&str] = &[
    "open", "open64", "openat", "openat2", "creat", "creat64", "fopen", "fopen64", "freopen", "fdopen", "mkstemp",
    "mkostemp", "tmpfile", "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
    "recvfrom", "pipe", "pipe2", "mkfifo", "mkfifoat", "mknod", "fork", "vfork", "clone", "clone3", "execve", "execv",
    "execvp", "execvpe", "execl", "execlp", "execle", "fexecve", "system", "popen", "posix_spawn", "posix_spawnp",
    "shm_open", "shmget", "shmat", "msgget", "msgsnd", "semget", "mq_open", "unlink", "unlinkat", "rename", "renameat",
    "mkdir", "mkdirat", "rmdir", "truncate", "ftruncate", "chmod", "chown", "symlink", "link", "memfd_create",
    "inotify_init", "ptrace", "kill",
];

// ----- Modules and their names ---------------------------------------------------------------

/// One module's scope: what its `use` items bring in, and its child modules.
#[derive(Default)]
struct Scope {
    parent: Option<usize>,
    /// local name -> the path it stands for (as written: resolved lazily)
    uses: HashMap<String, Vec<String>>,
    /// `use a::b::*`: the paths whose names come in unnamed
    globs: Vec<Vec<String>>,
    children: HashMap<String, usize>,
}

/// The module tree of the file, with each module's `use` items.
struct Modules {
    scopes: Vec<Scope>,
}

impl Modules {
    fn build(file: &syn::File) -> Self {
        let mut modules = Modules { scopes: vec![Scope::default()] };
        modules.collect(0, &file.items);
        modules
    }

    fn collect(&mut self, scope: usize, items: &[syn::Item]) {
        let mut collector = UseCollector { modules: self, scope };
        for item in items {
            collector.visit_item(item);
        }
    }

    fn add_use(&mut self, scope: usize, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.add_use(scope, prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut full = prefix.clone();
                if name == "self" {
                    let last = full.last().cloned().unwrap_or_default();
                    self.scopes[scope].uses.insert(last, full);
                } else {
                    full.push(name.clone());
                    self.scopes[scope].uses.insert(name, full);
                }
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.scopes[scope].uses.insert(r.rename.to_string(), full);
            }
            syn::UseTree::Glob(_) => self.scopes[scope].globs.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.add_use(scope, prefix, tree);
                }
            }
        }
    }

    /// The path `segments` (written in module `scope`) stands for, as far as
    /// the file tells: absolute (`std::...`, `libc::...`) where it leads
    /// out of the crate.
    fn resolve(&self, scope: usize, segments: &[String], leading_colon: bool) -> Vec<String> {
        self.resolve_depth(scope, segments, leading_colon, 0)
    }

    fn resolve_depth(&self, scope: usize, segments: &[String], leading_colon: bool, depth: usize) -> Vec<String> {
        if segments.is_empty() || leading_colon || depth > 16 {
            return segments.to_vec();
        }
        let first = segments[0].as_str();
        match first {
            "crate" => return self.in_module(0, &segments[1..], depth),
            "self" => return self.in_module(scope, &segments[1..], depth),
            "super" => return self.in_module(self.scopes[scope].parent.unwrap_or(0), &segments[1..], depth),
            "std" | "core" | "alloc" | "libc" => return segments.to_vec(),
            _ => {}
        }
        // A name of this module (or, for a function-local `use`, of the module
        // holding the function: collected there).
        self.in_module(scope, segments, depth)
    }

    /// `segments` looked up starting inside module `scope`.
    fn in_module(&self, scope: usize, segments: &[String], depth: usize) -> Vec<String> {
        let Some(first) = segments.first() else { return Vec::new() };
        let here = &self.scopes[scope];
        if let Some(target) = here.uses.get(first) {
            let mut full = self.resolve_depth(scope, target, false, depth + 1);
            full.extend_from_slice(&segments[1..]);
            return full;
        }
        if let Some(&child) = here.children.get(first) {
            if segments.len() == 1 {
                return segments.to_vec();
            }
            return self.in_module(child, &segments[1..], depth + 1);
        }
        segments.to_vec()
    }

    /// The modules a `use ...::*` in `scope` brings names from, resolved.
    fn globs(&self, scope: usize) -> Vec<Vec<String>> {
        self.scopes[scope].globs.iter().map(|g| self.resolve(scope, g, false)).collect()
    }
}

/// First pass: the module tree and every `use` (also those in function
/// bodies, counted to the module that holds the function).
struct UseCollector<'m> {
    modules: &'m mut Modules,
    scope: usize,
}

impl<'ast> Visit<'ast> for UseCollector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let child = self.modules.scopes.len();
        self.modules.scopes.push(Scope { parent: Some(self.scope), ..Scope::default() });
        self.modules.scopes[self.scope].children.insert(item.ident.to_string(), child);
        if let Some((_, items)) = &item.content {
            let saved = self.scope;
            self.scope = child;
            for inner in items {
                self.visit_item(inner);
            }
            self.scope = saved;
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        // (`use ::std::fs` is `use std::fs`: the leading `::` adds nothing here.)
        self.modules.add_use(self.scope, &mut Vec::new(), &item.tree);
    }

    fn visit_item_extern_crate(&mut self, item: &'ast syn::ItemExternCrate) {
        if let Some((_, rename)) = &item.rename {
            self.modules.scopes[self.scope].uses.insert(rename.to_string(), vec![item.ident.to_string()]);
        }
    }
}

// ----- The checks -------------------------------------------------------------------------

fn line(span: Span) -> usize {
    span.start().line
}

fn path_string(segments: &[String]) -> String {
    segments.join("::")
}

fn starts_with(path: &[String], prefix: &[&str]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
}

/// The forbidden module `path` reaches, if any.
fn forbidden(path: &[String]) -> Option<String> {
    if let Some(prefix) = FORBIDDEN_MODULES.iter().find(|p| starts_with(path, p)) {
        return Some(prefix.join("::"));
    }
    if path.len() == 2 && path[0] == "libc" && FORBIDDEN_C_FUNCTIONS.contains(&path[1].as_str()) {
        return Some(format!("libc::{}", path[1]));
    }
    None
}

struct Checker<'m> {
    modules: &'m Modules,
    scope: usize,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    /// One finding per rule, class and line: a second one on the same line
    /// (two imports in one `use`) adds its words to the first.
    fn report(&mut self, rule: u8, class: Class, line: usize, what: String) {
        if let Some(same) = self.findings.iter_mut().find(|f| f.rule == rule && f.class == class && f.line == line) {
            if !same.what.split("; ").any(|w| w == what) {
                same.what = format!("{}; {}", same.what, what);
            }
            return;
        }
        self.findings.push(Finding { rule, class, line, what });
    }

    /// A path written in the current module.
    fn check_path(&mut self, segments: Vec<String>, leading_colon: bool, at: Span) {
        let mut resolved = self.modules.resolve(self.scope, &segments, leading_colon);
        if resolved.len() == 1 && self.glob_call(&resolved) {
            resolved.insert(0, "libc".to_string());  // through `use libc::*`
        }
        if let Some(module) = forbidden(&resolved) {
            let written = path_string(&segments);
            let how = if written == path_string(&resolved) {
                String::new()
            } else {
                format!(" (written {written})")
            };
            let full = path_string(&resolved);
            let from = if full == module { String::new() } else { format!(" from {module}") };
            self.report(3, Class::Breach, line(at), format!("uses {full}{how}{from}"));
        }
    }

    /// Paths inside a macro's tokens (macros are not parsed): every run of
    /// `a :: b :: c`, each resolved as a path.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(group) => {
                    self.scan_tokens(group.stream());
                    i += 1;
                }
                TokenTree::Ident(_) | TokenTree::Punct(_) => {
                    let (segments, leading, at, next) = path_at(&trees, i);
                    if segments.is_empty() {
                        i += 1;
                    } else {
                        if self.worth_resolving(&segments, leading) {
                            self.check_path(segments, leading, at);
                        }
                        i = next;
                    }
                }
                TokenTree::Literal(_) => i += 1,
            }
        }
    }

    /// Paths that can lead somewhere: more than one segment, a leading
    /// `::`, or a single name that a `use` of this module brings in (an
    /// alias, or a libc function through `use libc::*`).
    fn worth_resolving(&self, segments: &[String], leading: bool) -> bool {
        segments.len() > 1 || leading || self.glob_call(segments)
            || self.modules.scopes[self.scope].uses.contains_key(&segments[0])
    }

    /// A bare name that a `use libc::*` in scope may bring in.
    fn glob_call(&self, segments: &[String]) -> bool {
        segments.len() == 1 && FORBIDDEN_C_FUNCTIONS.contains(&segments[0].as_str()) && self.libc_glob().is_some()
    }

    fn libc_glob(&self) -> Option<Vec<String>> {
        self.modules.globs(self.scope).into_iter().find(|g| g.first().map(String::as_str) == Some("libc"))
    }

    fn check_attrs(&mut self, attrs: &[syn::Attribute]) {
        for attr in attrs {
            let mut names = vec![attr.path().clone()];
            // #[unsafe(no_mangle)] (edition 2024 spelling)
            if attr.path().is_ident("unsafe") {
                if let Ok(inner) = attr.parse_args::<syn::Path>() {
                    names.push(inner);
                }
            }
            for name in names {
                for forbidden in ["no_mangle", "export_name", "link", "link_name", "link_section"] {
                    if name.is_ident(forbidden) {
                        self.report(4, Class::Breach, line(attr.pound_token.span), format!("#[{forbidden}]"));
                    }
                }
            }
        }
    }
}

/// The path starting at token `i`: (segments, leading `::`, span, next index).
fn path_at(trees: &[TokenTree], mut i: usize) -> (Vec<String>, bool, Span, usize) {
    let mut segments = Vec::new();
    let mut leading = false;
    let start = trees[i].span();
    if is_path_sep(trees, i) {
        leading = true;
        i += 2;
    }
    loop {
        match trees.get(i) {
            Some(TokenTree::Ident(ident)) => {
                segments.push(ident.to_string());
                i += 1;
            }
            _ => break,
        }
        if is_path_sep(trees, i) {
            i += 2;
        } else {
            break;
        }
    }
    if segments.is_empty() {
        return (Vec::new(), false, start, i + 1);
    }
    (segments, leading, start, i)
}

fn is_path_sep(trees: &[TokenTree], i: usize) -> bool {
    matches!((trees.get(i), trees.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':' && a.spacing() == proc_macro2::Spacing::Joint)
}

fn segments_of(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// Is this static's type only a clock origin (OnceLock<Instant>,
/// OnceCell<Instant>, LazyLock<Instant>, Lazy<Instant>)?
fn clock_origin(ty: &syn::Type) -> bool {
    let syn::Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else { return false };
    let wrapper = ["OnceLock", "OnceCell", "LazyLock", "Lazy"].contains(&last.ident.to_string().as_str());
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return false };
    let inner_is_instant = args.args.iter().any(|a| {
        matches!(a, syn::GenericArgument::Type(syn::Type::Path(p))
            if p.path.segments.last().map(|s| s.ident == "Instant" || s.ident == "SystemTime").unwrap_or(false))
    });
    wrapper && inner_is_instant
}

/// Immutable plain data (numbers, bool, char, &str, arrays and tuples of
/// them): shares nothing that changes.
fn plain_data(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => {
            let name = p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            ["u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
             "bool", "char", "str", "siteid_t", "slotid_t", "ballot_t", "parid_t"]
                .contains(&name.as_str())
        }
        syn::Type::Reference(r) => r.mutability.is_none() && plain_data(&r.elem),
        syn::Type::Array(a) => plain_data(&a.elem),
        syn::Type::Slice(s) => plain_data(&s.elem),
        syn::Type::Tuple(t) => t.elems.iter().all(plain_data),
        _ => false,
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.check_attrs(&item.attrs);
        let child = self.modules.scopes[self.scope].children[&item.ident.to_string()];
        if let Some((_, items)) = &item.content {
            let saved = self.scope;
            self.scope = child;
            for inner in items {
                self.visit_item(inner);
            }
            self.scope = saved;
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        // The import of a forbidden module is a finding at its own line.
        let mut paths = Vec::new();
        flatten_use(&item.tree, &mut Vec::new(), &mut paths);
        for path in paths {
            let resolved = self.modules.resolve(self.scope, &path, item.leading_colon.is_some());
            if let Some(module) = forbidden(&resolved) {
                self.report(3, Class::Breach, line(item.use_token.span), format!("imports {} from {}", path_string(&resolved), module));
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = segments_of(path);
        let at = path.segments.first().map(|s| s.ident.span()).unwrap_or_else(Span::call_site);
        if self.worth_resolving(&segments, path.leading_colon.is_some()) {
            self.check_path(segments, path.leading_colon.is_some(), at);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        let at = line(mac.path.segments.first().map(|s| s.ident.span()).unwrap_or_else(Span::call_site));
        match name.as_str() {
            "thread_local" => self.report(2, Class::Breach, at, "thread_local! (state outside every instance)".into()),
            "lazy_static" => self.report(2, Class::Breach, at, "lazy_static! (a process-wide static)".into()),
            "include_str" | "include_bytes" => {
                self.report(3, Class::Breach, at, format!("{name}! (reads a file at compile time)"))
            }
            _ => {}
        }
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone());
    }

    fn visit_item_static(&mut self, item: &'ast syn::ItemStatic) {
        self.check_attrs(&item.attrs);
        let at = line(item.static_token.span);
        let name = item.ident.to_string();
        let mutable = matches!(item.mutability, syn::StaticMutability::Mut(_));
        if mutable {
            self.report(2, Class::Breach, at, format!("static mut {name} (shared by every instance in the process)"));
        } else if clock_origin(&item.ty) {
            self.report(2, Class::Review, at, format!("static {name}: only a clock origin (as the lab skeleton's START_TIME)"));
        } else if plain_data(&item.ty) {
            self.report(2, Class::Review, at, format!("static {name}: immutable plain data"));
        } else {
            self.report(2, Class::Breach, at, format!("static {name} (shared by every instance in the process)"));
        }
        syn::visit::visit_item_static(self, item);
    }

    fn visit_item_foreign_mod(&mut self, item: &'ast syn::ItemForeignMod) {
        self.check_attrs(&item.attrs);
        let at = line(item.abi.extern_token.span);
        self.report(4, Class::Breach, at, "an extern block of its own (imports outside the lab's ffi.rs)".into());
        for foreign in &item.items {
            if let syn::ForeignItem::Fn(f) = foreign {
                let name = f.sig.ident.to_string();
                if FORBIDDEN_C_FUNCTIONS.contains(&name.as_str()) {
                    self.report(3, Class::Breach, line(f.sig.ident.span()), format!("declares the C function {name}"));
                }
            }
        }
        syn::visit::visit_item_foreign_mod(self, item);
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.check_attrs(&item.attrs);
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.check_attrs(&item.attrs);
        syn::visit::visit_impl_item_fn(self, item);
    }
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut full = prefix.clone();
            if n.ident != "self" {
                full.push(n.ident.to_string());
            }
            out.push(full);
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            out.push(full);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

/// The findings in one server.rs, in line order; Err for a file that does
/// not parse (it would not build either).
pub fn check(source: &str) -> Result<Vec<Finding>, String> {
    let file = syn::parse_file(source).map_err(|e| {
        let at = e.span().start();
        format!("server.rs does not parse at line {}: {}", at.line, e)
    })?;
    let modules = Modules::build(&file);
    let mut checker = Checker { modules: &modules, scope: 0, findings: Vec::new() };
    checker.check_attrs(&file.attrs);
    for item in &file.items {
        checker.visit_item(item);
    }
    let mut findings = checker.findings;
    findings.sort_by_key(|f| (f.line, f.rule));
    Ok(findings)
}
