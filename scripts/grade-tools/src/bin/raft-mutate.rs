//! raft-mutate SERVER_RS [--modules a,b,c]: the mutants of one file
//! (grade_tools::mutate) as a JSON array on stdout, each {"id", "module",
//! "function", "operator", "line", "start", "end", "from", "to"}: replace
//! bytes start..end of the file by `to` to make it. Exit status 0, 2 for a
//! file that cannot be read or parsed.

use grade_tools::{json, mutate};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut file = None;
    let mut modules: Option<Vec<String>> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--modules" if i + 1 < args.len() => {
                modules = Some(args[i + 1].split(',').filter(|m| !m.is_empty()).map(String::from).collect());
                i += 2;
            }
            arg if !arg.starts_with("--") && file.is_none() => {
                file = Some(arg.to_string());
                i += 1;
            }
            other => {
                eprintln!("raft-mutate: unexpected argument '{other}'\nusage: raft-mutate SERVER_RS [--modules a,b,c]");
                std::process::exit(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("usage: raft-mutate SERVER_RS [--modules a,b,c]");
        std::process::exit(2);
    };
    let source = match std::fs::read_to_string(&file) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("raft-mutate: cannot read {file}: {e}");
            std::process::exit(2);
        }
    };
    let found = match mutate::mutants(&source, modules.as_deref()) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("raft-mutate: {file} does not parse: {e}");
            std::process::exit(2);
        }
    };
    let items: Vec<String> = found
        .iter()
        .map(|m| {
            json::object(&[
                ("id", json::string(&m.id)),
                ("module", json::string(&m.module)),
                ("function", json::string(&m.function)),
                ("operator", json::string(m.operator)),
                ("line", m.line.to_string()),
                ("start", m.start.to_string()),
                ("end", m.end.to_string()),
                ("from", json::string(&m.from)),
                ("to", json::string(&m.to)),
            ])
        })
        .collect();
    println!("{}", json::array(&items));
}
