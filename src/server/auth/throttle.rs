//! Slows down password guessing per client address. The first few failures are free; after
//! that each failure doubles the wait before the next attempt is even checked (capped), and
//! the record is forgotten a while after the last failure or on success. An attempt counts
//! as a failure from the moment it starts, so a burst sent at once is throttled like the same
//! attempts sent one after another. IPv6 clients are
//! grouped by /64, which is what one host usually gets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::server::clock::UnixTime;

const FREE_FAILURES: u32 = 5;
const MAX_WAIT_SECS: i64 = 5 * 60;
/// A client's record is dropped this long after its last failure.
const FORGET_AFTER_SECS: i64 = 15 * 60;
/// Bound on memory under a spray from many addresses.
const MAX_TRACKED: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    Allowed,
    /// Try again in this many seconds.
    Wait(u64),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: UnixTime,
    blocked_until: UnixTime,
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    records: Mutex<HashMap<IpAddr, Record>>,
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl LoginThrottle {
    /// Counts a login attempt before its password is checked, as a failure until it proves
    /// otherwise (`record_success`). Attempts sent all at once are thus counted as they
    /// arrive, not when their slow checks end, and concurrency buys an attacker nothing.
    /// `Wait` when the address must wait first; that attempt is refused and not counted.
    pub fn begin_attempt(&self, ip: IpAddr, now: UnixTime) -> Throttle {
        let mut records = self.records.lock().expect("throttle lock");
        if records.len() >= MAX_TRACKED {
            records.retain(|_, r| now - r.last_failure < FORGET_AFTER_SECS);
        }
        let record = records.entry(key(ip)).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if record.blocked_until > now {
            return Throttle::Wait((record.blocked_until - now) as u64);
        }
        if now - record.last_failure >= FORGET_AFTER_SECS {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        if record.failures >= FREE_FAILURES {
            let exponent = (record.failures - FREE_FAILURES).min(16);
            record.blocked_until = now + (1i64 << exponent).min(MAX_WAIT_SECS);
        }
        Throttle::Allowed
    }

    /// The attempt's password was right: the address starts afresh.
    pub fn record_success(&self, ip: IpAddr) {
        self.records.lock().expect("throttle lock").remove(&key(ip));
    }
}

/// At most `limit` events per client address per `window` seconds (fixed windows). For cheap
/// but unauthenticated actions that write state, like starting an identity-provider login.
#[derive(Debug)]
pub struct WindowLimiter {
    limit: u32,
    window: i64,
    counts: Mutex<HashMap<IpAddr, (UnixTime, u32)>>,
}

impl WindowLimiter {
    pub fn new(limit: u32, window: i64) -> Self {
        WindowLimiter {
            limit,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, ip: IpAddr, now: UnixTime) -> bool {
        let mut counts = self.counts.lock().expect("limiter lock");
        if counts.len() >= MAX_TRACKED {
            let window = self.window;
            counts.retain(|_, (start, _)| now - *start < window);
        }
        let entry = counts.entry(key(ip)).or_insert((now, 0));
        if now - entry.0 >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_000_000;

    #[test]
    fn failures_back_off_then_reset() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(t.begin_attempt(ip, T), Throttle::Allowed);
        }
        // The fifth attempt was counted before its check ended: the sixth waits.
        assert_eq!(t.begin_attempt(ip, T), Throttle::Wait(1));
        assert_eq!(t.begin_attempt(ip, T + 1), Throttle::Allowed); // 6th
        assert_eq!(t.begin_attempt(ip, T + 1), Throttle::Wait(2));
        for i in 0..40 {
            t.begin_attempt(ip, T + 3 + i * MAX_WAIT_SECS);
        }
        let last = T + 3 + 39 * MAX_WAIT_SECS;
        assert_eq!(
            t.begin_attempt(ip, last),
            Throttle::Wait(MAX_WAIT_SECS as u64)
        );
        // Someone else is unaffected.
        assert_eq!(
            t.begin_attempt("203.0.113.10".parse().unwrap(), last),
            Throttle::Allowed
        );
        // Forgotten after a quiet spell.
        let later = last + FORGET_AFTER_SECS;
        assert_eq!(t.begin_attempt(ip, later), Throttle::Allowed);
        assert_eq!(t.begin_attempt(ip, later), Throttle::Allowed);
        // Success clears the record.
        for _ in 0..10 {
            t.begin_attempt(ip, T);
        }
        t.record_success(ip);
        assert_eq!(t.begin_attempt(ip, T), Throttle::Allowed);
    }

    #[test]
    fn attempts_at_once_are_counted_as_they_arrive() {
        let t = std::sync::Arc::new(LoginThrottle::default());
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || t.begin_attempt(ip, T))
            })
            .collect();
        let allowed = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|r| *r == Throttle::Allowed)
            .count();
        assert_eq!(allowed, FREE_FAILURES as usize);
    }

    #[test]
    fn window_limiter() {
        let l = WindowLimiter::new(2, 60);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.allow(ip, T));
        assert!(l.allow(ip, T + 1));
        assert!(!l.allow(ip, T + 2));
        assert!(l.allow("192.0.2.2".parse().unwrap(), T + 2));
        assert!(l.allow(ip, T + 60));
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let t = LoginThrottle::default();
        for i in 0..5u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i));
            t.begin_attempt(ip, T);
        }
        assert_eq!(
            t.begin_attempt("2001:db8:1:2::99".parse().unwrap(), T),
            Throttle::Wait(1)
        );
        assert_eq!(
            t.begin_attempt("2001:db8:1:3::1".parse().unwrap(), T),
            Throttle::Allowed
        );
    }
}
