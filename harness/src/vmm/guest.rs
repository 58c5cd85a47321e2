//! The guest model: one task that plays the guest kernel's side of every VMM request.
//!
//! The VMM queues a request (a [`KernelStep`] sequence and a delay) and signals it on a
//! vmm-sys-util [`EventFd`], as a VMM signals a guest; the task reads the eventfd's counter to
//! learn how many requests arrived, waits out each delay on tokio time, applies the sysfs
//! changes and sends the uevents to the agent's uevent source. Delivery rules (drop, delay,
//! reorder) model lost or late netlink messages.
//!
//! The task is woken through a tokio [`Notify`] next to the eventfd rather than by polling the
//! eventfd's readiness: with paused tokio time, a wake-up that depends on epoll would let the
//! clock run ahead of it, and the scenario traces would no longer be deterministic.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_fakes::{FakeNetlink, FakeSysfs, FakeUevents, lock, uevent_datagram};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::kernel::{KernelEvent, KernelStep, apply};

/// Which uevents a delivery rule applies to; absent fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UeventMatch {
    /// Exact action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Exact subsystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<String>,
    /// A substring of the devpath.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devpath: Option<String>,
    /// Exact DEVNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devname: Option<String>,
}

impl UeventMatch {
    /// Whether `event` is one of those picked.
    pub fn matches(&self, event: &KernelEvent) -> bool {
        self.action.as_ref().is_none_or(|a| *a == event.action)
            && self
                .subsystem
                .as_ref()
                .is_none_or(|s| s == event.subsystem())
            && self
                .devpath
                .as_ref()
                .is_none_or(|d| event.devpath.contains(d.as_str()))
            && self
                .devname
                .as_ref()
                .is_none_or(|n| event.var("DEVNAME") == Some(n.as_str()))
    }
}

/// What a delivery rule does to the uevents it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Never delivered (a lost netlink message).
    Drop,
    /// Delivered this much later than the kernel sent it.
    Delay(Duration),
    /// Delivered after the next `n` uevents of the same sequence (or at its end).
    Reorder(usize),
}

/// A delivery rule: applies to the next `count` uevents that `matcher` picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRule {
    /// Which uevents.
    pub matcher: UeventMatch,
    /// What happens to them.
    pub effect: Effect,
    /// How many more uevents it applies to.
    pub count: u32,
}

/// What became of one uevent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Sent on time.
    Sent,
    /// Sent late by a delay rule.
    Delayed,
    /// Sent after later uevents by a reorder rule.
    Reordered,
    /// Never sent.
    Dropped,
}

/// One entry of the guest model's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Time since boot.
    pub at: Duration,
    /// The event's SEQNUM.
    pub seqnum: u64,
    /// The event.
    pub event: KernelEvent,
    /// What became of it.
    pub fate: Fate,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.event, self.event.subsystem())?;
        for key in ["DEVNAME", "INTERFACE", "DRIVER"] {
            if let Some(value) = self.event.var(key) {
                write!(f, " {key}={value}")?;
            }
        }
        match self.fate {
            Fate::Sent => Ok(()),
            Fate::Delayed => write!(f, " (delayed)"),
            Fate::Reordered => write!(f, " (reordered)"),
            Fate::Dropped => write!(f, " (dropped)"),
        }
    }
}

/// A queued request: a kernel sequence to play after `delay`.
#[derive(Debug)]
struct Request {
    steps: Vec<KernelStep>,
    delay: Duration,
}

/// Work the task holds, keyed by (due time, arrival order).
#[derive(Debug)]
enum Pending {
    Play(Vec<KernelStep>),
    Deliver(u64, KernelEvent),
}

struct Shared {
    kick: EventFd,
    wake: Notify,
    inbox: Mutex<VecDeque<Request>>,
    rules: Mutex<Vec<DeliveryRule>>,
    log: Mutex<Vec<Delivery>>,
    /// Requests and delayed deliveries not finished yet.
    outstanding: AtomicUsize,
    seqnum: AtomicU64,
    boot: Instant,
    sysfs: Arc<FakeSysfs>,
    netlink: Arc<FakeNetlink>,
    uevents: Arc<FakeUevents>,
}

/// The guest kernel model and its task. Dropping it stops the task.
pub struct GuestKernel {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for GuestKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestKernel")
            .field(
                "outstanding",
                &self.shared.outstanding.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for GuestKernel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GuestKernel {
    /// Starts the model's task on the current tokio runtime. The first uevent gets
    /// `first_seqnum`.
    pub fn start(
        sysfs: Arc<FakeSysfs>,
        netlink: Arc<FakeNetlink>,
        uevents: Arc<FakeUevents>,
        first_seqnum: u64,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            kick: EventFd::new(EFD_NONBLOCK)?,
            wake: Notify::new(),
            inbox: Mutex::default(),
            rules: Mutex::default(),
            log: Mutex::default(),
            outstanding: AtomicUsize::new(0),
            seqnum: AtomicU64::new(first_seqnum),
            boot: Instant::now(),
            sysfs,
            netlink,
            uevents,
        });
        let task = tokio::spawn(run(shared.clone()));
        Ok(GuestKernel { shared, task })
    }

