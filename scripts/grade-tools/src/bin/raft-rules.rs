//! raft-rules SERVER_RS...: the handout's DO NOT rules checked on each
//! file's syntax tree (grade_tools::rules); one JSON object per file on
//! stdout: {"file", "breaches": [...], "reviews": [...]} or {"file",
//! "error"}. Each finding: {"rule", "class", "line", "what", "rule_text"}.
//! Exit status 0 (findings are not errors), 2 for a file that cannot be read.

use grade_tools::{json, rules};

fn finding(f: &rules::Finding) -> String {
    json::object(&[
        ("rule", f.rule.to_string()),
        ("class", json::string(if f.class == rules::Class::Breach { "breach" } else { "review" })),
        ("line", f.line.to_string()),
        ("what", json::string(&f.what)),
        ("rule_text", json::string(rules::rule_text(f.rule))),
    ])
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: raft-rules SERVER_RS...");
        std::process::exit(2);
    }
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("raft-rules: cannot read {file}: {e}");
                std::process::exit(2);
            }
        };
        let line = match rules::check(&source) {
            Ok(findings) => {
                let of = |class| findings.iter().filter(|f| f.class == class).map(finding).collect::<Vec<_>>();
                json::object(&[
                    ("file", json::string(&file)),
                    ("breaches", json::array(&of(rules::Class::Breach))),
                    ("reviews", json::array(&of(rules::Class::Review))),
                ])
            }
            Err(error) => json::object(&[("file", json::string(&file)), ("error", json::string(&error))]),
        };
        println!("{line}");
    }
}
