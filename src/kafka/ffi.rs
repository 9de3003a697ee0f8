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

/// [`c_string`] of each of `names`, the first refusal if any.
pub(crate) fn c_strings(names: &[&str]) -> Result<Vec<CString>, String> {
    names.iter().map(|name| c_string(name)).collect()
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

/// A config resource naming topic `name`, for the config admin requests.
///
/// # Safety
/// Calls into librdkafka; `name` is copied by it.
pub(crate) unsafe fn topic_resource(name: &CStr) -> Guard<rdkafka::bindings::rd_kafka_ConfigResource_t> {
    use rdkafka::bindings as rd;
    Guard {
        ptr: rd::rd_kafka_ConfigResource_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            name.as_ptr(),
        ),
        release: rd::rd_kafka_ConfigResource_destroy,
    }
}

/// A config resource naming broker `id`, for the config admin requests.
///
/// # Safety
/// Calls into librdkafka; `id` is copied by it.
pub(crate) unsafe fn broker_resource(id: &CStr) -> Guard<rdkafka::bindings::rd_kafka_ConfigResource_t> {
    use rdkafka::bindings as rd;
    Guard {
        ptr: rd::rd_kafka_ConfigResource_new(
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
            id.as_ptr(),
        ),
        release: rd::rd_kafka_ConfigResource_destroy,
    }
}

/// Sends DescribeConfigs for `resources` on `request`, in one request, and waits for its answer:
/// the event, whose resources are the answer's, or the failure with librdkafka's code.
///
/// # Safety
/// `request` must be a DescribeConfigs request on a live client; `resources` are copied by
/// librdkafka.
pub(crate) unsafe fn describe_configs_of(
    request: &AdminRequest,
    resources: &[&Guard<rdkafka::bindings::rd_kafka_ConfigResource_t>],
) -> Result<Guard<rdkafka::bindings::rd_kafka_event_t>, (rdkafka::types::RDKafkaErrorCode, String)> {
    use rdkafka::bindings as rd;
    let mut pointers: Vec<_> = resources.iter().map(|r| r.ptr).collect();
    rd::rd_kafka_DescribeConfigs(
        request.rk,
        pointers.as_mut_ptr(),
        pointers.len(),
        request.options.ptr,
        request.queue.ptr,
    );
    request.answer_coded("DescribeConfigs")
}

/// One admin request on a client: its own reply queue and options with the request timeout.
pub(crate) struct AdminRequest {
    pub(crate) rk: *mut rdkafka::bindings::rd_kafka_t,
    pub(crate) queue: Guard<rdkafka::bindings::rd_kafka_queue_t>,
    pub(crate) options: Guard<rdkafka::bindings::rd_kafka_AdminOptions_t>,
    timeout_ms: i32,
}

impl AdminRequest {
    /// # Safety
    /// `rk` must be a live client handle that outlives the request.
    pub(crate) unsafe fn new(
        rk: *mut rdkafka::bindings::rd_kafka_t,
        op: rdkafka::bindings::rd_kafka_admin_op_t,
        timeout: std::time::Duration,
    ) -> Self {
        use rdkafka::bindings as rd;
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let queue = Guard { ptr: rd::rd_kafka_queue_new(rk), release: rd::rd_kafka_queue_destroy };
        let options =
            Guard { ptr: rd::rd_kafka_AdminOptions_new(rk, op), release: rd::rd_kafka_AdminOptions_destroy };
        let mut errbuf = [0 as std::ffi::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            timeout_ms,
            errbuf.as_mut_ptr(),
            errbuf.len(),
        );
        Self { rk, queue, options, timeout_ms }
    }

    /// Waits for the request's answer: the event, or the error it carries.
    ///
    /// # Safety
    /// The request must have been sent on this request's queue.
    pub(crate) unsafe fn answer(
        &self,
        what: &str,
    ) -> Result<Guard<rdkafka::bindings::rd_kafka_event_t>, String> {
        self.answer_coded(what).map_err(|(_, message)| message)
    }

    /// As [`Self::answer`], the failure with librdkafka's code (no answer: `OperationTimedOut`),
    /// for callers that sort errors by code.
    ///
    /// # Safety
    /// The request must have been sent on this request's queue.
    pub(crate) unsafe fn answer_coded(
        &self,
        what: &str,
    ) -> Result<Guard<rdkafka::bindings::rd_kafka_event_t>, (rdkafka::types::RDKafkaErrorCode, String)> {
        use rdkafka::bindings as rd;
        let event = Guard {
            ptr: rd::rd_kafka_queue_poll(self.queue.ptr, self.timeout_ms.saturating_add(1_000)),
            release: rd::rd_kafka_event_destroy,
        };
        if event.ptr.is_null() {
            let message = format!("no answer to {what} within {} ms", self.timeout_ms);
            return Err((rdkafka::types::RDKafkaErrorCode::OperationTimedOut, message));
        }
        let code = rd::rd_kafka_event_error(event.ptr);
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err((code.into(), text(rd::rd_kafka_event_error_string(event.ptr))));
        }
        Ok(event)
    }
}
