//! The Kafka Admin API from this machine, through librdkafka, with the broker's advertised
//! address rewritten to the one it publishes.
//!
//! A stack's broker advertises the address containers use (`redpanda:9092`); from the host
//! that name does not resolve, and every client that follows the metadata fails after the
//! bootstrap connection. librdkafka's `resolve_cb` (installed here on the native config,
//! since rust-rdkafka has no hook for it) looks each `host:port` up in a rewrite table before
//! resolving it, so `redpanda:9092` becomes `127.0.0.1:<published port>`.
//!
//! rust-rdkafka's `AdminClient` builds its own native config, so the admin calls are made
//! here on a plain [`Client`] through `rdkafka-sys`: each one builds its request objects,
//! runs on a private queue and is read back as an owned Rust value before anything is freed.
//! The calls block; run them off the async runtime (`spawn_blocking`).

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::Client;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr, RDKafkaType};
use rdkafka::{ClientConfig, ClientContext};

/// How long one admin request, and the broker's side of it, may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An admin request the broker refused or could not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub code: RDKafkaErrorCode,
    pub message: String,
}

impl AdminError {
    /// The broker does not implement the request (tansu has no CreatePartitions,
    /// AlterConfigs or DescribeConfigs for topics).
    pub fn unsupported(&self) -> bool {
        matches!(
            self.code,
            RDKafkaErrorCode::UnsupportedFeature
                | RDKafkaErrorCode::UnsupportedVersion
                | RDKafkaErrorCode::InvalidRequest
        )
    }

    fn new(code: RDKafkaRespErr, message: Option<String>) -> Self {
        let code = RDKafkaErrorCode::from(code);
        let message = message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| code.to_string());
        Self { code, message }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.message, self.code)
    }
}

impl std::error::Error for AdminError {}

/// The client's context: the rewrite table the resolve callback reads.
struct Rewrites {
    /// `host:port` as advertised -> (host, port) to resolve instead.
    table: BTreeMap<String, (CString, CString)>,
}

impl ClientContext for Rewrites {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _message: &str) {}
}

/// librdkafka's `rd_kafka_conf_set_resolve_cb` (librdkafka >= 2.2), which rdkafka-sys's
/// generated bindings leave out; the symbol is in the librdkafka rdkafka-sys links.
type ResolveCb = unsafe extern "C" fn(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
    opaque: *mut c_void,
) -> c_int;

unsafe extern "C" {
    fn rd_kafka_conf_set_resolve_cb(conf: *mut rd::rd_kafka_conf_t, cb: Option<ResolveCb>);
}

/// Resolves `node:service`, through the rewrite table; librdkafka calls it with both null to
/// free a result it was given.
unsafe extern "C" fn resolve(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: librdkafka passes the pointers of getaddrinfo(3)'s contract; `opaque` is the
    // conf opaque rust-rdkafka sets to the client's context, a `Rewrites` kept alive by the
    // client for as long as librdkafka may call back.
    unsafe {
        if node.is_null() && service.is_null() {
            if !res.is_null() && !(*res).is_null() {
                libc::freeaddrinfo(*res);
            }
            return 0;
        }
        let rewrites = &*(opaque as *const Rewrites);
        let key = format!(
            "{}:{}",
            CStr::from_ptr(node).to_string_lossy(),
            if service.is_null() {
                "".into()
            } else {
                CStr::from_ptr(service).to_string_lossy()
            }
        );
        match rewrites.table.get(&key) {
            Some((host, port)) => libc::getaddrinfo(host.as_ptr(), port.as_ptr(), hints, res),
            None => libc::getaddrinfo(node, service, hints, res),
        }
    }
}

/// A librdkafka client of `kind` through `bootstrap`, its advertised addresses looked up in
/// `rewrites` (advertised `host:port` -> reachable `host:port`) by the resolve callback;
/// `settings` are added to the client's configuration.
fn client(
    bootstrap: &str,
    rewrites: &[(String, String)],
    kind: RDKafkaType,
    settings: &[(&str, &str)],
) -> anyhow::Result<Client<Rewrites>> {
    let mut table = BTreeMap::new();
    for (from, to) in rewrites {
        let (host, port) = to
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("broker address {to:?} has no port"))?;
        table.insert(from.clone(), (CString::new(host)?, CString::new(port)?));
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("log_level", "0");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let native = config.create_native_config()?;
    // SAFETY: `native` is a live conf; the callback only reads the context, which the
    // client owns (see `resolve`).
    unsafe { rd_kafka_conf_set_resolve_cb(native.ptr(), Some(resolve)) };
    // SAFETY: as above; `delivered` reads only the message it is given (see `Admin::produce`).
    unsafe { rd::rd_kafka_conf_set_dr_msg_cb(native.ptr(), Some(delivered)) };
    Ok(Client::new(&config, native, kind, Rewrites { table })?)
}

