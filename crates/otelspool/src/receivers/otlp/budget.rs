//! Memory accounting for requests in flight: one budget per receiver, shared by its gRPC and
//! HTTP transports, charged as a request's buffers are really filled, never on what a client
//! declares.
//!
//! A request holds one [`Charge`] from its first body byte until its data is queued. The
//! charge grows with the bytes received, the inflated body and the decoded form, and shrinks
//! as buffers are dropped. Two bounds apply: the receiver's whole budget, and a share per
//! connection (all HTTP/2 streams of one connection together), so that one client cannot take
//! the whole budget. A charge that cannot grow refuses the request with a retryable error.
//! A request larger than a bound may still hold all of it, so it passes when alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::pipeline::Refusal;
use crate::server::ConnectionShare;

/// How much memory a request of `n` encoded bytes may take while handled: the bytes, a decoded
/// copy that is about twice as large, and slack.
pub const DECODE_EXPANSION: usize = 4;

/// The part of the budget one connection may hold: a quarter, or one request of the largest
/// size when that is more (a connection can always carry one request).
pub const CONNECTION_SHARE_DIVISOR: u32 = 4;

/// A bound on the memory that requests in flight may hold (raw body, inflated body, decoded
/// form), so that many concurrent large requests cannot push the process past its memory
/// limit between two memory-limiter checks.
#[derive(Debug, Clone)]
pub struct InFlightBudget {
    permits: Arc<Semaphore>,
    kib: u32,
}

impl InFlightBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let kib = u32::try_from(bytes >> 10).unwrap_or(u32::MAX).max(1);
        InFlightBudget {
            permits: Arc::new(Semaphore::new(kib as usize)),
            kib,
        }
    }

    /// Bytes not held by any request now.
    pub fn available_bytes(&self) -> u64 {
        (self.permits.available_permits() as u64) << 10
    }

    /// An empty charge for one request arriving on `connection` (none for an in-process
    /// call), whose largest legitimate need is `request_max` bytes.
    pub fn charge(&self, connection: Option<ConnectionShare>, request_max: usize) -> Charge {
        let connection_cap = (self.kib / CONNECTION_SHARE_DIVISOR)
            .max(kib_ceil(request_max))
            .min(self.kib);
        Charge {
            budget: self.clone(),
            connection,
            connection_cap,
            permit: None,
            kib: 0,
        }
    }
}

fn kib_ceil(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// The memory one request holds of its receiver's budget and of its connection's share.
/// Dropping it gives everything back.
#[derive(Debug)]
pub struct Charge {
    budget: InFlightBudget,
    connection: Option<ConnectionShare>,
    connection_cap: u32,
    permit: Option<OwnedSemaphorePermit>,
    kib: u32,
}

impl Charge {
    /// Sets the charge to cover `bytes` in total: grows it (refused, retryably, when the
    /// budget or the connection's share is spent) or shrinks it (never fails).
    pub fn set(&mut self, bytes: usize) -> Result<(), Refusal> {
        let want = kib_ceil(bytes)
            .min(self.budget.kib)
            .min(self.connection_cap);
        if want < self.kib {
            let give = self.kib - want;
            if let Some(p) = self.permit.as_mut() {
                drop(p.split(give as usize));
            }
            if let Some(c) = &self.connection {
                c.give_kib(give);
            }
            self.kib = want;
            return Ok(());
        }
        if want == self.kib {
            return Ok(());
        }
        let more = want - self.kib;
        if let Some(c) = &self.connection
            && !c.try_take_kib(more, self.connection_cap)
        {
            return Err(Refusal::Overloaded(format!(
                "this connection's requests hold its share of {} MiB of the receiver's budget",
                self.connection_cap >> 10
            )));
        }
        match self.budget.permits.clone().try_acquire_many_owned(more) {
            Ok(p) => match self.permit.as_mut() {
                Some(held) => held.merge(p),
                None => self.permit = Some(p),
            },
            Err(_) => {
                if let Some(c) = &self.connection {
                    c.give_kib(more);
                }
                return Err(Refusal::Overloaded(format!(
                    "requests in flight hold the receiver's {} MiB budget",
                    self.budget.kib >> 10
                )));
            }
        }
        self.kib = want;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(c) = &self.connection {
            c.give_kib(self.kib);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: requests charge memory until the budget is spent, then one finishes.
    /// Guarantees: the next request is refused with a retryable error while the budget is
    /// spent, and admitted again once memory is given back; a request larger than the whole
    /// budget still passes alone.
    #[test]
    fn in_flight_budget_refuses_when_spent_and_recovers() {
        let budget = InFlightBudget::new(10 << 20);
        let mut a = budget.charge(None, 100 << 20);
        a.set(6 << 20).expect("first fits");
        let mut b = budget.charge(None, 100 << 20);
        let refused = b.set(6 << 20).expect_err("over budget");
        assert!(refused.is_retryable());
        drop(a);
        b.set(100 << 20).expect("alone, even a huge one passes");
        assert_eq!(budget.available_bytes(), 0);
        assert!(budget.charge(None, 1).set(1).is_err());
        drop(b);
        assert_eq!(budget.available_bytes(), 10 << 20);
    }

    /// Scenario: a charge grows with a body, shrinks when a buffer is dropped, and is dropped.
    /// Guarantees: the budget holds exactly what the charge says at each step (rounded up to
    /// KiB), and all of it comes back on drop.
    #[test]
    fn a_charge_follows_its_buffers_and_gives_everything_back() {
        let budget = InFlightBudget::new(1 << 20);
        let mut c = budget.charge(None, 1 << 20);
        c.set(1).expect("grow");
        assert_eq!(budget.available_bytes(), (1 << 20) - 1024);
        c.set(300 << 10).expect("grow");
        assert_eq!(budget.available_bytes(), 724 << 10);
        c.set(100 << 10).expect("shrink");
        assert_eq!(budget.available_bytes(), 924 << 10);
        drop(c);
        assert_eq!(budget.available_bytes(), 1 << 20);
    }

    /// Scenario: several requests on one connection charge memory while other connections
    /// still have room.
    /// Guarantees: the connection is refused (retryably) past its share of the budget, another
    /// connection is not, and the share comes back when the requests end.
    #[test]
    fn one_connection_cannot_take_more_than_its_share() {
        let budget = InFlightBudget::new(64 << 20);
        let conn = ConnectionShare::default();
        let mut first = budget.charge(Some(conn.clone()), 1 << 20);
        first.set(10 << 20).expect("within the share");
        let mut second = budget.charge(Some(conn.clone()), 1 << 20);
        let refused = second.set(10 << 20).expect_err("past the share of 16 MiB");
        assert!(refused.is_retryable());
        let mut other = budget.charge(Some(ConnectionShare::default()), 1 << 20);
        other
            .set(10 << 20)
            .expect("another connection has its own share");
        drop(first);
        second.set(10 << 20).expect("the share came back");
        assert_eq!(budget.available_bytes(), 44 << 20);
    }
}