    /// Queues `steps` to be played after `delay` and signals the guest through the eventfd.
    pub fn submit(&self, steps: Vec<KernelStep>, delay: Duration) -> io::Result<()> {
        let shared = &self.shared;
        shared.outstanding.fetch_add(1, Ordering::SeqCst);
        lock(&shared.inbox).push_back(Request { steps, delay });
        if let Err(e) = shared.kick.write(1) {
            lock(&shared.inbox).pop_back();
            shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        shared.wake.notify_one();
        Ok(())
    }

    /// Plays the sysfs changes of `steps` at once (the kernel does them inside the write that
    /// triggered them) and queues their uevents for immediate delivery.
    pub fn play_now(&self, steps: Vec<KernelStep>) -> io::Result<()> {
        let mut events = Vec::new();
        for step in steps {
            match step {
                KernelStep::Sysfs(op) => {
                    apply(&self.shared.sysfs, &self.shared.netlink, &op)?;
                }
                event @ KernelStep::Event(_) => events.push(event),
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        self.submit(events, Duration::ZERO)
    }

    /// Adds a delivery rule, applied before the rules added earlier that are still active.
    pub fn add_rule(&self, rule: DeliveryRule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Whether every request was played, every uevent delivered and received by the agent.
    pub fn is_idle(&self) -> bool {
        self.shared.outstanding.load(Ordering::SeqCst) == 0 && self.shared.uevents.queued() == 0
    }

    /// Every uevent played so far, in order.
    pub fn log(&self) -> Vec<Delivery> {
        lock(&self.shared.log).clone()
    }

    /// The SEQNUM the next uevent gets.
    pub fn next_seqnum(&self) -> u64 {
        self.shared.seqnum.load(Ordering::SeqCst)
    }
}

async fn run(shared: Arc<Shared>) {
    let mut schedule: BTreeMap<(Instant, u64), Pending> = BTreeMap::new();
    let mut order = 0u64;
    loop {
        // The eventfd counts requests since the last read; WouldBlock means none.
        match shared.kick.read() {
            Ok(count) => {
                let now = Instant::now();
                for _ in 0..count {
                    let Some(req) = lock(&shared.inbox).pop_front() else {
                        break;
                    };
                    schedule.insert((now + req.delay, order), Pending::Play(req.steps));
                    order += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::error!(error = %e, "guest model: eventfd read failed"),
        }
        let now = Instant::now();
        while let Some(entry) = schedule.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Pending::Play(steps) => {
                    for (delay, seqnum, event) in shared.play(steps) {
                        shared.outstanding.fetch_add(1, Ordering::SeqCst);
                        schedule.insert((now + delay, order), Pending::Deliver(seqnum, event));
                        order += 1;
                    }
                }
                Pending::Deliver(seqnum, event) => shared.deliver(seqnum, event, Fate::Delayed),
            }
            shared.outstanding.fetch_sub(1, Ordering::SeqCst);
        }
        match schedule.keys().next() {
            Some(&(when, _)) => tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep_until(when) => {}
            },
            None => shared.wake.notified().await,
        }
    }
}

impl Shared {
    /// Plays one sequence; returns the uevents a delay rule holds back.
    fn play(&self, steps: Vec<KernelStep>) -> Vec<(Duration, u64, KernelEvent)> {
        let mut delayed = Vec::new();
        // Reordered uevents: how many more must go before each.
        let mut held: Vec<(usize, u64, KernelEvent)> = Vec::new();
        let mut ifindex: Option<u32> = None;
        for step in steps {
            let mut event = match step {
                KernelStep::Sysfs(op) => {
                    match apply(&self.sysfs, &self.netlink, &op) {
                        Ok(Some(index)) => ifindex = Some(index),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, ?op, "guest model: sysfs change failed")
                        }
                    }
                    continue;
                }
                KernelStep::Event(event) => event,
            };
            if let Some(index) = ifindex {
                for (_, value) in &mut event.fields {
                    if value == "{ifindex}" {
                        *value = index.to_string();
                    }
                }
            }
            let seqnum = match event.seqnum {
                Some(n) => n,
                None => self.seqnum.fetch_add(1, Ordering::SeqCst),
            };
            match self.effect_for(&event) {
                None => {
                    self.deliver(seqnum, event, Fate::Sent);
                    self.release_held(&mut held);
                }
                Some(Effect::Drop) => self.record(seqnum, event, Fate::Dropped),
                Some(Effect::Delay(by)) => delayed.push((by, seqnum, event)),
                Some(Effect::Reorder(after)) => held.push((after, seqnum, event)),
            }
        }
        for (_, seqnum, event) in held {
            self.deliver(seqnum, event, Fate::Reordered);
        }
        delayed
    }

    /// Counts one delivered uevent against the held ones; sends those whose turn came.
    fn release_held(&self, held: &mut Vec<(usize, u64, KernelEvent)>) {
        for entry in held.iter_mut() {
            entry.0 = entry.0.saturating_sub(1);
        }
        while let Some(pos) = held.iter().position(|(left, _, _)| *left == 0) {
            let (_, seqnum, event) = held.remove(pos);
            self.deliver(seqnum, event, Fate::Reordered);
        }
    }

    /// The effect of the newest matching rule, consuming one of its uses.
    fn effect_for(&self, event: &KernelEvent) -> Option<Effect> {
        let mut rules = lock(&self.rules);
        let pos = rules.iter().rposition(|r| r.matcher.matches(event))?;
        let rule = &mut rules[pos];
        let effect = rule.effect;
        rule.count = rule.count.saturating_sub(1);
        if rule.count == 0 {
            rules.remove(pos);
        }
        Some(effect)
    }

    fn deliver(&self, seqnum: u64, event: KernelEvent, fate: Fate) {
        let fields: Vec<(&str, &str)> = event
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.uevents.send(uevent_datagram(
            &event.action,
            &event.devpath,
            &fields,
            seqnum,
        ));
        self.record(seqnum, event, fate);
    }

    fn record(&self, seqnum: u64, event: KernelEvent, fate: Fate) {
        lock(&self.log).push(Delivery {
            at: Instant::now() - self.boot,
            seqnum,
            event,
            fate,
        });
    }
}