/// Where a produced message's delivery report is written: its error and offset.
type Report = Mutex<Option<(RDKafkaRespErr, i64)>>;

/// librdkafka's delivery report callback: writes the outcome to the message's [`Report`]
/// and releases the reference `Admin::produce` gave it.
unsafe extern "C" fn delivered(
    _rk: *mut rd::rd_kafka_t,
    message: *const rd::rd_kafka_message_t,
    _opaque: *mut c_void,
) {
    // SAFETY: `message` is live for the call; its `_private` is null or the
    // `Arc::into_raw` of a `Report` that `Admin::produce` handed to exactly this message.
    unsafe {
        let m = &*message;
        if m._private.is_null() {
            return;
        }
        let report = Arc::from_raw(m._private as *const Report);
        *report.lock().unwrap_or_else(|e| e.into_inner()) = Some((m.err, m.offset));
    }
}

/// A Kafka admin connection from this machine.
pub struct Admin {
    client: Client<Rewrites>,
}

impl Admin {
    /// Connects through `bootstrap` (`127.0.0.1:9092`); `rewrites` maps advertised
    /// `host:port`s to reachable ones (`redpanda:9092` -> `127.0.0.1:9092`).
    pub fn connect(bootstrap: &str, rewrites: &[(String, String)]) -> anyhow::Result<Self> {
        let timeout = TIMEOUT.as_millis().to_string();
        let client = client(
            bootstrap,
            rewrites,
            RDKafkaType::RD_KAFKA_PRODUCER,
            &[("message.timeout.ms", &timeout)],
        )?;
        Ok(Self { client })
    }

