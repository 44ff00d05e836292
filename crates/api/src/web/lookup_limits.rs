//! How often a bill may be looked up, and how often one client may look bills up: the
//! abuse limits of the verification pages (and the count of lookups the result page
//! shows, 查验次数).
//!
//! Fixed windows: a bill's counter runs for a UTC day, a client's for a minute. Both
//! tables are bounded ([`LookupLimits::max_tracked_bills`],
//! [`LookupLimits::max_tracked_clients`]): a table that is full is swept of windows
//! that have ended, and if it is still full a new key is refused (answered 429 like a
//! key over its limit) rather than letting the table grow or forgetting a live count,
//! which would reset an attacker's budget. Lookups of an unknown bill and of a bill
//! with a wrong check code count alike, so the counts tell nothing about which bills
//! exist.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use ebill_types::BillId;

/// Milliseconds of a bill's window: one UTC day.
pub const BILL_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// Milliseconds of a client's window: one minute.
pub const CLIENT_WINDOW_MS: u64 = 60 * 1000;

/// The limits (keys of the node config's `[http]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupLimits {
    /// Most lookups of one bill (code and number) per UTC day.
    pub lookups_per_bill_per_day: u32,
    /// Most lookups from one client address (an IPv6 client by its /64) per minute.
    pub lookups_per_client_per_minute: u32,
    /// Most bills whose counters are kept at once.
    pub max_tracked_bills: usize,
    /// Most clients whose counters are kept at once.
    pub max_tracked_clients: usize,
}

impl Default for LookupLimits {
    fn default() -> Self {
        Self {
            lookups_per_bill_per_day: 20,
            lookups_per_client_per_minute: 60,
            max_tracked_bills: 200_000,
            max_tracked_clients: 100_000,
        }
    }
}

/// Why a lookup was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This client looked up too many bills this minute.
    Client {
        /// Seconds until its window ends.
        retry_after_s: u64,
    },
    /// This bill was looked up too often today.
    Bill {
        /// Seconds until the day ends (UTC).
        retry_after_s: u64,
    },
}

impl Refusal {
    /// Seconds to wait.
    pub fn retry_after_s(&self) -> u64 {
        match self {
            Refusal::Client { retry_after_s } | Refusal::Bill { retry_after_s } => *retry_after_s,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    index: u64,
    count: u32,
}

/// One bounded table of fixed-window counters.
#[derive(Debug)]
struct Counters<K> {
    map: Mutex<HashMap<K, Window>>,
    capacity: usize,
    window_ms: u64,
    limit: u32,
}

impl<K: Hash + Eq + Copy> Counters<K> {
    fn new(capacity: usize, window_ms: u64, limit: u32) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
            window_ms,
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Window>> {
        // Each entry is replaced in one step: a panic cannot leave one half written.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retry_after_s(&self, now_ms: u64) -> u64 {
        let left_ms = self.window_ms - now_ms % self.window_ms;
        left_ms.div_ceil(1000).max(1)
    }

    /// Counts one lookup of `key`; the count in this window, or `Err` with the seconds
    /// until the window ends if over the limit or the table is full.
    fn hit(&self, key: K, now_ms: u64) -> Result<u32, u64> {
        let index = now_ms / self.window_ms;
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= self.capacity {
            map.retain(|_, w| w.index == index);
            if map.len() >= self.capacity {
                return Err(self.retry_after_s(now_ms));
            }
        }
        let w = map.entry(key).or_insert(Window { index, count: 0 });
        if w.index != index {
            *w = Window { index, count: 0 };
        }
        if w.count >= self.limit {
            return Err(self.retry_after_s(now_ms));
        }
        w.count += 1;
        Ok(w.count)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The counters of one node.
#[derive(Debug)]
pub struct LookupCounters {
    bills: Counters<BillId>,
    clients: Counters<IpAddr>,
}

/// An IPv6 client is its /64 (one subscriber gets a whole /64); an IPv4 client its
/// address.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LookupCounters {
    /// Empty counters under `limits`.
    pub fn new(limits: &LookupLimits) -> Self {
        Self {
            bills: Counters::new(
                limits.max_tracked_bills,
                BILL_WINDOW_MS,
                limits.lookups_per_bill_per_day,
            ),
            clients: Counters::new(
                limits.max_tracked_clients,
                CLIENT_WINDOW_MS,
                limits.lookups_per_client_per_minute,
            ),
        }
    }

    /// Counts a lookup of `bill` by `client` at `now_ms` (Unix ms): the bill's count
    /// today, this one included, or why it is refused. A refused client does not count
    /// against the bill.
    pub fn lookup(&self, bill: BillId, client: IpAddr, now_ms: u64) -> Result<u32, Refusal> {
        self.clients
            .hit(client_key(client), now_ms)
            .map_err(|retry_after_s| Refusal::Client { retry_after_s })?;
        self.bills
            .hit(bill, now_ms)
            .map_err(|retry_after_s| Refusal::Bill { retry_after_s })
    }

    /// Counters kept now (bills, clients).
    pub fn tracked(&self) -> (usize, usize) {
        (self.bills.len(), self.clients.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bill(n: u64) -> BillId {
        ebill_types::dev::sample_bill(n, 100, 0).id()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_bill_is_counted_per_day_and_refused_past_its_limit() {
        let c = LookupCounters::new(&LookupLimits {
            lookups_per_bill_per_day: 3,
            ..Default::default()
        });
        let day = BILL_WINDOW_MS;
        for i in 1..=3 {
            assert_eq!(c.lookup(bill(1), ip(i as u8), day + 10), Ok(i));
        }
        let refused = c.lookup(bill(1), ip(9), day + 1000).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Bill {
                retry_after_s: 86_399
            }
        );
        assert_eq!(c.lookup(bill(2), ip(9), day + 1000), Ok(1), "another bill");
        assert_eq!(c.lookup(bill(1), ip(9), 2 * day), Ok(1), "the next day");
    }

    #[test]
    fn a_client_is_counted_per_minute_and_ipv6_by_its_64() {
        let c = LookupCounters::new(&LookupLimits {
            lookups_per_client_per_minute: 2,
            ..Default::default()
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert_eq!(c.lookup(bill(1), a, 0), Ok(1));
        assert_eq!(c.lookup(bill(2), b, 1), Ok(1));
        assert_eq!(
            c.lookup(bill(3), a, 59_500),
            Err(Refusal::Client { retry_after_s: 1 })
        );
        assert_eq!(c.lookup(bill(3), a, 60_000), Ok(1), "the next minute");
        assert_eq!(c.lookup(bill(4), ip(1), 60_000), Ok(1), "another client");
    }

    #[test]
    fn full_tables_sweep_ended_windows_and_refuse_rather_than_grow() {
        let c = LookupCounters::new(&LookupLimits {
            max_tracked_bills: 2,
            max_tracked_clients: 1000,
            ..Default::default()
        });
        assert!(c.lookup(bill(1), ip(1), 0).is_ok());
        assert!(c.lookup(bill(2), ip(2), 0).is_ok());
        assert!(matches!(
            c.lookup(bill(3), ip(3), 0),
            Err(Refusal::Bill { .. })
        ));
        assert_eq!(c.tracked().0, 2);
        // The next day the old windows are swept and the new bill fits.
        assert_eq!(c.lookup(bill(3), ip(3), BILL_WINDOW_MS), Ok(1));
        assert_eq!(c.tracked().0, 1);
    }
}
