#!/usr/bin/env python3
"""ctest bundle.tool: scripts/bundle-server on a small fixture tree.

Checks that the bundle inlines file modules (nested ones too, mod.rs and
name.rs layouts) under banners naming their files, leaves test modules out
(declared and inline), keeps multi-line string literals byte for byte,
compiles with rustc as a library without a warning, and that a missing
module file or a #[path] attribute is refused with exit 2 naming the file.
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(ROOT, "scripts", "bundle-server")

FILES = {
    "src/top.rs": '''//! The root module.
pub mod alpha;
pub(crate) mod beta;
#[cfg(test)]
mod tests;

pub fn total() -> usize {
    alpha::gamma::NUMBER + beta::LINES.len() + alpha::BRACES.len()
}
''',
    "src/top/alpha.rs": '''//! Alpha.
pub mod gamma;

/// Braces in a raw string must not confuse the bundler: { { }
pub const BRACES: &str = r#"{ "}" {"#;

#[cfg(test)]
mod tests {
    #[test]
    fn nested() {
        let v = vec![{ 1 }];
        assert_eq!(v.len(), 1);
    }
}

pub fn lifetime<'a>(x: &'a str) -> &'a str {
    let _c = '{';
    x
}
''',
    "src/top/alpha/gamma.rs": '''pub const NUMBER: usize = 7;
''',
    "src/top/beta/mod.rs": '''//! Beta (a mod.rs).
pub const LINES: &str = "first line
  second line, indented by two
third line";
''',
    "src/top/tests.rs": '''#[test]
fn never_bundled() {}
''',
}


def fail(message):
    print(f"bundle_test: {message}")
    sys.exit(1)


def write_tree(base, files):
    for rel, text in files.items():
        path = os.path.join(base, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        write_tree(tmp, FILES)
        run = subprocess.run([BUNDLE, os.path.join(tmp, "src/top.rs")], capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"bundling failed: {run.stderr}")
        out = run.stdout
        for banner in ("// mod alpha: from src/top/alpha.rs", "// mod gamma: from src/top/alpha/gamma.rs",
                       "// mod beta: from src/top/beta/mod.rs"):
            if banner not in out:
                fail(f"no banner '{banner}'")
        if "never_bundled" in out or "fn nested" in out or "mod tests" in out:
            fail("test modules were bundled")
        if "\n  second line, indented by two\nthird line\";" not in out:
            fail("a multi-line string literal changed")
        if "    pub mod alpha {" not in out and "pub mod alpha {" not in out:
            fail("alpha was not inlined as a block")
        if "        pub const NUMBER: usize = 7;" not in out:
            fail("a nested module was not indented")
        lib = os.path.join(tmp, "bundle.rs")
        with open(lib, "w") as f:
            f.write(out)
        rustc = subprocess.run(["rustc", "--edition", "2021", "--crate-type", "lib", "-o", os.path.join(tmp, "libb.rlib"), lib],
                               capture_output=True, text=True)
        if rustc.returncode != 0 or "warning" in rustc.stderr:
            fail(f"the bundle does not compile cleanly:\n{rustc.stderr}")

        os.remove(os.path.join(tmp, "src/top/alpha/gamma.rs"))
        missing = subprocess.run([BUNDLE, os.path.join(tmp, "src/top.rs")], capture_output=True, text=True)
        if missing.returncode != 2 or "gamma" not in missing.stderr or "src/top/alpha.rs" not in missing.stderr:
            fail(f"a missing module file was not refused clearly: {missing.returncode} {missing.stderr}")
        write_tree(tmp, {"src/top/alpha/gamma.rs": '#[path = "x.rs"]\nmod x;\n'})
        path = subprocess.run([BUNDLE, os.path.join(tmp, "src/top.rs")], capture_output=True, text=True)
        if path.returncode != 2 or "#[path]" not in path.stderr:
            fail(f"a #[path] attribute was not refused: {path.returncode} {path.stderr}")
    print("bundle_test: nested modules inlined under banners, tests left out, strings kept, compiles cleanly; errors refused")


if __name__ == "__main__":
    main()