    /// Every topic and its partition count (internal `__` topics left out).
    pub fn topics(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let metadata = self.client.fetch_metadata(None, TIMEOUT)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect())
    }

    /// CreateTopics for one topic with its settings.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, String)],
    ) -> Result<(), AdminError> {
        let name_c = cstring(name)?;
        let mut err = ErrBuf::new();
        // SAFETY: every object made here is freed below, after its result was copied out.
        unsafe {
            let mut topic = rd::rd_kafka_NewTopic_new(
                name_c.as_ptr(),
                partitions,
                replication,
                err.ptr(),
                err.len(),
            );
            if topic.is_null() {
                return Err(err.error());
            }
            let _topic = Guard(topic, rd::rd_kafka_NewTopic_destroy);
            for (key, value) in configs {
                let (key, value) = (cstring(key)?, cstring(value)?);
                let code = rd::rd_kafka_NewTopic_set_config(topic, key.as_ptr(), value.as_ptr());
                check(code, None)?;
            }
            let event = self.call(
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
                |rk, opts, queue| rd::rd_kafka_CreateTopics(rk, &mut topic, 1, opts, queue),
            )?;
            let result = rd::rd_kafka_event_CreateTopics_result(event.0);
            let mut count = 0;
            let topics = rd::rd_kafka_CreateTopics_result_topics(result, &mut count);
            topic_results(topics, count)
        }
    }

    /// CreatePartitions: raises `name` to `total` partitions.
    pub fn create_partitions(&self, name: &str, total: usize) -> Result<(), AdminError> {
        let name_c = cstring(name)?;
        let mut err = ErrBuf::new();
        // SAFETY: as in `create_topic`.
        unsafe {
            let mut parts =
                rd::rd_kafka_NewPartitions_new(name_c.as_ptr(), total, err.ptr(), err.len());
            if parts.is_null() {
                return Err(err.error());
            }
            let _parts = Guard(parts, rd::rd_kafka_NewPartitions_destroy);
            let event = self.call(
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
                |rk, opts, queue| rd::rd_kafka_CreatePartitions(rk, &mut parts, 1, opts, queue),
            )?;
            let result = rd::rd_kafka_event_CreatePartitions_result(event.0);
            let mut count = 0;
            let topics = rd::rd_kafka_CreatePartitions_result_topics(result, &mut count);
            topic_results(topics, count)
        }
    }

    /// DescribeConfigs: the topic's settings, name -> value.
    pub fn describe_configs(&self, name: &str) -> Result<BTreeMap<String, String>, AdminError> {
        let name_c = cstring(name)?;
        // SAFETY: as in `create_topic`; entries are copied before the event is destroyed.
        unsafe {
            let mut resource = rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name_c.as_ptr(),
            );
            let _resource = Guard(resource, rd::rd_kafka_ConfigResource_destroy);
            let event = self.call(
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                |rk, opts, queue| rd::rd_kafka_DescribeConfigs(rk, &mut resource, 1, opts, queue),
            )?;
            let result = rd::rd_kafka_event_DescribeConfigs_result(event.0);
            let mut count = 0;
            let resources = rd::rd_kafka_DescribeConfigs_result_resources(result, &mut count);
            let mut configs = BTreeMap::new();
            for i in 0..count {
                let res = *resources.add(i);
                check(
                    rd::rd_kafka_ConfigResource_error(res),
                    text(rd::rd_kafka_ConfigResource_error_string(res)),
                )?;
                let mut n = 0;
                let entries = rd::rd_kafka_ConfigResource_configs(res, &mut n);
                for j in 0..n {
                    let entry = *entries.add(j);
                    if let (Some(k), Some(v)) = (
                        text(rd::rd_kafka_ConfigEntry_name(entry)),
                        text(rd::rd_kafka_ConfigEntry_value(entry)),
                    ) {
                        configs.insert(k, v);
                    }
                }
            }
            Ok(configs)
        }
    }

    /// IncrementalAlterConfigs: sets `configs` on the topic, leaving its other settings.
    pub fn alter_configs(&self, name: &str, configs: &[(&str, String)]) -> Result<(), AdminError> {
        let name_c = cstring(name)?;
        // SAFETY: as in `create_topic`.
        unsafe {
            let mut resource = rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name_c.as_ptr(),
            );
            let _resource = Guard(resource, rd::rd_kafka_ConfigResource_destroy);
            for (key, value) in configs {
                let (key, value) = (cstring(key)?, cstring(value)?);
                let error = rd::rd_kafka_ConfigResource_add_incremental_config(
                    resource,
                    key.as_ptr(),
                    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    value.as_ptr(),
                );
                if !error.is_null() {
                    let err = AdminError::new(
                        rd::rd_kafka_error_code(error),
                        text(rd::rd_kafka_error_string(error)),
                    );
                    rd::rd_kafka_error_destroy(error);
                    return Err(err);
                }
            }
            let event = self.call(
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
                |rk, opts, queue| {
                    rd::rd_kafka_IncrementalAlterConfigs(rk, &mut resource, 1, opts, queue)
                },
            )?;
            let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.0);
            let mut count = 0;
            let resources =
                rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
            for i in 0..count {
                let res = *resources.add(i);
                check(
                    rd::rd_kafka_ConfigResource_error(res),
                    text(rd::rd_kafka_ConfigResource_error_string(res)),
                )?;
            }
            Ok(())
        }
    }

    /// Produces one message to `partition` of `topic` and waits for the broker's
    /// acknowledgement; returns the offset it was written at. For checks and tests that need
    /// a message on a topic through the rewritten address (rust-rdkafka's producers, like its
    /// consumers, cannot have the resolve callback).
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<i64, AdminError> {
        let topic_c = cstring(topic)?;
        let rk = self.client.native_ptr();
        let ms = c_int::try_from(TIMEOUT.as_millis()).unwrap_or(c_int::MAX);
        // One reference for the delivery callback, which takes it back (see `delivered`).
        let report = Arc::new(Mutex::new(None::<(RDKafkaRespErr, i64)>));
        // SAFETY: `rk` is the live client; payload and key are copied by librdkafka
        // (MSG_F_COPY) before `rd_kafka_produce` returns; the report outlives the message
        // however long it stays queued, since the callback owns a reference to it.
        unsafe {
            let rkt = rd::rd_kafka_topic_new(rk, topic_c.as_ptr(), std::ptr::null_mut());
            if rkt.is_null() {
                return Err(AdminError::new(rd::rd_kafka_last_error(), None));
            }
            let _topic = Guard(rkt, rd::rd_kafka_topic_destroy);
            let opaque = Arc::into_raw(report.clone()) as *mut c_void;
            let (key_ptr, key_len) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
            let queued = rd::rd_kafka_produce(
                rkt,
                partition,
                rd::RD_KAFKA_MSG_F_COPY as c_int,
                payload.as_ptr() as *mut c_void,
                payload.len(),
                key_ptr.cast(),
                key_len,
                opaque,
            );
            if queued == -1 {
                drop(Arc::from_raw(opaque as *const Report));
                return Err(AdminError::new(rd::rd_kafka_last_error(), None));
            }
            // Serves the delivery callback; the message times out after TIMEOUT at most.
            rd::rd_kafka_flush(rk, ms.saturating_add(5_000));
        }
        let reported = *report.lock().unwrap_or_else(|e| e.into_inner());
        match reported {
            Some((RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR, offset)) => Ok(offset),
            Some((code, _)) => Err(AdminError::new(code, None)),
            None => Err(AdminError::new(
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT,
                Some(format!(
                    "no delivery report within {}s",
                    TIMEOUT.as_secs() + 5
                )),
            )),
        }
    }

    /// Runs one admin request on a private queue and returns its result event, or the
    /// request-level error (timeout, unsupported by the broker).
    ///
    /// # Safety
    /// `request` must start exactly one admin operation of kind `op` on the queue it is given.
    unsafe fn call(
        &self,
        op: rd::rd_kafka_admin_op_t,
        request: impl FnOnce(
            *mut rd::rd_kafka_t,
            *const rd::rd_kafka_AdminOptions_t,
            *mut rd::rd_kafka_queue_t,
        ),
    ) -> Result<Guard<rd::rd_kafka_event_t>, AdminError> {
        let rk = self.client.native_ptr();
        let ms = c_int::try_from(TIMEOUT.as_millis()).unwrap_or(c_int::MAX);
        let mut err = ErrBuf::new();
        // SAFETY: `rk` is the live client; options and queue are freed by their guards after
        // the event (declared later, so dropped first) has been taken off the queue.
        unsafe {
            let queue = Guard(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy);
            let options = Guard(
                rd::rd_kafka_AdminOptions_new(rk, op),
                rd::rd_kafka_AdminOptions_destroy,
            );
            check(
                rd::rd_kafka_AdminOptions_set_request_timeout(options.0, ms, err.ptr(), err.len()),
                None,
            )?;
            // The broker-side operation timeout exists only for these requests; librdkafka
            // refuses it (invalid argument) on the others.
            if matches!(
                op,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS
                    | rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS
            ) {
                check(
                    rd::rd_kafka_AdminOptions_set_operation_timeout(
                        options.0,
                        ms,
                        err.ptr(),
                        err.len(),
                    ),
                    None,
                )?;
            }
            request(rk, options.0, queue.0);
            let event = rd::rd_kafka_queue_poll(queue.0, ms.saturating_add(5_000));
            if event.is_null() {
                return Err(AdminError::new(
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT,
                    Some(format!(
                        "no answer from the broker within {}s",
                        TIMEOUT.as_secs() + 5
                    )),
                ));
            }
            let event = Guard(event, rd::rd_kafka_event_destroy);
            check(
                rd::rd_kafka_event_error(event.0),
                text(rd::rd_kafka_event_error_string(event.0)),
            )?;
            Ok(event)
        }
    }
}

