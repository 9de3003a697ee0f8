//! What every call into librdkafka's C API needs: objects released by a guard, C strings in
//! and out. Used where rust-rdkafka wraps no API for what kmirror needs.
use std::ffi::{CStr, CString};

/// A librdkafka object released with its destructor when dropped.
pub(crate) struct Guard<T> {
    pub(crate) ptr: *mut T,
    pub(crate) release: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the matching librdkafka constructor and is released once.
            unsafe { (self.release)(self.ptr) }
        }
    }
}

pub(crate) fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"))
}

/// # Safety
/// `ptr` must be null or a NUL-terminated string that lives for the call.
pub(crate) unsafe fn text(ptr: *const std::ffi::c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        CStr::from_ptr(ptr).to_string_lossy().into_owned()
    }
}
