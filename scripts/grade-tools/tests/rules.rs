//! Fixtures for the DO NOT rules: each rule, each way of reaching a
//! forbidden thing (aliases, globs, `crate::`, `::std`, nested modules,
//! macros), and the traps that must not match (comments, strings, the lab
//! skeleton's own items, look-alike names).

use grade_tools::rules::{check, Class, Finding};

fn findings(source: &str) -> Vec<Finding> {
    check(source).expect("parses")
}

/// (rule, class, line) of every finding.
fn summary(source: &str) -> Vec<(u8, Class, usize)> {
    findings(source).iter().map(|f| (f.rule, f.class, f.line)).collect()
}

use Class::{Breach, Review};

#[test]
fn rule_2_statics_thread_locals_and_lazy_statics() {
    let source = r#"
static mut COUNTER: u64 = 0;
static LEADER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STATE: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
static NAMES: [&str; 2] = ["a", "b"];
thread_local! { static LOCAL: std::cell::Cell<u32> = std::cell::Cell::new(0); }
lazy_static::lazy_static! { static ref SHARED: u32 = 1; }
fn f() {
    static INSIDE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static CLOCK: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
}
"#;
    assert_eq!(
        summary(source),
        vec![(2, Breach, 2), (2, Breach, 3), (2, Breach, 4), (2, Review, 5), (2, Breach, 6), (2, Breach, 7),
             (2, Breach, 9), (2, Review, 10)]
    );
}

#[test]
fn rule_3_std_paths_direct_aliased_globbed_and_through_crate() {
    let source = r#"
use std::fs as files;
use std::net::{TcpStream, UdpSocket};
mod helpers {
    pub use ::std::process::Command;
    pub mod deeper { pub use super::Command as Run; }
}
fn f() {
    let _ = std::fs::write("/tmp/x", b"y");
    let _ = files::read("/etc/passwd");
    let _ = TcpStream::connect("127.0.0.1:9");
    let _ = crate::helpers::deeper::Run::new("sh");
    let _ = self::helpers::Command::new("sh");
    let _ = ::std::os::unix::net::UnixStream::connect("/tmp/s");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
"#;
    let lines: Vec<usize> = findings(source).iter().filter(|f| f.rule == 3).map(|f| f.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 6, 9, 10, 11, 12, 13, 14, 16]);
    let aliased = findings(source).into_iter().find(|f| f.line == 10).unwrap();
    assert_eq!(aliased.what, "uses std::fs::read (written files::read) from std::fs");
    let nested = findings(source).into_iter().find(|f| f.line == 12).unwrap();
    assert!(nested.what.starts_with("uses std::process::Command::new"), "{}", nested.what);
}

#[test]
fn rule_3_inside_macros_and_macro_rules() {
    let source = r#"
macro_rules! save {
    ($x:expr) => { std::fs::write("/tmp/debug", $x) };
}
fn f() {
    log::info!("{:?}", std::fs::read_to_string("/tmp/a"));
    println!("{}", std::net::Ipv4Addr::LOCALHOST);
    let _ = save!("z");
    let _ = include_str!("/etc/hostname");
    let _ = include_bytes!("/etc/shadow");
}
"#;
    assert_eq!(summary(source), vec![(3, Breach, 3), (3, Breach, 6), (3, Breach, 7), (3, Breach, 9), (3, Breach, 10)]);
}

#[test]
fn rule_3_libc_calls_and_globs() {
    let source = r#"
use libc::*;
fn f() {
    unsafe {
        let fd = libc::open(b"/tmp/x\0".as_ptr() as *const i8, 0);
        let s = socket(2, 1, 0);
        let p = fork();
        libc::write(2, std::ptr::null(), 0);
        let _ = getpid();
    }
}
"#;
    let found: Vec<(usize, String)> = findings(source).into_iter().map(|f| (f.line, f.what)).collect();
    assert_eq!(found.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![5, 6, 7]);
    assert!(found[1].1.contains("libc::socket"), "{:?}", found);
}

#[test]
fn rule_4_extern_blocks_and_symbol_attributes() {
    let source = r#"
extern "C" {
    fn open(path: *const i8, flags: i32) -> i32;
    fn raft_time_now() -> u64;
}
#[link(name = "m")]
extern "C" {}
#[no_mangle]
pub extern "C" fn rust_raft_server_new() {}
#[export_name = "other"]
pub fn renamed() {}
#[unsafe(no_mangle)]
pub extern "C" fn again() {}
extern "C" fn coroutine_trampoline(_context: *mut std::ffi::c_void) {}
"#;
    assert_eq!(
        summary(source),
        vec![(4, Breach, 2), (3, Breach, 3), (4, Breach, 6), (4, Breach, 7), (4, Breach, 8), (4, Breach, 10),
             (4, Breach, 12)]
    );
}

#[test]
fn comments_strings_and_look_alikes_never_match() {
    let source = r#"
// std::fs::write would be a breach; this is a comment.
/* static mut X: u8 = 0; use std::net::TcpStream; */
/// Doc: lazy_static! { std::process::Command }
fn f(fs: &str, net: u8) -> String {
    let message = "std::fs::write(\"/etc/passwd\") and thread_local! and #[no_mangle]";
    let open = 3; // a variable named like a libc function
    let files = crate::wrappers::Command::null();
    let _ = (open, net, files);
    format!("{}{}", message, fs)
}
mod wrappers { pub struct Command; impl Command { pub fn null() -> u8 { 0 } } }
const LIMIT: u64 = 5;
"#;
    assert_eq!(findings(source), vec![]);
}

#[test]
fn the_lab_skeletons_own_items_are_never_breaches() {
    // The shape of the skeleton's helpers (shared/skeleton.md): a Send raw
    // pointer, the coroutine trampoline, thread_rng, and a process-start
    // clock in a static OnceLock<Instant>.
    let source = r#"
use std::ffi::c_void;
use std::time::Instant;
use rand::Rng;
pub struct SendPtr(pub *mut c_void);
unsafe impl Send for SendPtr {}
extern "C" fn trampoline(context: *mut c_void) {
    let f = unsafe { Box::from_raw(context as *mut Box<dyn FnOnce() + Send>) };
    f();
}
pub fn spawn_coroutine<F: FnOnce() + Send + 'static>(f: F) {
    let boxed: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(f));
    unsafe { crate::ffi::raft_coroutine_create_run(trampoline, Box::into_raw(boxed) as *mut c_void) }
}
fn random_range(min: i32, max: i32) -> i32 { rand::thread_rng().gen_range(min..max) }
fn get_time_micros() -> u64 {
    static START_TIME: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START_TIME.get_or_init(|| Instant::now()).elapsed().as_micros() as u64
}
"#;
    let found = findings(source);
    assert!(found.iter().all(|f| f.class == Review), "{found:?}");
    assert_eq!(summary(source), vec![(2, Review, 17)]);
}

#[test]
fn a_file_that_does_not_parse_is_an_error_naming_its_line() {
    let error = check("fn f() {\n  let x = ;\n}\n").unwrap_err();
    assert!(error.starts_with("server.rs does not parse at line 2"), "{error}");
}