/// A message found on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// A test of a message's key (if any) and payload.
pub type Matches<'a> = dyn Fn(Option<&[u8]>, &[u8]) -> bool + 'a;

/// How long one wait for the next message may block, so the deadline is kept to within it.
const POLL: Duration = Duration::from_millis(200);

/// Reads `topic` from the beginning of every partition until a message satisfies `matches`
/// (given the key, if any, and the payload) or `deadline` passes (Ok(None)); errors for an
/// unknown topic or an unreachable broker (no metadata within `deadline`, at most 15 s).
///
/// Connects through `bootstrap` with `rewrites` as [`Admin::connect`] does, and reads with
/// librdkafka's simple (legacy) consumer: no consumer group, nothing committed. Reaching the
/// end of a partition is not the end of the search: a producer may still write to it before
/// the deadline. Blocks; run it off the async runtime (`spawn_blocking`).
pub fn find_message(
    bootstrap: &str,
    rewrites: &[(String, String)],
    topic: &str,
    matches: &Matches<'_>,
    deadline: Duration,
) -> anyhow::Result<Option<Found>> {
    let until = Instant::now() + deadline;
    let client = client(
        bootstrap,
        rewrites,
        RDKafkaType::RD_KAFKA_CONSUMER,
        &[
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ],
    )?;
    let metadata = client
        .fetch_metadata(Some(topic), deadline.min(TIMEOUT))
        .map_err(|e| anyhow::anyhow!("no metadata for topic {topic:?} from {bootstrap}: {e}"))?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) => match t.error() {
            Some(code) => {
                let err = AdminError::new(code, None);
                anyhow::bail!("topic {topic:?}: {err}")
            }
            None => t.partitions().iter().map(|p| p.id()).collect(),
        },
        None => anyhow::bail!("topic {topic:?} is not in the broker's metadata"),
    };
    if partitions.is_empty() {
        anyhow::bail!("topic {topic:?} has no partitions");
    }
    let topic_c = CString::new(topic)?;
    let rk = client.native_ptr();
    // SAFETY: `rk` is the live client, which outlives every object made here; the guards are
    // dropped in reverse order (partitions stopped, then the queue, then the topic), and each
    // message is copied out before its guard destroys it.
    unsafe {
        let rkt = rd::rd_kafka_topic_new(rk, topic_c.as_ptr(), std::ptr::null_mut());
        if rkt.is_null() {
            let err = AdminError::new(rd::rd_kafka_last_error(), None);
            anyhow::bail!("topic {topic:?}: {err}");
        }
        let _topic = Guard(rkt, rd::rd_kafka_topic_destroy);
        let queue = Guard(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy);
        let mut started = Started {
            topic: rkt,
            partitions: Vec::with_capacity(partitions.len()),
        };
        for &partition in &partitions {
            let offset = i64::from(rd::RD_KAFKA_OFFSET_BEGINNING);
            if rd::rd_kafka_consume_start_queue(rkt, partition, offset, queue.0) == -1 {
                let err = AdminError::new(rd::rd_kafka_last_error(), None);
                anyhow::bail!("consuming {topic:?} partition {partition}: {err}");
            }
            started.partitions.push(partition);
        }
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = c_int::try_from(left.min(POLL).as_millis()).unwrap_or(c_int::MAX);
            let message = rd::rd_kafka_consume_queue(queue.0, ms);
            if message.is_null() {
                continue;
            }
            let message = Guard(message, rd::rd_kafka_message_destroy);
            let m = &*message.0;
            match m.err {
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => {}
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF => continue,
                code => {
                    let err = AdminError::new(code, text(rd::rd_kafka_message_errstr(m)));
                    anyhow::bail!("consuming {topic:?} partition {}: {err}", m.partition);
                }
            }
            let key = bytes(m.key, m.key_len);
            let payload = bytes(m.payload, m.len).unwrap_or_default();
            if matches(key.as_deref(), &payload) {
                return Ok(Some(Found {
                    partition: m.partition,
                    offset: m.offset,
                    key,
                    payload,
                }));
            }
        }
    }
}

