//! For the server's own Rust tests: the few framework imports that
//! `RaftServer::new`, the node and the command handles reach, defined here
//! so the test binary links without the C++ side. The clock is a settable
//! counter; a command "handle" is any non-NULL address, and releases are
//! counted. Tests that use the clock hold `serial()`.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::ffi::{parid_t, siteid_t, Frame_C};

static NOW_US: AtomicU64 = AtomicU64::new(1_000_000);
static RELEASES: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time for tests that set the clock or count releases.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn advance_clock(us: u64) {
    NOW_US.fetch_add(us, Ordering::SeqCst);
}

pub(crate) fn releases() -> usize {
    RELEASES.load(Ordering::SeqCst)
}

/// A frame as the mock's getters read it.
#[repr(C)]
pub(crate) struct MockFrame {
    pub(crate) locale_id: u32,
    pub(crate) site_id: siteid_t,
    pub(crate) partition_id: parid_t,
}

impl MockFrame {
    pub(crate) fn site(id: u16) -> Self {
        MockFrame { locale_id: id as u32, site_id: id, partition_id: 0 }
    }
    pub(crate) fn raw(&mut self) -> Frame_C {
        self as *mut MockFrame as Frame_C
    }
}

#[no_mangle]
extern "C" fn raft_time_now() -> u64 {
    NOW_US.load(Ordering::SeqCst)
}

#[no_mangle]
extern "C" fn raft_random_rand(min: c_int, max: c_int) -> c_int {
    static NEXT: AtomicU64 = AtomicU64::new(12345);
    let draw = NEXT.fetch_add(0x9E37_79B9, Ordering::Relaxed) % ((max - min + 1) as u64);
    min + draw as c_int
}

#[no_mangle]
extern "C" fn raft_frame_get_locale_id(frame: Frame_C) -> u32 {
    // SAFETY: tests pass a live MockFrame.
    unsafe { (*(frame as *const MockFrame)).locale_id }
}

#[no_mangle]
extern "C" fn raft_frame_get_site_id(frame: Frame_C) -> siteid_t {
    // SAFETY: as above.
    unsafe { (*(frame as *const MockFrame)).site_id }
}

#[no_mangle]
extern "C" fn raft_frame_get_partition_id(frame: Frame_C) -> parid_t {
    // SAFETY: as above.
    unsafe { (*(frame as *const MockFrame)).partition_id }
}

#[no_mangle]
extern "C" fn raft_config_get_config() -> *mut c_void {
    std::ptr::NonNull::<u8>::dangling().as_ptr() as *mut c_void
}

#[no_mangle]
extern "C" fn raft_config_get_partition_size(_config: *mut c_void, _partition: parid_t) -> c_int {
    5
}

#[no_mangle]
extern "C" fn raft_marshallable_release(_command: *mut c_void) {
    RELEASES.fetch_add(1, Ordering::SeqCst);
}
