//! Catch-ups that callers share: one check of the store at a time, and every caller served
//! by a check that started after it asked.
//!
//! Read-your-writes across replicas needs each request to see what the store held when
//! it arrived. Checking once per request, one after another, made concurrent requests
//! queue for a database round trip each; here, callers that arrive while a check runs
//! wait for the next one and share its answer. At most two checks serve any burst.
//!
//! Invariant: the answer a caller gets comes from a check begun after the caller asked
//! (a check already running when it arrived may have read the store before its writes).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tapwire_store::StoreError;

/// Checks begun and finished; see the module doc.
#[derive(Default)]
pub struct CatchUps {
    flights: Mutex<Flights>,
    landed: Condvar,
}

#[derive(Default)]
struct Flights {
    /// Checks begun so far; the running one, if any, is the last of them.
    begun: u64,
    /// The last check that finished, and its answer.
    finished: u64,
    answer: Option<Result<u64, StoreError>>,
    running: bool,
    /// Callers waiting for a check to land.
    waiting: usize,
}

impl CatchUps {
    fn flights(&self) -> MutexGuard<'_, Flights> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer of a run of `check` begun after this call: this caller's own, or one
    /// another caller started while this one waited.
    pub fn run(&self, check: impl FnOnce() -> Result<u64, StoreError>) -> Result<u64, StoreError> {
        let mut flights = self.flights();
        // A running check began before this call: the one after it is the first that counts.
        let needed = flights.begun + 1;
        loop {
            if flights.finished >= needed
                && let Some(answer) = &flights.answer
            {
                return answer.clone();
            }
            if !flights.running {
                flights.running = true;
                flights.begun += 1;
                let ticket = flights.begun;
                drop(flights);
                let flight = Flight { catch_ups: self, ticket, answer: None };
                return flight.with(check());
            }
            flights.waiting += 1;
            flights = self.landed.wait(flights).unwrap_or_else(PoisonError::into_inner);
            flights.waiting -= 1;
        }
    }
}

/// Records a check's end, even if it panicked, so waiters never wait for it forever.
struct Flight<'a> {
    catch_ups: &'a CatchUps,
    ticket: u64,
    answer: Option<Result<u64, StoreError>>,
}

impl Flight<'_> {
    fn with(mut self, answer: Result<u64, StoreError>) -> Result<u64, StoreError> {
        self.answer = Some(answer.clone());
        answer
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.catch_ups.flights();
        flights.running = false;
        flights.finished = self.ticket;
        flights.answer =
            Some(self.answer.take().unwrap_or_else(|| Err(StoreError::Backend("a catch-up panicked".into()))));
        drop(flights);
        self.catch_ups.landed.notify_all();
    }
}

/// This replica's commit while it lands: taken by the store, not yet published. A
/// catch-up that finds the store at that revision waits for it to be published rather
/// than reading back from the store what this replica is about to publish anyway.
#[derive(Default)]
pub struct OwnCommit {
    landing: Mutex<Landed>,
    settled: Condvar,
}

#[derive(Default)]
struct Landed {
    revision: Option<u64>,
    /// Catch-ups waiting for it.
    waiting: usize,
}

/// Marks a commit landing until dropped: after its state is published, or it failed.
pub struct Landing<'a>(&'a OwnCommit);

impl OwnCommit {
    fn landing(&self) -> MutexGuard<'_, Landed> {
        self.landing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A commit that would make `revision` is about to be sent.
    pub fn begin(&self, revision: u64) -> Landing<'_> {
        self.landing().revision = Some(revision);
        Landing(self)
    }

    /// Waits while `revision` is this replica's own commit landing; whether it waited.
    pub fn wait_for(&self, revision: u64) -> bool {
        let mut landing = self.landing();
        let waited = landing.revision == Some(revision);
        while landing.revision == Some(revision) {
            landing.waiting += 1;
            landing = self.settled.wait(landing).unwrap_or_else(PoisonError::into_inner);
            landing.waiting -= 1;
        }
        waited
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.0.landing().revision = None;
        self.0.settled.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    /// A check of `answer()`, run on a thread of its own, that holds on once begun: when
    /// this returns it is running, and it ends once the barrier is passed.
    fn held_check(
        catch_ups: &Arc<CatchUps>,
        answer: impl FnOnce() -> Result<u64, StoreError> + Send + 'static,
    ) -> (std::thread::JoinHandle<Result<u64, StoreError>>, Arc<Barrier>) {
        let (in_check, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (catch_ups, running, held) = (catch_ups.clone(), in_check.clone(), release.clone());
        let check = std::thread::spawn(move || {
            catch_ups.run(|| {
                let answer = answer();
                running.wait();
                held.wait();
                answer
            })
        });
        in_check.wait();
        (check, release)
    }

    #[test]
    fn a_caller_arriving_during_a_check_waits_for_the_next_one() {
        let catch_ups = Arc::new(CatchUps::default());
        let store_revision = Arc::new(AtomicU64::new(1));
        let seen = store_revision.clone();
        let (first, release) = held_check(&catch_ups, move || Ok(seen.load(Ordering::SeqCst)));
        // The first check has read revision 1; a write lands, then a second caller asks.
        store_revision.store(2, Ordering::SeqCst);
        let second = {
            let (catch_ups, store_revision) = (catch_ups.clone(), store_revision.clone());
            std::thread::spawn(move || catch_ups.run(|| Ok(store_revision.load(Ordering::SeqCst))))
        };
        while catch_ups.flights().waiting < 1 {
            std::thread::yield_now();
        }
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        assert_eq!(second.join().unwrap().unwrap(), 2, "the second caller got the check begun before it asked");
    }

    #[test]
    fn callers_waiting_together_share_one_check_and_its_error() {
        let catch_ups = Arc::new(CatchUps::default());
        let checks = Arc::new(AtomicU64::new(0));
        let (blocker, release) = held_check(&catch_ups, || Ok(0));
        let waiters: Vec<_> = (0..6)
            .map(|_| {
                let (catch_ups, checks) = (catch_ups.clone(), checks.clone());
                std::thread::spawn(move || {
                    catch_ups.run(|| {
                        checks.fetch_add(1, Ordering::SeqCst);
                        Err(StoreError::Unavailable("down".into()))
                    })
                })
            })
            .collect();
        // Every waiter asked while check 1 ran: all of them need check 2.
        while catch_ups.flights().waiting < 6 {
            std::thread::yield_now();
        }
        release.wait();
        blocker.join().unwrap().unwrap();
        for waiter in waiters {
            assert!(matches!(waiter.join().unwrap(), Err(StoreError::Unavailable(_))));
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1, "six callers waiting together ran one check");
    }

    #[test]
    fn a_catch_up_finding_its_own_commit_waits_for_it_and_no_other() {
        let own = Arc::new(OwnCommit::default());
        assert!(!own.wait_for(5), "nothing landing: no wait");
        let landing = own.begin(5);
        assert!(!own.wait_for(6), "another replica's revision is not waited for");
        let waiter = {
            let own = own.clone();
            std::thread::spawn(move || own.wait_for(5))
        };
        while own.landing().waiting == 0 {
            std::thread::yield_now();
        }
        drop(landing);
        assert!(waiter.join().unwrap(), "it waited for the commit to settle");
    }

    #[test]
    fn a_panicking_check_does_not_leave_waiters_hanging() {
        let catch_ups = CatchUps::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = catch_ups.run(|| panic!("check failed"));
        }));
        assert!(panicked.is_err());
        assert_eq!(catch_ups.run(|| Ok(7)).unwrap(), 7);
    }
}