/// The partitions a simple consumer was started on, stopped when dropped.
struct Started {
    topic: *mut rd::rd_kafka_topic_t,
    partitions: Vec<i32>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for &partition in &self.partitions {
            // SAFETY: the topic is live (its guard is dropped after this) and consumption
            // was started on `partition`; the queue it fed is still live too.
            unsafe { rd::rd_kafka_consume_stop(self.topic, partition) };
        }
    }
}

/// An owned copy of a message's key or payload (None for null).
///
/// # Safety
/// `ptr` is null or points to `len` readable bytes.
unsafe fn bytes(ptr: *const c_void, len: usize) -> Option<Vec<u8>> {
    // SAFETY: per the function's contract.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec())
}

/// Frees a librdkafka object when dropped.
struct Guard<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching constructor and is freed once.
            unsafe { (self.1)(self.0) }
        }
    }
}

/// librdkafka's `errstr` buffer.
struct ErrBuf([c_char; 512]);

impl ErrBuf {
    fn new() -> Self {
        Self([0; 512])
    }
    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn error(&self) -> AdminError {
        // SAFETY: the buffer is zeroed and librdkafka writes a NUL-terminated string into it.
        let message = unsafe { text(self.0.as_ptr()) };
        AdminError::new(RDKafkaRespErr::RD_KAFKA_RESP_ERR__INVALID_ARG, message)
    }
}

fn cstring(value: &str) -> Result<CString, AdminError> {
    CString::new(value).map_err(|_| {
        AdminError::new(
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__INVALID_ARG,
            Some(format!("{value:?} contains a NUL byte")),
        )
    })
}

/// An owned copy of a C string librdkafka returned (None for null).
///
/// # Safety
/// `s` is null or a valid NUL-terminated string.
unsafe fn text(s: *const c_char) -> Option<String> {
    // SAFETY: per the function's contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

fn check(code: RDKafkaRespErr, message: Option<String>) -> Result<(), AdminError> {
    if code == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(AdminError::new(code, message))
    }
}

/// The first error among per-topic results.
///
/// # Safety
/// `topics` points to `count` valid topic results.
unsafe fn topic_results(
    topics: *mut *const rd::rd_kafka_topic_result_t,
    count: usize,
) -> Result<(), AdminError> {
    if topics.is_null() {
        return Ok(());
    }
    for i in 0..count {
        // SAFETY: per the function's contract.
        unsafe {
            let topic = *topics.add(i);
            check(
                rd::rd_kafka_topic_result_error(topic),
                text(rd::rd_kafka_topic_result_error_string(topic)),
            )?;
        }
    }
    Ok(())
}
