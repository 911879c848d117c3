//! Slows down password guessing per client address. The first few failures are free; after
//! that each failure doubles the wait before the next attempt is even checked (capped), and
//! the record is forgotten a while after the last failure or on success. IPv6 clients are
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
    pub fn check(&self, ip: IpAddr, now: UnixTime) -> Throttle {
        let records = self.records.lock().expect("throttle lock");
        match records.get(&key(ip)) {
            Some(r) if r.blocked_until > now => Throttle::Wait((r.blocked_until - now) as u64),
            _ => Throttle::Allowed,
        }
    }

    pub fn record_failure(&self, ip: IpAddr, now: UnixTime) {
        let mut records = self.records.lock().expect("throttle lock");
        if records.len() >= MAX_TRACKED {
            records.retain(|_, r| now - r.last_failure < FORGET_AFTER_SECS);
        }
        let record = records.entry(key(ip)).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if now - record.last_failure >= FORGET_AFTER_SECS {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        if record.failures >= FREE_FAILURES {
            let exponent = (record.failures - FREE_FAILURES).min(16);
            record.blocked_until = now + (1i64 << exponent).min(MAX_WAIT_SECS);
        }
    }

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
        for _ in 0..4 {
            t.record_failure(ip, T);
            assert_eq!(t.check(ip, T), Throttle::Allowed);
        }
        t.record_failure(ip, T); // 5th
        assert_eq!(t.check(ip, T), Throttle::Wait(1));
        assert_eq!(t.check(ip, T + 1), Throttle::Allowed);
        t.record_failure(ip, T + 1); // 6th
        assert_eq!(t.check(ip, T + 1), Throttle::Wait(2));
        for i in 0..20 {
            t.record_failure(ip, T + 2 + i);
        }
        assert_eq!(t.check(ip, T + 21), Throttle::Wait(MAX_WAIT_SECS as u64));
        // Someone else is unaffected.
        assert_eq!(
            t.check("203.0.113.10".parse().unwrap(), T + 21),
            Throttle::Allowed
        );
        // Forgotten after a quiet spell.
        t.record_failure(ip, T + 21 + FORGET_AFTER_SECS);
        assert_eq!(t.check(ip, T + 21 + FORGET_AFTER_SECS), Throttle::Allowed);
        // Success clears the record.
        for _ in 0..10 {
            t.record_failure(ip, T);
        }
        t.record_success(ip);
        assert_eq!(t.check(ip, T), Throttle::Allowed);
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
            t.record_failure(ip, T);
        }
        assert_eq!(
            t.check("2001:db8:1:2::99".parse().unwrap(), T),
            Throttle::Wait(1)
        );
        assert_eq!(
            t.check("2001:db8:1:3::1".parse().unwrap(), T),
            Throttle::Allowed
        );
    }
}
